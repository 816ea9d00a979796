"""SamplingParams: chapter 1's (temperature, max_tokens, ignore_eos) plus the filters and a seed.

The filters apply in this order: temperature, then top-k, then top-p, then min-p (see sampler.py
for why); temperature=0 means greedy (argmax), whatever the filters say. A bad value raises a
ValueError naming the field, when the object is made.
"""

from dataclasses import dataclass

from ch01 import sampling_params


@dataclass
class SamplingParams(sampling_params.SamplingParams):
    top_k: int = -1  # keep the k most likely tokens; -1 keeps all
    top_p: float = 1.0  # keep the smallest set of most likely tokens whose probability reaches top_p
    min_p: float = 0.0  # drop tokens less likely than min_p x the most likely one
    seed: int | None = None  # this request's own random stream: the same seed gives the same tokens

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or not (self.top_k == -1 or self.top_k >= 1):
            raise ValueError(f"top_k must be an int >= 1, or -1 to keep all tokens; got {self.top_k!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1 keeps all tokens; 0 would keep none), got {self.top_p!r}")
        if not 0 <= self.min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1] (0 keeps all tokens), got {self.min_p!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an int, or None for no seed; got {self.seed!r}")
