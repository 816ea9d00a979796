/* Chapter 8's visual: what each rank holds under tensor parallelism, and what it sends.
 *
 * course/visual_data.py built chapter 1's Qwen3-0.6B with chapter 8's parallel layers on the meta
 * device as rank 0 of 1, 2, 4 and 8, read off its weight shapes, and counted each rank's all-reduce
 * bytes per token with ch08.allreduce_bytes_per_token. A column-parallel weight (q, k, v, gate, up)
 * is cut by rows, output features: each rank computes some heads or some MLP features, and needs
 * nothing from the others. A row-parallel weight (o, down) is cut by columns, input features:
 * each rank has a partial sum of the whole output, and an all-reduce adds them up.
 */
(function () {
  "use strict";
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, fmtInt, fmtBytes } = window.CourseVisuals;

  const ROLE = {
    "q, k, v": "column-parallel: each rank its own query heads and the K/V heads they read",
    "o_proj": "row-parallel: partial sums, then an all-reduce",
    "gate, up": "column-parallel: each rank its own MLP features",
    "down_proj": "row-parallel: partial sums, then an all-reduce",
    "embed_tokens / lm_head": "vocab-parallel: each rank a slice of the vocabulary",
  };

  function draw(root, data) {
    let tp = 2;
    const figures = h("div", { class: "visual__figures" });
    const chart = s("svg", { viewBox: "0 0 760 330", role: "img", "aria-label": "the shards of one decoder layer's weights" });

    function update() {
      const one = data.ranks[0], now = data.ranks.find((r) => r.tp === tp);
      const names = Object.keys(one.shards).filter((n) => n !== "embed_tokens / lm_head");
      const k = 40 / 1024; // px per feature: a 1,024-wide matrix is 40 px, gate 120 px high
      let x = 10;
      const items = names.flatMap((name) => {
        const [rows, cols] = one.shards[name], [srows, scols] = now.shards[name];
        const w = cols * k, hgt = rows * k, byRows = srows !== rows;
        const x0 = x;
        x += Math.max(w, 84) + 16; // room for the labels under a narrow matrix
        const stripes = Array.from({ length: tp }, (_, r) => s("rect", {
          x: byRows ? x0 : x0 + (r * w) / tp, y: byRows ? 40 + (r * hgt) / tp : 40,
          width: byRows ? w : w / tp, height: byRows ? hgt / tp : hgt,
          class: `visual__bar-a visual-seq-${r}`, style: "fill: var(--seq)", opacity: 0.75, stroke: "var(--md-default-bg-color)", "data-rank": r }));
        return [
          s("text", { x: x0, y: 16 }, name.split(".")[1]),
          s("text", { x: x0, y: 30, class: "visual__muted" }, `${fmtInt(rows)} × ${fmtInt(cols)}`),
          ...stripes,
          s("text", { x: x0, y: 54 + hgt, class: "visual__muted" }, "rank 0 holds"),
          s("text", { x: x0, y: 68 + hgt, class: "visual__muted", "data-shard": name }, `${fmtInt(srows)} × ${fmtInt(scols)}`),
        ];
      });
      chart.replaceChildren(...items,
        s("text", { x: 10, y: 320, class: "visual__muted" }, "one decoder layer's weights, drawn to scale (rows: output features, columns: input features); a colour per rank"));

      const perTokenLayer = data.all_reduces_per_layer * data.hidden_size * data.dtype_bytes;
      figures.replaceChildren(
        h("span", { class: "visual__figure" }, "each rank holds ", h("b", { "data-figure": "params" }, fmtInt(now.parameters_per_rank)),
          " parameters (", fmtBytes(now.parameters_per_rank * data.dtype_bytes), ")"),
        h("span", { class: "visual__figure" }, "and computes ", h("b", { "data-figure": "heads" }, `${now.heads_per_rank} query heads, ${now.kv_heads_per_rank} KV head${now.kv_heads_per_rank > 1 ? "s" : ""}`)),
        h("span", { class: "visual__figure" }, "all-reduces per layer: ", h("b", {}, tp > 1 ? data.all_reduces_per_layer : 0),
          tp > 1 ? `, each of ${fmtBytes(perTokenLayer / data.all_reduces_per_layer)} per token` : " (one rank: nothing to add up)"),
        h("span", { class: "visual__figure" }, "sent by each rank per token, whole model with the embedding's (ring all-reduce): ",
          h("b", { "data-figure": "traffic" }, fmtBytes(now.allreduce_bytes_per_token))));
    }

    const ranks = data.ranks.map((r) => r.tp);
    const rankSlider = slider({ label: "ranks (GPUs)", min: 0, max: ranks.length - 1, value: ranks.indexOf(tp), name: "tp",
      format: (i) => String(ranks[i]), onchange: (i) => { tp = ranks[i]; update(); } });
    root.append(
      h("p", { class: "visual__title" }, `Tensor parallelism: ${data.model} split over ranks by chapter 8's layers`),
      h("div", { class: "visual__controls" }, rankSlider), figures, chart,
      h("p", { class: "visual__note" }, ...Object.entries(ROLE).flatMap(([name, role]) => [h("b", {}, name.split(".").pop()), `: ${role}. `])));
    rankSlider.init();
  }

  window.CourseVisuals.register("ch08", draw);
})();
