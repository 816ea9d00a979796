"""Check, then time, every kernel against its torch reference at the engine's real shapes.

    python -m tools.bench_kernels            # on a GPU; --json out.json to save
    python -m tools.tune_kernels             # tile configurations (sweeps)

Shapes are Qwen3-0.6B's (16 query heads, 8 KV heads, head_dim 128, hidden 1024, bf16) with the
engine's KV block size 256. Decode attention and the KV store are memory-bound, so they are
reported in GB/s: the fewest bytes the kernel must move (each cached K/V byte read once, each
output written once) over its median time. Compare with the device-to-device copy measured at
the top. Every timing is preceded by a check against the reference.

Kernel times are medians of calls replayed from a CUDA graph (how the engine runs decode), with
the eager time beside them; reference times are eager. The input builders here are also used by
the kernel tests.
"""

import argparse
import json
import math
import random

import torch

from nanovllm_final.kernels import reference

QWEN3_06B = dict(num_heads=16, num_kv_heads=8, head_dim=128, hidden=1024)


def make_paged_kv(context_lens, num_kv_heads, head_dim, block_size, dtype, device, fp8=False,
                  extra_blocks=1, seed=0, v_key_major=None, k_head_major=None):
    """A random paged cache holding len(context_lens) sequences, scattered over shuffled blocks.

    Returns dict(k_cache, v_cache, k_scale, v_scale, block_tables, context_lens); block_tables
    has `extra_blocks` more columns than the longest sequence needs, padded with -1. V is stored
    key-major (reference.key_major) when v_key_major and K head-major (reference.head_major) when
    k_head_major, each by default for FP8 as the engine does.
    """
    g = torch.Generator(device=device).manual_seed(seed)
    blocks_per_seq = [math.ceil(c / block_size) for c in context_lens]
    num_blocks = sum(blocks_per_seq) + 1
    shape = (num_blocks, block_size, num_kv_heads, head_dim)
    k = torch.randn(shape, generator=g, device=device)
    v = torch.randn(shape, generator=g, device=device)
    k_scale = v_scale = None
    if fp8:  # per-head scales from the whole cache, as the engine takes them from its first tokens
        k_scale, v_scale = reference.fp8_scales(k), reference.fp8_scales(v)
        k, v = reference.quantize_fp8(k, k_scale), reference.quantize_fp8(v, v_scale)
    else:
        k, v = k.to(dtype), v.to(dtype)
    order = torch.randperm(num_blocks, generator=torch.Generator().manual_seed(seed)).tolist()
    width = max(blocks_per_seq) + extra_blocks
    block_tables = torch.full((len(context_lens), width), -1, dtype=torch.int32)
    for i, n in enumerate(blocks_per_seq):
        block_tables[i, :n] = torch.tensor(order[:n], dtype=torch.int32)
        order = order[n:]
    if fp8 if v_key_major is None else v_key_major:
        v = reference.key_major(v)
    if fp8 if k_head_major is None else k_head_major:
        k = reference.head_major(k)
    return dict(k_cache=k, v_cache=v, k_scale=k_scale, v_scale=v_scale,
                block_tables=block_tables.to(device),
                context_lens=torch.tensor(context_lens, dtype=torch.int32, device=device))


def rel_err(out, ref):
    """||out - ref|| / ||ref|| in float64; NaN anywhere fails."""
    out, ref = out.double(), ref.double()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def _bench(fn):
    from triton.testing import do_bench
    return do_bench(fn, warmup=25, rep=200, return_mode="median")  # ms


def _row(rows, name, ms, nbytes=None, ref_ms=None, err=None, eager_ms=None):
    gbps = nbytes / ms / 1e6 if nbytes else None
    rows.append(dict(name=name, ms=ms, gbps=gbps, ref_ms=ref_ms, err=err, eager_ms=eager_ms))
    print(f"{name:<58} {ms * 1e3:9.1f} us" + (f" {gbps:8.0f} GB/s" if gbps else " " * 14)
          + (f"  eager {eager_ms * 1e3:7.1f} us" if eager_ms else "")
          + (f"  ref {ref_ms * 1e3:9.1f} us ({ref_ms / ms:5.1f}x)" if ref_ms else "")
          + (f"  err {err:.1e}" if err is not None else ""), flush=True)


def bench_copy(rows, device):
    x = torch.empty(2 * 1024**3 // 2, dtype=torch.bfloat16, device=device).normal_()
    y = torch.empty_like(x)
    _row(rows, "device copy 2 GiB (read + write)", _bench(lambda: y.copy_(x)), 2 * x.nbytes)


def bench_store(rows, device, kernels):
    Hkv, d = QWEN3_06B["num_kv_heads"], QWEN3_06B["head_dim"]
    for n, fp8 in [(256, False), (256, True), (16384, False), (16384, True)]:
        num_blocks, block_size = 2 * n // 256 + 2, 256
        cache_dtype = reference.FP8_DTYPE if fp8 else torch.bfloat16
        caches = [torch.zeros(num_blocks, block_size, Hkv, d, dtype=cache_dtype, device=device) for _ in range(4)]
        key, value = (torch.randn(n, Hkv, d, device=device, dtype=torch.bfloat16) for _ in range(2))
        scales = [reference.fp8_scales(x) for x in (key, value)] * 2 if fp8 else [None] * 4
        slots = torch.randperm(num_blocks * block_size, device=device)[:n]
        slots[::7] = -1
        kernels.store_kvcache(key, value, caches[0], caches[1], slots, scales[0], scales[1])
        reference.store_kvcache(key, value, caches[2], caches[3], slots, scales[2], scales[3])
        err = rel_err(caches[0].float(), caches[2].float())  # fp8: codes equal up to round-half ties
        assert err < 1e-2, err
        kept = int((slots >= 0).sum())
        nbytes = 2 * kept * Hkv * d * (2 + caches[0].element_size())
        store = lambda: kernels.store_kvcache(key, value, caches[0], caches[1], slots, scales[0], scales[1])  # noqa: E731
        ref_ms = _bench(lambda: reference.store_kvcache(key, value, caches[2], caches[3], slots, scales[2], scales[3]))
        _row(rows, f"store_kvcache N={n} {'fp8' if fp8 else 'bf16'}", _bench_graph([store]), nbytes, ref_ms, err,
             _bench(store))


def decode_inputs(batch, context_lens, fp8, device, copies=1):
    """`copies` independent input sets, so that timing cycles through more memory than the L2 holds."""
    H, Hkv, d = QWEN3_06B["num_heads"], QWEN3_06B["num_kv_heads"], QWEN3_06B["head_dim"]
    sets = []
    for seed in range(copies):
        kv = make_paged_kv(context_lens, Hkv, d, 256, torch.bfloat16, device, fp8=fp8, seed=seed)
        q = torch.randn(batch, H, d, dtype=torch.bfloat16, device=device)
        sets.append((q, kv["k_cache"], kv["v_cache"], kv["block_tables"], kv["context_lens"], d ** -0.5,
                     kv["k_scale"], kv["v_scale"]))
    nbytes = sum(context_lens) * Hkv * d * 2 * (1 if fp8 else 2) + 2 * sets[0][0].nbytes
    return sets, nbytes


def _bench_graph(fns, calls=20):
    """Median time of one call when the calls run from a CUDA graph, as the engine's decode does
    (no launch overhead); fns cycle through different inputs so the L2 cache cannot hold them."""
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        for fn in fns:
            fn()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(calls):
                fns[i % len(fns)]()
        torch.cuda.synchronize()
        times = []
        for _ in range(20):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / calls)
    return sorted(times)[len(times) // 2]


def decode_cases():
    rng = random.Random(0)
    return [("B=256 ctx U[100,2048] (bench mid-run)", 256, [rng.randint(100, 2048) for _ in range(256)]),
            ("B=256 ctx 1024", 256, [1024] * 256),
            ("B=64 ctx 2048", 64, [2048] * 64),
            ("B=8 ctx 4096", 8, [4096] * 8),
            ("B=1 ctx 8192", 1, [8192])]


def bench_decode(rows, device, kernels):
    for fp8 in (False, True):
        for i, (name, batch, lens) in enumerate(decode_cases()):
            sets, nbytes = decode_inputs(batch, lens, fp8, device, copies=max(1, math.ceil(200e6 / (len(lens) * max(lens) * 4096))))
            args = sets[0]
            err = rel_err(kernels.paged_attention_decode(*args), reference.paged_attention_decode(*args))
            assert err < 2e-2, (name, err)
            ref_ms = _bench(lambda: reference.paged_attention_decode(*args)) if batch <= 64 or not fp8 else None
            eager_ms = _bench(lambda: kernels.paged_attention_decode(*args))
            ms = _bench_graph([lambda a=a: kernels.paged_attention_decode(*a) for a in sets])
            _row(rows, f"decode {'fp8 ' if fp8 else 'bf16'} {name}", ms, nbytes, ref_ms, err, eager_ms)
            if i == 0:  # what this costs per engine step: Qwen3-0.6B has 28 layers
                print(f"  -> 28 layers: {28 * ms:.2f} ms per decode step of 256 sequences; attention "
                      f"alone caps decode at {256 / (28 * ms) * 1e3:,.0f} tok/s")


def bench_sdpa(rows, device):
    """What torch's own fused attention does on the same work as '8 prompts x 1024' (dense KV)."""
    import torch.nn.functional as F
    H, Hkv, d = QWEN3_06B["num_heads"], QWEN3_06B["num_kv_heads"], QWEN3_06B["head_dim"]
    q = torch.randn(8, H, 1024, d, dtype=torch.bfloat16, device=device)
    k, v = (torch.randn(8, Hkv, 1024, d, dtype=torch.bfloat16, device=device) for _ in range(2))
    ms = _bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
    flops = 8 * 4 * 1024 * 512 * H * d
    _row(rows, f"torch SDPA causal 8 x 1024 dense ({flops / ms / 1e9:.0f} TFLOP/s)", ms)


def bench_prefill(rows, device, kernels):
    H, Hkv, d = QWEN3_06B["num_heads"], QWEN3_06B["num_kv_heads"], QWEN3_06B["head_dim"]
    scale = d ** -0.5
    cases = [("8 prompts x 1024", [1024] * 8, [1024] * 8),
             ("chunk 512 after 1536 cached, x4", [2048] * 4, [512] * 4),
             ("mixed: 2 x 1000 prefill + 254 decodes", [1000, 1000] + [900] * 254, [1000, 1000] + [1] * 254)]
    for fp8 in (False, True):
        for name, lens, qlens in cases:
            kv = make_paged_kv(lens, Hkv, d, 256, torch.bfloat16, device, fp8=fp8)
            cu = torch.tensor([0] + qlens, device=device).cumsum(0).to(torch.int32)
            q = torch.randn(sum(qlens), H, d, dtype=torch.bfloat16, device=device)
            args = (q, kv["k_cache"], kv["v_cache"], cu, kv["context_lens"], kv["block_tables"], scale,
                    kv["k_scale"], kv["v_scale"])
            err = rel_err(kernels.paged_attention_prefill(*args), reference.paged_attention_prefill(*args))
            assert err < 2e-2, (name, err)
            flops = sum(4 * ql * (c - ql / 2) * H * d for c, ql in zip(lens, qlens))  # causal half
            ms = _bench(lambda: kernels.paged_attention_prefill(*args))
            ref_ms = _bench(lambda: reference.paged_attention_prefill(*args)) if not fp8 else None
            _row(rows, f"prefill {'fp8 ' if fp8 else 'bf16'} {name} ({flops / ms / 1e9:.0f} TFLOP/s)", ms, None, ref_ms, err)


def bench_rmsnorm(rows, device, kernels):
    hidden = QWEN3_06B["hidden"]
    for n in (256, 16384):
        x, r = (torch.randn(n, hidden, dtype=torch.bfloat16, device=device) for _ in range(2))
        w = torch.randn(hidden, dtype=torch.bfloat16, device=device)
        out, summed = kernels.fused_add_rms_norm(x, r, w, 1e-6)
        ref, ref_summed = reference.fused_add_rms_norm(x, r, w, 1e-6)
        err = max(rel_err(out, ref), rel_err(summed, ref_summed))
        assert err < 1e-2, err
        fused = lambda: kernels.fused_add_rms_norm(x, r, w, 1e-6)  # noqa: E731
        _row(rows, f"fused_add_rms_norm {n}x{hidden}", _bench_graph([fused]), 4 * x.nbytes,
             _bench(lambda: reference.fused_add_rms_norm(x, r, w, 1e-6)), err, _bench(fused))
        err = rel_err(kernels.rms_norm(x, w, 1e-6), reference.rms_norm(x, w, 1e-6))
        plain = lambda: kernels.rms_norm(x, w, 1e-6)  # noqa: E731
        _row(rows, f"rms_norm {n}x{hidden}", _bench_graph([plain]), 2 * x.nbytes,
             _bench(lambda: reference.rms_norm(x, w, 1e-6)), err, _bench(plain))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every row to this file")
    parser.add_argument("--only", default="copy,store,decode,prefill,sdpa,rmsnorm", help="comma-separated")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("the kernel benchmark needs a CUDA GPU (tests/final/test_kernels.py checks them on a CPU)")
    import triton

    from nanovllm_final import kernels
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | triton {triton.__version__}")
    rows = []
    torch.manual_seed(0)
    benches = dict(copy=lambda: bench_copy(rows, device), store=lambda: bench_store(rows, device, kernels),
                   decode=lambda: bench_decode(rows, device, kernels),
                   prefill=lambda: bench_prefill(rows, device, kernels), sdpa=lambda: bench_sdpa(rows, device),
                   rmsnorm=lambda: bench_rmsnorm(rows, device, kernels))
    for name in args.only.split(","):
        benches[name]()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
