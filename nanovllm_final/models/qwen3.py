"""Qwen3, Qwen2 and Llama: one decoder, two switches (nano-vllm's qwen3.py, generalized).

    token ids -> embedding -> N x DecoderLayer -> RMSNorm -> LM head -> logits

    DecoderLayer:  x, residual = input_layernorm(x, residual)      (add, then normalize)
                   x = self_attn(positions, x)
                   x, residual = post_attention_layernorm(x, residual)
                   x = mlp(x)

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

    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        N = x.shape[0]
        q, k, v = self.qkv_proj(x).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = q.view(N, self.num_heads, self.head_dim)  # (N, H, d)
        k = k.view(N, self.num_kv_heads, self.head_dim)  # (N, Hkv, d)
        v = v.view(N, self.num_kv_heads, self.head_dim)
        if self.qk_norm:  # normalize each head, then rotate: one pass on the GPU
            q, k = self.rotary_emb(positions, q, k, self.q_norm, self.k_norm)
        else:
            q, k = self.rotary_emb(positions, q, k)
        o = self.attn(q, k, v)  # (N, H, d)
        return self.o_proj(o.flatten(1))  # (N, D), all-reduced across ranks


class Qwen3MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        D, F = config.hidden_size, config.intermediate_size
        self.gate_up_proj = MergedColumnParallelLinear(D, [F, F], bias=config.mlp_bias)
        self.down_proj = RowParallelLinear(F, D, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # down(silu(gate) * up): the down projection applies SwiGLU's gate as it reads its input
        return self.down_proj(self.gate_up_proj(x), silu_mul=True)  # (N, D) -> (N, 2F/tp) -> (N, D)


class Qwen3DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self_attn = Qwen3Attention(config)
        self.mlp = Qwen3MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, positions, x, residual):
        if residual is None:  # the first layer: the residual stream starts as the embeddings
            x, residual = self.input_layernorm(x), x
        else:
            x, residual = self.input_layernorm(x, residual)
        x = self.self_attn(positions, x)
        x, residual = self.post_attention_layernorm(x, residual)
        return self.mlp(x), residual


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
