"""Sequence: one request's tokens and how many of them already have their K/V in the cache.

    token_ids          prompt, then every generated token
    num_cached_tokens  the leading tokens whose keys and values are stored; the rest (the whole
                       prompt at first, then the one newest token) are what the next step computes

RowSequence, the sequence this chapter's engine makes, adds `cache_row`: which row of the
contiguous cache it owns. Chapter 3 replaces the row with a table of blocks, so its Sequence
extends Sequence, not RowSequence.
"""

from itertools import count

from ch01.sampling_params import SamplingParams


class Sequence:
    counter = count()

    def __init__(self, token_ids: list[int], sampling_params: SamplingParams = SamplingParams()):
        self.seq_id = next(Sequence.counter)
        self.token_ids = list(token_ids)
        self.num_tokens = len(self.token_ids)
        self.num_prompt_tokens = len(self.token_ids)
        self.num_cached_tokens = 0
        self.sampling_params = sampling_params
        self.max_tokens = sampling_params.max_tokens
        self.ignore_eos = sampling_params.ignore_eos
        self.finish_reason: str | None = None  # "stop" (an EOS token) or "length" (max_tokens)

    def __len__(self) -> int:
        return self.num_tokens

    def __repr__(self) -> str:
        return f"Sequence(seq_id={self.seq_id}, num_tokens={self.num_tokens}, num_cached_tokens={self.num_cached_tokens})"

    @property
    def is_finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def num_completion_tokens(self) -> int:
        return self.num_tokens - self.num_prompt_tokens

    @property
    def completion_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    @property
    def last_token(self) -> int:
        return self.token_ids[-1]

    def append_token(self, token_id: int) -> None:
        self.token_ids.append(token_id)
        self.num_tokens += 1


class RowSequence(Sequence):
    """A sequence that owns one row of chapter 2's contiguous cache (LLM.run_batch assigns it)."""

    def __init__(self, token_ids: list[int], sampling_params: SamplingParams = SamplingParams()):
        super().__init__(token_ids, sampling_params)
        self.cache_row: int | None = None
