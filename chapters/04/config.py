"""Config: every setting of the engine in one dataclass, with nano-vllm's names.

    LLM(model, max_num_seqs=8, num_kvcache_blocks=64)   # each field is a keyword of LLM

`hf_config` (the model's numbers, chapter 1's ModelConfig) and `eos` are read from the model
folder; the rest are limits the scheduler works within.
"""

from dataclasses import dataclass, field

import torch

from ch01.config import ModelConfig


@dataclass
class Config:
    model: str
    max_num_batched_tokens: int = 16384  # tokens a prefill batch may compute (a longer prompt runs alone)
    max_num_seqs: int = 8  # sequences running at once, each holding blocks of the pool
    max_model_len: int = 1024  # prompt + output, capped by the model's max_position_embeddings
    kvcache_block_size: int = 16  # tokens per KV block
    num_kvcache_blocks: int = -1  # the pool; -1: max_num_seqs sequences of max_model_len tokens
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    hf_config: ModelConfig = field(init=False)
    eos: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        self.model = str(self.model)
        self.hf_config = ModelConfig.from_pretrained(self.model)
        self.eos = self.hf_config.eos_token_ids
        for name in ("max_num_batched_tokens", "max_num_seqs", "kvcache_block_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_model_len < 2:
            raise ValueError(f"max_model_len must be >= 2 (a prompt and one new token), got {self.max_model_len}")
        self.max_model_len = min(self.max_model_len, self.hf_config.max_position_embeddings)
        if self.num_kvcache_blocks == -1:  # chapter 3's default: the memory of chapter 2's rows
            self.num_kvcache_blocks = self.max_num_seqs * -(-self.max_model_len // self.kvcache_block_size)
        if self.num_kvcache_blocks < 1:
            raise ValueError(f"num_kvcache_blocks must be >= 1 (or -1 for the default), got {self.num_kvcache_blocks}")
