/* Chapter 5's visual: steps on the H200's roofline, and what the chunk budget does to a long
 * prompt's first token (TTFT) and to the running sequences' next tokens (TPOT).
 *
 * A step of M tokens does M * flops_per_token FLOPs and moves M * bytes_per_token + weight_bytes
 * bytes (ch05.roofline.step_flops_and_bytes, the GEMMs only); at best it takes
 * max(FLOPs / peak, bytes / bandwidth). Chapter 5's scheduler gives each step's budget of
 * max_num_batched_tokens first to the B decodes (one token each), then the rest to the prompt.
 */
(function () {
  "use strict";

  const flopsOf = (d, m) => m * d.flops_per_token;
  const bytesOf = (d, m) => m * d.bytes_per_token + d.weight_bytes;
  const secondsOf = (d, m) => Math.max(flopsOf(d, m) / d.hardware.peak_flops, bytesOf(d, m) / d.hardware.bandwidth);

  /** The chunks a prompt of P tokens is cut into when B decodes share each step's budget. */
  function chunks(P, B, budget) {
    const room = budget - B, out = [];
    if (room <= 0) return null; // the decodes use the whole budget: the prompt never starts
    for (let left = P; left > 0; left -= room) out.push(Math.min(left, room));
    return out;
  }

  if (typeof module === "object" && module.exports) module.exports = { chunks, secondsOf };
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, fmtInt } = window.CourseVisuals;
  const ms = (sec) => `${(sec * 1000).toLocaleString("en-US", { maximumFractionDigits: sec < 0.01 ? 2 : 1 })} ms`;

  function draw(root, data) {
    const hw = data.hardware, P = data.prompt_tokens;
    const batches = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
    const budgets = [256, 512, 1024, 2048, 4096, 8192, 16384];
    let B = 32, budget = 2048;
    const figures = h("div", { class: "visual__grid" });
    const chart = s("svg", { viewBox: "0 0 680 300", role: "img", "aria-label": "roofline" });
    const note = h("p", { class: "visual__note" });

    // log-log axes: intensity 1 .. 20,000 FLOP/byte, speed 1e12 .. 2e15 FLOP/s
    const X0 = 70, X1 = 660, Y0 = 260, Y1 = 20;
    const lx = (i) => X0 + (Math.log10(i) / Math.log10(20000)) * (X1 - X0);
    const ly = (f) => Y0 - ((Math.log10(f) - 12) / (Math.log10(2e15) - 12)) * (Y0 - Y1);

    // Each step is a dot on the roof; the legend (bottom right, where the chart is empty) names it.
    function point(m, label, style, row) {
      const intensity = flopsOf(data, m) / bytesOf(data, m), speed = flopsOf(data, m) / secondsOf(data, m);
      const ly0 = 180 + row * 20;
      return [s("circle", { cx: lx(intensity), cy: ly(speed), r: 6, ...style, "data-point": label }),
        s("circle", { cx: 330, cy: ly0 - 4, r: 5, ...style }),
        s("text", { x: 342, y: ly0 }, `${label}: ${Math.round(intensity)} FLOP/byte, ${Math.round(speed / 1e12)} TFLOP/s`)];
    }

    function update() {
      const cut = chunks(P, B, budget);
      const ridge = hw.peak_flops / hw.bandwidth;
      const roof = [1, ridge, 20000].map((i) => `${lx(i).toFixed(1)},${ly(Math.min(hw.peak_flops, i * hw.bandwidth)).toFixed(1)}`).join(" ");
      chart.replaceChildren(
        s("text", { x: 0, y: 12, class: "visual__muted" }, `${hw.name} roofline: FLOP/s a step can reach at best, by its FLOPs per byte moved (log scales)`),
        s("line", { x1: X0, y1: Y0, x2: X1, y2: Y0, class: "visual__axis" }),
        s("line", { x1: X0, y1: Y0, x2: X0, y2: Y1, class: "visual__axis" }),
        ...[1, 10, 100, 1000, 10000].map((i) => s("text", { x: lx(i), y: Y0 + 14, "text-anchor": "middle", class: "visual__muted" }, fmtInt(i))),
        ...[1e12, 1e13, 1e14, 1e15].map((f) => s("text", { x: X0 - 4, y: ly(f) + 4, "text-anchor": "end", class: "visual__muted" }, `${f / 1e12} T`)),
        s("text", { x: (X0 + X1) / 2, y: Y0 + 30, "text-anchor": "middle", class: "visual__muted" }, "arithmetic intensity, FLOP per byte"),
        s("polyline", { points: roof, fill: "none", stroke: "var(--md-default-fg-color--light)", "stroke-width": 2 }),
        s("text", { x: lx(ridge) + 6, y: ly(hw.peak_flops) - 6, class: "visual__muted" }, `ridge: ${Math.round(ridge)} FLOP/byte`),
        ...point(P, `whole prompt, ${fmtInt(P)} tokens`, { fill: "none", stroke: "var(--md-default-fg-color)", "stroke-width": 2 }, 0),
        ...(cut ? point(B + cut[0], `mixed step, ${fmtInt(B + cut[0])} tokens`, { class: "visual__bar-b" }, 1) : []),
        ...point(B, `decodes alone, ${B} tokens`, { class: "visual__bar-a" }, 2));

      const decodeAlone = secondsOf(data, B);
      const ch4 = { ttft: secondsOf(data, P), gap: secondsOf(data, P) + decodeAlone };
      const ch5 = cut && { ttft: cut.reduce((t, c) => t + secondsOf(data, B + c), 0), gap: secondsOf(data, B + cut[0]) };
      figures.replaceChildren(
        h("p", { class: "visual__figure", "data-run": "chunked" }, h("b", {}, `chunked, budget ${fmtInt(budget)}`), h("br"),
          ...(ch5 ? ["the prompt runs in ", h("b", { "data-figure": "chunks" }, cut.length), " step(s)", h("br"),
            "first token after ", h("b", { "data-figure": "ttft" }, ms(ch5.ttft)), h("br"),
            "running sequences wait at most ", h("b", { "data-figure": "gap" }, ms(ch5.gap)), " for a token"]
            : [h("b", { "data-figure": "chunks" }, "never"), ": the decodes fill the whole budget"])),
        h("p", { class: "visual__figure" }, h("b", {}, "chapter 4: the prompt in one step"), h("br"),
          "first token after ", h("b", {}, ms(ch4.ttft)), h("br"),
          "running sequences wait ", h("b", { "data-figure": "gap4" }, ms(ch4.gap)), " for a token", h("br"),
          "(a step of decodes alone: ", ms(decodeAlone), ")"));
      note.textContent = `${data.model}, ${data.dtype}; a ${fmtInt(P)}-token prompt arrives while ${B} sequences decode. ` +
        `Times are the roofline's best (GEMMs only, attention left out), from ${hw.source}.`;
    }

    const batch = slider({ label: "sequences decoding", min: 0, max: batches.length - 1, value: batches.indexOf(B), name: "batch",
      format: (i) => String(batches[i]), onchange: (i) => { B = batches[i]; update(); } });
    const chunk = slider({ label: "max_num_batched_tokens", min: 0, max: budgets.length - 1, value: budgets.indexOf(budget), name: "budget",
      format: (i) => fmtInt(budgets[i]), onchange: (i) => { budget = budgets[i]; update(); } });
    root.append(h("p", { class: "visual__title" }, "Prefill and decode on the roofline; a chunk budget trades first-token time for smooth decoding"),
      h("div", { class: "visual__controls" }, batch, chunk), figures, chart, note);
    batch.init();
    chunk.init();
  }

  window.CourseVisuals.register("ch05", draw);
})();
