"""Chapter 10's kernels on a GPU: the FP8 pool against the bf16 pool, for one layer of
Qwen3-0.6B's attention (16 query heads on 8 KV heads of 128), at a few batch sizes.

    python -m ch10.measure_gpu --out measurements/ch10_kernels_gpu.json    # needs a CUDA GPU

For each batch of B sequences of CONTEXT_LEN tokens it times chapter 9's decode kernel on a bf16
pool and chapter 10's on the same keys and values quantized to FP8 (median of 50 launches, CUDA
events), and the store of one token per sequence in each. It also records the bytes of the
pool each decode reads, so the time can be read as bandwidth. The numbers go into a
measurement file of kind `numbers` (measurements/README.md).
"""

import argparse
import statistics
import time

import torch

from ch09.kernels.attention import paged_decode_attention
from ch09.kernels.kvcache import store_kvcache
from ch09.tests.kernel_checks import _paged_case
from ch10 import fp8, solutions
from ch10.kernels import paged_decode_attention_fp8, store_kvcache_fp8
from ch11.compare import machine

BATCH_SIZES = [16, 64, 256]
CONTEXT_LEN, BLOCK_SIZE, HEADS, KV_HEADS, HEAD_DIM = 1024, 16, 16, 8, 128


def median_us(fn, repeats: int = 50) -> float:
    fn()  # compile
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1000)
    return statistics.median(times)


def measure(batch: int) -> dict:
    q, k, v, tables, lens = (t.cuda() for t in _paged_case(HEADS, KV_HEADS, HEAD_DIM, BLOCK_SIZE, [CONTEXT_LEN] * batch,
                                                           torch.bfloat16))
    k_scale, v_scale = fp8.fp8_scales(k.flatten(0, 1)), fp8.fp8_scales(v.flatten(0, 1))
    k8, v8 = solutions.quantize_fp8(k, k_scale), solutions.quantize_fp8(v, v_scale)
    scale = HEAD_DIM ** -0.5
    new_k, new_v = (torch.randn(batch, KV_HEADS, HEAD_DIM, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    slots = torch.arange(batch, device="cuda") * BLOCK_SIZE
    kv_bytes = 2 * batch * CONTEXT_LEN * KV_HEADS * HEAD_DIM  # K and V, one byte a number in FP8
    return {
        "decode_bf16_us": median_us(lambda: paged_decode_attention(q, k, v, tables, lens, scale)),
        "decode_fp8_us": median_us(lambda: paged_decode_attention_fp8(q, k8, v8, tables, lens, scale, k_scale, v_scale)),
        "store_bf16_us": median_us(lambda: store_kvcache(new_k, new_v, k, v, slots)),
        "store_fp8_us": median_us(lambda: store_kvcache_fp8(new_k, new_v, k8, v8, k_scale, v_scale, slots)),
        "kv_bytes_bf16": 2 * kv_bytes,
        "kv_bytes_fp8": kv_bytes,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="measurements/ch10_kernels_gpu.json")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("ch10.measure_gpu needs a CUDA GPU")
    values = {}
    for batch in BATCH_SIZES:
        for key, value in measure(batch).items():
            what = key.replace("_", " ")
            unit = "bytes" if key.startswith("kv_bytes") else "us"
            values[f"b{batch}_{key}"] = {"what": f"{what}, {batch} sequences of {CONTEXT_LEN} tokens, one layer",
                                         "value": round(value, 2) if unit == "us" else value, "unit": unit}
    info = machine()
    import json

    data = {
        "title": "Chapter 10's decode and store kernels, bf16 pool against FP8 pool, one layer of Qwen3-0.6B's attention",
        "kind": "numbers",
        "command": "python -m ch10.measure_gpu " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"gpu": info.get("device", "")},
        "versions": {k: info[k] for k in ("torch", "triton", "cuda", "python") if k in info},
        "values": values,
    }
    with open(args.out, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
    print(json.dumps(values, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
