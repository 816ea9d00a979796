"""Sequence: chapter 3's sequence (tokens, cached count, block table) with a place in the scheduler.

    status                WAITING (queued, holds no blocks), RUNNING (holds blocks, computes
                          every step) or FINISHED (done, blocks given back)
    num_scheduled_tokens  how many tokens the current step computes for it: its uncached tokens
                          in a prefill, 1 in a decode; the scheduler sets it, postprocess spends it
    is_prefill            more than its newest token is uncached: a prompt, or a recompute

A preempted sequence goes from RUNNING back to WAITING with its tokens kept and none cached.
"""

from enum import Enum, auto

from ch01.sampling_params import SamplingParams
from ch03 import sequence


class SequenceStatus(Enum):
    WAITING = auto()
    RUNNING = auto()
    FINISHED = auto()


class Sequence(sequence.Sequence):
    def __init__(self, token_ids: list[int], sampling_params: SamplingParams = SamplingParams()):
        super().__init__(token_ids, sampling_params)
        self.status = SequenceStatus.WAITING
        self.num_scheduled_tokens = 0

    @property
    def is_prefill(self) -> bool:
        """More than the newest token still needs computing: a prompt, or a recompute after preemption."""
        return self.num_tokens - self.num_cached_tokens > 1
