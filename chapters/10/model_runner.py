"""ModelRunner: chapter 9's, with the pool in the Config's kv_cache_dtype.

With kv_cache_dtype="fp8" the model takes chapter 10's attention, the pool holds e4m3 codes, and
every layer gets its pair of scales (float32, one per KV head, zero bytes per token). The scales
are armed once the CUDA graphs are captured (the capture stores nothing real) and set by the
first step that stores tokens; that step runs eagerly, since a graph replays its kernels and not
the Python that decides to set the scales.
"""

from dataclasses import replace

import torch

import ch09
from ch10.attention import Attention
from ch10.config import Config
from ch10.fp8 import FP8_DTYPE


class ModelRunner(ch09.ModelRunner):
    fp8_parts = replace(ch09.ModelRunner.parts, attention=Attention)

    def __init__(self, config: Config):
        self.cache_dtype = config.cache_dtype  # read by allocate_kv_cache, during the constructor
        if self.cache_dtype == FP8_DTYPE:
            self.parts = self.fp8_parts
        super().__init__(config)
        self.calibrating = self.cache_dtype == FP8_DTYPE
        for attn in self.attention_layers() if self.calibrating else ():
            attn.calibrate_fp8()

    def attention_layers(self) -> list[Attention]:
        return [m for m in self.model.modules() if isinstance(m, Attention)]

    def allocate_kv_cache(self, num_blocks: int, block_size: int) -> None:
        super().allocate_kv_cache(num_blocks, block_size, dtype=self.cache_dtype)
        for attn in self.attention_layers():
            attn.k_scale = torch.ones(attn.num_kv_heads, dtype=torch.float32, device=self.device)
            attn.v_scale = torch.ones(attn.num_kv_heads, dtype=torch.float32, device=self.device)

    def run_model(self, input_ids: torch.Tensor, positions: torch.Tensor, logits_indices: torch.Tensor) -> torch.Tensor:
        if not self.calibrating:
            return super().run_model(input_ids, positions, logits_indices)
        graphs, self.graphs = self.graphs, None  # the step that sets the scales runs eagerly
        try:
            return super().run_model(input_ids, positions, logits_indices)
        finally:
            self.graphs, self.calibrating = graphs, False
