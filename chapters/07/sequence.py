"""Sequence: chapter 4's sequence, with the random stream of a seeded request.

The filters and the seed are read from seq.sampling_params, which is chapter 7's SamplingParams
(the engine's `sampling_params_class`)."""

import torch

from ch04 import sequence
from ch07.sampling_params import SamplingParams


class Sequence(sequence.Sequence):
    def __init__(self, token_ids: list[int], sampling_params: SamplingParams = SamplingParams()):
        super().__init__(token_ids, sampling_params)
        self.generator: torch.Generator | None = None  # made on the model's device at its first draw
