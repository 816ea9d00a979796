"""python -m ch11.gpu [--out measurements/ch11_gpu.json] [--repeats 3] [--only nanovllm,transformers,roofline]: the GPU picture.

One command, on one GPU, writing one `bench` measurement (measurements/README.md: machine,
versions, date, command, and per configuration its runs' tokens/s and their median):

  nanovllm_final   `python -m nanovllm_final.bench` with a bf16 and with an FP8 KV cache, each
                   --repeats times, one process per run (a fresh engine each time), written as
                   nanovllm_final.bench --out writes them (entries "bf16" and "fp8": tokens/s,
                   TTFT and TPOT), with each run's device copy GB/s
  transformers     its own continuous batching (model.init_continuous_batching: a paged cache and a
                   scheduler of its own) on the same requests (nano-vllm's workload, --hf-scale of
                   it), each request's max_new_tokens its own and EOS ignored, temperature 0.6
                   (entry "transformers (continuous batching)", or "transformers_error" when its
                   API refused)
  roofline         the workload's bound (roofline.py) on the H200's datasheet numbers and on the
                   copy bandwidth this machine measured, for both KV dtypes: computed, not
                   measured, so it sits beside "values" under "roofline"

Each part is written to the file as soon as it is done; --only reruns some parts of an existing
file and keeps the others ("parts" says which command made each). The model is Qwen3-0.6B's
architecture with random bf16 weights (throughput does not depend on their values), as nano-vllm's
own benchmark uses.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

from ch01.config import ModelConfig
from ch05.roofline import H200, Roofline
from ch11.compare import machine, measurement, provenance, write_result
from ch11.roofline import workload_bound
from ch11.workload import nano_vllm_workload
from course.paths import REPO_ROOT
from nanovllm_final.bench import QWEN3_0_6B
from nanovllm_final.bench import measurement as bench_measurement

KV_DTYPES = {"bf16": ("auto", torch.bfloat16), "fp8": ("fp8", torch.float8_e4m3fn)}


def nanovllm_runs(repeats: int) -> dict:
    """nanovllm_final.bench in a fresh process per run, for each KV dtype -> the `values` entries
    "bf16" and "fp8" as nanovllm_final.bench.measurement makes them, each with its runs' copy GB/s."""
    runs = []
    for flag, _ in KV_DTYPES.values():
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "bench.json"
                subprocess.run([sys.executable, "-m", "nanovllm_final.bench", "--kv-cache-dtype", flag, "--json", str(path)],
                               cwd=REPO_ROOT, check=True)
                runs.append(json.loads(path.read_text()))
    values = bench_measurement(runs, runs[0]["command"])["values"]
    for kv, entry in values.items():
        entry["copy_gb_per_s"] = [round(r["copy_gb_per_s"]) for r in runs if r["kv_cache"] == kv and r.get("copy_gb_per_s")]
        entry["output_tokens"] = runs[0]["output_tokens"]
    return values


def transformers_run(scale: float) -> dict:
    """transformers' continuous batching on the workload (scaled by `scale`), bf16 on the GPU."""
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    work = nano_vllm_workload(scale)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(dict(QWEN3_0_6B, model_type="qwen3")))
        config = AutoConfig.from_pretrained(folder)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    generation = GenerationConfig(do_sample=True, temperature=work.temperature, top_k=0, top_p=1.0, eos_token_id=-1,
                                  pad_token_id=0, max_new_tokens=max(work.output_lens))
    manager = model.init_continuous_batching(generation_config=generation)
    manager.start()
    try:
        collect(manager, [work.prompts[0][:8]], [4])  # warm-up
        start = time.perf_counter()
        produced = collect(manager, work.prompts, work.output_lens)
        seconds = time.perf_counter() - start
    finally:
        manager.stop(block=True)
    if produced != work.num_output_tokens:
        raise RuntimeError(f"transformers produced {produced} output tokens, the workload asks for {work.num_output_tokens}")
    rate = round(produced / seconds)
    return dict(tokens_per_s=[rate], median=rate, workload=work.describe(), output_tokens=produced, seconds=seconds,
                attn_implementation=getattr(model.config, "_attn_implementation", None))


def collect(manager, prompts, output_lens) -> int:
    """Queue every request at once, wait for all; -> output tokens produced."""
    ids = {manager.add_request(p, max_new_tokens=n, eos_token_id=-1) for p, n in zip(prompts, output_lens)}
    done = {}
    while len(done) < len(ids):
        result = manager.get_result(timeout=1)
        if result is not None and result.is_finished():
            done[result.request_id] = len(result.generated_tokens)
        elif result is None and not manager.is_running():
            raise RuntimeError("transformers' continuous batching thread stopped")
    return sum(done.values())


def roofline_bounds(copy_gb_per_s: float | None) -> dict:
    work = nano_vllm_workload()
    config = ModelConfig.from_dict(QWEN3_0_6B)
    machines = [H200]
    if copy_gb_per_s:
        machines.append(Roofline("this GPU, measured copy", H200.peak_flops, copy_gb_per_s * 1e9,
                                 "a device-to-device copy (read + write counted), best of 20, by nanovllm_final.bench"))
    out = {}
    for m in machines:
        for name, (_, kv_dtype) in KV_DTYPES.items():
            bound = workload_bound(config, [len(p) for p in work.prompts], work.output_lens, m, kv_dtype=kv_dtype)
            out[f"{name}, {m.name}"] = dict(bound, kv_cache_dtype=name, bandwidth=m.bandwidth, peak_flops=m.peak_flops,
                                            source=m.source)
    return out


TRANSFORMERS = "transformers (continuous batching)"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ch11.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="measurements/ch11_gpu.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf-scale", default="1", help="of nano-vllm's workload for transformers (1: all 256 requests)")
    parser.add_argument("--only", default="nanovllm,transformers,roofline")
    args = parser.parse_args(argv)
    path = Path(args.out)
    parts = args.only.split(",")
    unknown = sorted(set(parts) - {"nanovllm", "transformers", "roofline"})
    if unknown:
        parser.error(f"--only {unknown} is no part; choose from nanovllm, transformers, roofline")
    made = provenance("ch11.gpu", argv, threads=False)
    kept = json.loads(path.read_text()) if path.is_file() else {}
    title = ("nano-vllm's benchmark on one GPU: nanovllm_final with a bf16 and an FP8 KV cache, and transformers' "
             "continuous batching; Qwen3-0.6B's architecture, random bf16 weights")
    result = measurement(title, "bench", made, machine(), dict(kept.get("values", {})), workload="nano-vllm's benchmark",
                         # Chapter 11's page and notebook quote it; the README's table shows bench_<gpu>.json,
                         # and transformers' row here may run a scaled-down workload (--hf-scale).
                         readme=False,
                         # Which command made each part: --only reruns some parts and keeps the others' provenance.
                         parts=dict(kept.get("parts", {}), **{part: made for part in parts}),
                         **{k: kept[k] for k in ("roofline", "transformers_error") if k in kept})

    def save():
        write_result(path, result)

    if "nanovllm" in parts:
        result["values"].update(nanovllm_runs(args.repeats))
        save()
    if "transformers" in parts:
        result["values"].pop(TRANSFORMERS, None)
        result.pop("transformers_error", None)
        try:
            result["values"][TRANSFORMERS] = transformers_run(float(Fraction(args.hf_scale)))
        except Exception as err:  # noqa: BLE001 - an API that moved between versions is a result to report, not a crash
            result["transformers_error"] = f"{type(err).__name__}: {err}"
        save()
    if "roofline" in parts:
        copies = [c for entry in result["values"].values() for c in entry.get("copy_gb_per_s", [])]
        result["roofline"] = roofline_bounds(max(copies) if copies else None)
        save()
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1)[:4000])
    return result


if __name__ == "__main__":
    main()
