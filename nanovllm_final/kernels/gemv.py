"""Triton kernel: a linear layer for one token, y = x @ W^T + b with x of one row (a GEMV).

Spec: `reference.linear`. A decode step of one sequence multiplies a (1, K) activation by every
weight of the model: each product is a read of the weight, and its time is the weight's bytes
over the bandwidth the kernel reaches. cuBLAS reaches 0.7-1.8 TB/s on Qwen3-0.6B's products at
one row (H100, 3.35 TB/s peak), this kernel 1.1-2.0 TB/s, and 3.1 TB/s on the LM head
(measurements/gemv_h100.json): each program reads BLOCK_N whole rows of W, long BLOCK_K tiles at a
time, so that every SM keeps many bytes in flight. With `silu_mul`, x is the MLP's [gate | up]
(1, 2K) and the kernel reads silu(gate) * up as it loads x (rounded as `silu_and_mul` rounds):
the down projection without the SiLU kernel before it. `norm_linear` reads rms_norm(x + residual)
as it loads x, and its first program writes x + residual out: the RMSNorm before q/k/v and
before gate/up, without the norm's kernel (rounded as `fused_add_rms_norm` rounds; each program
first sums the squares of the whole row, which it reads from the L2 cache).

Two rows or more go to torch (cuBLAS), which is as fast or faster there, after the norm's kernel.

Grid: (N / BLOCK_N,). fp32 accumulation; one rounding to the output dtype.

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k gemv` (GPU)
Speed: `python -m tools.bench_skinny` (GPU)
"""

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

from . import activation, reference, rmsnorm
from .pdl import pdl


@triton.jit
def _load_summed(x_ptr, r_ptr, offs_k, K, ADD_RESIDUAL: tl.constexpr):
    """x (+ residual) at offs_k, rounded to x's dtype as the residual stream keeps it, in float32."""
    x = tl.load(x_ptr + offs_k, mask=offs_k < K, other=0.0)
    if ADD_RESIDUAL:
        x = (x.to(tl.float32) + tl.load(r_ptr + offs_k, mask=offs_k < K, other=0.0).to(tl.float32)).to(x.dtype)
    return x.to(tl.float32)


@triton.jit
def _gemv_kernel(x_ptr, w_ptr, b_ptr, y_ptr, r_ptr, g_ptr, h_ptr, eps, N, K: tl.constexpr, stride_wn,
                 HAS_BIAS: tl.constexpr, SILU_MUL: tl.constexpr, NORM: tl.constexpr, ADD_RESIDUAL: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PDL: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    w_rows = w_ptr + offs_n[:, None].to(tl.int64) * stride_wn
    offs_k = tl.arange(0, BLOCK_K)
    # The first tile of W: no earlier kernel writes it, so with PDL (pdl.py) it is read while the
    # kernel before this one (whose output is x) still runs.
    w = tl.load(w_rows + offs_k[None, :], mask=(offs_n[:, None] < N) & (offs_k[None, :] < K), other=0.0)
    if PDL:
        gdc_launch_dependents()  # the next kernel may start its own weight reads
        gdc_wait()  # x is the kernel before's output: wait for it
    if NORM:  # 1 / rms of h = x (+ residual) over the whole row, before the product reads it
        squares = tl.zeros((BLOCK_K,), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            h = _load_summed(x_ptr, r_ptr, k0 + offs_k, K, ADD_RESIDUAL)
            squares += h * h
        rstd = 1.0 / tl.sqrt(tl.sum(squares, axis=0) / K + eps)
    acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):  # K is a compile-time constant: a model has a handful of them
        offs_k = k0 + tl.arange(0, BLOCK_K)
        next_k = offs_k + BLOCK_K  # the next tile of W, read while this one is multiplied (none past K)
        w_next = tl.load(w_rows + next_k[None, :], mask=(offs_n[:, None] < N) & (next_k[None, :] < K), other=0.0)
        if SILU_MUL:
            gate = tl.load(x_ptr + offs_k, mask=offs_k < K, other=0.0).to(tl.float32)
            up = tl.load(x_ptr + K + offs_k, mask=offs_k < K, other=0.0).to(tl.float32)
            act = (gate / (1.0 + tl.exp(-gate))).to(w.dtype).to(tl.float32)
            x = (act * up).to(w.dtype)
        elif NORM:  # rms_norm's rounding: normalized in float32, cast, times the weight, cast again
            h = _load_summed(x_ptr, r_ptr, offs_k, K, ADD_RESIDUAL)
            if ADD_RESIDUAL:  # the new residual stream, written once, by the first program
                tl.store(h_ptr + offs_k, h.to(h_ptr.dtype.element_ty), mask=(offs_k < K) & (tl.program_id(0) == 0))
            g = tl.load(g_ptr + offs_k, mask=offs_k < K, other=0.0).to(tl.float32)
            x = ((h * rstd).to(w.dtype).to(tl.float32) * g).to(w.dtype)
        else:
            x = tl.load(x_ptr + offs_k, mask=offs_k < K, other=0.0)  # (BLOCK_K,)
        acc += tl.sum(w.to(tl.float32) * x.to(tl.float32)[None, :], axis=1)
        w = w_next
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)
    tl.store(y_ptr + offs_n, acc.to(y_ptr.dtype.element_ty), mask=offs_n < N)


def tile(N: int, K: int) -> tuple[int, int, int, int]:
    """(BLOCK_N, BLOCK_K, num_warps, num_stages). Four rows per program keep every SM busy even at
    N = 1024; tiles of up to 2048 of K keep a program's loads long. The best of 36 tiles per
    product of Qwen3-0.6B on an H100 (tools.bench_skinny), as one rule."""
    block_k = min(2048, triton.next_power_of_2(K))
    return 4, block_k, 8 if K > 2048 else 4, 4 if K != 2048 and N < 65536 else 2


def _launch(x, weight, bias, y, silu_mul=False, residual=None, norm_weight=None, eps=0.0, summed=None):
    N, K = weight.shape
    block_n, block_k, num_warps, num_stages = tile(N, K)
    _gemv_kernel[(triton.cdiv(N, block_n),)](
        x, weight, bias if bias is not None else weight, y, residual if residual is not None else x,
        norm_weight if norm_weight is not None else weight, summed if summed is not None else y, eps, N, K,
        weight.stride(0), HAS_BIAS=bias is not None, SILU_MUL=silu_mul, NORM=norm_weight is not None,
        ADD_RESIDUAL=residual is not None, BLOCK_N=block_n, BLOCK_K=block_k, PDL=pdl(x.device),
        num_warps=num_warps, num_stages=num_stages, launch_pdl=pdl(x.device))
    return y


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, silu_mul: bool = False,
           out: torch.Tensor | None = None) -> torch.Tensor:
    """x (M, K) -> (M, N); with silu_mul, x (M, 2K) is [gate | up] and the product reads
    silu(gate) * up. One row: this kernel; more rows: torch. `out` takes the result in place."""
    if x.shape[0] != 1 or not weight.is_contiguous():
        return reference.linear(activation.silu_and_mul(x) if silu_mul else x, weight, bias, out=out)
    y = out if out is not None else torch.empty(1, weight.shape[0], dtype=x.dtype, device=x.device)
    return _launch(x.contiguous(), weight, bias, y, silu_mul=silu_mul)


def norm_linear(x: torch.Tensor, residual: torch.Tensor | None, norm_weight: torch.Tensor, eps: float,
                weight: torch.Tensor, bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rms_norm(x + residual) @ W^T + b, x + residual); without a residual (rms_norm(x) @ W^T + b, x).
    One row: this kernel alone; more rows: the norm's kernel (rmsnorm.py), then torch's product."""
    if x.shape[0] != 1 or not weight.is_contiguous():
        if residual is None:
            normed, summed = rmsnorm.rms_norm(x, norm_weight, eps), x
        else:
            normed, summed = rmsnorm.fused_add_rms_norm(x, residual, norm_weight, eps)
        return reference.linear(normed, weight, bias), summed
    x = x.contiguous()
    y = torch.empty(1, weight.shape[0], dtype=x.dtype, device=x.device)
    if residual is None:
        return _launch(x, weight, bias, y, norm_weight=norm_weight, eps=eps), x
    summed = torch.empty_like(x)
    return _launch(x, weight, bias, y, residual=residual.contiguous(), norm_weight=norm_weight, eps=eps,
                   summed=summed), summed
