"""SwiGLU's gate: silu(gate) * up, with gate and up packed side by side in the last dim.

One pass on the GPU (`kernels.silu_and_mul`); `reference.silu_and_mul` is the math.
"""

import torch
from torch import nn

from nanovllm_final.kernels import silu_and_mul


class SiluAndMul(nn.Module):
    def forward(self, gate_up: torch.Tensor) -> torch.Tensor:
        return silu_and_mul(gate_up)  # (T, 2F) -> (T, F)
