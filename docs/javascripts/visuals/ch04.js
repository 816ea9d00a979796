/* Chapter 4's visual: the same requests under static and continuous batching, step by step.
 *
 * simulate() applies ch04.scheduler's rules with no model (every step gives each sequence of the
 * batch one token, never EOS), as course.visual_data.run_schedule runs the Python classes:
 *   prefill  admit waiting sequences in order while the batch has room (max_num_seqs running),
 *            the step's tokens stay within max_num_batched_tokens (a lone long prompt may exceed
 *            it) and the pool has blocks for the whole sequence; the first that does not fit stops
 *   decode   when nobody is admitted: each running sequence, oldest first, gets one token; one that
 *            needs a block when none is free preempts the newest running sequence (maybe itself),
 *            which gives its blocks back and waits at the front of the queue to recompute
 *   static   (StaticScheduler) admits only when nothing is running
 * A sequence finishes after its output length and gives its blocks back at once. The pool is
 * counted in blocks: which block holds what does not change the schedule.
 * tests/test_visuals.py compares simulate() with the Python scheduler on random workloads.
 */
(function () {
  "use strict";

  function simulate(requests, isStatic, engine) {
    const { max_num_seqs: maxSeqs, max_num_batched_tokens: maxTokens, kvcache_block_size: bs } = engine;
    let free = engine.num_kvcache_blocks;
    const needed = (n) => Math.floor((n + bs - 1) / bs);
    const seqs = requests.map(([, prompt, output], i) => ({ i, numTokens: prompt, prompt, output, cached: 0, blocks: 0, status: "waiting", scheduled: 0 }));
    const arrivals = seqs.map((_, i) => i).sort((a, b) => requests[a][0] - requests[b][0] || a - b);
    let waiting = [], running = [];
    const steps = [];

    const deallocate = (seq) => { free += seq.blocks; seq.blocks = 0; seq.cached = 0; };
    const canAppend = (seq) => seq.blocks * bs >= seq.numTokens || free >= 1;
    function makeRoom(seq) {
      while (!canAppend(seq)) {
        const victim = running[running.length - 1]; // the newest: the least work to redo
        running = running.filter((q) => q !== victim);
        deallocate(victim);
        victim.status = "waiting";
        waiting.unshift(victim);
        if (victim === seq) return false;
      }
      return true;
    }

    function schedule() {
      const batch = [];
      let tokens = 0;
      const room = isStatic ? (running.length ? 0 : maxSeqs) : maxSeqs - running.length;
      while (waiting.length && batch.length < room) {
        const seq = waiting[0], n = seq.numTokens - seq.cached;
        if (batch.length && tokens + n > maxTokens) break;
        if (needed(seq.numTokens) > free) break;
        waiting.shift();
        seq.blocks = needed(seq.numTokens);
        free -= seq.blocks;
        seq.status = "running";
        seq.scheduled = n;
        tokens += n;
        running.push(seq);
        batch.push(seq);
      }
      if (batch.length) return [batch, true];
      for (const seq of running.slice()) {
        if (seq.status === "running" && makeRoom(seq)) {
          if (seq.blocks * bs < seq.numTokens) { seq.blocks += 1; free -= 1; }
          seq.scheduled = 1;
          batch.push(seq);
        }
      }
      return [batch, false];
    }

    function postprocess(batch) {
      for (const seq of batch) {
        seq.cached += seq.scheduled;
        seq.scheduled = 0;
        if (seq.cached < seq.numTokens) continue;
        seq.numTokens += 1;
        if (seq.numTokens - seq.prompt === seq.output) {
          seq.status = "finished";
          running = running.filter((q) => q !== seq);
          deallocate(seq);
        }
      }
    }

    while (arrivals.length || waiting.length || running.length) {
      while (arrivals.length && requests[arrivals[0]][0] <= steps.length) waiting.push(seqs[arrivals.shift()]);
      const [batch, isPrefill] = waiting.length || running.length ? schedule() : [[], false];
      if (batch.length) postprocess(batch);
      steps.push({ kind: batch.length ? (isPrefill ? "prefill" : "decode") : "idle", batch: batch.map((q) => q.i),
        running: running.map((q) => q.i), waiting: waiting.map((q) => q.i) });
      if (steps.length > 5000) throw new Error("no end after 5,000 steps: does every request fit in the pool alone?");
    }
    return steps;
  }

  /** What the chart reports: when it all ended, how full the busy steps were, how long requests took. */
  function summary(requests, steps, maxSeqs) {
    const busy = steps.filter((s) => s.kind !== "idle");
    const rows = busy.reduce((n, s) => n + s.batch.length, 0);
    const last = requests.map(() => -1), first = requests.map(() => -1);
    steps.forEach((s, t) => s.batch.forEach((i) => { if (first[i] < 0) first[i] = t; last[i] = t; }));
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      steps: steps.length,
      utilisation: busy.length ? rows / (busy.length * maxSeqs) : 0,
      latency: mean(requests.map(([arrival], i) => last[i] + 1 - arrival)),
      firstToken: mean(requests.map(([arrival], i) => first[i] + 1 - arrival)),
    };
  }

  if (typeof module === "object" && module.exports) module.exports = { simulate, summary };
  if (typeof window === "undefined" || !window.CourseVisuals) return;
  const { h, s, slider, rng } = window.CourseVisuals;

  /** n requests arriving at `rate` per step (Poisson), outputs of mean * (1 ± spread), as course.visual_data.random_requests. */
  function makeRequests(seed, rate, spread, w) {
    const r = rng(seed), int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
    let t = 0;
    return Array.from({ length: w.num_requests }, () => {
      t += -Math.log(1 - r()) / rate;
      const low = Math.max(1, Math.round(w.output_mean * (1 - spread))), high = Math.round(w.output_mean * (1 + spread));
      return [Math.floor(t), int(w.prompt_min, w.prompt_max), int(low, Math.max(low, high))];
    });
  }


  function draw(root, data) {
    const engine = { ...data.engine }, w = data.workload;
    const rates = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 4, 100];
    let rate = 0.5, spread = 0.8, seed = 1;
    const figures = h("div", { class: "visual__grid" });
    const charts = h("div");

    function gantt(title, requests, steps, scale, cls) {
      const left = 46, rowH = 11, top = 18, n = requests.length, stripH = 22;
      const x = (t) => left + t * scale;
      const y = (i) => top + i * rowH;
      const height = top + n * rowH + stripH + 18;
      const cells = [];
      const start = requests.map(() => -1);
      steps.forEach((st, t) => st.batch.forEach((i) => {
        if (start[i] < 0) start[i] = t;
        cells.push(s("rect", { x: x(t), y: y(i) + 1, width: Math.max(1, scale - 0.5), height: rowH - 2,
          class: cls, opacity: st.kind === "prefill" ? 1 : 0.45 }));
      }));
      const lines = requests.map(([arrival], i) => s("line", { x1: x(arrival), x2: x(Math.max(arrival, start[i])), y1: y(i) + rowH / 2,
        y2: y(i) + rowH / 2, class: "visual__axis", "stroke-width": 1.5, "stroke-dasharray": "2 2" }));
      const marks = requests.map(([arrival], i) => s("circle", { cx: x(arrival), cy: y(i) + rowH / 2, r: 2, class: "visual__muted" }));
      const stripTop = top + n * rowH + 6;
      const strip = steps.map((st, t) => s("rect", { x: x(t), width: Math.max(1, scale - 0.5),
        y: stripTop + stripH * (1 - st.batch.length / engine.max_num_seqs), height: stripH * st.batch.length / engine.max_num_seqs, class: cls }));
      return s("svg", { viewBox: `0 0 680 ${height}`, role: "img", "aria-label": title, "data-chart": title },
        s("text", { x: 0, y: 11 }, title),
        ...requests.map((_, i) => s("text", { x: left - 6, y: y(i) + rowH - 2, "text-anchor": "end", class: "visual__muted", "font-size": 9 }, `req ${i + 1}`)),
        ...lines, ...marks, ...cells,
        s("rect", { x: left, y: stripTop, width: x(steps.length) - left, height: stripH, class: "visual__bar-free" }),
        ...strip,
        s("text", { x: left - 6, y: stripTop + 15, "text-anchor": "end", class: "visual__muted", "font-size": 9 }, "batch"),
        s("text", { x: x(steps.length) + 4, y: stripTop + 15, class: "visual__muted" }, `${steps.length} steps`));
    }

    function update() {
      const requests = makeRequests(seed, rate, spread, w);
      const runs = [["static batching", true, "visual__bar-a"], ["continuous batching", false, "visual__bar-b"]]
        .map(([name, isStatic, cls]) => ({ name, cls, steps: simulate(requests, isStatic, engine) }));
      const longest = Math.max(...runs.map((r) => r.steps.length));
      const scale = Math.min(10, (680 - 46 - 60) / longest);
      charts.replaceChildren(...runs.map((r) => gantt(r.name, requests, r.steps, scale, r.cls)));
      figures.replaceChildren(...runs.map((r) => {
        const m = summary(requests, r.steps, engine.max_num_seqs);
        const key = r.name.split(" ")[0];
        return h("p", { class: "visual__figure", "data-run": key },
          h("b", {}, r.name), h("br"),
          "all done after ", h("b", { "data-figure": `${key}-steps` }, m.steps), " steps", h("br"),
          "batch rows used per busy step ", h("b", { "data-figure": `${key}-utilisation` }, `${Math.round(100 * m.utilisation)}%`), h("br"),
          "mean steps to first token ", h("b", {}, m.firstToken.toFixed(1)), ", to the last ", h("b", {}, m.latency.toFixed(1)));
      }));
    }

    const rateSlider = slider({ label: "arrivals per step", min: 0, max: rates.length - 1, value: rates.indexOf(rate), name: "rate",
      format: (i) => (rates[i] >= 100 ? "all at once" : String(rates[i])), onchange: (i) => { rate = rates[i]; update(); } });
    const spreadSlider = slider({ label: "output length spread", min: 0, max: 10, value: spread * 10, name: "spread",
      format: (v) => `${w.output_mean}±${Math.round(w.output_mean * v / 10)}`, onchange: (v) => { spread = v / 10; update(); } });
    root.append(
      h("p", { class: "visual__title" }, `${w.num_requests} requests, at most ${engine.max_num_seqs} sequences per batch: static against continuous batching`),
      h("div", { class: "visual__controls" }, rateSlider, spreadSlider,
        h("button", { type: "button", "data-action": "redraw", onclick: () => { seed += 1; update(); } }, "other requests")),
      figures, charts,
      h("p", { class: "visual__note" }, "A row is a request: a dot when it arrives, dashes while it waits, a dark cell for its prefill step, ",
        "light cells for its decode steps. The strip under each chart is how full each step's batch was. ",
        "A step that admits prompts computes only them, so the running sequences skip it (chapter 5 mixes the two)."));
    spreadSlider.init();
    rateSlider.init();
  }

  window.CourseVisuals.register("ch04", draw);
})();
