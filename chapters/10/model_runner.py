"""ModelRunner: chapter 9's, with the pool in the Config's kv_cache_dtype.

With kv_cache_dtype="fp8" the model takes chapter 10's attention, the pool holds e4m3 codes, and
every layer gets its pair of scales (float32, one per KV head: no bytes per token). The scales
are set by the first step that stores tokens, and that step runs eagerly: a CUDA graph replays
its kernels, not the Python that decides to set the scales, and capturing one would store its
padding rows' zeros as if they were tokens.
"""

from dataclasses import replace

import torch

import ch09
from ch10.attention import Attention
from ch10.config import Config
from ch10.fp8 import FP8_DTYPE


class ModelRunner(ch09.ModelRunner):
    fp8_parts = replace(ch09.ModelRunner.parts, attention=Attention)

    def __init__(self, config: Config, *args):
        self.cache_dtype = config.cache_dtype  # read by allocate_kv_cache, inside the parent's constructor
        if self.cache_dtype == FP8_DTYPE:
            self.parts = self.fp8_parts
        super().__init__(config, *args)

    def fp8_layers(self) -> list[Attention]:
        return [m for m in self.model.modules() if isinstance(m, Attention)]

    def allocate_kv_cache(self, num_blocks: int, block_size: int) -> None:
        super().allocate_kv_cache(num_blocks, block_size, dtype=self.cache_dtype)
        for attn in self.fp8_layers():
            attn.k_scale = torch.ones(attn.num_kv_heads, dtype=torch.float32, device=self.device)
            attn.v_scale = torch.ones(attn.num_kv_heads, dtype=torch.float32, device=self.device)
            attn.calibrate_fp8()

    def run_model(self, input_ids: torch.Tensor, positions: torch.Tensor, logits_indices: torch.Tensor) -> torch.Tensor:
        layers = self.fp8_layers()
        if not layers or layers[0].fp8_calibrated:
            return super().run_model(input_ids, positions, logits_indices)
        saved = self.graphs, self.capture_graphs
        self.graphs, self.capture_graphs = None, False  # this step sets the scales: no graph, no capture
        try:
            return super().run_model(input_ids, positions, logits_indices)
        finally:
            self.graphs, self.capture_graphs = saved
