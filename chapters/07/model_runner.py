"""ModelRunner: chapter 6's, whose sample step hands every sequence's parameters to one Sampler
call as (B,) tensors, and keeps a torch.Generator for each seeded sequence.

A seeded sequence's generator lives on the sequence, made from its seed at its first draw and
advanced once per token it samples, so its tokens do not depend on the batch around it; a
preempted sequence keeps it, and draws its next token from where it stopped.
"""

import torch

import ch06
from ch07.sampler import Sampler
from ch07.sequence import Sequence


class ModelRunner(ch06.LLM.model_runner_class):
    def __init__(self, config):
        super().__init__(config)
        self.sampler = Sampler()

    def generator(self, seq: Sequence) -> torch.Generator | None:
        if seq.seed is not None and seq.generator is None:
            seq.generator = torch.Generator(self.device).manual_seed(seq.seed)
        return seq.generator

    def sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
        """logits (B, V), one row per sequence in seqs -> B token ids."""
        column = lambda name, dtype: torch.tensor([getattr(s, name) for s in seqs], dtype=dtype, device=logits.device)  # noqa: E731
        token_ids = self.sampler(
            logits, column("temperature", torch.float32), column("top_k", torch.int64), column("top_p", torch.float32),
            column("min_p", torch.float32), [self.generator(seq) for seq in seqs],
        )
        return token_ids.tolist()
