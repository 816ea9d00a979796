"""SamplingParams: how to pick each next token and when to stop (the names vLLM uses)."""

from dataclasses import dataclass


@dataclass
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy: always the most likely token
    max_tokens: int = 64  # stop after this many new tokens
    ignore_eos: bool = False  # keep going past the end-of-sequence token (benchmarks do)

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
