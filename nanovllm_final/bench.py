"""python -m nanovllm_final.bench [--kv-cache-dtype fp8] [--num-seqs 256] [--profile]: nano-vllm's benchmark.

The workload is nano-vllm's bench.py exactly: random.seed(0); 256 sequences; prompts of
randint(100, 1024) random token ids in [0, 10000]; outputs of randint(100, 1024) tokens with
ignore_eos (133,966 output tokens in all, checked below); temperature 0.6; one warm-up request.
The model is Qwen3-0.6B's architecture with random bf16 weights (load_format="dummy"):
throughput does not depend on the values. Prints output tokens/s, the hardware and versions,
and each request's time to first token (TTFT, from the moment all 256 are queued) and time per
output token after the first (TPOT): mean, p50 and p99. Writes all of it as JSON (--json;
bench_results/ by default). On a GPU it also times a device-to-device copy (GB/s, read + write,
best of 20): fresh machines of one model differ by several percent in memory-bound work, and
decode is memory-bound, so that number says whether a run came from a slow machine.

--profile also says where the time went: the host's time per phase of a step (schedule, prepare,
launch, postprocess, and the rest, mostly waiting for the GPU), the GPU's busy time per step
measured with CUDA events and its idle time (wall minus busy: the gaps in which it waits for the
host), the decode steps' GPU time by batch size with a straight line through it (a fixed part per
step, and a slope per context token that gives the KV cache's bandwidth), and the kernels of two prefill steps and five decode steps (torch.profiler), sorted by GPU time,
with the decode steps' time by what the kernels do (matrix products, attention, norms, ...), the
gaps between kernels, and the bound of reading the weights once. `--num-seqs 1 --profile` is the
one-sequence view: what a single stream's time per output token is made of.
--async-scheduling on|off picks the engine's mode (config.async_scheduling); --pdl on|off whether
kernels launch with programmatic dependent launch where the GPU has it (kernels/pdl.py).

--out measurements/NAME.json --runs 3 --kv-cache-dtype auto,fp8 runs the benchmark --runs times for
each KV cache type, each run in a fresh process, and writes one measurement file (the format of
measurements/README.md: every run's tokens/s, the median, the median run's TTFT and TPOT, the
machine, the versions, the date and this command), which the README and the site include.
"""

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from nanovllm_final import LLM, SamplingParams
from nanovllm_final.kernels import pdl

QWEN3_0_6B = dict(
    architectures=["Qwen3ForCausalLM"], vocab_size=151936, hidden_size=1024, intermediate_size=3072,
    num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
    rope_theta=1000000.0, max_position_embeddings=40960, tie_word_embeddings=True, eos_token_id=151645,
)
CHECKSUM = 133_966  # output tokens of the 256-sequence workload


def workload(num_seqs: int, input_len=(100, 1024), output_len=(100, 1024), max_token_id=10000):
    """nano-vllm's prompts and params; the defaults are its numbers (bench_serving scales them down)."""
    random.seed(0)
    prompts = [[random.randint(0, max_token_id) for _ in range(random.randint(*input_len))] for _ in range(num_seqs)]
    params = [SamplingParams(temperature=0.6, ignore_eos=True, max_tokens=random.randint(*output_len))
              for _ in range(num_seqs)]
    return prompts, params


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nanovllm_final.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--num-seqs", type=int, default=256)
    parser.add_argument("--kv-cache-dtype", default="auto", help="auto (the model's dtype) or fp8; with --out, a list: auto,fp8")
    parser.add_argument("--enforce-eager", action="store_true")
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--profile", action="store_true", help="say where the time goes (GPU)")
    parser.add_argument("--async-scheduling", choices=["auto", "on", "off"], default="auto",
                        help="host one step ahead of the GPU (auto: the engine's default)")
    parser.add_argument("--pdl", choices=["on", "off"], default="on",
                        help="programmatic dependent launch of the kernels, where the GPU has it (kernels/pdl.py)")
    parser.add_argument("--json", help="where to write the results (default: bench_results/bench-<time>.json)")
    parser.add_argument("--out", help="write a measurement file here (measurements/README.md), from --runs fresh runs of each KV cache type")
    parser.add_argument("--runs", type=int, default=3, help="with --out: runs of each KV cache type, one process each (default 3)")
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    kv_dtypes = args.kv_cache_dtype.split(",")
    if any(d not in ("auto", "fp8") for d in kv_dtypes) or (len(kv_dtypes) > 1 and not args.out):
        parser.error(f"--kv-cache-dtype {args.kv_cache_dtype}: use auto or fp8 (a list such as auto,fp8 only with --out)")
    if args.out:
        if args.runs < 1 or args.profile:
            parser.error("--out needs --runs 1 or more, and no --profile (a profiled run is slower than a plain one)")
        record(args, argv, kv_dtypes)
        return
    prompts, params = workload(args.num_seqs)
    total = sum(p.max_tokens for p in params)
    if args.num_seqs == 256:
        assert total == CHECKSUM, f"workload drifted: {total} output tokens, expected {CHECKSUM}"
    pdl.ENABLED = args.pdl == "on"
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(QWEN3_0_6B))
        llm = LLM(folder, load_format="dummy", kv_cache_dtype=args.kv_cache_dtype,
                  enforce_eager=args.enforce_eager, max_model_len=args.max_model_len,
                  async_scheduling={"auto": None, "on": True, "off": False}[args.async_scheduling])
    llm.generate([[1, 2, 3]], SamplingParams(max_tokens=8), use_tqdm=False)  # warm-up
    start = time.perf_counter()
    if args.profile:
        (report, trace), latency = profile(llm, prompts, params), None
    else:
        latency = run_timed(llm, prompts, params)
    seconds = time.perf_counter() - start
    env = environment(llm)
    if llm.config.device == "cuda":
        env["copy_gb_per_s"] = copy_bandwidth()
    print(f"device: {env['device']} | torch {env['torch']} | triton {env['triton']} | kv cache: {args.kv_cache_dtype} | "
          f"blocks: {llm.config.num_kvcache_blocks} x {llm.config.kvcache_block_size} | "
          f"cuda graphs: {not args.enforce_eager} | async scheduling: {llm.config.async_scheduling} | PDL: {args.pdl} | "
          f"preemptions: {llm.scheduler.num_preemptions}"
          + (f" | device copy: {env['copy_gb_per_s']:.0f} GB/s" if env.get("copy_gb_per_s") else ""))
    print(f"Total: {total} tok, Time: {seconds:.2f} s, Throughput: {total / seconds:.2f} tok/s")
    result = dict(command="python -m nanovllm_final.bench " + " ".join(argv),
                  output_tokens=total, seconds=seconds, tokens_per_s=total / seconds, kv_cache_dtype=args.kv_cache_dtype,
                  kv_cache=kv_cache_label(args.kv_cache_dtype, llm.config.dtype),
                  num_seqs=args.num_seqs, cuda_graphs=not args.enforce_eager,
                  async_scheduling=llm.config.async_scheduling, pdl=args.pdl == "on", **env,
                  num_kvcache_blocks=llm.config.num_kvcache_blocks, preemptions=llm.scheduler.num_preemptions)
    if latency:
        for name, values in latency.items():
            stats = summary(values)
            result[name] = stats
            print(f"{name}: mean {stats['mean']:.1f} ms, p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms")
    if args.profile:
        print(report)
        result["profile"], result["trace"] = report, trace
    path = Path(args.json or f"bench_results/bench-{time.strftime('%Y%m%d-%H%M%S')}-{args.kv_cache_dtype}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"results: {path}")
    llm.close()


def kv_cache_label(kv_cache_dtype: str, dtype: torch.dtype) -> str:
    """'fp8', or the model's dtype ('bf16', 'fp32'...) for kv_cache_dtype 'auto'."""
    if kv_cache_dtype == "fp8":
        return "fp8"
    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}.get(dtype, str(dtype))


def record(args, argv: list[str], kv_dtypes: list[str]) -> None:
    """--out: each KV cache type --runs times, each run a fresh process (as the numbers were always
    taken: one process per run), then one measurement file from all of them."""
    child = ["--num-seqs", str(args.num_seqs), "--max-model-len", str(args.max_model_len),
             "--async-scheduling", args.async_scheduling, "--pdl", args.pdl] + (["--enforce-eager"] if args.enforce_eager else [])
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for kv in kv_dtypes:
            for i in range(args.runs):
                path = Path(folder) / f"{kv}-{i}.json"
                cmd = [sys.executable, "-m", "nanovllm_final.bench", *child, "--kv-cache-dtype", kv, "--json", str(path)]
                print(f"run {i + 1} of {args.runs}, KV cache {kv}: {' '.join(cmd[1:])}", flush=True)
                subprocess.run(cmd, check=True)
                runs.append(json.loads(path.read_text()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(measurement(runs, "python -m nanovllm_final.bench " + " ".join(argv)), indent=1) + "\n")
    print(f"measurement: {out} (then `python -m course.readme` refreshes the README's table)")


def measurement(runs: list[dict], command: str) -> dict:
    """Runs (each a --json result) -> one measurement file: per KV cache type every run's
    tokens/s, their median, and the median run's TTFT and TPOT; the machine and versions."""
    by_kv = defaultdict(list)
    for run in runs:
        by_kv[run["kv_cache"]].append(run)
    values = {}
    for kv, group in by_kv.items():
        speeds = [round(run["tokens_per_s"]) for run in group]
        middle = sorted(group, key=lambda run: run["tokens_per_s"])[(len(group) - 1) // 2]
        values[kv] = dict(tokens_per_s=speeds, median=statistics.median(speeds))
        for name in ("ttft_ms", "tpot_ms"):
            if name in middle:
                values[kv][name] = {k: round(middle[name][k], 1) for k in ("mean", "p50", "p99")}
    first = runs[0]
    if first.get("gpu_memory_gib"):
        machine = dict(gpu=f"{first['device']} ({first['gpu_memory_gib']} GiB)")
    else:
        machine = dict(cpu=first["device"])
    for key, label in (("driver", "driver"), ("copy_gb_per_s", "device copy GB/s")):
        if first.get(key):
            machine[label] = round(first[key]) if isinstance(first[key], float) else first[key]
    versions = {k: first[k] for k in ("torch", "triton", "cuda", "python") if first.get(k)}
    workload = f"{first['num_seqs']} sequences, prompts and outputs of 100-1024 tokens, {first['output_tokens']:,} output tokens"
    return dict(title=f"nano-vllm's benchmark: {workload}; Qwen3-0.6B's architecture, random weights",
                workload="nano-vllm's benchmark", kind="bench", command=command, date=time.strftime("%Y-%m-%d"),
                machine=machine, versions=versions, values=values)


def run_timed(llm, prompts, params) -> dict:
    """Run the workload, noting when each request got its first token and when it finished.
    -> {"ttft_ms": [...], "tpot_ms": [...]}, one value per request."""
    seqs = [llm.add_request(prompt, sp) for prompt, sp in zip(prompts, params)]
    first, last, start = {}, {}, time.perf_counter()
    while not llm.is_finished():
        stepped, _, _ = llm.step()
        now = time.perf_counter()
        for seq in stepped:
            first.setdefault(seq.seq_id, now)
            last[seq.seq_id] = now
    ttft = [(first[s.seq_id] - start) * 1e3 for s in seqs]
    tpot = [(last[s.seq_id] - first[s.seq_id]) * 1e3 / (s.num_completion_tokens - 1) for s in seqs if s.num_completion_tokens > 1]
    return {"ttft_ms": ttft, "tpot_ms": tpot}


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return dict(mean=statistics.fmean(values), p50=statistics.median(values), p99=pick(0.99))


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 20) -> float | None:
    """GB/s of a device-to-device copy of nbytes (read + write counted), the best of `repeats`; the
    buffers are 5x the H100/H200's L2, so the copy goes to memory. None if it cannot run (no room)."""
    try:
        x = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        y = torch.empty_like(x)
    except torch.cuda.OutOfMemoryError:
        return None
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        y.copy_(x)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)  # seconds
    del x, y
    return 2 * nbytes / min(times) / 1e9


def environment(llm) -> dict:
    """The hardware and software the numbers came from."""
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    env = dict(torch=torch.__version__, triton=triton_version, python=platform.python_version(),
               cuda=torch.version.cuda, host=platform.machine(), cpu=platform.processor() or platform.machine())
    try:
        import transformers
        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    if llm.config.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(device=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   multiprocessors=props.multi_processor_count, compute_capability=f"{props.major}.{props.minor}")
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    else:
        env["device"] = env["cpu"]
    return env


def profile(llm, prompts, params, windows=((2, 4), (300, 305))) -> str:
    """Run the workload step by step, timing each phase on the host and the GPU's busy time, and
    listing the kernels of each window of steps (first..last, not included): by default two of the
    benchmark's prefill steps (all 256 prompts are queued, so the first nine are prefills) and five
    decode steps."""
    runner, scheduler = llm.model_runner, llm.scheduler
    host, events = defaultdict(float), []

    def timed(obj, name, label=None, before=None, after=None):
        fn = getattr(obj, name)

        def wrapper(*args, **kwargs):
            before and before()
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                host[label or name] += time.perf_counter() - t
                after and after()
        setattr(obj, name, wrapper)

    cuda = llm.config.device == "cuda"

    shape = {}  # the step being launched: its index, sequences, tokens, and context tokens its attention reads

    def gpu_start():
        if cuda:
            events.append([torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True), dict(shape)])
            events[-1][0].record()

    def gpu_end():
        if cuda:
            events[-1][1].record()
            events[-1].append("recorded")

    prepare_batch = runner.prepare_batch

    def noting_prepare(seqs, *args, **kwargs):
        shape.update(step=steps, seqs=len(seqs), tokens=sum(s.num_scheduled_tokens for s in seqs),
                     context=sum(s.num_cached_tokens + s.num_scheduled_tokens for s in seqs))
        return prepare_batch(seqs, *args, **kwargs)
    runner.prepare_batch = noting_prepare

    timed(scheduler, "schedule")
    timed(runner, "prepare_batch", "prepare")
    timed(runner, "run_model", "launch model", before=gpu_start)
    timed(runner.model, "compute_logits", "launch lm head")
    timed(runner, "prepare_sample", "prepare sampling")
    timed(runner, "sample", "launch sampler", after=gpu_end)
    timed(scheduler, "postprocess")
    timed(scheduler, "advance", "postprocess before the tokens (async)")
    timed(scheduler, "settle", "postprocess of the tokens (async)")
    for prompt, sp in zip(prompts, params):
        llm.add_request(prompt, sp)
    activity = torch.profiler.ProfilerActivity.CUDA if cuda else torch.profiler.ProfilerActivity.CPU

    def stop(kernels):
        if cuda:
            torch.cuda.synchronize()
        kernels.__exit__(None, None, None)

    steps, profiled, start = 0, [], time.perf_counter()  # profiled: (window, sequences running, profiler)
    weight_bytes = decode_weight_bytes(runner.model)
    while not llm.is_finished():
        for window in windows:
            if steps == window[0]:
                profiled.append((window, len(scheduler.running), torch.profiler.profile(activities=[activity])))
                profiled[-1][2].__enter__()
        llm.step()
        steps += 1
        for window, _, kernels in profiled:
            if steps == window[1]:
                stop(kernels)
    wall = time.perf_counter() - start
    done = [e for e in events if len(e) == 4]
    gpu = sum(e[0].elapsed_time(e[1]) for e in done) / 1e3
    trace = [dict(e[2], gpu_ms=round(e[0].elapsed_time(e[1]), 4)) for e in done]
    host["the rest: waiting for the GPU, glue"] = wall - sum(host.values())
    lines = [f"{steps} steps in {wall:.2f} s ({wall / steps * 1e3:.2f} ms per step); "
             f"GPU busy from model launch to sampler end: {gpu:.2f} s ({gpu / steps * 1e3:.2f} ms per step); "
             f"GPU idle: {(wall - gpu) / steps * 1e3:.2f} ms per step; async scheduling: {llm.config.async_scheduling}",
             "host time per phase:"]
    lines += [f"  {k:42s} {v:7.2f} s {v / steps * 1e3:7.3f} ms/step" for k, v in host.items()]
    kv = getattr(runner, "kv_cache", None)  # (2, layers, blocks, block_size * heads * head_dim)
    kv_bytes = kv.numel() * kv.element_size() // (kv.shape[2] * llm.config.kvcache_block_size) if kv is not None else None
    lines += by_batch_size(trace, kv_bytes)
    for (first, last), batch, kernels in profiled:
        if steps < last:  # the run ended inside the window
            stop(kernels)
        lines.append(f"{'kernels' if cuda else 'operators'} of steps {first}-{min(last, steps)} ({batch} sequences "
                     f"running; totals over {min(last, steps) - first} steps):")
        lines.append(kernels.key_averages().table(sort_by="cuda_time_total" if cuda else "cpu_time_total",
                                                  row_limit=25, max_name_column_width=70))
        window = [t for t in trace if first <= t["step"] < min(last, steps)]
        if cuda and window and all(t["tokens"] == t["seqs"] for t in window):  # decode steps only
            lines += decode_breakdown(kernels.key_averages(), window, weight_bytes, copy_bandwidth())
    return "\n".join(lines), trace


# What each kernel of a decode step does, by a fragment of its name (first match wins).
KERNEL_GROUPS = (
    ("matrix products", ("nvjet", "gemm", "gemv", "cutlass", "xmma", "splitk")),
    ("attention", ("decode_split", "decode_reduce", "decode_attention", "attn", "_prefill_kernel")),
    ("add + RMSNorm", ("rms_norm",)),
    ("q/k norm + rotary", ("rope", "rotary")),
    ("SiLU and multiply", ("silu",)),
    ("sampler", ("sample", "topk", "softmax", "argmax", "exponential", "distribution")),
    ("copies and fills", ("memcpy", "memset", "copy", "fill")),
)


def kernel_group(name: str) -> str:
    low = name.lower()
    return next((group for group, fragments in KERNEL_GROUPS if any(f in low for f in fragments)), "other")


def decode_weight_bytes(model) -> int:
    """The weight bytes a decode step reads: every parameter once (a tied LM head is the embedding),
    but of an untied input embedding only the rows of the batch's tokens (counted as none)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    embed, head = model.model.embed_tokens.weight, model.lm_head.weight
    return total - (embed.numel() * embed.element_size() if embed is not head else 0)


def decode_breakdown(averages, window: list[dict], weight_bytes: int, copy_gb_per_s: float | None) -> list[str]:
    """Where a decode step's GPU time goes: the profiled window's kernels by what they do (count
    and µs per step), the gaps between them (the step's time from the model's launch to the
    sampler's end, less its kernels' time), and the bound: the weights read once at the copy's
    bandwidth. `averages` is the window's torch.profiler key_averages()."""
    n = len(window)
    step_us = statistics.fmean(t["gpu_ms"] for t in window) * 1e3
    groups = defaultdict(lambda: [0, 0.0])
    for e in averages:
        us = getattr(e, "device_time_total", None)
        if us is None:
            us = e.cuda_time_total
        if us > 0 and e.count:
            groups[kernel_group(e.key)][0] += e.count
            groups[kernel_group(e.key)][1] += us
    busy = sum(us for _, us in groups.values()) / n
    seqs = statistics.fmean(t["seqs"] for t in window)
    lines = [f"where a decode step's GPU time goes ({seqs:.0f} sequences; steps {window[0]['step']}-{window[-1]['step']}): "
             f"{step_us:.0f} µs from the model's launch to the sampler's end",
             f"  {'':28s} {'kernels':>8s} {'µs/step':>9s} {'share':>6s}"]
    for group, (count, us) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        extra = ""
        if group.startswith("matrix products"):
            extra = f"   {weight_bytes / 1e9:.2f} GB of weights at {weight_bytes / (us / n * 1e-6) / 1e12:.2f} TB/s"
        lines.append(f"  {group:28s} {count / n:8.0f} {us / n:9.1f} {us / n / step_us:6.0%}{extra}")
    lines.append(f"  {'gaps between kernels':28s} {'':8s} {step_us - busy:9.1f} {(step_us - busy) / step_us:6.0%}")
    if busy > step_us:
        lines.append("  (below zero: the kernels overlap. With PDL a kernel starts before the one before it ends, and "
                     "its time includes the wait; --pdl off gives each kernel's own time, in a slower step)")
    if copy_gb_per_s:
        bound = weight_bytes / (copy_gb_per_s * 1e9) * 1e6
        lines.append(f"  the bound: the weights read once at the copy's {copy_gb_per_s:.0f} GB/s: {bound:.0f} µs "
                     f"({step_us / bound:.1f}x below the step)")
    return lines


def by_batch_size(trace: list[dict], kv_bytes_per_token: int | None = None) -> list[str]:
    """GPU time of decode steps grouped by how many sequences ran, and a straight line through all
    of them: GPU ms = fixed + slope x context tokens. The fixed part is what every step pays
    whatever it reads (the weights, the small kernels, the gaps); the slope is the time per token of
    KV cache read, which with kv_bytes_per_token (all layers, K and V) says the bandwidth the
    attention reaches. The run's decode time then splits into reading the KV cache and the rest."""
    if not trace:
        return []
    lines = ["decode steps by batch size (GPU ms per step; context = KV tokens read per layer):",
             f"  {'sequences':>12s} {'steps':>6s} {'GPU ms':>8s} {'context':>9s} {'ns/context token':>17s}"]
    decode = [t for t in trace if t["tokens"] == t["seqs"]]
    edges = [0, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256, 1 << 30]
    for lo, hi in zip(edges[:-1], edges[1:]):
        group = [t for t in decode if lo < t["seqs"] <= hi]
        if group:
            ms = statistics.fmean(t["gpu_ms"] for t in group)
            ctx = statistics.fmean(t["context"] for t in group)
            lines.append(f"  {f'{lo + 1}-{min(hi, 9999)}':>12s} {len(group):6d} {ms:8.3f} {ctx:9.0f} {ms * 1e6 / ctx:17.1f}")
    prefill = [t for t in trace if t["tokens"] != t["seqs"]]
    lines.append(f"  prefill or mixed steps: {len(prefill)}, {sum(t['gpu_ms'] for t in prefill):.1f} ms in all")
    contexts = [t["context"] for t in decode]
    if len(set(contexts)) > 1:
        slope, fixed = statistics.linear_regression(contexts, [t["gpu_ms"] for t in decode])
        total, kv_part = sum(t["gpu_ms"] for t in decode), slope * sum(contexts)
        line = f"  fit over {len(decode)} decode steps: {fixed:.3f} ms + {slope * 1e6:.2f} ns per context token"
        if kv_bytes_per_token and slope > 0:
            line += f" (the KV cache at {kv_bytes_per_token / (slope * 1e6) / 1e3:.2f} TB/s, {kv_bytes_per_token:,} bytes a token)"
        lines.append(line)
        lines.append(f"  the run's decode steps: {total / 1e3:.2f} s, of which reading the KV cache {kv_part / 1e3:.2f} s "
                     f"and the fixed part {(total - kv_part) / 1e3:.2f} s ({fixed:.3f} ms x {len(decode)} steps)")
    return lines


if __name__ == "__main__":
    main()
