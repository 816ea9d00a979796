"""ModelRunner: chapter 7's, with chapter 9's model pieces and CUDA graphs of decode steps.

The model takes chapter 9's attention (the store and paged decode kernels) and decoder layer
(the fused add + RMSNorm). On a GPU, unless `enforce_eager`, the runner captures a graph of the
decode step for each batch size once the pool exists (cuda_graph.py); a step whose every
sequence computes one token runs as a graph replay, any other step eagerly. Which kind a step
is needs no flag from the scheduler: the batch says it (as many tokens as sequences).
"""

from dataclasses import replace

import torch

import ch07
from ch03.context import get_context
from ch09.attention import Attention
from ch09.config import Config
from ch09.cuda_graph import DecodeGraphs
from ch09.model import DecoderLayer


class ModelRunner(ch07.ModelRunner):
    parts = replace(ch07.ModelRunner.parts, attention=Attention, decoder_layer=DecoderLayer)

    def __init__(self, config: Config):
        super().__init__(config)
        self.graphs = None
        if self.device.type == "cuda" and not config.enforce_eager:
            self.graphs = DecodeGraphs(self.model, config.max_num_seqs, config.max_model_len,
                                       config.kvcache_block_size)

    def run_model(self, input_ids: torch.Tensor, positions: torch.Tensor, logits_indices: torch.Tensor) -> torch.Tensor:
        ctx = get_context()
        n = input_ids.shape[0]
        if self.graphs is None or n != ctx.context_lens.shape[0] or not self.graphs.fits(n):
            return super().run_model(input_ids, positions, logits_indices)
        hidden = self.graphs.run(input_ids, positions, ctx)  # (n, D)
        return self.model.compute_logits(hidden[logits_indices.to(self.device)])
