/* Chapter 10's visual: FP8 (e4m3) numbers for the KV cache.
 *
 * e4m3 ("fn": finite, no infinities) has a sign bit, 4 exponent bits (bias 7) and 3 mantissa bits:
 *   exponent 1..15: (1 + m/8) * 2^(e-7)      exponent 0: (m/8) * 2^-6 (subnormal)
 * and 1.1111.111 is NaN, so the largest finite value is 1.75 * 2^8 = 448. toE4m3 rounds to the
 * nearest code, ties to the even mantissa, and saturates at ±448, as torch's
 * x.to(torch.float8_e4m3fn) does on the CPU (tests/test_visuals.py compares them, and GRID
 * with data.grid, chapter 10's decode_e4m3 of every code). Chapter 10's cache keeps x / scale in
 * e4m3 with one scale per KV head, set from the first stored tokens so that their largest |x|
 * lands at 448 / headroom (ch10/fp8.py); data.scale is that scale for the key shown.
 */
(function () {
  "use strict";

  const MAX = 448;
  /** The 127 non-negative finite values, by code (code 127 is NaN). */
  const GRID = Array.from({ length: 127 }, (_, code) => {
    const e = code >> 3, m = code & 7;
    return e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7);
  });

  /** x -> {code (0..255), value}: the nearest e4m3 number, ties to even, saturating at ±448. */
  function toE4m3(x) {
    const sign = x < 0 || Object.is(x, -0) ? 1 : 0;
    const a = Math.min(Math.abs(x), MAX);
    let lo = 0, hi = GRID.length - 1; // the largest code whose value is <= a
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (GRID[mid] <= a) lo = mid; else hi = mid - 1; }
    let code = lo;
    if (lo < GRID.length - 1) {
      const below = a - GRID[lo], above = GRID[lo + 1] - a;
      if (above < below || (above === below && (lo & 1) === 1)) code = lo + 1;
    }
    return { code: (sign << 7) | code, value: sign ? -GRID[code] : GRID[code] };
  }

  if (typeof module === "object" && module.exports) module.exports = { toE4m3, GRID };
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, fmtInt, fmtBytes } = window.CourseVisuals;
  const bits = (code) => { const b = code.toString(2).padStart(8, "0"); return `${b[0]} ${b.slice(1, 5)} ${b.slice(5)}`; };
  const num = (x) => (Math.abs(x) >= 0.01 || x === 0 ? x.toLocaleString("en-US", { maximumSignificantDigits: 5 }) : x.toExponential(3));

  function draw(root, data) {
    const scales = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2];
    let x = 0.3, scale = 0.01, stretch = 1;
    const single = h("div", { class: "visual__figures" });
    const line = s("svg", { viewBox: "0 0 680 70", role: "img", "aria-label": "the e4m3 numbers near the value" });
    const vecFigures = h("div", { class: "visual__figures" });
    const vec = s("svg", { viewBox: "0 0 680 170", role: "img", "aria-label": "a key vector before and after FP8" });
    const memory = h("div", { class: "visual__figures" });

    function updateSingle() {
      const q = toE4m3(x / scale), back = q.value * scale, err = back - x;
      single.replaceChildren(
        h("span", { class: "visual__figure" }, "x / scale = ", h("b", {}, num(x / scale))),
        h("span", { class: "visual__figure" }, "code ", h("b", { "data-figure": "bits", "font-family": "monospace" }, bits(q.code))),
        h("span", { class: "visual__figure" }, "stored value × scale = ", h("b", { "data-figure": "back" }, num(back))),
        h("span", { class: "visual__figure" }, "error ", h("b", { "data-figure": "error" }, x === 0 ? "0" : `${num(err)} (${(100 * Math.abs(err / x)).toFixed(2)}%)`)),
        Math.abs(x / scale) > data.fp8_max && h("span", { class: "visual__figure visual__log--refused" }, "past ±448: clipped, raise the scale"));
      // the representable numbers around x, in x's units: three codes each side
      const c = q.code & 127, sign = q.code >> 7 ? -1 : 1;
      const near = [];
      for (let k = Math.max(0, c - 3); k <= Math.min(126, c + 3); k++) near.push(sign * GRID[k] * scale);
      const lo = Math.min(...near, x), hi = Math.max(...near, x), pad = (hi - lo || 1) * 0.08;
      const px = (v) => 20 + ((v - lo + pad) / (hi - lo + 2 * pad)) * 640;
      let lastLabel = -Infinity;
      line.replaceChildren(
        s("line", { x1: 20, x2: 660, y1: 35, y2: 35, class: "visual__axis" }),
        ...near.sort((a, b) => a - b).flatMap((v) => {
          // a label only where it has room: near ±448 the codes crowd on this scale
          const room = px(v) - lastLabel > 44;
          if (room) lastLabel = px(v);
          return [s("line", { x1: px(v), x2: px(v), y1: 27, y2: 43, stroke: "var(--visual-a)", "stroke-width": 2 }),
            room && s("text", { x: px(v), y: 60, "text-anchor": "middle", class: "visual__muted", "font-size": 9 }, num(v))];
        }),
        s("circle", { cx: px(back), cy: 35, r: 5, class: "visual__bar-a" }),
        s("line", { x1: px(x), x2: px(x), y1: 14, y2: 43, stroke: "var(--visual-b)", "stroke-width": 2 }),
        s("text", { x: px(x), y: 10, "text-anchor": "middle" }, `x = ${num(x)}`));
    }

    function updateVector() {
      const key = data.key, amax = Math.max(...key.map(Math.abs));
      const sc = data.scale * stretch;
      const back = key.map((v) => toE4m3(v / sc).value * sc);
      const errs = key.map((v, i) => Math.abs(back[i] - v));
      const clipped = key.filter((v) => Math.abs(v / sc) > data.fp8_max).length;
      vecFigures.replaceChildren(
        h("span", { class: "visual__figure" }, "scale = ", h("b", {}, num(sc))),
        h("span", { class: "visual__figure" }, "largest |x| / scale = ", h("b", { "data-figure": "vec-top" }, num(amax / sc))),
        h("span", { class: "visual__figure" }, "largest error ", h("b", { "data-figure": "vec-max-error" }, num(Math.max(...errs)))),
        h("span", { class: "visual__figure" }, "mean error ", h("b", {}, num(errs.reduce((a, b) => a + b, 0) / errs.length))),
        h("span", { class: "visual__figure" }, "clipped at ±448 × scale: ", h("b", { "data-figure": "clipped" }, clipped)));
      const w = 640 / key.length, mid = 80, k = 70 / amax;
      vec.replaceChildren(
        s("text", { x: 0, y: 10, class: "visual__muted" }, `${data.model}: ${data.vector}; bars: the float value, dots: after FP8`),
        s("line", { x1: 20, x2: 660, y1: mid, y2: mid, class: "visual__axis" }),
        ...key.flatMap((v, i) => [
          s("rect", { x: 20 + i * w + 1, width: w - 2, y: Math.min(mid, mid - v * k), height: Math.max(0.5, Math.abs(v * k)), class: "visual__bar-a", opacity: 0.5 }),
          s("circle", { cx: 20 + i * w + w / 2, cy: mid - Math.max(-1.1 * amax, Math.min(1.1 * amax, back[i])) * k, r: 2.2, class: "visual__bar-b" })]));
    }

    function updateMemory() {
      memory.replaceChildren(...data.models.map((m) => h("p", { class: "visual__figure" }, h("b", {}, m.name), h("br"),
        `bf16: ${fmtBytes(m.bf16_bytes)} per token, `, h("b", {}, fmtInt(m.bf16_blocks)), ` blocks of ${data.block_size} tokens in ${fmtBytes(data.budget_bytes)}`, h("br"),
        `FP8: ${fmtBytes(m.fp8_bytes)} per token, `, h("b", { "data-figure": `fp8-blocks-${m.name}` }, fmtInt(m.fp8_blocks)),
        ` blocks (and ${fmtBytes(m.scale_bytes)} of scales for the whole pool)`)));
    }

    const value = slider({ label: "value x", min: -4, max: 4, step: 0.001, value: x, name: "value",
      format: (v) => v.toFixed(3), onchange: (v) => { x = v; updateSingle(); } });
    const scaleSlider = slider({ label: "scale", min: 0, max: scales.length - 1, value: scales.indexOf(scale), name: "scale",
      format: (i) => String(scales[i]), onchange: (i) => { scale = scales[i]; updateSingle(); } });
    const stretches = [1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8];
    const stretchSlider = slider({ label: `scale × (1 = the engine's: largest |x| at 448 / ${data.headroom})`, min: 0, max: stretches.length - 1,
      value: stretches.indexOf(1), name: "stretch", format: (i) => (stretches[i] < 1 ? `1/${1 / stretches[i]}` : String(stretches[i])),
      onchange: (i) => { stretch = stretches[i]; updateVector(); } });
    root.append(
      h("p", { class: "visual__title" }, "FP8 (e4m3): one byte per number, a scale to place it"),
      h("div", { class: "visual__controls" }, value, scaleSlider), single, line,
      h("div", { class: "visual__controls" }, stretchSlider), vecFigures, vec,
      h("div", { class: "visual__grid" }, memory));
    value.init(); scaleSlider.init(); stretchSlider.init(); updateMemory();
  }

  window.CourseVisuals.register("ch10", draw);
})();
