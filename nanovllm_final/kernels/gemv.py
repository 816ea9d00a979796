"""Triton kernel: a linear layer for one token, y = x @ W^T + b with x of one row (a GEMV).

Spec: `reference.linear`. A decode step of one sequence multiplies a (1, K) activation by every
weight of the model: each product is a read of the weight, and its time is the weight's bytes
over the bandwidth the kernel reaches. cuBLAS reaches 0.7-1.8 TB/s on Qwen3-0.6B's products at
one row (H100, 3.35 TB/s peak), this kernel 1.1-2.0 TB/s, and 3.1 TB/s on the LM head
(measurements/gemv_h100.json): each program reads BLOCK_N whole rows of W, long BLOCK_K tiles at a
time, so that every SM keeps many bytes in flight. With `silu_mul`, x is the MLP's [gate | up]
(1, 2K) and the kernel reads silu(gate) * up as it loads x (rounded as `silu_and_mul` rounds):
the down projection without the SiLU kernel before it.

Two rows or more go to torch (cuBLAS), which is as fast or faster there.

Grid: (N / BLOCK_N,). fp32 accumulation; one rounding to the output dtype.

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k gemv` (GPU)
Speed: `python -m tools.bench_skinny` (GPU)
"""

import torch
import triton
import triton.language as tl

from . import activation, reference


@triton.jit
def _gemv_kernel(x_ptr, w_ptr, b_ptr, y_ptr, N, K: tl.constexpr, stride_wn, HAS_BIAS: tl.constexpr,
                 SILU_MUL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):  # K is a compile-time constant: a model has a handful of them
        offs_k = k0 + tl.arange(0, BLOCK_K)
        w = tl.load(w_ptr + offs_n[:, None].to(tl.int64) * stride_wn + offs_k[None, :],
                    mask=(offs_n[:, None] < N) & (offs_k[None, :] < K), other=0.0)  # (BLOCK_N, BLOCK_K)
        if SILU_MUL:
            gate = tl.load(x_ptr + offs_k, mask=offs_k < K, other=0.0).to(tl.float32)
            up = tl.load(x_ptr + K + offs_k, mask=offs_k < K, other=0.0).to(tl.float32)
            act = (gate / (1.0 + tl.exp(-gate))).to(w.dtype).to(tl.float32)
            x = (act * up).to(w.dtype)
        else:
            x = tl.load(x_ptr + offs_k, mask=offs_k < K, other=0.0)  # (BLOCK_K,)
        acc += tl.sum(w.to(tl.float32) * x.to(tl.float32)[None, :], axis=1)
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)
    tl.store(y_ptr + offs_n, acc.to(y_ptr.dtype.element_ty), mask=offs_n < N)


def tile(N: int, K: int) -> tuple[int, int, int, int]:
    """(BLOCK_N, BLOCK_K, num_warps, num_stages). Four rows per program keep every SM busy even at
    N = 1024; tiles of up to 2048 of K keep a program's loads long. The best of 36 tiles per
    product of Qwen3-0.6B on an H100 (tools.bench_skinny), as one rule."""
    block_k = min(2048, triton.next_power_of_2(K))
    return 4, block_k, 8 if K > 2048 else 4, 4 if K != 2048 and N < 65536 else 2


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, silu_mul: bool = False,
           out: torch.Tensor | None = None) -> torch.Tensor:
    """x (M, K) -> (M, N); with silu_mul, x (M, 2K) is [gate | up] and the product reads
    silu(gate) * up. One row: this kernel; more rows: torch. `out` takes the result in place."""
    if x.shape[0] != 1 or not weight.is_contiguous():
        return reference.linear(activation.silu_and_mul(x) if silu_mul else x, weight, bias, out=out)
    N, K = weight.shape
    x = x.contiguous()
    y = out if out is not None else torch.empty(1, N, dtype=x.dtype, device=x.device)
    block_n, block_k, num_warps, num_stages = tile(N, K)
    _gemv_kernel[(triton.cdiv(N, block_n),)](x, weight, bias if bias is not None else weight, y, N, K, weight.stride(0),
                                             HAS_BIAS=bias is not None, SILU_MUL=silu_mul, BLOCK_N=block_n,
                                             BLOCK_K=block_k, num_warps=num_warps, num_stages=num_stages)
    return y
