"""Tile-configuration sweeps behind the constants at the top of decode_attention.py and
prefill_attention.py: keys per tile, warps, pipeline stages, and decode's number of splits.

    python -m nanovllm_final.kernels.tune_kernels            # on a GPU; --json out.json to save

Each configuration is checked against the torch reference before it is timed (bench_kernels.py
has the timing helpers and the input builders). Results on an H100 that set today's defaults:
decode bf16 64 keys / 4 warps / 2 stages (2.87 TB/s; 128/4/3 within 1%), decode fp8 128/4/3
(334 us vs 408-577 us for the others), prefill 64 rows x 64 keys / 4 warps / 2 stages
(204 TFLOP/s); the automatic number of splits was within 3% of the best fixed one, except fp8
with 8 sequences (66 us vs 54 us with 4 splits).
"""

import argparse
import json
import math

import torch

from . import reference
from .bench_kernels import QWEN3_06B, _bench, _bench_graph, _row, decode_cases, decode_inputs, make_paged_kv, rel_err


def bench_decode_sweep(rows, device, splits=True, dtypes=(False, True)):
    """Tile shape x warps x pipeline stages on the big batch; number of splits on small ones."""
    from . import decode_attention as da
    names = ("BLOCK_N", "NUM_WARPS", "NUM_STAGES")
    cases = decode_cases()
    for fp8 in dtypes:
        prefix = "FP8_" if fp8 else ""
        default = [getattr(da, prefix + n) for n in names]
        large, maxnreg = da.FP8_LARGE_BLOCK_N, da.FP8_MAXNREG
        da.FP8_LARGE_BLOCK_N, da.FP8_MAXNREG = 0, None  # every batch takes the swept tile, uncapped
        sets, nbytes = decode_inputs(256, cases[0][2], fp8, device)
        ref = reference.paged_attention_decode(*sets[0])
        for dot in ((False, True) if fp8 else (False,)):  # fp8: codes to fp16, or an fp8 matmul
            da.FP8_DOT = dot
            for config in [(n, w, st) for n in (64, 128) for w in (4, 8) for st in ((2, 3) if fp8 else (1, 2, 3))]:
                for n, value in zip(names, config):
                    setattr(da, prefix + n, value)
                try:
                    err = rel_err(da.paged_attention_decode(*sets[0]), ref)
                    ms = _bench_graph([lambda: da.paged_attention_decode(*sets[0])])
                except Exception as e:  # noqa: BLE001 - a configuration the compiler refuses
                    print(f"sweep fp8_dot={dot} {config}: {type(e).__name__} {str(e)[:200]}")
                    continue
                _row(rows, f"sweep {'fp8' if fp8 else 'bf16'}{' fp8-dot' if dot else ''} B=256 "
                     f"N{config[0]} w{config[1]} s{config[2]}", ms, nbytes, None, err)
        da.FP8_DOT = False
        da.FP8_LARGE_BLOCK_N, da.FP8_MAXNREG = large, maxnreg
        for n, value in zip(names, default):
            setattr(da, prefix + n, value)
        for name, batch, lens in cases[2:] if splits else []:
            sets, nbytes = decode_inputs(batch, lens, fp8, device, copies=max(1, math.ceil(200e6 / (batch * max(lens) * 4096))))
            for splits in (None, 1, 2, 4, 8, 16, 32):
                ms = _bench_graph([lambda a=a: da.paged_attention_decode(*a, num_splits=splits) for a in sets])
                _row(rows, f"sweep {'fp8' if fp8 else 'bf16'} {name} splits={splits}", ms, nbytes)


def bench_prefill_sweep(rows, device):
    from . import prefill_attention as pa
    names = ("BLOCK_M", "BLOCK_N", "NUM_WARPS", "NUM_STAGES")
    default = [getattr(pa, n) for n in names]
    H, Hkv, d = QWEN3_06B["num_heads"], QWEN3_06B["num_kv_heads"], QWEN3_06B["head_dim"]
    kv = make_paged_kv([1024] * 8, Hkv, d, 256, torch.bfloat16, device)
    cu = torch.arange(0, 9 * 1024, 1024, device=device, dtype=torch.int32)
    q = torch.randn(8 * 1024, H, d, dtype=torch.bfloat16, device=device)
    args = (q, kv["k_cache"], kv["v_cache"], cu, kv["context_lens"], kv["block_tables"], d ** -0.5)
    ref = reference.paged_attention_prefill(*args)
    for config in [(m, n, w, st) for m in (64, 128) for n in (32, 64) for w in (4, 8) for st in (2, 3)]:
        for n, value in zip(names, config):
            setattr(pa, n, value)
        err = rel_err(pa.paged_attention_prefill(*args), ref)
        ms = _bench(lambda: pa.paged_attention_prefill(*args))
        _row(rows, f"sweep prefill 8x1024 M{config[0]} N{config[1]} w{config[2]} s{config[3]} "
             f"({8 * 4 * 1024 * 512 * H * d / ms / 1e9:.0f} TFLOP/s)", ms, None, None, err)
    for n, value in zip(names, default):
        setattr(pa, n, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every row to this file")
    parser.add_argument("--decode-only", action="store_true", help="no prefill sweep, no split sweep")
    parser.add_argument("--fp8-only", action="store_true", help="decode with an FP8 cache only")
    args = parser.parse_args()
    assert torch.cuda.is_available(), "the sweeps need a CUDA GPU"
    rows = []
    bench_decode_sweep(rows, torch.device("cuda"), splits=not args.decode_only,
                       dtypes=(True,) if args.fp8_only else (False, True))
    if not args.decode_only:
        bench_prefill_sweep(rows, torch.device("cuda"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
