"""Sequence: chapter 6's engine's sequence, carrying the filters, the seed and its random stream."""

import torch

import ch06
from ch07.sampling_params import SamplingParams


class Sequence(ch06.LLM.sequence_class):
    def __init__(self, token_ids: list[int], sampling_params: SamplingParams = SamplingParams()):
        if not isinstance(sampling_params, SamplingParams):
            # chapter 1's SamplingParams (the engine's default) names no filter and no seed
            sampling_params = SamplingParams(**vars(sampling_params))
        super().__init__(token_ids, sampling_params)
        self.top_k = sampling_params.top_k
        self.top_p = sampling_params.top_p
        self.min_p = sampling_params.min_p
        self.seed = sampling_params.seed
        self.generator: torch.Generator | None = None  # made on the model's device at its first draw
