/* Chapter 9's visual: a decode step on a GPU, eager against a CUDA graph, and the bytes of
 * residual add + RMSNorm, torch's ops against the fused kernel.
 *
 * course/visual_data.py counted the bytes with ch09.traffic (every op chapter 1's version
 * dispatches, with what it reads and writes) and copied the GPU measurement that
 * `python -m ch09.measure_gpu` wrote (measurements/ch09_decode_graphs.json, read back by
 * ch09.measure_gpu.read as one row per batch size): for each batch size and mode, the step's launch calls on the
 * host and kernels on the GPU as torch.profiler saw them ([start us, duration us, name index]).
 * Until that file exists, "measured" is null and the visual says so.
 */
(function () {
  "use strict";
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, picker, fmtInt, fmtBytes } = window.CourseVisuals;
  const us = (x) => `${x.toLocaleString("en-US", { maximumFractionDigits: x < 100 ? 1 : 0 })} µs`;

  function draw(root, data) {
    const sizes = data.traffic.map((t) => t.num_tokens);
    let B = sizes[0], mode = "eager";
    const figures = h("div", { class: "visual__figures" });
    const timeline = s("svg", { viewBox: "0 0 760 150", role: "img", "aria-label": "one decode step: launches and kernels" });
    const bytes = s("svg", { viewBox: "0 0 760 110", role: "img", "aria-label": "bytes of residual add + RMSNorm" });
    const note = h("p", { class: "visual__note" });
    const X0 = 110, X1 = 750;

    function drawTimeline(step) {
      const run = step[mode];
      const end = Math.max(...["eager", "graph"].flatMap((m) =>
        ["host", "gpu"].flatMap((row) => step[m].timeline[row].map(([t, d]) => t + d))));
      const x = (t) => X0 + (t / end) * (X1 - X0);
      const bar = (row, y, cls) => run.timeline[row].map(([t, d, name]) => s("rect", {
        x: x(t), y, width: Math.max(0.8, x(t + d) - x(t)), height: 26, class: cls },
        s("title", {}, `${run.timeline.names[name]}: ${us(d)} at ${us(t)}`)));
      const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => s("text", { x: x(f * end), y: 112, "text-anchor": "middle", class: "visual__muted" }, us(f * end)));
      timeline.replaceChildren(
        s("text", { x: 0, y: 36 }, "host launches"), s("text", { x: 0, y: 80 }, "GPU kernels"),
        ...bar("host", 18, "visual__bar-b"), ...bar("gpu", 62, "visual__bar-a"),
        s("line", { x1: X0, y1: 96, x2: X1, y2: 96, class: "visual__axis" }), ...ticks,
        s("text", { x: X0, y: 136, class: "visual__muted" },
          `time from the step's first event (the same scale for eager and graph at batch ${step.batch_size})`));
      return [
        h("span", { class: "visual__figure" }, "GPU kernels: ", h("b", { "data-figure": "kernels" }, fmtInt(run.kernels)),
          ", launch calls from the host: ", h("b", { "data-figure": "launches" }, fmtInt(run.launch_calls))),
        h("span", { class: "visual__figure" }, "host time to issue the step: ", h("b", { "data-figure": "host" }, us(run.host_us))),
        h("span", { class: "visual__figure" }, "GPU busy: ", h("b", { "data-figure": "gpu" }, us(run.gpu_us)),
          "; a step, back to back: ", h("b", { "data-figure": "step" }, us(run.step_us))),
      ];
    }

    function drawBytes(t) {
      const total = t.unfused_bytes, x = (b) => X0 + (b / total) * (X1 - X0);
      let left = 0;
      const segments = t.unfused_ops.map((op, i) => {
        const size = op.read + op.written, rect = s("rect", { x: x(left), y: 10, width: Math.max(0.8, x(left + size) - x(left)), height: 28,
          class: i % 2 ? "visual__bar-a" : "visual__bar-b", stroke: "var(--md-default-bg-color)" },
        s("title", {}, `${op.op}: reads ${fmtBytes(op.read)}, writes ${fmtBytes(op.written)}`));
        const label = x(left + size) - x(left) > 40 ? [s("text", { x: (x(left) + x(left + size)) / 2, y: 29, "text-anchor": "middle", "font-size": 11 }, op.op)] : [];
        left += size;
        return [rect, ...label];
      }).flat();
      bytes.replaceChildren(
        s("text", { x: 0, y: 29 }, `torch: ${t.unfused_ops.length} ops`), ...segments,
        s("text", { x: 0, y: 73 }, "fused: 1 kernel"),
        s("rect", { x: X0, y: 54, width: x(t.fused_bytes) - X0, height: 28, class: "visual__bar-a" }),
        s("text", { x: X0, y: 104, class: "visual__muted" },
          `bytes read + written by one residual add + RMSNorm of ${t.num_tokens} token(s) × ${fmtInt(t.hidden)}, ${t.dtype}`));
      return h("span", { class: "visual__figure" }, "add + RMSNorm: ", h("b", { "data-figure": "unfused-bytes" }, fmtBytes(t.unfused_bytes)),
        " in torch, ", h("b", { "data-figure": "fused-bytes" }, fmtBytes(t.fused_bytes)), " fused (",
        h("b", { "data-figure": "ratio" }, `${(t.unfused_bytes / t.fused_bytes).toFixed(1)}×`), " fewer)");
    }

    function update() {
      const traffic = data.traffic.find((t) => t.num_tokens === B);
      const step = data.measured && data.measured.steps.find((st) => st.batch_size === B);
      const measured = step ? drawTimeline(step)
        : [h("span", { class: "visual__figure", "data-figure": "not-measured" }, "GPU timeline: not yet measured (",
          h("code", {}, data.measurement_file), " is missing; on a GPU, ", h("code", {}, data.measure_command), " writes it)")];
      timeline.style.display = step ? "" : "none";
      figures.replaceChildren(...measured, drawBytes(traffic));
      const m = data.measured;
      note.textContent = m
        ? `${m.model}, every sequence at ${m.context_len} tokens of context; measured on ${m.machine.gpu} ` +
          `(torch ${m.versions.torch}, Triton ${m.versions.triton}) on ${m.date} with \`${m.command}\` (${data.measurement_file}).`
        : "The bytes are counted on a CPU by ch09.traffic from chapter 1's ops; the GPU timeline appears once the measurement is committed.";
    }

    const batch = slider({ label: "sequences decoding", min: 0, max: sizes.length - 1, value: 0, name: "batch",
      format: (i) => String(sizes[i]), onchange: (i) => { B = sizes[i]; update(); } });
    const modes = picker({ label: "launches", options: ["eager", "graph"], value: mode, onchange: (m) => { mode = m; update(); } });
    root.append(h("p", { class: "visual__title" }, "A decode step: the host's launches against the GPU's work, eager and with a CUDA graph"),
      h("div", { class: "visual__controls" }, batch, modes), figures, timeline, bytes, note);
    batch.init();
    modes.init();
  }

  window.CourseVisuals.register("ch09", draw);
})();
