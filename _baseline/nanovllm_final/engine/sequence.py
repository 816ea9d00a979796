"""Sequence: one request's tokens, its place in the KV cache, and how far it has got.

The token list grows by one per decode step. `block_table` names the KV blocks that hold its
keys and values, in order; `num_cached_tokens` counts the leading tokens whose K/V is already in
those blocks (from a prefix-cache hit or from earlier steps). Each step the scheduler picks
`num_scheduled_tokens` tokens after those to compute: the whole prompt, a chunk of it, or the
one newest token (decode).
"""

from copy import copy
from enum import Enum, auto
from itertools import count

from nanovllm_final.sampling_params import SamplingParams


class SequenceStatus(Enum):
    WAITING = auto()
    RUNNING = auto()
    FINISHED = auto()


class Sequence:
    counter = count()

    def __init__(self, token_ids: list[int], sampling_params: SamplingParams = SamplingParams()):
        self.seq_id = next(Sequence.counter)
        self.status = SequenceStatus.WAITING
        self.token_ids = copy(token_ids)
        self.num_tokens = len(token_ids)
        self.num_prompt_tokens = len(token_ids)
        self.num_cached_tokens = 0
        self.num_scheduled_tokens = 0
        self.num_hashed_blocks = 0  # leading blocks already registered in the prefix cache
        self.block_hashes: list[int] = []  # chained hashes of its full blocks (BlockManager.block_hashes)
        self.block_table: list[int] = []
        self.sampling_params = sampling_params
        self.max_tokens = sampling_params.max_tokens
        self.ignore_eos = sampling_params.ignore_eos
        self.finish_reason: str | None = None
        self.generator = None  # a per-request torch.Generator when sampling_params.seed is set

    def __len__(self):
        return self.num_tokens

    def __getitem__(self, key):
        return self.token_ids[key]

    @property
    def is_finished(self) -> bool:
        return self.status == SequenceStatus.FINISHED

    @property
    def num_completion_tokens(self) -> int:
        return self.num_tokens - self.num_prompt_tokens

    @property
    def completion_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    @property
    def is_prefill(self) -> bool:
        """More than the newest token still needs computing: a prompt, or a recompute after preemption."""
        return self.num_tokens - self.num_cached_tokens > 1

    def scheduled_token_ids(self) -> list[int]:
        """The tokens this step computes."""
        if self.token_ids is None:  # a tensor-parallel worker's copy carries only these
            return self._scheduled
        return self.token_ids[self.num_cached_tokens:self.num_cached_tokens + self.num_scheduled_tokens]

    def append_token(self, token_id: int) -> None:
        self.token_ids.append(token_id)
        self.num_tokens += 1

    def __getstate__(self):
        """What a tensor-parallel worker needs: not the whole token list, which grows every step."""
        return (self.seq_id, self.num_tokens, self.num_prompt_tokens, self.num_cached_tokens,
                self.num_scheduled_tokens, self.block_table, self.scheduled_token_ids())

    def __setstate__(self, state):
        (self.seq_id, self.num_tokens, self.num_prompt_tokens, self.num_cached_tokens,
         self.num_scheduled_tokens, self.block_table, self._scheduled) = state
        self.token_ids = None
