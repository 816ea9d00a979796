"""Triton kernels: RMSNorm, and residual add + RMSNorm fused into one pass.

Spec: `reference.rms_norm` and `reference.fused_add_rms_norm`. Between two decoder layers the
engine needs h = x + residual (the new residual stream) and rms_norm(h). Done as torch ops this
is ~5 passes over memory (add, square, mean, multiply, multiply); the fused kernel reads x and
residual once and writes normed and h once. The math is float32, and the roundings happen where
Hugging Face's models put them (h rounded to the input dtype before it is normalized; the
normalized value rounded to the input dtype before the weight multiplies it), so the kernel and
the reference agree to the last bit but for the order of one sum.

Grid: (num_rows,) - one program per token row; the whole row (hidden <= 16K) sits in registers.
Also used for Qwen3's per-head q/k norm: there a "row" is one head's head_dim values.

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k rms` (GPU, real shapes)
"""

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

from .pdl import pdl


@triton.jit
def _rms_norm_kernel(
    x_ptr, residual_ptr, weight_ptr, out_ptr, summed_ptr,
    stride_x, stride_r, stride_o, stride_s, hidden, eps,
    BLOCK: tl.constexpr, ADD_RESIDUAL: tl.constexpr, PDL: tl.constexpr,
):
    if PDL:  # pdl.py: start while the kernel before finishes, wait for its output
        gdc_launch_dependents()
        gdc_wait()
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    mask = offs < hidden
    x = tl.load(x_ptr + row * stride_x + offs, mask=mask, other=0.0).to(tl.float32)
    if ADD_RESIDUAL:
        r = tl.load(residual_ptr + row * stride_r + offs, mask=mask, other=0.0).to(tl.float32)
        h = (x + r).to(summed_ptr.dtype.element_ty)  # the residual stream keeps the input dtype
        tl.store(summed_ptr + row * stride_s + offs, h, mask=mask)
        x = h.to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / hidden + eps)
    w = tl.load(weight_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    normed = (x * rstd).to(out_ptr.dtype.element_ty).to(tl.float32) * w
    tl.store(out_ptr + row * stride_o + offs, normed.to(out_ptr.dtype.element_ty), mask=mask)


def _rows(t, hidden):
    """View t as (rows, hidden) with unit stride inside a row (copy only if it must)."""
    t2 = t.reshape(-1, hidden)
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


def _launch(x, residual, weight, eps):
    hidden = x.shape[-1]
    assert weight.shape == (hidden,) and weight.is_contiguous()
    x2 = _rows(x, hidden)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    out2 = out.view(-1, hidden)
    if residual is None:
        r2 = summed = summed2 = x2  # unused pointers
    else:
        r2 = _rows(residual, hidden)
        summed = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        summed2 = summed.view(-1, hidden)
    rows = x2.shape[0]
    if rows > 0:
        block = triton.next_power_of_2(hidden)
        _rms_norm_kernel[(rows,)](
            x2, r2, weight, out2, summed2,
            x2.stride(0), r2.stride(0), out2.stride(0), summed2.stride(0), hidden, eps,
            BLOCK=block, ADD_RESIDUAL=residual is not None, PDL=pdl(x.device),
            num_warps=max(1, min(16, block // 256)), launch_pdl=pdl(x.device),
        )
    return out, summed


def rms_norm(x, weight, eps):
    return _launch(x, None, weight, eps)[0]


def fused_add_rms_norm(x, residual, weight, eps):
    assert residual.shape == x.shape and residual.dtype == x.dtype
    return _launch(x, residual, weight, eps)
