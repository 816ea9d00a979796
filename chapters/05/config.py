"""Chapter 4's Config; `max_num_batched_tokens` now bounds every step, decodes and chunks together.

Decodes are scheduled first, one token each, so the budget must hold one token for every
sequence that may be running, or some of them would skip steps.
"""

from dataclasses import dataclass

from ch04 import config


@dataclass
class Config(config.Config):
    max_num_batched_tokens: int = 16384  # tokens one step computes: its decodes, then prompt chunks

    def __post_init__(self):
        super().__post_init__()
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError(
                f"max_num_batched_tokens ({self.max_num_batched_tokens}) is below max_num_seqs ({self.max_num_seqs}): "
                "every running sequence decodes one token per step, so the budget must hold them all; "
                "raise max_num_batched_tokens or lower max_num_seqs"
            )
