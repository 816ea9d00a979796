"""The decoder layer with its second residual add fused into the norm after it.

Chapter 1's layer computes h = x + attention(...) and then rms_norm(h) as separate kernels;
here one call (kernels/rmsnorm.py) returns both, reading x and the attention's output once.
"""

import torch

from ch01 import model
from ch09.kernels import fused_add_rms_norm


class DecoderLayer(model.DecoderLayer):
    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        attn = self.self_attn(positions, self.input_layernorm(x))  # (T, D)
        norm = self.post_attention_layernorm
        normed, h = fused_add_rms_norm(attn, x, norm.weight, norm.eps)  # rms_norm(x + attn), x + attn
        return h + self.mlp(normed)
