"""ModelRunner: owns the model and the KV pool, and turns a scheduled batch into one token each.

    run(seqs, is_prefill) = prepare -> run_model -> sample

`prepare` is chapter 3's: the uncached tokens of every sequence back to back, their slots in the
pool (`slot_mapping`) and each sequence's `block_tables` row, published in the Context for the
attention layers. The model is chapter 1's with chapter 3's paged attention; the pool is
`num_kvcache_blocks` blocks of `kvcache_block_size` slots. `is_prefill` says what kind of step
the scheduler picked; this torch path runs both kinds alike.
"""

import torch

from ch01 import sampler
from ch01.loader import load_model
from ch01.model import Parts
from ch03 import model_runner
from ch03.attention import Attention
from ch03.context import get_context, reset_context
from ch04.config import Config
from ch04.sequence import Sequence


class ModelRunner(model_runner.ModelRunner):
    parts = Parts(attention=Attention)  # the model's pieces: chapter 1's, with chapter 3's paged attention

    def __init__(self, config: Config):
        model = load_model(config.model, dtype=config.dtype, device=config.device, parts=self.parts)
        super().__init__(model, config.num_kvcache_blocks, config.kvcache_block_size)

    @torch.inference_mode()
    def run(self, seqs: list[Sequence], is_prefill: bool) -> list[int]:
        """One forward over the scheduled tokens of `seqs`; returns one sampled token per sequence."""
        input_ids, positions = self.prepare(seqs)
        try:
            logits = self.run_model(input_ids, positions, is_prefill)  # (B, vocab_size)
        finally:
            reset_context()
        return self.sample(logits, seqs)

    def run_model(self, input_ids: torch.Tensor, positions: torch.Tensor, is_prefill: bool) -> torch.Tensor:
        """(N,) tokens -> (B, vocab_size): the logits of each sequence's last computed token."""
        hidden = self.model(input_ids, positions)  # (N, D); every token's K/V is now in the pool
        last = get_context().cu_seqlens_q[1:] - 1  # (B,)
        return self.model.compute_logits(hidden[last.to(self.device)])

    def sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
        return [sampler.sample(row, seq.temperature) for seq, row in zip(seqs, logits)]
