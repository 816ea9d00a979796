"""A decoder-only transformer (Qwen3, Qwen2 or Llama), read top to bottom.

    token ids -> embedding -> N x DecoderLayer -> RMSNorm -> LM head -> logits

    DecoderLayer:  h = x + SelfAttention(RMSNorm(x))      (mix information across tokens)
                   y = h + MLP(RMSNorm(h))                 (think about each token on its own)

Tokens are one flat tensor: `input_ids` (T,) with their `positions` (T,), hidden states (T, D).
Parameter names match the Hugging Face checkpoints (`model.layers.0.self_attn.q_proj.weight`), so
loading is a lookup by name.

The pieces later chapters replace are gathered in `Parts` and handed down by the constructor:
the attention core (chapters 2, 3, 9, 10), the norm, the decoder layer, the rotary embedding and
the MLP's activation (chapter 9), and the linear/embedding classes (chapter 8, tensor
parallelism). Everything else stays as written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ch01.attention import Attention
from ch01.config import ModelConfig
from ch01.layers import RMSNorm, RotaryEmbedding, SiluAndMul


class SelfAttention(nn.Module):
    def __init__(self, config: ModelConfig, parts: Parts):
        super().__init__()
        D, H, Hkv, d = config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.head_dim
        bias = config.attention_bias
        self.q_proj = parts.column_linear(D, H * d, bias)
        self.k_proj = parts.column_linear(D, Hkv * d, bias)
        self.v_proj = parts.column_linear(D, Hkv * d, bias)
        self.o_proj = parts.row_linear(H * d, D, False)
        if config.qk_norm:  # Qwen3: normalize each head of q and k, which keeps the logits tame
            self.q_norm = parts.norm(d, config.rms_norm_eps)
            self.k_norm = parts.norm(d, config.rms_norm_eps)
        self.qk_norm = config.qk_norm
        self.head_dim = d
        self.rotary_emb = parts.rotary_embedding(d, config.rope_theta)
        # With tensor parallelism a rank holds only some heads; the projections' sizes say how many.
        n_heads = self.q_proj.weight.shape[0] // d
        n_kv_heads = self.k_proj.weight.shape[0] // d
        self.attn = parts.attention(n_heads, d, d**-0.5, n_kv_heads)

    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[0]
        q = self.q_proj(x).view(T, -1, self.head_dim)  # (T, n_heads, head_dim)
        k = self.k_proj(x).view(T, -1, self.head_dim)  # (T, n_kv_heads, head_dim)
        v = self.v_proj(x).view(T, -1, self.head_dim)  # (T, n_kv_heads, head_dim)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self.rotary_emb(positions, q, k)
        o = self.attn(q, k, v)  # (T, n_heads, head_dim)
        return self.o_proj(o.reshape(T, -1))  # (T, D)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: ModelConfig, parts: Parts):
        super().__init__()
        D, F = config.hidden_size, config.intermediate_size
        self.gate_proj = parts.column_linear(D, F, False)
        self.up_proj = parts.column_linear(D, F, False)
        self.down_proj = parts.row_linear(F, D, False)
        self.act_fn = parts.activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = torch.cat([self.gate_proj(x), self.up_proj(x)], dim=-1)  # (T, 2F)
        return self.down_proj(self.act_fn(gate_up))


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, parts: Parts):
        super().__init__()
        self.input_layernorm = parts.norm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = SelfAttention(config, parts)
        self.post_attention_layernorm = parts.norm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config, parts)

    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = x + self.self_attn(positions, self.input_layernorm(x))
        return h + self.mlp(self.post_attention_layernorm(h))


@dataclass(frozen=True)
class Parts:
    """The classes a later chapter may swap; each takes the same arguments as the default."""

    attention: type = Attention  # (num_heads, head_dim, scale, num_kv_heads)
    norm: type = RMSNorm  # (dim, eps)
    decoder_layer: type = DecoderLayer  # (config, parts): one block of the stack, forward(positions, x)
    rotary_embedding: type = RotaryEmbedding  # (head_dim, theta): forward(positions, q, k) -> q, k
    activation: type = SiluAndMul  # (): forward(gate_up (T, 2F)) -> (T, F)
    column_linear: type = nn.Linear  # (in_features, out_features, bias): output dim may be split
    row_linear: type = nn.Linear  # (in_features, out_features, bias): input dim may be split
    embedding: type = nn.Embedding  # (num_embeddings, embedding_dim)
    lm_head: type = nn.Linear  # (in_features, out_features, bias)


class Model(nn.Module):
    def __init__(self, config: ModelConfig, parts: Parts):
        super().__init__()
        self.embed_tokens = parts.embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(parts.decoder_layer(config, parts) for _ in range(config.num_hidden_layers))
        self.norm = parts.norm(config.hidden_size, config.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(input_ids)  # (T, D)
        for layer in self.layers:
            x = layer(positions, x)
        return self.norm(x)


class CausalLM(nn.Module):
    def __init__(self, config: ModelConfig, parts: Parts = Parts()):
        super().__init__()
        self.config = config
        self.model = Model(config, parts)
        self.lm_head = parts.lm_head(config.hidden_size, config.vocab_size, False)
        if config.tie_word_embeddings:  # the output matrix is the input embedding, transposed
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(T,) token ids at (T,) positions -> (T, D) hidden states."""
        return self.model(input_ids, positions)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(T, D) hidden states -> (T, vocab_size) scores for the next token."""
        return self.lm_head(hidden)
