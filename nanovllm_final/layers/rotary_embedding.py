"""Rotary position embedding (RoPE) with a precomputed cos/sin table.

Pair i of each head (dims i and i + head_dim/2) is rotated by angle position * theta^(-2i/d):
q.k then depends only on the distance between two tokens. The table is built once for every
position up to max_position, in float32 as transformers computes it, and indexed per token.
Llama 3 and some long-context models scale the angles (`scaled_inv_freq`).

Qwen3 normalizes each head of q and k just before the rotation; passing its two RMSNorms here
does both in one pass over q and k (`kernels.qk_norm_rope`; `reference.apply_rope` is the math).
A decode step hands the same work to its attention kernel instead (`decode_args`).
"""

import math

import torch
from torch import nn

from nanovllm_final.kernels import qk_norm_rope
from nanovllm_final.layers.layernorm import RMSNorm


def scaled_inv_freq(inv_freq: torch.Tensor, scaling: dict) -> torch.Tensor:
    """Stretch RoPE's slow rotations so a model sees more positions than it was trained on.

    linear: every frequency / factor (positions are squeezed together).
    llama3: only the low frequencies (wavelength above original_len / low_freq_factor) are divided
    by factor; the high ones (below original_len / high_freq_factor) stay; in between the two are
    blended, smoothly in original_len / wavelength. The same arithmetic as transformers'.
    """
    factor = scaling["factor"]
    if scaling["rope_type"] == "linear":
        return inv_freq / factor
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    original_len = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > original_len / low, inv_freq / factor, inv_freq)
    smooth = (original_len / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < original_len / high) & ~(wavelen > original_len / low)
    return torch.where(medium, blended, scaled)


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, max_position: int, base: float, scaling: dict | None = None):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        if scaling is not None:
            inv_freq = scaled_inv_freq(inv_freq, scaling)
        freqs = torch.arange(max_position, dtype=torch.float32)[:, None] * inv_freq[None, :]  # (P, d/2)
        cache = torch.cat([freqs.cos(), freqs.sin()], dim=-1)[:, None, :]  # (P, 1, d): cos | sin
        self.register_buffer("cos_sin_cache", cache, persistent=False)

    def decode_args(self, positions: torch.Tensor, q_norm: RMSNorm | None = None,
                    k_norm: RMSNorm | None = None) -> tuple:
        """What a decode step's attention kernel needs to normalize and rotate q and the new k
        itself (kernels.paged_attention_decode's rope): no launch of its own for them."""
        if q_norm is None:
            return positions, self.cos_sin_cache, None, None, 0.0
        return positions, self.cos_sin_cache, q_norm.weight, k_norm.weight, q_norm.eps

    def forward(self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
                q_norm: RMSNorm | None = None, k_norm: RMSNorm | None = None):
        """q (N, H, d), k (N, Hkv, d) at positions (N,) -> rotated (q, k), normalized first when
        q_norm and k_norm are given. On the GPU q and k are updated in place."""
        if q_norm is None:
            return qk_norm_rope(q, k, positions, self.cos_sin_cache)
        return qk_norm_rope(q, k, positions, self.cos_sin_cache, q_norm.weight, k_norm.weight, q_norm.eps)
