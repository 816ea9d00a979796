"""SamplingParams: how to pick each next token and when to stop (vLLM's names and meanings).

The filters apply in vLLM's order: temperature, then top-k, then top-p, then min-p; sampling
draws from what is left. temperature=0 means greedy (argmax), whatever the other filters say.
"""

from dataclasses import dataclass


@dataclass
class SamplingParams:
    temperature: float = 1.0  # 0 is greedy; higher flattens the distribution
    top_k: int = -1  # keep the k most likely tokens; -1 keeps all
    top_p: float = 1.0  # keep the smallest set whose probability reaches top_p (nucleus)
    min_p: float = 0.0  # drop tokens less likely than min_p x the most likely one
    max_tokens: int = 64  # stop after this many new tokens
    ignore_eos: bool = False  # keep going past end-of-sequence (benchmarks do)
    stop: list[str] | str | None = None  # stop when the text contains one of these; it is cut off
    seed: int | None = None  # a private generator: the same seed gives the same tokens

    def __post_init__(self):
        if not isinstance(self.temperature, (int, float)) or self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if not isinstance(self.top_k, int) or not (self.top_k == -1 or self.top_k >= 1):
            raise ValueError(f"top_k must be -1 (all tokens) or >= 1, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1 keeps all tokens), got {self.top_p}")
        if not 0 <= self.min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1] (0 keeps all tokens), got {self.min_p}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {self.max_tokens}")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = list(self.stop or [])
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop must be a non-empty string or a list of them, got {self.stop}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
