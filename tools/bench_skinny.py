"""The decode step's matrix products at a few sequences: cuBLAS against a Triton kernel for skinny M.

    python -m tools.bench_skinny            # on a GPU; --json out.json to save

A decode step of B sequences multiplies a (B, K) activation by each (N, K) weight: at B <= 8
the product is a read of the weight, and its time is the weight's bytes over the bandwidth the
kernel reaches. For Qwen3-0.6B's four products per layer (q/k/v packed, o, gate/up packed, down)
and its LM head, this times torch's matmul (cuBLAS) and a Triton kernel that reads each weight
tile once for all B rows (grid over N; a K loop; fp32 accumulation), over a few tile sizes, and
with the gate's SiLU and the product with up folded into the down projection's load (what
would remove the SiLU kernel from a decode step). Every time is a median over calls replayed from
a CUDA graph (as the engine runs decode; tools.bench_kernels' timing), cycling through copies of
the weight that together exceed the L2 cache, as a decode step's layers do; after a check
against torch. The engine's kernel for one row, chosen from these runs, is nanovllm_final/kernels/gemv.py.

    python -m tools.bench_skinny --tiled    # decode batches of 16-256 rows

--tiled times the same products at the batch sizes of a busy decode step against what could
replace cuBLAS there: a tiled Triton product on the tensor cores (tiled_kernel: tl.dot, launched
with PDL, each program asking the L2 cache for its slab of W before it waits; the down projection
reading silu(gate) * up as it loads x), the best of 28 tiles per product and batch; and cuBLAS
cut along K (split-K by torch.bmm, 2 or 4 pieces), alone and with the sum of the pieces that would
have to follow it. What they gave: docs/performance.md ("At large batches").
"""

import argparse
import json

import math

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

from tools.bench_kernels import _bench_graph

from nanovllm_final.kernels.activation import silu_and_mul

QWEN3_0_6B_LINEARS = {  # name: (N, K)
    "qkv_proj": (4096, 1024),
    "o_proj": (1024, 2048),
    "gate_up_proj": (6144, 1024),
    "down_proj": (1024, 3072),
    "lm_head": (151936, 1024),
}


@triton.jit
def skinny_kernel(x_ptr, w_ptr, y_ptr, M, N, K: tl.constexpr, stride_xm, stride_wn, stride_ym,
                  SILU_MUL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """y (M, N) = x (M, K) @ w (N, K)^T for M <= BLOCK_M; with SILU_MUL, x is [gate | up] (M, 2K)
    and the product reads silu(gate) * up, rounded as the unfused kernels round."""
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):  # K is a compile-time constant: a model has a handful of them
        offs_k = k0 + tl.arange(0, BLOCK_K)
        w = tl.load(w_ptr + offs_n[:, None] * stride_wn + offs_k[None, :],
                    mask=(offs_n[:, None] < N) & (offs_k[None, :] < K), other=0.0)  # (BN, BK)
        x_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        x_at = x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :]
        if SILU_MUL:
            gate = tl.load(x_at, mask=x_mask, other=0.0).to(tl.float32)
            up = tl.load(x_at + K, mask=x_mask, other=0.0).to(tl.float32)
            act = (gate / (1.0 + tl.exp(-gate))).to(w.dtype).to(tl.float32)
            x = (act * up).to(w.dtype)
        else:
            x = tl.load(x_at, mask=x_mask, other=0.0)  # (BM, BK)
        acc += tl.sum(x[:, None, :].to(tl.float32) * w[None, :, :].to(tl.float32), axis=2)
    tl.store(y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :], acc.to(y_ptr.dtype.element_ty),
             mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def skinny(x, w, block_n, block_k, num_warps, silu_mul=False, num_stages=3):
    M = x.shape[0]
    N, K = w.shape
    y = torch.empty(M, N, dtype=x.dtype, device=x.device)
    skinny_kernel[(triton.cdiv(N, block_n),)](x, w, y, M, N, K, x.stride(0), w.stride(0), y.stride(0), SILU_MUL=silu_mul,
                                              BLOCK_M=max(1, triton.next_power_of_2(M)), BLOCK_N=block_n, BLOCK_K=block_k,
                                              num_warps=num_warps, num_stages=num_stages)
    return y


# (BLOCK_N, BLOCK_K, warps, stages): few rows per program keep every SM busy at N = 1024; long K
# tiles and several stages keep more bytes of the weight in flight per SM.
CONFIGS = [(bn, bk, nw, ns) for bn in (4, 8, 16) for bk in (512, 1024, 2048) for nw in (4, 8) for ns in (2, 4)]


@triton.jit
def _prefetch_l2(ptr, nbytes):
    """One thread of the program asks the L2 cache for nbytes from ptr (Hopper's bulk prefetch)."""
    tl.inline_asm_elementwise(
        "{ .reg .pred p; .reg .u32 t; mov.u32 t, %tid.x; setp.eq.u32 p, t, 0; "
        "@p cp.async.bulk.prefetch.L2.global [$1], $2; mov.u32 $0, 0; }",
        "=r,l,r", [ptr, nbytes], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def tiled_kernel(x_ptr, w_ptr, y_ptr, M, N, K, stride_xm, stride_wn, stride_ym, SILU_MUL: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, NUM_STAGES: tl.constexpr,
                 PREFETCH: tl.constexpr, PDL: tl.constexpr):
    """y (M, N) = x (M, K) @ w (N, K)^T in (BLOCK_M, BLOCK_N) tiles, the M tiles fastest (the
    programs reading one slab of W run side by side); SILU_MUL as skinny_kernel."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    if PREFETCH:  # the program's rows of W (contiguous) into L2, before waiting for x
        rows = tl.minimum(BLOCK_N, N - pid_n * BLOCK_N)
        _prefetch_l2(w_ptr + pid_n * BLOCK_N * stride_wn, rows * stride_wn * 2)
    if PDL:
        gdc_launch_dependents()
        gdc_wait()
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    w_rows = w_ptr + offs_n[:, None].to(tl.int64) * stride_wn
    x_rows = x_ptr + offs_m[:, None].to(tl.int64) * stride_xm
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        w = tl.load(w_rows + offs_k[None, :], mask=(offs_n[:, None] < N) & (offs_k[None, :] < K), other=0.0)
        x_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        if SILU_MUL:
            gate = tl.load(x_rows + offs_k[None, :], mask=x_mask, other=0.0).to(tl.float32)
            up = tl.load(x_rows + K + offs_k[None, :], mask=x_mask, other=0.0).to(tl.float32)
            act = (gate / (1.0 + tl.exp(-gate))).to(w.dtype).to(tl.float32)
            x = (act * up).to(w.dtype)
        else:
            x = tl.load(x_rows + offs_k[None, :], mask=x_mask, other=0.0)
        acc = tl.dot(x, tl.trans(w), acc)
    tl.store(y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :], acc.to(y_ptr.dtype.element_ty),
             mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def tiled(x, w, config, silu_mul=False, prefetch=True, use_pdl=True):
    M = x.shape[0]
    N, K = w.shape
    block_m, block_n, block_k, num_warps, num_stages = config
    y = torch.empty(M, N, dtype=x.dtype, device=x.device)
    tiled_kernel[(triton.cdiv(M, block_m), triton.cdiv(N, block_n))](
        x, w, y, M, N, K, x.stride(0), w.stride(0), y.stride(0), SILU_MUL=silu_mul, BLOCK_M=block_m, BLOCK_N=block_n,
        BLOCK_K=block_k, NUM_STAGES=num_stages, PREFETCH=prefetch, PDL=use_pdl, num_warps=num_warps, launch_pdl=use_pdl)
    return y


# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages) for --tiled
TILED_CONFIGS = ([(bm, bn, bk, 4, st) for bm in (64, 128) for bn in (32, 64, 128) for bk in (64, 128) for st in (3, 4)]
                 + [(128, bn, 64, 8, st) for bn in (64, 128) for st in (3, 4)])


def tiled_main(batches, results: dict) -> None:
    """--tiled: cuBLAS, split-K cuBLAS and the tiled Triton kernel at decode batch sizes."""
    dtype = torch.bfloat16
    for name, (N, K) in QWEN3_0_6B_LINEARS.items():
        if name == "lm_head":
            continue
        silu = name == "down_proj"
        copies = max(2, math.ceil(200e6 / (N * K * 2)))
        weights = [torch.randn(N, K, dtype=dtype, device="cuda") * 0.02 for _ in range(copies)]
        for M in batches:
            x = torch.randn(M, 2 * K if silu else K, dtype=dtype, device="cuda")
            h = silu_and_mul(x) if silu else x
            want = torch.nn.functional.linear(h, weights[0]).float()
            row = dict(N=N, K=K, M=M, torch_us=round(graph_us(
                [lambda w=w: torch.nn.functional.linear(silu_and_mul(x) if silu else x, w) for w in weights]), 2))
            hx = h.contiguous()
            for pieces in (2, 4):  # cuBLAS on K / pieces columns at a time, as one batched product
                xs = hx.view(M, pieces, K // pieces).transpose(0, 1)
                wts = [w.view(N, pieces, K // pieces).permute(1, 2, 0) for w in weights]
                got = torch.bmm(xs, wts[0]).float().sum(0)
                assert ((got - want).abs().max() / want.abs().max()).item() < 2e-2
                row[f"split_k{pieces}_us"] = round(graph_us([lambda wt=wt: torch.bmm(xs, wt) for wt in wts]), 2)
                row[f"split_k{pieces}_sum_us"] = round(graph_us([lambda wt=wt: torch.bmm(xs, wt).sum(0) for wt in wts]), 2)
            best = None
            for config in TILED_CONFIGS:
                if config[0] > 64 and M <= 64:
                    continue
                try:
                    got = tiled(x, weights[0], config, silu).float()
                except Exception:  # noqa: BLE001 - a tile that does not fit in shared memory
                    continue
                assert ((got - want).abs().max() / want.abs().max()).item() < 2e-2, (name, M, config)
                us = graph_us([lambda w=w: tiled(x, w, config, silu) for w in weights])
                if best is None or us < best[0]:
                    best = (us, config)
            row.update(triton_us=round(best[0], 2), triton_config=best[1],
                       triton_no_prefetch_us=round(graph_us([lambda w=w: tiled(x, w, best[1], silu, prefetch=False)
                                                             for w in weights]), 2))
            key = f"{name} M={M}" + (" silu_mul" if silu else "")
            results[key] = row
            print(f"{key:28s} " + "  ".join(f"{k} {v}" for k, v in row.items() if k not in ("N", "K", "M")), flush=True)


def graph_us(fns) -> float:
    return _bench_graph(fns, calls=8 * len(fns)) * 1e3


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--json")
    parser.add_argument("--tiled", action="store_true", help="decode batches: cuBLAS, split-K, a tiled Triton product")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    dtype, results = torch.bfloat16, {}
    if args.tiled:
        tiled_main(args.batch if args.batch != [1, 4] else [16, 64, 128, 192, 256], results)
        return save(args, results)
    for name, (N, K) in QWEN3_0_6B_LINEARS.items():
        copies = max(2, math.ceil(200e6 / (N * K * 2)))  # together past the L2 cache (50 MB on an H100)
        weights = [torch.randn(N, K, dtype=dtype, device="cuda") * 0.02 for _ in range(copies)]
        w = weights[0]
        for M in args.batch:
            cases = [("plain", torch.randn(M, K, dtype=dtype, device="cuda"), False)]
            if name == "down_proj":
                cases.append(("silu_mul", torch.randn(M, 2 * K, dtype=dtype, device="cuda"), True))
            for kind, x, silu in cases:
                if silu:  # the engine's two kernels: its SiLU-and-multiply, then cuBLAS
                    h = silu_and_mul(x)
                    ref_fns = [lambda x=x, w=w: torch.nn.functional.linear(silu_and_mul(x), w) for w in weights]
                else:
                    h = x
                    ref_fns = [lambda x=x, w=w: torch.nn.functional.linear(x, w) for w in weights]
                want = torch.nn.functional.linear(h, w).float()
                cublas = graph_us(ref_fns)
                best = None
                for bn, bk, nw, ns in CONFIGS:
                    if bk > K:
                        continue
                    got = skinny(x, w, bn, bk, nw, silu, ns).float()
                    err = ((got - want).abs().max() / want.abs().max()).item()
                    if not err < 2e-2:
                        raise AssertionError(f"{name} M={M} {kind} {(bn, bk, nw)}: error {err:.3g}")
                    us = graph_us([lambda w=w: skinny(x, w, bn, bk, nw, silu, ns) for w in weights])
                    if best is None or us < best[0]:
                        best = (us, bn, bk, nw, ns)
                gb = N * K * 2 / 1e9
                key = f"{name} M={M} {kind}"
                results[key] = dict(N=N, K=K, M=M, torch_us=round(cublas, 2), triton_us=round(best[0], 2),
                                    triton_config=best[1:], torch_tb_s=round(gb / cublas * 1e6 / 1e3, 2),
                                    triton_tb_s=round(gb / best[0] * 1e6 / 1e3, 2))
                print(f"{key:32s} torch {cublas:7.2f} us ({gb / cublas * 1e3:5.2f} TB/s)   triton {best[0]:7.2f} us "
                      f"({gb / best[0] * 1e3:5.2f} TB/s) {best[1:]}", flush=True)
    return save(args, results)


def save(args, results: dict) -> dict:
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__,
                           results=results), f, indent=1)
    return results


if __name__ == "__main__":
    main()
