/* The course site's interactive visuals: the part every chapter shares.
 *
 * A chapter page says `<!-- visual: ch03 -->`; docs/hooks/course_site.py turns it into
 *   <div class="visual" data-visual="ch03" data-json="...docs/assets/visuals/ch03.json...">
 * followed by this file (once per page) and docs/javascripts/visuals/ch03.js. The chapter's file
 * calls CourseVisuals.register("ch03", draw); draw(root, data) fills the div, with the numbers
 * that course/visual_data.py wrote from the chapter's own code. No framework, no network: the
 * data travels in the page, so the visual also works from a file:// copy of the site.
 */
(function () {
  "use strict";
  if (window.CourseVisuals) return; // a page with two visuals loads this file once, but be safe

  const drawers = {};
  const SVG = "http://www.w3.org/2000/svg";

  function build(make, tag, attrs, children) {
    const el = make(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "text") el.textContent = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** An HTML element: h("button", {class: "x", onclick: f}, "label"). */
  const h = (tag, attrs, ...children) => build((t) => document.createElement(t), tag, attrs, children);
  /** An SVG element, same arguments. */
  const s = (tag, attrs, ...children) => build((t) => document.createElementNS(SVG, t), tag, attrs, children);

  /** A labelled range input; onchange(value) runs on every move and once now. */
  function slider({ label, min, max, step = 1, value, format = String, onchange, name }) {
    const out = h("output", { class: "visual__value" });
    const input = h("input", { type: "range", min, max, step, value, name, "aria-label": label });
    const update = () => {
      const v = Number(input.value);
      out.textContent = format(v);
      onchange(v);
    };
    input.addEventListener("input", update);
    const row = h("label", { class: "visual__control" }, h("span", { class: "visual__label" }, label), input, out);
    row.init = update; // the caller runs it once everything it draws into exists
    return row;
  }

  /** Buttons that pick one of several options (like radio buttons). */
  function picker({ label, options, value, onchange }) {
    const buttons = options.map((opt) =>
      h("button", { type: "button", class: "visual__choice", "data-value": opt, onclick: () => choose(opt) }, opt));
    function choose(opt) {
      for (const b of buttons) b.classList.toggle("visual__choice--on", b.dataset.value === opt);
      onchange(opt);
    }
    const row = h("div", { class: "visual__control", role: "group", "aria-label": label },
      h("span", { class: "visual__label" }, label), ...buttons);
    row.init = () => choose(value);
    return row;
  }

  /** Back / next buttons and "word k of n" through n precomputed states; show(k) draws state k.
   * Returns the controls' row; row.go(k) moves to state k (clamped). */
  function stepper({ count, word, nextLabel, show }) {
    let k = 0;
    const counter = h("span", { class: "visual__value", "data-figure": word });
    const back = h("button", { type: "button", "data-action": "back", onclick: () => go(k - 1) }, "◀ back");
    const next = h("button", { type: "button", "data-action": "next", onclick: () => go(k + 1) }, nextLabel);
    function go(to) {
      k = Math.max(0, Math.min(count - 1, to));
      counter.textContent = `${word} ${k + 1} of ${count}`;
      back.disabled = k === 0;
      next.disabled = k === count - 1;
      show(k);
    }
    const row = h("div", { class: "visual__controls" }, back, next, counter);
    row.go = go;
    return row;
  }

  const fmtInt = (n) => Math.round(n).toLocaleString("en-US");

  /** 1,536 -> "1.5 KiB": the units the chapter pages use (1 KiB = 1,024 bytes). */
  function fmtBytes(n) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    const digits = i === 0 || n >= 100 ? 0 : n >= 10 ? 1 : 2;
    return `${n.toLocaleString("en-US", { maximumFractionDigits: digits })} ${units[i]}`;
  }

  /** 2.1e8 -> "210 million", 1.1e14 -> "110 trillion" */
  function fmtCount(n) {
    const names = [[1e12, "trillion"], [1e9, "billion"], [1e6, "million"], [1e3, "thousand"]];
    for (const [size, name] of names) {
      if (n >= size) return `${(n / size).toLocaleString("en-US", { maximumSignificantDigits: 3 })} ${name}`;
    }
    return fmtInt(n);
  }

  /** A seeded random generator (mulberry32): the same draws each time a slider comes back. */
  function rng(seed) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** Draw every visual of the page (or of `scope`) whose chapter file has registered. */
  function mountAll(scope) {
    for (const root of (scope || document).querySelectorAll(".visual[data-visual]")) {
      const name = root.dataset.visual;
      if (root.dataset.mounted || !drawers[name]) continue;
      root.dataset.mounted = "1";
      root.replaceChildren();
      try {
        drawers[name](root, JSON.parse(root.dataset.json));
      } catch (err) {
        root.replaceChildren(h("p", { class: "visual__error" }, `This visual failed to draw: ${err.message}`));
        throw err;
      }
    }
  }

  function register(name, draw) {
    drawers[name] = draw;
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAll());
    else mountAll();
  }

  window.CourseVisuals = { register, mountAll, h, s, slider, picker, stepper, rng, fmtInt, fmtBytes, fmtCount };

  // mkdocs-material's instant navigation (off in mkdocs.yml today) swaps pages without a reload
  // and announces each on document$, which its bundle defines after this file has run.
  function followInstantNavigation() {
    if (window.document$ && typeof window.document$.subscribe === "function") {
      window.document$.subscribe(() => mountAll());
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", followInstantNavigation);
  else followInstantNavigation();
})();
