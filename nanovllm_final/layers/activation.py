"""SwiGLU's gate: silu(gate) * up, with gate and up packed side by side in the last dim."""

import torch
import torch.nn.functional as F
from torch import nn


class SiluAndMul(nn.Module):
    def forward(self, gate_up: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up.chunk(2, dim=-1)  # (T, F) each
        return F.silu(gate) * up
