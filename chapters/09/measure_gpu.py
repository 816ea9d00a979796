"""Decode steps of chapter 9's model on a GPU, eager against CUDA graphs: what a graph changes.

    python -m ch09.measure_gpu            # needs a CUDA GPU; about a minute
    python -m ch09.measure_gpu --out FILE # default: measurements/ch09_decode_graphs.json

The model is Qwen3-0.6B's architecture with random bf16 weights built on the GPU (the numbers
do not depend on the values), with chapter 9's parts (the store and paged decode kernels, the
fused add + RMSNorm). For each batch size, B sequences of CONTEXT_LEN tokens each decode one
token: the step the engine's run_model runs, its inputs laid out as the model runner lays them
out (slots, block tables and context lengths on the GPU). Eager, every kernel is
launched from Python; with graphs, the inputs are copied into the static buffers and one graph
replays (cuda_graph.py). Before any timing, the two must give the same hidden states, to
bf16's rounding (a padded batch may take other GEMM tiles, so not always bit for bit).

Per step and mode it writes:
    launches     kernels the GPU ran, and the launch calls the host made (torch.profiler)
    host_us      how long the Python call takes to return (median): the host's cost of a step
    gpu_us       the GPU's busy time: the sum of its kernels' durations (profiler)
    step_us      steps run back to back, wall time per step (median of 5 runs of 20 steps)
    timeline     one step as the profiler saw it: each launch call on the host and each kernel
                 on the GPU, [start_us, duration_us, name index], from the step's first event
as a `numbers` measurement (measurements/README.md): one entry per batch size and mode
("b8_graph"), its value the step's wall time, with the hardware, versions, date and this command.
`read()` gives it back as one row per batch size; the notebook and the site's visual read it so.
"""

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ch01.config import ModelConfig
from ch01.model import CausalLM
from ch03.context import Context, reset_context, set_context
from ch03.model_runner import ModelRunner as PoolRunner
from ch09.cuda_graph import DecodeGraphs
from ch09.model_runner import ModelRunner
from course import measurements
from course.measurements import FOLDER

NAME = "ch09_decode_graphs"
OUT = FOLDER / f"{NAME}.json"
QWEN3_0_6B = dict(
    architectures=["Qwen3ForCausalLM"], vocab_size=151936, hidden_size=1024, intermediate_size=3072,
    num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
    rope_theta=1000000.0, max_position_embeddings=40960, tie_word_embeddings=True,
)
BATCH_SIZES = [1, 8, 64, 256]
CONTEXT_LEN, BLOCK_SIZE = 256, 16


def build(batch_sizes: list[int], device="cuda", dtype=torch.bfloat16, config: dict = QWEN3_0_6B):
    """The model (random weights) with chapter 9's parts, and a pool holding every sequence's blocks."""
    with torch.device(device):
        torch.manual_seed(0)
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            model = CausalLM(ModelConfig.from_dict(config), parts=ModelRunner.parts).eval()
        finally:
            torch.set_default_dtype(default)
    with torch.no_grad():  # chapter 8's layers start empty (a loader fills them): random weights, unit norms
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.02)
            else:
                param.fill_(1.0)
    num_blocks = max(batch_sizes) * -(-CONTEXT_LEN // BLOCK_SIZE)
    PoolRunner(model, num_blocks, BLOCK_SIZE)  # allocates the pool and hands each layer its views
    return model


def decode_inputs(B: int, vocab_size: int, device) -> tuple[torch.Tensor, torch.Tensor, Context]:
    """B sequences whose newest token is at position CONTEXT_LEN - 1; sequence i owns the blocks
    i * per_seq ... in order."""
    per_seq = -(-CONTEXT_LEN // BLOCK_SIZE)
    block_tables = torch.arange(B * per_seq, dtype=torch.int64, device=device).view(B, per_seq)
    last = CONTEXT_LEN - 1
    slot_mapping = block_tables[:, last // BLOCK_SIZE] * BLOCK_SIZE + last % BLOCK_SIZE
    input_ids = torch.randint(0, min(vocab_size, 10000), (B,), device=device)
    positions = torch.full((B,), last, dtype=torch.int64, device=device)
    context = Context(cu_seqlens_q=torch.arange(B + 1), context_lens=torch.full((B,), CONTEXT_LEN, device=device),
                      slot_mapping=slot_mapping, block_tables=block_tables)
    return input_ids, positions, context


def eager_step(model, input_ids, positions, context):
    set_context(context)
    hidden = model(input_ids, positions)
    reset_context()
    return hidden


def graph_step(graphs, input_ids, positions, context):
    return graphs.run(input_ids, positions, context)


def host_and_wall_us(step, sync) -> tuple[float, float]:
    """The median time a step's call takes to return, and the wall time per step of steps run
    back to back."""
    host = []
    for _ in range(20):
        sync()
        start = time.perf_counter()
        step()
        host.append((time.perf_counter() - start) * 1e6)
    wall = []
    for _ in range(5):
        sync()
        start = time.perf_counter()
        for _ in range(20):
            step()
        sync()
        wall.append((time.perf_counter() - start) * 1e6 / 20)
    return statistics.median(host), statistics.median(wall)


def profile_step(step) -> dict:
    """One step under torch.profiler: its launch calls on the host and its kernels on the GPU."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        events = [e for e in json.loads(Path(f.name).read_text())["traceEvents"] if e.get("ph") == "X"]
    launches = [e for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver")
                and any(word in e["name"] for word in ("Launch", "Memcpy", "Memset"))]
    kernels = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    start = min(e["ts"] for e in launches + kernels)
    names: list[str] = []

    def row(e):
        name = e["name"][:60]
        if name not in names:
            names.append(name)
        return [round(e["ts"] - start, 1), round(e["dur"], 1), names.index(name)]

    return {"kernels": sum(e.get("cat") == "kernel" for e in kernels), "launch_calls": len(launches),
            "gpu_us": round(sum(e["dur"] for e in kernels), 1),
            "timeline": {"host": [row(e) for e in sorted(launches, key=lambda e: e["ts"])],
                         "gpu": [row(e) for e in sorted(kernels, key=lambda e: e["ts"])], "names": names}}


def environment() -> tuple[dict, dict]:
    """(machine, versions) as a measurement file says them."""
    import transformers
    import triton

    props = torch.cuda.get_device_properties(0)
    machine = {"gpu": f"{props.name} ({props.total_memory / 2**30:.0f} GiB)",
               "compute capability": f"{props.major}.{props.minor}", "cpu": platform.processor() or platform.machine()}
    try:
        machine["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    versions = dict(torch=torch.__version__, cuda=torch.version.cuda, triton=triton.__version__,
                    transformers=transformers.__version__, python=platform.python_version())
    return machine, versions


def as_measurement(data: dict, machine: dict, versions: dict, command: str, date: str) -> dict:
    """measure()'s result as a `numbers` file: one entry per batch size and mode, its value the
    step's wall time (µs), with the host's time, the GPU's, the launches and the timeline beside it."""
    values = {}
    for row in data["steps"]:
        for mode in ("eager", "graph"):
            how = "eager" if mode == "eager" else f"replaying the graph of batch {row['graph_batch_size']}"
            values[f"b{row['batch_size']}_{mode}"] = dict(
                what=f"a decode step of {row['batch_size']} sequences, {how}: wall time, steps back to back",
                value=row[mode]["step_us"], unit="µs", batch_size=row["batch_size"],
                graph_batch_size=row["graph_batch_size"], mode=mode, **row[mode])
    setup = {k: data[k] for k in ("model", "context_len", "kvcache_block_size")}
    return dict(title=f"chapter 9's decode step on a GPU, eager against CUDA graphs: {data['model']}, every sequence "
                      f"at {data['context_len']} tokens of context", kind="numbers", command=command, date=date[:10],
                time=date, machine=machine, versions=versions, setup=setup, values=values)


def read(name: str = NAME) -> dict | None:
    """The measurement as its readers draw it, or None before it is made: the setup, one row per
    batch size ({"batch_size", "graph_batch_size", "eager": {...}, "graph": {...}}), and where it
    came from."""
    if name not in measurements.names():
        return None
    data = measurements.load(name)
    rows = {}
    for entry in data["values"].values():
        row = rows.setdefault(entry["batch_size"], {"batch_size": entry["batch_size"], "graph_batch_size": entry["graph_batch_size"]})
        row[entry["mode"]] = entry
    return dict(data["setup"], steps=[rows[b] for b in sorted(rows)], machine=data["machine"], versions=data["versions"],
                date=data["date"], command=data["command"], file=f"measurements/{name}.json")


@torch.inference_mode()
def measure(batch_sizes: list[int]) -> dict:
    model = build(batch_sizes)
    graphs = DecodeGraphs(model, max(batch_sizes), CONTEXT_LEN, BLOCK_SIZE)
    results = []
    for B in batch_sizes:
        input_ids, positions, context = decode_inputs(B, model.config.vocab_size, "cuda")
        eager = lambda: eager_step(model, input_ids, positions, context)  # noqa: E731
        graph = lambda: graph_step(graphs, input_ids, positions, context)  # noqa: E731
        # The check before the timing: a replay computes what the eager step computes.
        want, got = eager().float(), graph().float()
        err = ((want - got).abs().max() / want.abs().max()).item()
        if not err <= 1e-2:
            raise AssertionError(f"batch {B}: the graph's hidden states differ from the eager step's by {err:.3g} "
                                 "of their largest value")
        row = {"batch_size": B, "graph_batch_size": next(b for b in graphs.batch_sizes if b >= B)}
        for mode, step in (("eager", eager), ("graph", graph)):
            host_us, step_us = host_and_wall_us(step, torch.cuda.synchronize)
            row[mode] = {"host_us": round(host_us, 1), "step_us": round(step_us, 1), **profile_step(step)}
        results.append(row)
        print(f"B={B:4d}  eager: {row['eager']['kernels']} kernels, host {row['eager']['host_us']:.0f} us, "
              f"GPU {row['eager']['gpu_us']:.0f} us, step {row['eager']['step_us']:.0f} us | graph: host "
              f"{row['graph']['host_us']:.0f} us, GPU {row['graph']['gpu_us']:.0f} us, step {row['graph']['step_us']:.0f} us")
    return {"model": "Qwen3-0.6B architecture, random bf16 weights", "context_len": CONTEXT_LEN,
            "kvcache_block_size": BLOCK_SIZE, "steps": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the JSON goes (default {OUT})")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=BATCH_SIZES)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("ch09.measure_gpu needs a CUDA GPU (eager launches against CUDA graphs); none is visible", file=sys.stderr)
        return 2
    data = measure(args.batch_sizes)
    command = ("python -m ch09.measure_gpu " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(as_measurement(data, *environment(), command, date), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
