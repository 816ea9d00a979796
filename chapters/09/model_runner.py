"""ModelRunner: chapter 8's, with chapter 9's model pieces and CUDA graphs of decode steps.

The model takes chapter 9's attention (the store and paged decode kernels) and decoder layer
(the fused add + RMSNorm). On a GPU, unless `enforce_eager`, a step in which every sequence
computes one token and samples it (a pure decode batch: as many logits rows as tokens) replays
a CUDA graph of its batch size (cuda_graph.py); any other step runs eagerly. Which kind a step
is needs no flag from the scheduler: the batch's shape says it.

The graphs are captured at the first decode step, on every rank at once: a rank > 0 spends its
life inside chapter 8's constructor (its loop), so anything after that constructor would never
run there, while every rank runs every step's run_model.
"""

from dataclasses import replace

import torch

import ch08
from ch03.context import get_context, set_context
from ch09.attention import Attention
from ch09.config import Config
from ch09.cuda_graph import DecodeGraphs
from ch09.model import DecoderLayer


class ModelRunner(ch08.ModelRunner):
    parts = replace(ch08.ModelRunner.parts, attention=Attention, decoder_layer=DecoderLayer)

    def __init__(self, config: Config, *args):
        # Set before the parent's constructor, which on ranks > 0 returns only when the engine closes.
        self.graphs: DecodeGraphs | None = None
        self.capture_graphs = config.device == "cuda" and not config.enforce_eager
        self.graph_limits = (config.max_num_seqs, config.max_model_len, config.kvcache_block_size)
        super().__init__(config, *args)

    def prepare(self, seqs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chapter 5's batch, with the context lengths on the device too: the decode kernel reads
        them there, and one copy per step is cheaper than one per layer."""
        input_ids, positions, logits_indices = super().prepare(seqs)
        context = get_context()
        context.context_lens = context.context_lens.to(self.device)
        return input_ids, positions, logits_indices

    def run_model(self, input_ids: torch.Tensor, positions: torch.Tensor, logits_indices: torch.Tensor) -> torch.Tensor:
        """A pure decode batch replays the graph of its batch size; any other step runs eagerly."""
        n = input_ids.shape[0]
        if len(logits_indices) != n:
            return super().run_model(input_ids, positions, logits_indices)
        context = get_context()
        if self.graphs is None and self.capture_graphs:
            self.graphs = DecodeGraphs(self.model, *self.graph_limits)
            set_context(context)  # the capture ran steps of its own, and reset the context after them
        if self.graphs is None or not self.graphs.fits(n):
            return super().run_model(input_ids, positions, logits_indices)
        hidden = self.graphs.run(input_ids, positions, context)  # (n, D), row i is sequence i
        return self.model.compute_logits(hidden)
