"""RMSNorm, with the residual add fused in when a residual is given (nano-vllm's pattern).

`x, residual = norm(x, residual)`: the previous block's output is added to the residual stream
and normalized in one pass, which saves a read and a write of the hidden states on the GPU. The
model's final norm runs this way; inside the decoder layers the norm goes one step further, into
the product that reads its output (ColumnParallelLinear.normed), and only its weight and eps are
read from here. The math lives in `nanovllm_final.kernels`.
"""

import torch
from torch import nn

from nanovllm_final.kernels import fused_add_rms_norm, rms_norm


class RMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size), requires_grad=False)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        if residual is None:
            return rms_norm(x, self.weight, self.eps)
        return fused_add_rms_norm(x, residual, self.weight, self.eps)  # (normed, x + residual)
