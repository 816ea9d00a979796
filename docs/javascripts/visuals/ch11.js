/* Chapter 11's visual: the course's measurements, in three views.
 *
 * The numbers are the committed measurement files (measurements/*.json), carried in the page by
 * course/visual_data.py: the chapter staircase on the course's CPU, the online sweep (latency
 * against throughput as the request rate rises), and the H200 runs beside the roofline bound of
 * nano-vllm's workload. The bound (ch11.roofline.workload_bound) is a prefill that is
 * compute-bound, then decode steps that each read every weight and every live sequence's KV:
 * at a bandwidth B it takes prefill_seconds + decode_bytes / B, recomputed here as B moves.
 * A file that does not exist yet shows as "not yet measured". Each file is in the one format of
 * measurements/README.md: the staircase a `bench` file (one entry per engine), the sweep a
 * `serving` file (one entry per rate), the H200 runs measurements/bench_h200.json.
 */
(function () {
  "use strict";

  /** Output tokens/s of the bound at `bandwidth` bytes/s (ch11.roofline.workload_bound). */
  const boundTokensPerS = (bound, outputTokens, bandwidth) => outputTokens / (bound.prefill_seconds + bound.decode_bytes / bandwidth);

  if (typeof module === "object" && module.exports) module.exports = { boundTokensPerS };
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, picker, fmtInt } = window.CourseVisuals;
  const fmt = (x) => (x >= 100 ? fmtInt(x) : x.toLocaleString("en-US", { maximumFractionDigits: 1 }));

  /** Horizontal bars: rows of {label, value, note, cls}; the longest fills the width. */
  function bars(rows, unit, title) {
    const top = Math.max(...rows.map((r) => r.value || 0));
    const H = 34 * rows.length + 30;
    return s("svg", { viewBox: `0 0 680 ${H}`, role: "img", "aria-label": title },
      s("text", { x: 0, y: 12, class: "visual__muted" }, title),
      ...rows.flatMap((r, i) => {
        const y = 24 + 34 * i, w = r.value ? (r.value / top) * 330 : 0;
        return [
          s("text", { x: 0, y: y + 15 }, r.label),
          r.value ? s("rect", { x: 230, y, width: Math.max(w, 1), height: 20, class: r.cls || "visual__bar-a", "data-bar": r.label })
            : s("text", { x: 230, y: y + 15, class: "visual__muted", "data-bar": r.label }, "not yet measured"),
          r.value ? s("text", { x: 236 + w, y: y + 15 }, `${fmt(r.value)} ${unit}${r.note ? "  " + r.note : ""}`) : null,
        ];
      }));
  }

  function staircase(data) {
    const st = data.staircase;
    if (!st) return [h("p", {}, "The CPU staircase is not yet measured: run ", h("code", {}, "python -m ch11.staircase --out measurements/" + data.files.staircase))];
    const rows = Object.entries(st.values).map(([engine, x]) => ({ label: `${engine}: ${x.label}`.slice(0, 38), value: x.median,
      note: `×${x.speedup.toFixed(1)}`, cls: engine === "nanovllm_final" ? "visual__bar-b" : "visual__bar-a" }));
    return [bars(rows, "tok/s", `output tokens/s (median of ${st.setup.repeats}), ${st.setup.model}, the same ${fmtInt(st.setup.workload.output_tokens)} greedy tokens from every engine`),
      h("p", { class: "visual__note" }, `${st.machine.cpu}, ${st.machine.threads} thread(s), torch ${st.versions.torch}; ${st.date}; `,
        h("code", {}, st.command))];
  }

  function onlineView(data, metric) {
    const on = data.online;
    if (!on) return [h("p", {}, "The online sweep is not yet measured: run ", h("code", {}, "python -m ch11.online --out measurements/" + data.files.online))];
    const pts = Object.entries(on.values).map(([rate, r]) => ({ rate, x: r.output_throughput, p50: r[`${metric}_ms`].p50, p99: r[`${metric}_ms`].p99 }));
    const X0 = 70, X1 = 660, Y0 = 250, Y1 = 20;
    const xmax = Math.max(...pts.map((p) => p.x)) * 1.15, ymax = Math.max(...pts.map((p) => p.p99)) * 1.15;
    const px = (x) => X0 + (x / xmax) * (X1 - X0), py = (y) => Y0 - (y / ymax) * (Y0 - Y1);
    const line = (key, colour) => s("polyline", { points: pts.map((p) => `${px(p.x).toFixed(1)},${py(p[key]).toFixed(1)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 });
    const chart = s("svg", { viewBox: "0 0 680 290", role: "img", "aria-label": "latency against throughput" },
      s("line", { x1: X0, y1: Y0, x2: X1, y2: Y0, class: "visual__axis" }), s("line", { x1: X0, y1: Y0, x2: X0, y2: Y1, class: "visual__axis" }),
      s("text", { x: (X0 + X1) / 2, y: Y0 + 32, "text-anchor": "middle", class: "visual__muted" }, "output tokens/s"),
      s("text", { x: 0, y: 12, class: "visual__muted" }, `${metric.toUpperCase()} in ms (p50 filled, p99 hollow), one point per request rate`),
      s("text", { x: X0 - 4, y: py(0) + 4, "text-anchor": "end", class: "visual__muted" }, "0"),
      s("text", { x: X0 - 4, y: py(ymax / 1.15) + 4, "text-anchor": "end", class: "visual__muted" }, fmt(ymax / 1.15)),
      s("text", { x: px(xmax / 1.15), y: Y0 + 14, "text-anchor": "middle", class: "visual__muted" }, fmt(xmax / 1.15)),
      line("p50", "var(--visual-a)"), line("p99", "var(--visual-b)"),
      ...pts.flatMap((p) => [
        s("circle", { cx: px(p.x), cy: py(p.p50), r: 5, class: "visual__bar-a", "data-rate": p.rate }),
        s("circle", { cx: px(p.x), cy: py(p.p99), r: 5, fill: "none", stroke: "currentColor" }),
        s("text", { x: px(p.x) + 8, y: py(p.p99) - 6 }, `${p.rate} req/s`)]));
    return [chart, h("p", { class: "visual__note" }, `${on.setup.workload.num_seqs} requests of nano-vllm's workload ×${on.setup.workload.scale}, ${on.setup.model}, `,
      `${on.machine.cpu}; ${on.date}; `, h("code", {}, on.command))];
  }

  function gpuView(data, bandwidth) {
    // One machine for every measured bar: chapter 11's own GPU run once it exists (the engine and
    // transformers side by side), else the H200 benchmark.
    const b = data.bound, gpu = data.gpu, run = gpu && gpu.values.bf16 ? gpu : data.h200, med = (kv) => run.values[kv].median;
    const tf = gpu && gpu.values["transformers (continuous batching)"], hf = tf && tf.median;
    const rows = [
      { label: "roofline bound, FP8 KV", value: boundTokensPerS(b.fp8, data.output_tokens, bandwidth), cls: "visual__bar-free" },
      { label: "nanovllm_final, FP8 KV", value: med("fp8"), cls: "visual__bar-b" },
      { label: "roofline bound, bf16 KV", value: boundTokensPerS(b.bf16, data.output_tokens, bandwidth), cls: "visual__bar-free" },
      { label: "nanovllm_final, bf16 KV", value: med("bf16"), cls: "visual__bar-b" },
      { label: `transformers, continuous${hf && tf.workload.scale !== 1 ? ` (×${tf.workload.scale})` : ""}`, value: hf || null },
    ];
    return [bars(rows, "tok/s", `nano-vllm's benchmark (${fmtInt(data.output_tokens)} output tokens), ${b.model}, output tokens/s`),
      h("p", { class: "visual__note" }, `nanovllm_final: ${run.machine.gpu}, torch ${run.versions.torch}, ${run.date}, median of ${run.values.bf16.tokens_per_s.length} (measurements/${run === gpu ? data.files.gpu : data.files.h200}). `,
        `The bound: at the bandwidth on the slider, which starts at ${b.start_source}; ${b.hardware}'s datasheet peak for the prefill (${b.source}). `,
        hf ? `transformers: the same machine, ${tf.workload.num_seqs} of the requests${tf.workload.scale !== 1 ? `, each ×${tf.workload.scale} as long` : ""}.` : "transformers on the same GPU: not yet measured.")];
  }

  function draw(root, data) {
    let view = "staircase", metric = "ttft", bandwidth = data.bound.start_bandwidth;
    const body = h("div", {});
    const update = () => body.replaceChildren(...(view === "staircase" ? staircase(data)
      : view === "latency vs throughput" ? onlineView(data, metric) : gpuView(data, bandwidth)));
    const views = picker({ label: "view", options: ["staircase", "latency vs throughput", "GPU and the roofline"], value: view,
      onchange: (v) => { view = v; update(); } });
    const metrics = picker({ label: "latency", options: ["ttft", "tpot", "itl", "e2el"], value: metric, onchange: (m) => { metric = m; update(); } });
    const bw = slider({ label: "memory bandwidth (bound)", min: 1, max: 8, step: 0.1, value: bandwidth / 1e12, name: "bandwidth",
      format: (v) => `${v.toFixed(1)} TB/s`, onchange: (v) => { bandwidth = v * 1e12; update(); } });
    root.append(h("p", { class: "visual__title" }, "What the course's engines measured: the staircase, latency against throughput, and the GPU against its bound"),
      h("div", { class: "visual__controls" }, views, metrics, bw), body);
    metrics.init();
    bw.init();
    views.init();
  }

  window.CourseVisuals.register("ch11", draw);
})();
