"""The cache's dtype joins the Config: `kv_cache_dtype="fp8"` keeps K and V in e4m3.

    LLM(model, kv_cache_dtype="fp8")   # "auto" (the default): the model's own dtype

With the default pool size (num_kvcache_blocks=-1), the pool takes the memory that chapter 4's
default pool takes in the model's dtype, so FP8 fits twice the blocks (four times in float32)
in the same bytes: that is what FP8 buys.
"""

from dataclasses import dataclass

import torch

from ch09 import config
from ch10 import solutions  # exercise 10.4's num_blocks_in_budget is in the answer key
from ch10.fp8 import FP8_DTYPE

KV_CACHE_DTYPES = ("auto", "fp8")


@dataclass
class Config(config.Config):
    kv_cache_dtype: str = "auto"  # "fp8": e4m3 codes with one scale per KV head and layer

    def __post_init__(self):
        default_pool = self.num_kvcache_blocks == -1
        super().__post_init__()
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise ValueError(f"kv_cache_dtype must be one of {KV_CACHE_DTYPES}, got {self.kv_cache_dtype!r}")
        if default_pool and self.kv_cache_dtype == "fp8":
            c = self.hf_config
            budget = self.num_kvcache_blocks * self.kvcache_block_size * 2 * c.num_hidden_layers * c.num_key_value_heads \
                * c.head_dim * self.dtype.itemsize  # the default pool's bytes in the model's dtype
            self.num_kvcache_blocks = solutions.num_blocks_in_budget(budget, c, self.kvcache_block_size, FP8_DTYPE)

    @property
    def cache_dtype(self) -> torch.dtype:
        return FP8_DTYPE if self.kv_cache_dtype == "fp8" else self.dtype
