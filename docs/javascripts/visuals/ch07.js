/* Chapter 7's visual: temperature, top-k, top-p and min-p on SmolLM2's real next-token logits.
 *
 * filtered() turns logits into the distribution a sampler draws from, with nanovllm_final's rules
 * (layers/sampler.py, filtered_probs), in the same order:
 *   temperature 0   greedy: the most likely token, always
 *   temperature T   logits / T
 *   top-k           keep the k most likely (0: all)
 *   top-p           after a softmax, drop a token once the tokens ranked above it hold top_p
 *   min-p           after a softmax, drop a token below min_p times the most likely one's probability
 * tests/test_visuals.py compares it with filtered_probs on the same logits.
 */
(function () {
  "use strict";

  const softmax = (xs) => {
    const most = Math.max(...xs.filter((x) => x > -Infinity));
    const e = xs.map((x) => (x === -Infinity ? 0 : Math.exp(x - most)));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  };

  /** logits sorted from the most likely down -> probabilities after temperature and the filters. */
  function filtered(logits, { temperature, topK, topP, minP }) {
    if (temperature === 0) return logits.map((_, i) => (i === 0 ? 1 : 0)); // argmax: the first
    let l = logits.map((x, i) => (topK > 0 && i >= topK ? -Infinity : x / temperature));
    const p = softmax(l);
    let before = 0;
    l = l.map((x, i) => { const drop = before >= topP; before += p[i]; return drop ? -Infinity : x; });
    let probs = softmax(l);
    if (minP > 0) {
      const most = Math.max(...probs);
      probs = probs.map((q) => (q < minP * most ? 0 : q));
      const sum = probs.reduce((a, b) => a + b, 0);
      probs = probs.map((q) => q / sum);
    }
    return probs;
  }

  const entropyBits = (ps) => -ps.reduce((n, p) => (p > 0 ? n + p * Math.log2(p) : n), 0);

  if (typeof module === "object" && module.exports) module.exports = { filtered };
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, picker, rng } = window.CourseVisuals;
  const show = (tok) => (tok === "" ? "∅" : tok.replace(/ /g, "␣").replace(/\n/g, "↵"));
  const SHOWN = 16;

  function draw(root, data) {
    const byPrompt = Object.fromEntries(data.prompts.map((p) => [p.prompt, p]));
    let entry = data.prompts[0], draws = 0;
    const params = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    const figures = h("div", { class: "visual__figures" });
    const chart = s("svg", { viewBox: "0 0 680 380", role: "img", "aria-label": "next-token probabilities before and after sampling filters" });
    const source = h("p", { class: "visual__note" });

    function update() {
      const raw = softmax(entry.logits);
      const after = filtered(entry.logits, params);
      const counts = new Array(after.length).fill(0);
      if (draws) { // draws from the filtered distribution, the same ones for the same settings
        const r = rng(draws);
        for (let n = 0; n < 100; n++) {
          let u = r(), i = 0;
          while (i < after.length - 1 && (u -= after[i]) > 0) i++;
          counts[i]++;
        }
      }
      const kept = after.filter((p) => p > 0).length;
      figures.replaceChildren(
        h("span", { class: "visual__figure" }, "tokens that can be drawn: ", h("b", { "data-figure": "kept" }, kept === after.length ? `all ${kept}` : kept)),
        h("span", { class: "visual__figure" }, "entropy: ", h("b", {}, `${entropyBits(raw).toFixed(2)} bits`), " → ",
          h("b", { "data-figure": "entropy" }, `${entropyBits(after).toFixed(2)} bits`)),
        h("span", { class: "visual__figure" }, "most likely token: ", h("b", { "data-figure": "top" }, `${(100 * after[0]).toFixed(1)}%`)));
      const x0 = 110, width = 430, row = 21, top = 26;
      const most = Math.max(raw[0], ...after.slice(0, SHOWN));
      chart.replaceChildren(
        s("text", { x: 0, y: 12, class: "visual__muted" }, `the ${SHOWN} most likely next tokens: outline = the model (T = 1), filled = what the sampler draws from`),
        ...entry.tokens.slice(0, SHOWN).flatMap((tok, i) => {
          const y = top + i * row;
          return [
            s("text", { x: x0 - 6, y: y + 14, "text-anchor": "end", "font-family": "monospace" }, show(tok)),
            s("rect", { x: x0, y: y + 2, width: Math.max(0.5, (after[i] / most) * width), height: row - 4,
              class: after[i] > 0 ? "visual__bar-b" : "visual__bar-free", "data-token": tok, "data-p": after[i].toFixed(6) }),
            s("rect", { x: x0, y: y + 2, width: (raw[i] / most) * width, height: row - 4, fill: "none", stroke: "var(--visual-a)", "stroke-width": 1.2 }),
            s("text", { x: x0 + Math.max(after[i], raw[i]) / most * width + 4, y: y + 14 },
              `${(100 * after[i]).toFixed(1)}%${draws ? ` · drawn ${counts[i]} of 100` : ""}`),
          ];
        }),
        s("text", { x: x0, y: top + SHOWN * row + 14, class: "visual__muted" },
          `… and ${entry.tokens.length - SHOWN} more tokens hold ${(100 * after.slice(SHOWN).reduce((a, b) => a + b, 0)).toFixed(1)}%` +
          (draws ? ` (${counts.slice(SHOWN).reduce((a, b) => a + b, 0)} of the 100 draws)` : "")));
      source.textContent = `${data.model} after “${entry.prompt}”: its ${entry.tokens.length} most likely next tokens, ` +
        `${(100 * entry.mass).toFixed(1)}% of the probability at temperature 1; the other ${(data.vocab_size - entry.tokens.length).toLocaleString("en-US")} tokens of the vocabulary are left out.`;
    }

    const set = (key) => (v) => { params[key] = v; update(); };
    const temperature = slider({ label: "temperature", min: 0, max: 2, step: 0.05, value: 1, name: "temperature",
      format: (v) => (v === 0 ? "0 (greedy)" : v.toFixed(2)), onchange: set("temperature") });
    const topK = slider({ label: "top-k", min: 0, max: 50, value: 0, name: "top_k",
      format: (v) => (v === 0 ? "off" : String(v)), onchange: set("topK") });
    const topP = slider({ label: "top-p", min: 0.05, max: 1, step: 0.05, value: 1, name: "top_p",
      format: (v) => (v === 1 ? "off" : v.toFixed(2)), onchange: set("topP") });
    const minP = slider({ label: "min-p", min: 0, max: 0.5, step: 0.01, value: 0, name: "min_p",
      format: (v) => (v === 0 ? "off" : v.toFixed(2)), onchange: set("minP") });
    const pick = picker({ label: "prompt", options: Object.keys(byPrompt), value: entry.prompt,
      onchange: (p) => { entry = byPrompt[p]; update(); } });
    root.append(
      h("p", { class: "visual__title" }, "Sampling: the same logits under each filter"),
      h("div", { class: "visual__controls" }, pick),
      h("div", { class: "visual__controls" }, temperature, topK, topP, minP,
        h("button", { type: "button", "data-action": "draw", onclick: () => { draws += 1; update(); } }, "draw 100 tokens")),
      figures, chart, source);
    for (const control of [temperature, topK, topP, minP]) control.init();
    pick.init();
  }

  window.CourseVisuals.register("ch07", draw);
})();
