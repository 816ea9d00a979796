/* The chapter quizzes on the course site, graded in the browser.
 *
 * quizzes/html.py writes each quiz into the page with the hashes of quizzes/NN.yaml; this file
 * grades a reply exactly as quizzes/core.py does:
 *   answerHash = sha256(salt + ":" + questionId + ":" + value), value = an option letter, or for
 *   a numeric reply y the grid index floor(y / step + 0.5).
 * Keep parseNumber, gridIndex and answerHash in step with quizzes/core.py (tests/test_quizzes.py
 * compares them when node is installed).
 */
(function () {
  "use strict";

  // SHA-256 (FIPS 180-4) of a string's UTF-8 bytes, as hex. Written out here rather than taken
  // from crypto.subtle, which browsers only offer on https pages and is asynchronous.
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));

  function sha256(text) {
    const bytes = new TextEncoder().encode(text);
    const padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6); // message, 0x80, zeros, 64-bit length
    padded.set(bytes);
    padded[bytes.length] = 0x80;
    const view = new DataView(padded.buffer);
    const bits = bytes.length * 8;
    view.setUint32(padded.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(padded.length - 4, bits >>> 0);
    const H = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    const W = new Uint32Array(64);
    for (let block = 0; block < padded.length; block += 64) {
      for (let i = 0; i < 16; i++) W[i] = view.getUint32(block + 4 * i);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
        const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
        W[i] = W[i - 16] + s0 + W[i - 7] + s1; // Uint32Array keeps it mod 2^32
      }
      let [a, b, c, d, e, f, g, h] = H;
      for (let i = 0; i < 64; i++) {
        const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0;
        d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
    return Array.from(H, (x) => x.toString(16).padStart(8, "0")).join("");
  }

  const answerHash = (salt, questionId, value) => sha256(`${salt}:${questionId}:${value}`);
  const gridIndex = (y, step) => Math.floor(y / step + 0.5);

  // "1,000", "1e3", "4x" and " 2.5 " are numbers; anything else is null.
  function parseNumber(value) {
    const text = String(value).replace(/[\s,_]/g, "").toLowerCase().replace(/[x×]$/, "");
    if (!/^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(e[+-]?[0-9]+)?$/.test(text)) return null;
    const number = Number(text);
    return Number.isFinite(number) ? number : null;
  }

  const points = (x) => String(Math.round(x * 100) / 100);

  function setupQuiz(quiz) {
    if (quiz.dataset.ready) return;
    quiz.dataset.ready = "1";
    const salt = quiz.dataset.salt;
    const questions = quiz.querySelectorAll(".quiz-question");
    const scores = new Map();

    function showScore() {
      let total = 0;
      scores.forEach((s) => (total += s));
      quiz.querySelector(".quiz-score__value").textContent = points(total);
      quiz.querySelector(".quiz-score__checked").textContent = `(${scores.size} of ${questions.length} checked)`;
    }

    questions.forEach((li) => {
      const qid = li.dataset.qid;
      const type = li.dataset.type;
      const key = JSON.parse(li.dataset.key);
      const accepted = new Set(key.hashes);
      const verdict = li.querySelector(".quiz-verdict");
      const reveal = li.querySelector(".quiz-reveal");
      const options = Array.from(li.querySelectorAll(".quiz-option"));
      const isRight = (letter) => accepted.has(answerHash(salt, qid, letter));

      function clear() {
        li.querySelectorAll(".quiz-feedback").forEach((el) => (el.hidden = true));
        options.forEach((el) => el.classList.remove("quiz-option--right", "quiz-option--wrong", "quiz-option--answer"));
        li.classList.remove("quiz-question--right", "quiz-question--partial", "quiz-question--wrong");
        verdict.textContent = "";
        if (reveal) reveal.hidden = true;
      }

      function finish(score) {
        const state = score === 1 ? "right" : score > 0 ? "partial" : "wrong";
        li.classList.add(`quiz-question--${state}`);
        verdict.textContent = {
          right: "Right.",
          partial: `Partly right: ${points(score)} of 1 point. Read the feedback and try again.`,
          wrong: "Not quite. Read the feedback and try again.",
        }[state];
        if (reveal && score < 1) reveal.hidden = false;
        scores.set(qid, score);
        showScore();
      }

      li.querySelector(".quiz-check").addEventListener("click", () => {
        clear();
        if (type === "numeric") {
          const y = parseNumber(li.querySelector("input").value);
          if (y === null) {
            verdict.textContent = "Type a number, such as 42, 1,000 or 2.5.";
            return;
          }
          const h = answerHash(salt, qid, gridIndex(y, key.step));
          if (accepted.has(h)) {
            li.querySelector('[data-for="correct"]').hidden = false;
            return finish(1);
          }
          const trap = key.traps.findIndex((hashes) => hashes.includes(h));
          if (trap >= 0) li.querySelector(`[data-trap="${trap}"]`).hidden = false;
          li.querySelector('[data-for="incorrect"]').hidden = false;
          return finish(0);
        }
        const chosen = options.filter((el) => el.querySelector("input").checked);
        if (chosen.length === 0) {
          verdict.textContent = type === "single" ? "Pick an option first." : "Pick at least one option first.";
          return;
        }
        const nRight = options.filter((el) => isRight(el.dataset.letter)).length;
        let hits = 0;
        chosen.forEach((el) => {
          const ok = isRight(el.dataset.letter);
          hits += ok ? 1 : 0;
          el.classList.add(ok ? "quiz-option--right" : "quiz-option--wrong");
          el.querySelector(".quiz-feedback").hidden = false;
        });
        const wrong = chosen.length - hits;
        finish(type === "single" ? hits : Math.max(0, (hits - wrong) / nRight));
      });

      if (reveal) {
        reveal.addEventListener("click", () => {
          options.forEach((el) => {
            if (isRight(el.dataset.letter)) {
              el.classList.add("quiz-option--answer");
              el.querySelector(".quiz-feedback").hidden = false;
            }
          });
          reveal.hidden = true;
        });
      }
      li.addEventListener("change", () => {
        li.classList.remove("quiz-question--right", "quiz-question--partial", "quiz-question--wrong");
        verdict.textContent = "";
      });
    });
    showScore();
  }

  const setupAll = () => document.querySelectorAll(".quiz").forEach(setupQuiz);

  if (typeof module === "object" && module.exports) {
    module.exports = { sha256, answerHash, gridIndex, parseNumber }; // node, for the tests
  } else if (typeof document$ !== "undefined") {
    document$.subscribe(setupAll); // Material for MkDocs: every page load, instant navigation too
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setupAll);
  } else {
    setupAll();
  }
})();
