"""The small layers every decoder block uses: RMSNorm, the rotary embedding, and SwiGLU's gate.

Plain torch, one function per idea. The modules at the bottom only hold weights and call the
functions, so a learner can test each function on its own (exercises 1.1 and 1.2).
"""

import torch
from torch import nn
import torch.nn.functional as F

from ch01.solutions import apply_rope, rms_norm  # exercises 1.1, 1.2: the answer key


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation angles of the rotary embedding for each position.

    Pair i of a head (dims i and i + head_dim/2) turns at frequency theta^(-2i/head_dim): fast
    for the first pairs, slow for the last. positions: (T,) -> cos, sin: (T, head_dim/2).
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim))
    angles = positions.float()[:, None] * inv_freq[None, :]  # (T, head_dim/2)
    return angles.cos(), angles.sin()


def silu_and_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """SwiGLU's gate: silu(gate) * up, with gate and up side by side in the last dim."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


class SiluAndMul(nn.Module):
    """silu_and_mul as a module (no weights), so that the MLP's activation is a swappable part."""

    def forward(self, gate_up: torch.Tensor) -> torch.Tensor:
        return silu_and_mul(gate_up)


class RotaryEmbedding(nn.Module):
    """Applies RoPE to q and k at the given positions (no weights: the angles are a formula)."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta

    def forward(self, positions, q, k):
        cos, sin = rope_cos_sin(positions, self.head_dim, self.theta)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin)
