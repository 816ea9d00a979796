"""Where one CPU step of chapter 5's engine spends its time: torch's profiler on SmolLM2.

The step is the one chapter 5's "Why it matters" costs: 8 running sequences decoding (200 tokens
of context each) beside a chunk of a 256-token prompt. Each operator's own CPU time is put in one
of four parts: the GEMMs of the layers (q/k/v/o projections and the MLP), the attention of
chapters 2 and 3 (store, gather through the block table, attend), the LM head and sampling, and
everything else. Shares of one step, not seconds, are the result: on a machine shared with other
jobs the seconds move, the shares much less.

    python -m course.profile_step      # writes measurements/ch05_cpu_step_profile.json
"""

import argparse
import datetime
import json
import os
import platform
import sys
from collections import defaultdict

from course.paths import REPO_ROOT, default_model_path

OUT = REPO_ROOT / "measurements" / "ch05_cpu_step_profile.json"
COMMAND = "python -m course.profile_step"
NUM_DECODES, CONTEXT, PROMPT = 8, 200, 256
CHUNKS = (0, 16, 64)
GEMM_OPS = {"aten::mm", "aten::addmm", "aten::matmul", "aten::linear", "aten::bmm"}
PARTS = ("gemm", "attention_gather", "attention_other", "lm_head_and_sampling", "other")


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def labelled(fn, label):
    import torch

    def wrapper(*args, **kwargs):
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)
    return wrapper


def part_of(event) -> str:
    """Which part of the step an operator's own time belongs to, from the labels above it."""
    labels, parent = set(), event.cpu_parent
    while parent is not None:
        labels.add(parent.name)
        parent = parent.cpu_parent
    if "gather" in labels or event.name == "gather":
        return "attention_gather"
    if "attention" in labels or event.name == "attention":
        return "attention_other"
    if "lm_head_and_sampling" in labels or event.name == "lm_head_and_sampling":
        return "lm_head_and_sampling"
    return "gemm" if event.name in GEMM_OPS else "other"


def profile_step(llm, chunk: int, repeats: int) -> dict:
    """Shares of the step's CPU time by part, summed over `repeats` profiled runs, and the best wall time."""
    import torch

    from ch05 import roofline
    from ch04.sequence import Sequence

    def running(num_tokens, cached, scheduled):
        seq = Sequence(list(range(1, num_tokens + 1)))
        llm.scheduler.block_manager.allocate(seq)
        seq.num_cached_tokens, seq.num_scheduled_tokens = cached, scheduled
        return seq

    batch = [running(CONTEXT, CONTEXT - 1, 1) for _ in range(NUM_DECODES)]
    if chunk:
        batch.append(running(PROMPT, 0, chunk))
    run = lambda: llm.model_runner.run(batch)  # noqa: E731
    seconds = roofline.best_time(run, repeats=repeats)
    own = defaultdict(float)
    for _ in range(repeats):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            run()
        for event in prof.events():
            own[part_of(event)] += event.self_cpu_time_total
    for seq in batch:
        llm.scheduler.block_manager.deallocate(seq)
    total = sum(own.values())
    return {"decodes": NUM_DECODES, "context": CONTEXT, "prompt_chunk": chunk, "best_step_seconds": round(seconds, 4),
            "shares": {part: round(own[part] / total, 3) for part in PARTS}}


def measure(repeats: int = 3) -> dict:
    import torch

    import ch03.attention as paged
    import ch05

    torch.set_num_threads(1)
    llm = ch05.LLM(default_model_path(), max_num_seqs=16, max_model_len=1024, max_num_batched_tokens=1024)
    paged.gather_kv = labelled(paged.gather_kv, "gather")
    paged.Attention.forward = labelled(paged.Attention.forward, "attention")
    runner = type(llm.model_runner)
    runner.sample = labelled(runner.sample, "lm_head_and_sampling")
    llm.model_runner.model.compute_logits = labelled(llm.model_runner.model.compute_logits, "lm_head_and_sampling")
    steps = [profile_step(llm, chunk, repeats) for chunk in CHUNKS]
    return {
        "kind": "numbers",
        "values": as_values(steps),
        "title": "shares of one CPU step of chapter 5's engine (SmolLM2-135M, float32, one thread) by part, from "
                "torch.profiler's self CPU time; GEMMs are the layers' projections and MLP, attention is chapter 3's "
                "store + gather + chapter 2's attend, per sequence",
        "command": COMMAND,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "system": platform.system()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "model": "SmolLM2-135M-Instruct",
        "steps": steps,
    }


def as_values(steps: list[dict]) -> dict:
    """The steps as a `numbers` measurement's values (measurements/README.md): each part's share
    of each step, and each step's best time."""
    values = {}
    for step in steps:
        name = f"decodes{step['decodes']}_chunk{step['prompt_chunk']}"
        what = f"{step['decodes']} decodes of context {step['context']} and a prompt chunk of {step['prompt_chunk']}"
        values[f"{name}_seconds"] = {"what": f"{what}: the best step", "value": step["best_step_seconds"], "unit": "s"}
        for part, share in step["shares"].items():
            values[f"{name}_{part}"] = {"what": f"{what}: {part.replace('_', ' ')}", "value": share, "unit": "share"}
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="profiled runs per step (and timed runs for the best)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    data = measure(args.repeats)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=1) + "\n")
    for step in data["steps"]:
        print(f"{step['decodes']} decodes + a chunk of {step['prompt_chunk']:>3}: {step['best_step_seconds'] * 1e3:6.0f} ms, "
              + ", ".join(f"{k} {v:.0%}" for k, v in step["shares"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
