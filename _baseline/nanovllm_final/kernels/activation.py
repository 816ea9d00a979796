"""Triton kernel: SwiGLU's gate, silu(gate) * up, in one pass.

Spec: `reference.silu_and_mul`. The MLP's gate_up projection writes gate and up side by side
(N, 2F); torch needs two kernels for silu(gate) * up (silu writes a tensor, the product reads it
back), this one reads each row once and writes (N, F) once. The roundings are torch's: silu in
float32 rounded to the input dtype, then the product in float32 rounded again.

Grid: (rows, F / BLOCK).

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k silu` (GPU)
"""

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _silu_and_mul_kernel(x_ptr, out_ptr, stride_x, stride_o, F, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < F
    gate = tl.load(x_ptr + row * stride_x + offs, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(x_ptr + row * stride_x + F + offs, mask=mask, other=0.0).to(tl.float32)
    act = (gate / (1.0 + tl.exp(-gate))).to(out_ptr.dtype.element_ty).to(tl.float32)
    tl.store(out_ptr + row * stride_o + offs, (act * up).to(out_ptr.dtype.element_ty), mask=mask)


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    """x (..., 2F) = [gate | up] -> silu(gate) * up (..., F)."""
    F = x.shape[-1] // 2
    x2 = x.reshape(-1, 2 * F)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    out = torch.empty(*x.shape[:-1], F, dtype=x.dtype, device=x.device)
    rows = x2.shape[0]
    if rows > 0 and F > 0:
        block = min(BLOCK, triton.next_power_of_2(F))
        _silu_and_mul_kernel[(rows, triton.cdiv(F, block))](x2, out, x2.stride(0), F, F, BLOCK=block, num_warps=4)
    return out
