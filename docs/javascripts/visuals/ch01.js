/* Chapter 1's visual: step through a real greedy generation of SmolLM2-135M.
 *
 * course/visual_data.py ran ch01.LLM on the prompt and recorded, for each forward pass, how many
 * tokens it processed and the softmax of the logits it picked from; the page steps through them.
 */
(function () {
  "use strict";
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, stepper, fmtInt, fmtCount } = window.CourseVisuals;

  /** Make a token's spaces and line breaks visible: " Paris" -> "␣Paris". */
  const show = (tok) => (tok === "" ? "∅" : tok.replace(/ /g, "␣").replace(/\n/g, "↵"));

  function draw(root, data) {
    const steps = data.steps;
    let k = 0; // the step on screen, 0-based

    const tokens = h("p", { class: "visual__tokens" });
    const figures = h("div", { class: "visual__figures" });
    const bars = s("svg", { viewBox: "0 0 360 250", role: "img", "aria-label": "top-10 next-token probabilities" });
    const work = s("svg", { viewBox: "0 0 360 250", role: "img", "aria-label": "token positions processed per step" });

    function drawBars(step) {
      const top = step.top, x0 = 78, width = 230, row = 22;
      const scale = width / Math.max(...top.map((t) => t[1]));
      bars.replaceChildren(
        s("text", { x: 0, y: 12, class: "visual__muted" }, `step ${k + 1}: the next token's probabilities (top 10)`),
        ...top.flatMap(([tok, p], i) => {
          const y = 24 + i * row;
          const chosen = tok === step.chosen;
          return [
            s("text", { x: x0 - 6, y: y + 14, "text-anchor": "end", "font-family": "monospace" }, show(tok)),
            s("rect", { x: x0, y: y + 3, width: Math.max(1, p * scale), height: row - 6,
              class: chosen ? "visual__bar-b" : "visual__bar-a", "data-token": tok }),
            s("text", { x: x0 + Math.max(1, p * scale) + 4, y: y + 14 }, `${(100 * p).toFixed(1)}%${chosen ? " ← picked" : ""}`),
          ];
        }));
    }

    function drawWork() {
      const x0 = 34, y0 = 220, width = 310, height = 180;
      const most = steps[steps.length - 1].positions;
      const bw = width / steps.length;
      const tick = (v) => y0 - (v / most) * height;
      work.replaceChildren(
        s("text", { x: 0, y: 12, class: "visual__muted" }, "token positions each step runs through the model"),
        s("line", { x1: x0, y1: y0, x2: x0 + width, y2: y0, class: "visual__axis" }),
        ...[0, Math.round(most / 2), most].map((v) => s("text", { x: x0 - 4, y: tick(v) + 4, "text-anchor": "end", class: "visual__muted" }, v)),
        ...steps.map((st, i) => s("rect", {
          x: x0 + i * bw + 1, y: tick(st.positions), width: bw - 2, height: y0 - tick(st.positions),
          class: i === k ? "visual__bar-b" : i < k ? "visual__bar-a" : "visual__bar-free" })),
        s("text", { x: x0 + width / 2, y: y0 + 16, "text-anchor": "middle", class: "visual__muted" }, `step 1 … ${steps.length}`),
        s("text", { x: x0 + k * bw + bw / 2, y: tick(steps[k].positions) - 4, "text-anchor": "middle" }, steps[k].positions));
    }

    function showStep(to) {
      k = to;
      const step = steps[k];
      tokens.replaceChildren(
        ...data.prompt_tokens.map((t) => h("span", { class: "visual__token visual__token--prompt" }, show(t))),
        ...steps.slice(0, k).map((st) => h("span", { class: "visual__token" }, show(st.chosen))),
        h("span", { class: "visual__token visual__token--new", title: "picked at this step" }, show(step.chosen)));
      const total = steps.slice(0, k + 1).reduce((n, st) => n + st.positions, 0);
      const flops = step.positions * data.flops_per_position + data.flops_lm_head
        + data.flops_attention_per_pair * step.positions * step.positions;
      figures.replaceChildren(
        h("span", { class: "visual__figure" }, "this step: ", h("b", { "data-figure": "positions" }, fmtInt(step.positions)),
          " positions, about ", h("b", {}, fmtCount(flops)), " FLOPs"),
        h("span", { class: "visual__figure" }, "all steps so far: ", h("b", { "data-figure": "total" }, fmtInt(total)),
          " positions, of only ", h("b", {}, fmtInt(step.positions)), " different tokens"));
      drawBars(step);
      drawWork();
    }

    const controls = stepper({ count: steps.length, word: "step", nextLabel: "next token ▶", show: showStep });
    root.append(
      h("p", { class: "visual__title" }, `${data.model} continues “${data.prompt}”: ${data.sampling}`),
      controls,
      tokens, figures,
      h("div", { class: "visual__grid" }, bars, work),
      h("p", { class: "visual__note" }, "Grey tokens are the prompt; the outlined one is picked at this step. ",
        "Every step runs the whole sequence through the model again, so the bars on the right grow by one each step."));
    controls.go(0);
  }

  window.CourseVisuals.register("ch01", draw);
})();
