/* Chapter 6's visual: chat prompts that share a system prompt, through the prefix cache.
 *
 * course/visual_data.py sent the requests through nanovllm_final's BlockManager (chained hashes
 * of full blocks, ref counts, lazy eviction) and recorded the pool after each event; this file
 * steps through them and draws the tree of shared blocks from the block tables.
 */
(function () {
  "use strict";
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, stepper } = window.CourseVisuals;
  const seqClass = (name) => `visual-seq-${(name.charCodeAt(0) - 65) % 8}`;

  function draw(root, data) {
    const events = data.events, bs = data.block_size;
    const log = h("p", { class: "visual__log" });
    const figures = h("div", { class: "visual__figures" });
    const pool = h("div", { class: "visual__pool" });
    const tree = s("svg", { viewBox: "0 0 680 150", role: "img", "aria-label": "the tree of shared blocks" });

    function drawTree(tables) {
      // A node per (depth, block): sequences that share a prefix share the path to it.
      const names = Object.keys(tables), rows = {}, nodes = [], edges = [];
      for (const name of names) {
        tables[name].forEach((b, d) => {
          const key = `${d}:${b}`;
          if (!(key in rows)) { rows[key] = (nodes.filter((n) => n.d === d).length); nodes.push({ key, d, b, names: [] }); }
          nodes.find((n) => n.key === key).names.push(name);
          if (d > 0) edges.push([`${d - 1}:${tables[name][d - 1]}`, key]);
        });
      }
      const at = (key) => { const [d] = key.split(":").map(Number); return [60 + d * 170, 30 + rows[key] * 34]; };
      tree.replaceChildren(
        s("text", { x: 0, y: 12, class: "visual__muted" }, "the tree of shared blocks: a path from the left is a request's block table"),
        ...edges.map(([a, b]) => { const [x1, y1] = at(a), [x2, y2] = at(b); return s("line", { x1: x1 + 50, y1, x2: x2 - 50, y2, class: "visual__axis", "stroke-width": 2 }); }),
        ...nodes.flatMap((n) => {
          const [x, y] = at(n.key);
          return [s("rect", { x: x - 50, y: y - 12, width: 100, height: 24, rx: 4, class: n.names.length > 1 ? "visual__bar-b" : "visual__bar-free", "data-node": n.b }),
            s("text", { x, y: y + 4, "text-anchor": "middle" }, `block ${n.b}: ${n.names.join(", ")}`)];
        }),
        ...names.map((name) => { const last = `${tables[name].length - 1}:${tables[name][tables[name].length - 1]}`; const [x, y] = at(last);
          return s("text", { x: x + 56, y: y + 4, class: "visual__muted" }, name); }));
    }

    function show(k) {
      const e = events[k];
      log.textContent = e.text;
      const sent = events.slice(0, k + 1).filter((x) => x.tokens);
      const total = sent.reduce((n, x) => n + x.tokens, 0), hits = sent.reduce((n, x) => n + x.hit, 0);
      figures.replaceChildren(
        ...(e.tokens ? [h("span", { class: "visual__figure" }, `${e.name}: `, h("b", {}, e.tokens), " prompt tokens, ",
          h("b", { "data-figure": "hit" }, e.hit), " from the cache, ", h("b", {}, e.tokens - e.hit), " computed")] : []),
        h("span", { class: "visual__figure" }, "so far: ", h("b", { "data-figure": "rate" }, `${Math.round((100 * hits) / total)}%`),
          ` of ${total} prompt tokens were cache hits`));
      const owners = {};
      for (const [name, table] of Object.entries(e.tables)) for (const b of table) (owners[b] = owners[b] || []).push(name);
      pool.replaceChildren(...e.blocks.map(([ref, hash], b) => {
        const who = owners[b] || [];
        return h("div", { class: `visual__block${who.length ? " " + seqClass(who[0]) : ""}${!ref && hash ? " visual__block--cached" : ""}`, "data-block": b, "data-ref": ref },
          h("span", { class: "visual__block-id" }, `block ${b}`),
          h("span", { class: "visual__block-id" }, who.length ? `ref ${ref}: ${who.join(" ")}` : hash ? "free, cached" : "free"),
          h("span", { class: "visual__block-id", style: "font-family: var(--md-code-font-family)" }, hash ? `#${hash}` : "–"));
      }));
      drawTree(e.tables);
    }

    const controls = stepper({ count: events.length, word: "event", nextLabel: "next event ▶", show });
    root.append(
      h("p", { class: "visual__title" }, `Requests sharing the system prompt “${data.system}”; blocks of ${bs} tokens`),
      controls, log, figures, tree, pool,
      h("p", { class: "visual__note" }, "#hash: a full block registered in the prefix cache (the first 6 hex digits of its chained xxhash). ",
        "A block holding a prompt's last token is never a hit, so a request always computes at least one block."));
    controls.go(0);
  }

  window.CourseVisuals.register("ch06", draw);
})();
