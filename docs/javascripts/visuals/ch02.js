/* Chapter 2's visual: what the KV cache costs (bytes) and saves (work per step), for three models.
 *
 * The numbers per model come from course/visual_data.py: ch01.ModelConfig read each config.json,
 * its kv_bytes_per_token gives the bytes, ch01's CausalLM built on the meta device the weights.
 * A step at length T, without the cache, runs all T positions through the model; with it, one.
 */
(function () {
  "use strict";

  /** FLOPs of the step that makes token T+1: the weights times the positions run, plus attention. */
  function stepFlops(m, T, cached) {
    const positions = cached ? 1 : T;
    return positions * m.flops_per_position + m.flops_lm_head + m.flops_attention_per_pair * positions * T;
  }

  if (typeof module === "object" && module.exports) module.exports = { stepFlops };
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, picker, fmtInt, fmtBytes, fmtCount } = window.CourseVisuals;

  function draw(root, data) {
    const models = Object.fromEntries(data.models.map((m) => [m.name, m]));
    let model = data.models[0], T = 1024;

    const formula = h("p", { class: "visual__note", "data-figure": "formula" });
    const figures = h("div", { class: "visual__figures" });
    const memory = s("svg", { viewBox: "0 0 360 120", role: "img", "aria-label": "cache bytes against weight bytes" });
    const steps = s("svg", { viewBox: "0 0 360 200", role: "img", "aria-label": "FLOPs per step against length" });
    const source = h("p", { class: "visual__note" });

    // The length slider steps through 1, 2, 3, 4, 6, 8, 12, 16, ... up to the model's longest context.
    const lengthsUpTo = (max) => {
      const out = [];
      for (let p = 1; p < max; p *= 2) out.push(p, p * 1.5);
      return [...new Set(out.filter((v) => Number.isInteger(v) && v < max)), max];
    };
    let lengths = lengthsUpTo(model.max_len);
    const length = slider({ label: "tokens in the sequence", min: 0, max: lengths.length - 1,
      value: lengths.indexOf(T), name: "length", format: (i) => fmtInt(lengths[i]),
      onchange: (i) => { T = lengths[i]; update(); } });
    const input = length.querySelector("input");
    const pick = picker({ label: "model", options: Object.keys(models), value: model.name,
      onchange: (name) => {
        model = models[name];
        lengths = lengthsUpTo(model.max_len);
        input.max = lengths.length - 1;
        input.value = lengths.includes(T) ? lengths.indexOf(T) : lengths.length - 1;
        length.init();
      } });

    function hbar(svg, rows, max, unit) {
      const x0 = 150, width = 140;
      svg.replaceChildren(...rows.flatMap(([label, v, cls], i) => {
        const y = 8 + i * 36, w = Math.max(1, (v / max) * width);
        return [s("text", { x: x0 - 6, y: y + 15, "text-anchor": "end" }, label),
          s("rect", { x: x0, y, width: w, height: 20, class: cls }),
          s("text", { x: x0 + w + 4, y: y + 15 }, unit(v))];
      }));
    }

    function drawSteps() {
      const x0 = 56, y0 = 168, width = 280, height = 140, n = 40;
      const most = stepFlops(model, T, false);
      const px = (t) => x0 + (t / T) * width, py = (f) => y0 - (f / most) * height;
      const line = (cached) => Array.from({ length: n + 1 }, (_, i) => {
        const t = Math.max(1, Math.round((i / n) * T));
        return `${px(t).toFixed(1)},${py(stepFlops(model, t, cached)).toFixed(1)}`;
      }).join(" ");
      steps.replaceChildren(
        s("text", { x: 0, y: 12, class: "visual__muted" }, "FLOPs of one step, by tokens in the sequence"),
        s("line", { x1: x0, y1: y0, x2: x0 + width, y2: y0, class: "visual__axis" }),
        s("line", { x1: x0, y1: y0, x2: x0, y2: y0 - height, class: "visual__axis" }),
        s("text", { x: x0 + 4, y: py(most) + 4, class: "visual__muted" }, fmtCount(most)),
        s("text", { x: x0 - 4, y: y0 + 4, "text-anchor": "end", class: "visual__muted" }, "0"),
        s("text", { x: x0 + width, y: y0 + 16, "text-anchor": "end", class: "visual__muted" }, fmtInt(T)),
        s("text", { x: x0, y: y0 + 16, class: "visual__muted" }, "1"),
        s("polyline", { points: line(false), fill: "none", stroke: "var(--visual-a)", "stroke-width": 2.5 }),
        s("polyline", { points: line(true), fill: "none", stroke: "var(--visual-b)", "stroke-width": 2.5 }),
        T >= 8 && s("text", { x: px(T * 0.55), y: py(stepFlops(model, Math.round(T * 0.55), false)) - 8, "text-anchor": "end" }, "without cache"),
        T >= 8 && s("text", { x: x0 + width, y: py(stepFlops(model, T, true)) - 6, "text-anchor": "end" }, "with cache"));
    }

    function update() {
      const m = model, perSeq = m.kv_bytes_per_token * T;
      formula.textContent = `bytes per token = 2 (K and V) × ${m.layers} layers × ${m.kv_heads} KV heads × ${m.head_dim} numbers × 2 bytes (bf16) = ${fmtInt(m.kv_bytes_per_token)} bytes (${fmtBytes(m.kv_bytes_per_token)})`;
      const without = stepFlops(m, T, false), withCache = stepFlops(m, T, true);
      figures.replaceChildren(
        h("span", { class: "visual__figure" }, "cache of this sequence: ", h("b", { "data-figure": "seq-bytes" }, fmtBytes(perSeq))),
        h("span", { class: "visual__figure" }, "next step without the cache: ", h("b", { "data-figure": "positions" }, fmtInt(T)),
          T === 1 ? " position, " : " positions, ", h("b", {}, fmtCount(without)), " FLOPs"),
        h("span", { class: "visual__figure" }, "with it: ", h("b", {}, "1"), " position, ", h("b", {}, fmtCount(withCache)),
          " FLOPs (", h("b", { "data-figure": "ratio" }, `${Math.round(without / withCache).toLocaleString("en-US")}×`), " less)"));
      hbar(memory, [["model weights", m.weight_bytes, "visual__bar-a"], ["KV cache, this sequence", perSeq, "visual__bar-b"]],
        Math.max(m.weight_bytes, perSeq), fmtBytes);
      drawSteps();
      source.textContent = `${m.name}: ${fmtInt(m.parameters)} parameters, up to ${fmtInt(m.max_len)} tokens; numbers from ${m.source}.`;
    }

    root.append(
      h("p", { class: "visual__title" }, "The KV cache: memory spent, work saved"),
      h("div", { class: "visual__controls" }, pick, length),
      formula, figures,
      h("div", { class: "visual__grid" }, memory, steps),
      source);
    pick.init();
  }

  window.CourseVisuals.register("ch02", draw);
})();
