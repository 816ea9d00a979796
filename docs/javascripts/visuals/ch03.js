/* Chapter 3's visual: a pool of KV blocks that sequences take and give back.
 *
 * BlockPool applies ch03.block_manager.BlockManager's rules, as ch03.LLM calls them:
 *   add(promptLen)  a new sequence's prefill: ceil(promptLen / blockSize) blocks, taken from the
 *                   left of the free list, or none at all when too few are free (can_allocate)
 *   grow(i)         one more token; a new block only when it falls past the last block (may_append)
 *   finish(i)       every block back to the right of the free list, last block first (deallocate)
 * tests/test_visuals.py runs the same random operations through this file (under node) and through
 * the Python class, and compares the free list and every block table after each one.
 */
(function () {
  "use strict";

  class BlockPool {
    constructor(numBlocks, blockSize) {
      this.numBlocks = numBlocks;
      this.blockSize = blockSize;
      this.free = Array.from({ length: numBlocks }, (_, i) => i); // handed out from the left
      this.seqs = []; // {id, numTokens, table, live}, numbered in the order they were added
    }

    blocksNeeded(numTokens) {
      return Math.floor((numTokens + this.blockSize - 1) / this.blockSize); // a partial block is a block
    }

    add(promptLen) {
      const seq = { id: this.seqs.length, numTokens: promptLen, table: [], live: false };
      this.seqs.push(seq);
      const needed = this.blocksNeeded(promptLen);
      if (needed > this.free.length) return { ok: false, seq, needed };
      for (let i = 0; i < needed; i++) seq.table.push(this.free.shift());
      seq.live = true;
      return { ok: true, seq, taken: seq.table.slice() };
    }

    grow(id) {
      const seq = this.liveSeq(id);
      seq.numTokens += 1;
      const fits = seq.table.length * this.blockSize >= seq.numTokens;
      if (!fits && this.free.length === 0) {
        seq.numTokens -= 1; // refused: no block for the new token (the engine would preempt; chapter 4)
        return { ok: false, seq };
      }
      const taken = fits ? [] : [this.free.shift()];
      seq.table.push(...taken);
      return { ok: true, seq, taken };
    }

    finish(id) {
      const seq = this.liveSeq(id);
      const freed = seq.table.slice().reverse();
      this.free.push(...freed);
      seq.table = [];
      seq.live = false;
      return { ok: true, seq, freed };
    }

    liveSeq(id) {
      const seq = this.seqs[id];
      if (!seq || !seq.live) throw new Error(`sequence ${id} is not live`);
      return seq;
    }

    /** Slot of token `pos`: its block's first slot plus its offset in the block (slot_mapping). */
    slot(seq, pos) {
      return seq.table[Math.floor(pos / this.blockSize)] * this.blockSize + (pos % this.blockSize);
    }

    live() {
      return this.seqs.filter((q) => q.live);
    }

    apply(op) {
      if (op[0] === "add") return this.add(op[1]);
      if (op[0] === "grow") return this.grow(op[1]);
      if (op[0] === "finish") return this.finish(op[1]);
      throw new Error(`unknown operation ${JSON.stringify(op)}`);
    }

    /** The same record as course.visual_data.run_block_ops writes after each operation. */
    state(ok) {
      const tables = {}, tokens = {};
      for (const q of this.live()) { tables[q.id] = q.table.slice(); tokens[q.id] = q.numTokens; }
      return { ok, free: this.free.slice(), tables, tokens };
    }
  }

  function runOps(ops, numBlocks, blockSize) {
    const pool = new BlockPool(numBlocks, blockSize);
    return ops.map((op) => pool.state(pool.apply(op).ok));
  }

  if (typeof module === "object" && module.exports) module.exports = { BlockPool, runOps };
  if (typeof window === "undefined" || !window.CourseVisuals) return;

  const { h, slider } = window.CourseVisuals;
  const letter = (id) => String.fromCharCode(65 + (id % 26));
  const seqClass = (id) => `visual-seq-${id % 8}`;

  function draw(root, data) {
    const { num_blocks: numBlocks, block_size: blockSize } = data;
    let pool, promptLen = 6;
    const log = h("p", { class: "visual__log", "aria-live": "polite" });
    const figures = h("div", { class: "visual__figures" });
    const poolEl = h("div", { class: "visual__pool" });
    const freeEl = h("p", { class: "visual__note" });
    const seqBody = h("tbody");

    function say(text, refused) {
      log.textContent = text;
      log.classList.toggle("visual__log--refused", Boolean(refused));
    }

    function describe(op, result) {
      const name = `Sequence ${letter(result.seq.id)}`;
      if (op[0] === "add") {
        return result.ok
          ? `${name}: a prompt of ${op[1]} tokens takes ${result.taken.length} block(s): ${result.taken.join(", ")}.`
          : `Refused: a prompt of ${op[1]} tokens needs ${result.needed} blocks and ${pool.free.length} are free. It waits (chapter 4 queues it).`;
      }
      if (op[0] === "grow") {
        if (!result.ok) return `${name}: token ${result.seq.numTokens} needs a new block and none is free (chapter 4 preempts a sequence).`;
        const pos = result.seq.numTokens - 1;
        return result.taken.length
          ? `${name}: token ${pos} starts a new block: takes block ${result.taken[0]}, slot ${pool.slot(result.seq, pos)}.`
          : `${name}: token ${pos} fits in block ${result.seq.table[result.seq.table.length - 1]}, slot ${pool.slot(result.seq, pos)}.`;
      }
      return `${name} finished: blocks ${result.freed.join(", ")} go back to the end of the free list.`;
    }

    function run(op) {
      const result = pool.apply(op);
      say(describe(op, result), !result.ok);
      render();
    }

    function render() {
      const owner = new Map(); // block id -> [seq, index in its table]
      for (const q of pool.live()) q.table.forEach((b, i) => owner.set(b, [q, i]));

      poolEl.replaceChildren(...Array.from({ length: numBlocks }, (_, b) => {
        const own = owner.get(b);
        const slots = Array.from({ length: blockSize }, (_, k) => {
          const pos = own ? own[1] * blockSize + k : -1;
          const used = own && pos < own[0].numTokens;
          return h("span", {
            class: `visual__slot${used ? " visual__slot--used" : ""}`,
            title: used ? `slot ${b * blockSize + k}: sequence ${letter(own[0].id)}, token ${pos}` : `slot ${b * blockSize + k}: empty`,
          }, used ? pos : "");
        });
        return h("div", { class: `visual__block${own ? " " + seqClass(own[0].id) : ""}`, "data-block": b },
          h("span", { class: "visual__block-id" }, `block ${b}`),
          h("div", { class: "visual__slots", style: `grid-template-columns: repeat(${blockSize}, 1fr)` }, slots));
      }));

      freeEl.textContent = pool.free.length
        ? `Free list, taken from the left: ${pool.free.join(" ")}`
        : "Free list: empty. The pool is full.";

      const live = pool.live();
      seqBody.replaceChildren(...(live.length ? live.map((q) => {
        const slots = q.table.map((_, b) => Array.from({ length: Math.min(blockSize, q.numTokens - b * blockSize) },
          (_, k) => pool.slot(q, b * blockSize + k)).join(" ")); // grouped by block
        const waste = q.table.length * blockSize - q.numTokens;
        return h("tr", { class: seqClass(q.id), "data-seq": q.id },
          h("td", {}, h("span", { class: "visual__swatch" }), letter(q.id)),
          h("td", {}, q.numTokens),
          h("td", { class: "visual__table" }, `[${q.table.join(", ")}]`),
          h("td", { class: "visual__slotmap" }, slots.join(" | ")),
          h("td", {}, waste),
          h("td", {},
            h("button", { type: "button", title: "one more token", onclick: () => run(["grow", q.id]) }, "+1 token"), " ",
            h("button", { type: "button", title: "deallocate", onclick: () => run(["finish", q.id]) }, "finish")));
      }) : [h("tr", {}, h("td", { colspan: 6 }, "No sequence holds blocks. Add one."))]));

      const used = numBlocks - pool.free.length;
      const tokens = live.reduce((n, q) => n + q.numTokens, 0);
      figures.replaceChildren(
        h("span", { class: "visual__figure" }, "blocks in use ", h("b", { "data-figure": "used" }, `${used} / ${numBlocks}`)),
        h("span", { class: "visual__figure" }, "slots holding a token ", h("b", {}, `${tokens} / ${used * blockSize}`)),
        h("span", { class: "visual__figure" }, "wasted slots ", h("b", {}, used * blockSize - tokens),
          ` (under ${blockSize} per sequence)`));
    }

    function start(ops) {
      pool = new BlockPool(numBlocks, blockSize);
      const states = ops.map((op) => pool.state(pool.apply(op).ok));
      // The page was built with Python's answers for the same operations: say so if they differ.
      if (ops === data.example && JSON.stringify(states) !== JSON.stringify(data.example_states)) {
        say("This drawing disagrees with ch03.BlockManager; regenerate the data (python -m course.visual_data ch03).", true);
      } else {
        say(ops.length ? data.example_note : "An empty pool.");
      }
      render();
    }

    const length = slider({ label: "prompt length", min: 1, max: 12, value: promptLen, name: "prompt",
      format: (v) => `${v} tokens`, onchange: (v) => { promptLen = v; } });
    const controls = h("div", { class: "visual__controls" },
      length,
      h("button", { type: "button", "data-action": "add", onclick: () => run(["add", promptLen]) }, "add a sequence"),
      h("button", { type: "button", "data-action": "step", onclick: () => {
        const live = pool.live();
        if (!live.length) return say("No sequence to grow. Add one.", true);
        for (const q of live) { const r = pool.grow(q.id); if (!r.ok) { say(describe(["grow", q.id], r), true); render(); return; } }
        say(`Decode step: each of the ${live.length} sequence(s) stored one more token.`);
        render();
      } }, "decode step (all +1)"),
      h("button", { type: "button", "data-action": "reset", onclick: () => start([]) }, "empty the pool"),
      h("button", { type: "button", "data-action": "example", onclick: () => start(data.example) }, "the example"));

    root.append(
      h("p", { class: "visual__title" }, `A pool of ${numBlocks} blocks of ${blockSize} slots; each slot holds one token's K and V`),
      controls, log, figures, poolEl, freeEl,
      h("table", { class: "visual__seqs" },
        h("thead", {}, h("tr", {}, ["seq", "tokens", "block table", "slot of each token", "empty slots", ""].map((t) => h("th", {}, t)))),
        seqBody));
    length.init();
    start(data.example);
  }

  window.CourseVisuals.register("ch03", draw);
})();
