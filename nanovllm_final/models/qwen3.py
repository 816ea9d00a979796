"""Qwen3, Qwen2 and Llama: one decoder, two switches (nano-vllm's qwen3.py, generalized).

    token ids -> embedding -> N x DecoderLayer -> RMSNorm -> LM head -> logits

    DecoderLayer:  x, residual = self_attn(positions, x, residual, input_layernorm)
                   x, residual = mlp(x, residual, post_attention_layernorm)

Each block takes the previous block's output x and the residual stream, adds them (the new
residual stream) and normalizes the sum before its first product: nano-vllm's
`x, residual = norm(x, residual)`, done by that product (`ColumnParallelLinear.normed`), which at
one row is one kernel: a decode step of one sequence runs no norm kernel inside the layers.

Qwen3 normalizes each head of q and k (qk_norm); Qwen2 has biases on q/k/v (attention_bias);
Llama (SmolLM2) has neither. A config may add biases on o_proj and on the MLP (config.py). Tokens are one flat batch: input_ids (N,) at positions (N,),
hidden states (N, D); which sequence a token belongs to lives in the attention Context.

`packed_modules_mapping` tells the loader that the checkpoint's q_proj/k_proj/v_proj go into
the packed qkv_proj and gate_proj/up_proj into gate_up_proj.
"""

import torch
from torch import nn

from nanovllm_final.config import ModelConfig
from nanovllm_final.layers.attention import Attention
from nanovllm_final.layers.embed_head import ParallelLMHead, VocabParallelEmbedding
from nanovllm_final.layers.layernorm import RMSNorm
from nanovllm_final.layers.linear import MergedColumnParallelLinear, QKVParallelLinear, RowParallelLinear
from nanovllm_final.layers.rotary_embedding import RotaryEmbedding
from nanovllm_final.utils.context import get_context


class Qwen3Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        D, d = config.hidden_size, config.head_dim
        self.qkv_proj = QKVParallelLinear(D, d, config.num_attention_heads, config.num_key_value_heads,
                                          bias=config.attention_bias)
        self.num_heads, self.num_kv_heads = self.qkv_proj.num_heads, self.qkv_proj.num_kv_heads  # this rank's
        self.head_dim = d
        self.q_size, self.kv_size = self.num_heads * d, self.num_kv_heads * d
        self.o_proj = RowParallelLinear(config.num_attention_heads * d, D, bias=config.o_proj_bias)
        self.rotary_emb = RotaryEmbedding(d, config.max_position_embeddings, config.rope_theta, config.rope_scaling)
        self.attn = Attention(self.num_heads, d, d**-0.5, self.num_kv_heads)
        self.qk_norm = config.qk_norm
        if config.qk_norm:  # Qwen3: RMSNorm over each head of q and k keeps the logits tame
            self.q_norm = RMSNorm(d, config.rms_norm_eps)
            self.k_norm = RMSNorm(d, config.rms_norm_eps)

    def forward(self, positions: torch.Tensor, x: torch.Tensor, residual: torch.Tensor | None,
                norm: RMSNorm) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (attention's output, the residual stream x + residual)"""
        N = x.shape[0]
        qkv, residual = self.qkv_proj.normed(x, residual, norm)  # q/k/v of norm(x + residual)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = q.view(N, self.num_heads, self.head_dim)  # (N, H, d)
        k = k.view(N, self.num_kv_heads, self.head_dim)  # (N, Hkv, d)
        v = v.view(N, self.num_kv_heads, self.head_dim)
        norms = (self.q_norm, self.k_norm) if self.qk_norm else ()  # Qwen3: normalize each head, then rotate
        if get_context().is_prefill:
            q, k = self.rotary_emb(positions, q, k, *norms)  # one pass on the GPU
            o = self.attn(q, k, v)  # (N, H, d)
        else:  # a decode step: the attention kernel normalizes and rotates q and the new k as it loads them
            o = self.attn(q, k, v, rope=self.rotary_emb.decode_args(positions, *norms))
        return self.o_proj(o.flatten(1)), residual  # (N, D), all-reduced across ranks


class Qwen3MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        D, F = config.hidden_size, config.intermediate_size
        self.gate_up_proj = MergedColumnParallelLinear(D, [F, F], bias=config.mlp_bias)
        self.down_proj = RowParallelLinear(F, D, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor, residual: torch.Tensor, norm: RMSNorm) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (the MLP's output, the residual stream x + residual)"""
        gate_up, residual = self.gate_up_proj.normed(x, residual, norm)  # (N, D) -> (N, 2F/tp)
        # down(silu(gate) * up): the down projection applies SwiGLU's gate as it reads its input
        return self.down_proj(gate_up, silu_mul=True), residual  # (N, D)


class Qwen3DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self_attn = Qwen3Attention(config)
        self.mlp = Qwen3MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, positions, x, residual):
        """residual None: the first layer, whose residual stream starts as the embeddings x."""
        x, residual = self.self_attn(positions, x, residual, self.input_layernorm)
        return self.mlp(x, residual, self.post_attention_layernorm)


class Qwen3Model(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed_tokens = VocabParallelEmbedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Qwen3DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x, residual = self.embed_tokens(input_ids), None  # (N, D)
        for layer in self.layers:
            x, residual = layer(positions, x, residual)
        x, _ = self.norm(x, residual)
        return x


class Qwen3ForCausalLM(nn.Module):
    packed_modules_mapping = {
        "q_proj": ("qkv_proj", "q"),
        "k_proj": ("qkv_proj", "k"),
        "v_proj": ("qkv_proj", "v"),
        "gate_proj": ("gate_up_proj", 0),
        "up_proj": ("gate_up_proj", 1),
    }

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.model = Qwen3Model(config)
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size)
        if config.tie_word_embeddings:  # the output matrix is the input embedding, shared
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(N,) token ids at (N,) positions -> (N, D) hidden states."""
        return self.model(input_ids, positions)

    def compute_logits(self, hidden: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor | None:
        """(B, D) hidden states of the tokens to sample from -> (B, vocab) on rank 0 (into `out`
        if given: ParallelLMHead.forward)."""
        return self.lm_head(hidden, out)
