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
"""

import argparse
import json

import math

import torch
import triton
import triton.language as tl

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


def graph_us(fns) -> float:
    return _bench_graph(fns, calls=8 * len(fns)) * 1e3


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    dtype, results = torch.bfloat16, {}
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__,
                           results=results), f, indent=1)
    return results


if __name__ == "__main__":
    main()
