"""Residual add fused with RMSNorm: between two sublayers, one pass over memory instead of several.

A decoder layer ends each sublayer with h = x + residual (the residual stream, chapter 1), and
the next sublayer starts with rms_norm(h). As torch ops that is an add, then RMSNorm's own
steps (square, mean, scale, weight), each a kernel that reads its input from GPU memory and
writes its output back. This kernel reads x and residual once and writes h and rms_norm(h) once.

Grid: (num_tokens,), one program per token row; the whole row of `hidden` numbers fits in one
program. The roundings are the model's: h in the input dtype, and the normalized row in the
input dtype before the weight multiplies it (chapter 1's rms_norm), so on float32 inputs the
kernel and its twin `fused_add_rms_norm_torch` agree up to the order of one sum.
"""

import torch
import triton

from ch01.layers import rms_norm
from ch09.solutions import fused_add_rms_norm_kernel  # exercise 9.3: the answer key


def launch_fused_add_rms_norm(kernel, x, residual, weight, eps) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `kernel` (fused_add_rms_norm_kernel, or a learner's) over x, residual (T, hidden)."""
    hidden = x.shape[-1]
    assert x.shape == residual.shape and x.dtype == residual.dtype and weight.shape == (hidden,)
    x, residual = x.contiguous(), residual.contiguous()
    out, residual_out = torch.empty_like(x), torch.empty_like(x)
    rows = x.numel() // hidden
    if rows:
        kernel[(rows,)](x, residual, weight, out, residual_out, hidden, eps, BLOCK=triton.next_power_of_2(hidden))
    return out, residual_out


def fused_add_rms_norm_torch(x, residual, weight, eps) -> tuple[torch.Tensor, torch.Tensor]:
    """The twin: the add, then chapter 1's rms_norm."""
    h = x + residual
    return rms_norm(h, weight, eps), h


def fused_add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                       eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x, residual (..., hidden) -> (rms_norm(x + residual) * weight, x + residual): the kernel on
    a GPU, its twin on a CPU."""
    if x.is_cuda:
        return launch_fused_add_rms_norm(fused_add_rms_norm_kernel, x, residual, weight, eps)
    return fused_add_rms_norm_torch(x, residual, weight, eps)
