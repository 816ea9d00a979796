"""ModelRunner: chapter 5's (chapter 6 changed no part of it), whose sample step hands every sequence's parameters to one Sampler
call as (B,) tensors, and keeps a torch.Generator for each seeded sequence.

A seeded sequence's generator lives on the sequence, made from its seed at its first draw and
advanced once per token it samples, so its tokens do not depend on the batch around it; a
preempted sequence keeps it, and draws its next token from where it stopped.
"""

import torch

from ch05 import model_runner
from ch07.sampler import Sampler
from ch07.sequence import Sequence


class ModelRunner(model_runner.ModelRunner):
    def __init__(self, config):
        super().__init__(config)
        self.sampler = Sampler()

    def generator(self, seq: Sequence) -> torch.Generator | None:
        seed = seq.sampling_params.seed
        if seed is not None and seq.generator is None:
            seq.generator = torch.Generator(self.device).manual_seed(seed)
        return seq.generator

    def sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
        """logits (B, V), one row per sequence in seqs -> B token ids."""
        column = lambda name, dtype: torch.tensor(  # noqa: E731
            [getattr(s.sampling_params, name) for s in seqs], dtype=dtype, device=logits.device)
        token_ids = self.sampler(
            logits, column("temperature", torch.float32), column("top_k", torch.int64), column("top_p", torch.float32),
            column("min_p", torch.float32), [self.generator(seq) for seq in seqs],
        )
        return token_ids.tolist()
