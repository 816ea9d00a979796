/* Chapter 7's visual: temperature, top-k, top-p and min-p on SmolLM2's whole next-token distribution.
 *
 * A prompt's distribution comes as groups of tokens with equal logits, most likely first: the 400
 * named tokens one by one, then every other token of the vocabulary as [logit, count] (the tail,
 * where temperature and top-p do most of their work). filtered() applies ch07's sampler's rules
 * (chapters/07/sampler.py, filtered_probs), in the same order, to whole groups at once:
 *   temperature 0   greedy: the most likely token, always
 *   temperature T   logits / T
 *   top-k           keep the tokens whose logit is at least the k-th largest (ties stay; 0: all)
 *   top-p           after a softmax, drop a token once the tokens ranked above it hold top_p
 *   min-p           after a softmax, drop a token below min_p times the most likely one's probability
 * It returns [probability of each token, tokens kept] per group. tests/test_visuals.py compares it
 * with ch07's filtered_probs on the full vocabulary.
 */
(function () {
  "use strict";

  /** One prompt's groups [[logit, count], ...], most likely first. */
  const groupsOf = (entry) => entry.logits.map((l) => [l, 1]).concat(entry.tail || []);

  /** Each group's probability per token, with `kept` tokens of it kept, renormalized. */
  function normalized(qs, kept) {
    const sum = qs.reduce((n, q, i) => n + q * kept[i], 0);
    return qs.map((q, i) => (kept[i] ? q / sum : 0));
  }

  function filtered(groups, { temperature, topK, topP, minP }) {
    if (temperature === 0) return groups.map((_, i) => (i === 0 ? [1, 1] : [0, 0])); // argmax: the first
    let kept = groups.map(([, c]) => c);
    if (topK > 0) {
      let seen = 0, kth = -Infinity;
      for (const [l, c] of groups) { seen += c; if (seen >= topK) { kth = l; break; } }
      kept = groups.map(([l, c]) => (l >= kth ? c : 0));
    }
    const most = groups[0][0] / temperature;
    let qs = normalized(groups.map(([l]) => Math.exp(l / temperature - most)), kept);
    if (topP < 1) {
      let before = 0; // the mass of the tokens ranked above
      kept = kept.map((n, i) => {
        const q = qs[i], stay = before >= topP || !n ? 0 : Math.min(n, Math.ceil((topP - before) / q));
        before += n * q;
        return stay;
      });
      qs = normalized(qs, kept);
    }
    if (minP > 0) {
      kept = kept.map((n, i) => (qs[i] < minP * qs[0] ? 0 : n));
      qs = normalized(qs, kept);
    }
    return qs.map((q, i) => [q, kept[i]]);
  }

  const entropyBits = (dist) => -dist.reduce((n, [q, k]) => (q > 0 ? n + k * q * Math.log2(q) : n), 0);
  const keptTokens = (dist) => dist.reduce((n, [, k]) => n + k, 0);

  /** n draws from dist with the seeded stream r: how many landed in each group. */
  function drawCounts(dist, r, n) {
    const counts = new Array(dist.length).fill(0);
    for (let d = 0; d < n; d++) {
      let u = r(), i = 0;
      while (i < dist.length - 1 && (u -= dist[i][0] * dist[i][1]) > 0) i++;
      counts[i]++;
    }
    return counts;
  }

  if (typeof module === "object" && module.exports) module.exports = { filtered, groupsOf, entropyBits, keptTokens, drawCounts };
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
      const groups = groupsOf(entry);
      const raw = filtered(groups, { temperature: 1, topK: 0, topP: 1, minP: 0 });
      const after = filtered(groups, params);
      const p = (dist, i) => dist[i][0] * dist[i][1];
      const counts = draws ? drawCounts(after, rng(draws), 100) : null; // the same draws for the same settings
      const kept = keptTokens(after);
      figures.replaceChildren(
        h("span", { class: "visual__figure" }, "tokens that can be drawn: ",
          h("b", { "data-figure": "kept" }, kept === data.vocab_size ? `all ${kept.toLocaleString("en-US")}` : kept.toLocaleString("en-US"))),
        h("span", { class: "visual__figure" }, "entropy: ", h("b", {}, `${entropyBits(raw).toFixed(2)} bits`), " → ",
          h("b", { "data-figure": "entropy" }, `${entropyBits(after).toFixed(2)} bits`)),
        h("span", { class: "visual__figure" }, "most likely token: ", h("b", { "data-figure": "top" }, `${(100 * p(after, 0)).toFixed(1)}%`)));
      const x0 = 110, width = 430, row = 21, top = 26;
      const most = Math.max(p(raw, 0), ...after.slice(0, SHOWN).map((_, i) => p(after, i)));
      const shownMass = after.slice(0, SHOWN).reduce((n, _, i) => n + p(after, i), 0);
      chart.replaceChildren(
        s("text", { x: 0, y: 12, class: "visual__muted" }, `the ${SHOWN} most likely next tokens: outline = the model (T = 1), filled = what the sampler draws from`),
        ...entry.tokens.slice(0, SHOWN).flatMap((tok, i) => {
          const y = top + i * row, a = p(after, i), r = p(raw, i);
          return [
            s("text", { x: x0 - 6, y: y + 14, "text-anchor": "end", "font-family": "monospace" }, show(tok)),
            s("rect", { x: x0, y: y + 2, width: Math.max(0.5, (a / most) * width), height: row - 4,
              class: a > 0 ? "visual__bar-b" : "visual__bar-free", "data-token": tok, "data-p": a.toFixed(6) }),
            s("rect", { x: x0, y: y + 2, width: (r / most) * width, height: row - 4, fill: "none", stroke: "var(--visual-a)", "stroke-width": 1.2 }),
            s("text", { x: x0 + Math.max(a, r) / most * width + 4, y: y + 14 },
              `${(100 * a).toFixed(1)}%${counts ? ` · drawn ${counts[i]} of 100` : ""}`),
          ];
        }),
        s("text", { x: x0, y: top + SHOWN * row + 14, class: "visual__muted", "data-figure": "rest" },
          `… and ${(data.vocab_size - SHOWN).toLocaleString("en-US")} more tokens hold ${(100 * Math.max(0, 1 - shownMass)).toFixed(1)}%` +
          (counts ? ` (${counts.slice(SHOWN).reduce((a, b) => a + b, 0)} of the 100 draws)` : "")));
      source.textContent = `${data.model} after “${entry.prompt}”: all ${data.vocab_size.toLocaleString("en-US")} tokens of its vocabulary, ` +
        `the ${entry.tokens.length} most likely by name and the other ${(data.vocab_size - entry.tokens.length).toLocaleString("en-US")} ` +
        "counted by their logit (rounded to 0.01).";
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
