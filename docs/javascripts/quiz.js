/* The chapter quizzes on the course site, graded in the browser, and the learner's progress.
 *
 * quizzes/html.py writes each quiz into the page with its answers (each question's data-key);
 * this file grades a reply exactly as quizzes/core.py does: a choice question by its right
 * letters, a numeric one within its tolerance. Keep parseNumber and within in step with
 * quizzes/core.py (tests/test_quizzes.py compares them when node is installed).
 *
 * Each quiz's best score is kept in the browser's localStorage under "nanovllm-course:quiz:NN"
 * as {best, total, passed}; the home page's progress block (an element with class
 * "course-progress", docs/index.md) reads it back. Nothing leaves the browser.
 */
(function () {
  "use strict";

  const STORAGE_PREFIX = "nanovllm-course:quiz:";

  // "1,000", "1e3", "4x", "87.8%" and " 2.5 " are numbers; anything else is null.
  function parseNumber(value) {
    const text = String(value).replace(/[\s,_]/g, "").toLowerCase().replace(/[x×%]$/, "");
    if (!/^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(e[+-]?[0-9]+)?$/.test(text)) return null;
    const number = Number(text);
    return Number.isFinite(number) ? number : null;
  }

  // Question.matches in quizzes/core.py: within the tolerance, with room for float rounding.
  const within = (reply, target, tolerance) =>
    Math.abs(reply - target) <= tolerance + 1e-9 * Math.max(1, Math.abs(target));

  const points = (x) => String(Math.round(x * 100) / 100);

  // localStorage can be missing or refuse (private windows, some file:// pages): then the
  // quiz still works, it only forgets.
  function loadRecord(chapter) {
    try {
      const raw = window.localStorage.getItem(STORAGE_PREFIX + chapter);
      const record = raw && JSON.parse(raw);
      return record && typeof record.best === "number" && typeof record.total === "number" ? record : null;
    } catch (err) {
      return null;
    }
  }

  function saveRecord(chapter, record) {
    try {
      window.localStorage.setItem(STORAGE_PREFIX + chapter, JSON.stringify(record));
    } catch (err) {
      /* not kept; see loadRecord */
    }
  }

  function setupQuiz(quiz) {
    if (quiz.dataset.ready) return;
    quiz.dataset.ready = "1";
    const chapter = quiz.dataset.chapter;
    const passShare = Number(quiz.dataset.pass || "0.7");
    const questions = quiz.querySelectorAll(".quiz-question");
    const total = questions.length;
    const scores = new Map();
    const revealed = new Set(); // questions whose answer was shown: they score nothing this visit
    const best = quiz.querySelector(".quiz-best");

    function showBest(record) {
      if (!record || !best) return;
      const verdict = record.passed ? "passed" : `${Math.ceil(passShare * record.total)} points pass`;
      best.textContent = `Your best score on this quiz: ${points(record.best)} / ${record.total} (${verdict}); kept in this browser.`;
      best.hidden = false;
    }

    function showScore() {
      let sum = 0;
      scores.forEach((s) => (sum += s));
      quiz.querySelector(".quiz-score__value").textContent = points(sum);
      quiz.querySelector(".quiz-score__checked").textContent = `(${scores.size} of ${total} checked)`;
      const record = loadRecord(chapter);
      if (scores.size && (!record || sum > record.best || record.total !== total)) {
        const kept = { best: sum, total: total, passed: sum >= passShare * total - 1e-9 };
        saveRecord(chapter, kept);
        showBest(kept);
      }
    }

    questions.forEach((li) => {
      const qid = li.dataset.qid;
      const type = li.dataset.type;
      const key = JSON.parse(li.dataset.key);
      const verdict = li.querySelector(".quiz-verdict");
      const reveal = li.querySelector(".quiz-reveal");
      const options = Array.from(li.querySelectorAll(".quiz-option"));
      const isRight = (letter) => key.answer.includes(letter);

      function clear() {
        li.querySelectorAll(".quiz-feedback, .quiz-answer").forEach((el) => (el.hidden = true));
        options.forEach((el) => el.classList.remove("quiz-option--right", "quiz-option--wrong", "quiz-option--answer"));
        li.classList.remove("quiz-question--right", "quiz-question--partial", "quiz-question--wrong");
        verdict.textContent = "";
        reveal.hidden = true;
      }

      function finish(score) {
        const state = score === 1 ? "right" : score > 0 ? "partial" : "wrong";
        li.classList.add(`quiz-question--${state}`);
        verdict.textContent = {
          right: "Right.",
          partial: `Partly right: ${points(score)} of 1 point. Read the feedback and try again.`,
          wrong: "Not quite. Read the feedback and try again.",
        }[state];
        if (revealed.has(qid)) {
          verdict.textContent += " (The answer was shown, so this question scores nothing this time.)";
          score = 0;
        } else if (score < 1) {
          reveal.hidden = false;
        }
        scores.set(qid, score);
        showScore();
      }

      li.querySelector(".quiz-check").addEventListener("click", () => {
        clear();
        if (type === "numeric") {
          const y = parseNumber(li.querySelector("input").value);
          if (y === null) {
            verdict.textContent = "Type a number, such as 42, 1,000, 2.5 or 87.5%.";
            return;
          }
          if (within(y, key.answer, key.tolerance)) {
            li.querySelector('[data-for="correct"]').hidden = false;
            return finish(1);
          }
          const trap = key.traps.findIndex((t) => within(y, t, key.tolerance));
          if (trap >= 0) li.querySelector(`[data-trap="${trap}"]`).hidden = false;
          li.querySelector('[data-for="incorrect"]').hidden = false;
          return finish(0);
        }
        const chosen = options.filter((el) => el.querySelector("input").checked);
        if (chosen.length === 0) {
          verdict.textContent = type === "single" ? "Pick an option first." : "Pick at least one option first.";
          return;
        }
        let hits = 0;
        chosen.forEach((el) => {
          const ok = isRight(el.dataset.letter);
          hits += ok ? 1 : 0;
          el.classList.add(ok ? "quiz-option--right" : "quiz-option--wrong");
          el.querySelector(".quiz-feedback").hidden = false;
        });
        const wrong = chosen.length - hits;
        finish(type === "single" ? hits : Math.max(0, (hits - wrong) / key.answer.length));
      });

      reveal.addEventListener("click", () => {
        revealed.add(qid);
        if (type === "numeric") {
          li.querySelector(".quiz-answer").hidden = false;
          li.querySelector('[data-for="correct"]').hidden = false;
        } else {
          options.forEach((el) => {
            if (isRight(el.dataset.letter)) {
              el.classList.add("quiz-option--answer");
              el.querySelector(".quiz-feedback").hidden = false;
            }
          });
        }
        reveal.hidden = true;
      });
      li.addEventListener("change", () => {
        li.classList.remove("quiz-question--right", "quiz-question--partial", "quiz-question--wrong");
        verdict.textContent = "";
      });
    });
    showBest(loadRecord(chapter));
    showScore();
  }

  // The home page's block: one cell per chapter, passed / tried / not yet, from localStorage.
  function setupProgress(box) {
    if (box.dataset.ready) return;
    box.dataset.ready = "1";
    const chapters = Number(box.dataset.chapters || "11");
    const list = document.createElement("ol");
    list.className = "course-progress__chapters";
    let passed = 0;
    for (let i = 1; i <= chapters; i++) {
      const chapter = String(i).padStart(2, "0");
      const record = loadRecord(chapter);
      const state = !record ? "todo" : record.passed ? "passed" : "tried";
      if (state === "passed") passed += 1;
      const item = document.createElement("li");
      item.className = `course-progress__chapter course-progress__chapter--${state}`;
      item.dataset.chapter = chapter;
      item.textContent = chapter;
      item.title = record
        ? `Chapter ${chapter}: best quiz score ${points(record.best)} / ${record.total}${record.passed ? ", passed" : ""}`
        : `Chapter ${chapter}: quiz not taken yet`;
      list.appendChild(item);
    }
    const summary = document.createElement("p");
    summary.className = "course-progress__summary";
    summary.textContent = `Quizzes passed: ${passed} of ${chapters}.`;
    box.replaceChildren(summary, list);
  }

  const setupAll = () => {
    document.querySelectorAll(".quiz").forEach(setupQuiz);
    document.querySelectorAll(".course-progress").forEach(setupProgress);
  };

  if (typeof module === "object" && module.exports) {
    module.exports = { parseNumber, within }; // node, for the tests
  } else if (typeof document$ !== "undefined") {
    document$.subscribe(setupAll); // Material for MkDocs: every page load, instant navigation too
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setupAll);
  } else {
    setupAll();
  }
})();
