"""Scheduler: which sequences run in the next forward pass, and how many tokens each computes.

Continuous batching with chunked prefill, under a budget of `max_num_batched_tokens` per step:

1. Decodes first: every running sequence whose prompt is done computes its one newest token. If
   no block is free for it, the most recently admitted running sequence is preempted (its
   blocks freed, its tokens kept; it recomputes them later), so older requests keep going.
   The decodes go out longest context first: decode attention starts its programs in batch
   order, and a long context started last would run on alone at the end of the kernel.
2. Then prefill chunks: running sequences part-way through their prompt, then waiting ones in
   arrival order (FIFO: the first waiting sequence that does not fit stops admission, so a long
   prompt is never overtaken forever). A prompt larger than what is left of the budget computes
   as much as fits and continues next step.
3. In-batch prefix sharing: a waiting prompt whose next uncached blocks (at least
   SHARED_PREFIX_MIN_TOKENS of them) are being computed in this very step by another prompt waits
   one step at the front of the queue, then finds them in the prefix cache instead of computing
   them a second time. Requests sent together with a common system prompt or document share it.

After the forward pass, `postprocess` advances each sequence, appends the sampled token where
a sequence reached its end, registers new full blocks in the prefix cache and retires finished
sequences.
"""

from collections import deque

from nanovllm_final.config import Config
from nanovllm_final.engine.block_manager import BlockManager
from nanovllm_final.engine.sequence import Sequence, SequenceStatus

SHARED_PREFIX_MIN_TOKENS = 64  # sharing fewer tokens than this is not worth a step of waiting
PLACEHOLDER = -1  # async scheduling: a token sampled on the GPU that the host has not read yet


class Scheduler:
    def __init__(self, config: Config, num_blocks: int | None = None):
        self.max_num_seqs = config.max_num_seqs
        self.max_num_batched_tokens = config.max_num_batched_tokens
        self.max_model_len = config.max_model_len
        self.eos = set(config.eos)
        self.block_manager = BlockManager(num_blocks or config.num_kvcache_blocks, config.kvcache_block_size)
        self.waiting: deque[Sequence] = deque()
        self.running: deque[Sequence] = deque()  # in admission order: the oldest first
        self.num_preemptions = 0

    def is_finished(self) -> bool:
        return not self.waiting and not self.running

    def blocks_at_longest(self, seq: Sequence) -> int:
        """Blocks a request holds at its longest: the prompt plus every token it may generate."""
        return self.block_manager.blocks_needed(min(seq.num_prompt_tokens + seq.max_tokens, self.max_model_len))

    def add(self, seq: Sequence) -> None:
        num_blocks = len(self.block_manager.blocks)
        if self.blocks_at_longest(seq) > num_blocks:
            raise ValueError(
                f"a request of {seq.num_prompt_tokens} prompt tokens and max_tokens={seq.max_tokens} needs "
                f"{self.blocks_at_longest(seq)} KV blocks of {self.block_manager.block_size} tokens, but the pool "
                f"has {num_blocks}; lower max_tokens, shorten the prompt, or raise num_kvcache_blocks"
            )
        self.waiting.append(seq)

    def schedule(self) -> list[Sequence]:
        budget = self.max_num_batched_tokens
        scheduled: list[Sequence] = []
        # 1. Decodes, oldest first; preempt from the newest end when blocks run out.
        for seq in list(self.running):
            if seq.status != SequenceStatus.RUNNING or seq.is_prefill or budget == 0:
                continue
            while not self.block_manager.can_append(seq):
                victim = self.running[-1]
                self.preempt(victim)
                if victim is seq:
                    break
            if seq.status != SequenceStatus.RUNNING:
                continue
            self.block_manager.may_append(seq)
            seq.num_scheduled_tokens = 1
            budget -= 1
            scheduled.append(seq)
        scheduled.sort(key=lambda s: s.num_tokens, reverse=True)  # the longest context first (see above)
        # 2. Prefill chunks of running sequences, then of newly admitted ones.
        computing: set[int] = set()  # hashes of the prompt blocks this step's prefills compute
        for seq in self.running:
            if seq.is_prefill and budget > 0:
                budget -= self._schedule_chunk(seq, budget, scheduled)
                computing.update(self.block_manager.block_hashes(seq))
        deferred = []
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            if self._shares_prefix_in_flight(seq, computing):
                deferred.append(self.waiting.popleft())  # 3. next step it hits the cache instead
                continue
            if not self.block_manager.can_allocate(seq):
                break
            self.waiting.popleft()
            self.block_manager.allocate(seq)
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            budget -= self._schedule_chunk(seq, budget, scheduled)
            computing.update(self.block_manager.block_hashes(seq))
        self.waiting.extendleft(reversed(deferred))  # back at the front, in their order
        return scheduled

    def _shares_prefix_in_flight(self, seq: Sequence, computing: set[int]) -> bool:
        """Are the blocks right after seq's cached prefix being computed in this step?"""
        if not computing:
            return False
        hashes = self.block_manager.block_hashes(seq)
        start = end = self.block_manager.num_cached_blocks(hashes)
        while end < len(hashes) and hashes[end] in computing:
            end += 1
        return (end - start) * self.block_manager.block_size >= SHARED_PREFIX_MIN_TOKENS

    @staticmethod
    def _schedule_chunk(seq: Sequence, budget: int, scheduled: list[Sequence]) -> int:
        seq.num_scheduled_tokens = min(seq.num_tokens - seq.num_cached_tokens, budget)
        scheduled.append(seq)
        return seq.num_scheduled_tokens

    def preempt(self, seq: Sequence) -> None:
        """Free a running sequence's blocks; it waits at the front and recomputes its tokens."""
        self.running.remove(seq)
        self.block_manager.deallocate(seq)
        seq.status = SequenceStatus.WAITING
        seq.num_scheduled_tokens = 0
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def postprocess(self, seqs: list[Sequence], token_ids: list[int | None]) -> None:
        """token_ids[i] is the token sampled for seqs[i], or None for a prefill chunk that did not
        reach the sequence's end (its logits were never computed)."""
        for seq, token_id in zip(seqs, token_ids):
            seq.num_cached_tokens += seq.num_scheduled_tokens
            seq.num_scheduled_tokens = 0
            self.block_manager.cache_blocks(seq)
            if token_id is None:
                continue
            seq.append_token(token_id)
            if not seq.ignore_eos and token_id in self.eos:
                self.finish(seq, "stop")
            elif seq.num_completion_tokens >= seq.max_tokens or seq.num_tokens >= self.max_model_len:
                self.finish(seq, "length")

    # ---- async scheduling: postprocess in two halves, before and after the tokens are known ----
    def advance(self, seqs: list[Sequence], sampled: list[bool]) -> list[Sequence]:
        """The first half of postprocess, for a step whose tokens are still on the GPU: each
        sequence moves on, and one that sampled gets a PLACEHOLDER token where its token will go.
        One that this token brings to max_tokens or max_model_len finishes now, so that it is not
        scheduled again. -> (sequence, row of its token among the step's sampled tokens) for
        each sequence that got a placeholder."""
        placed, row = [], -1
        for seq, s in zip(seqs, sampled):
            row += s  # the row of this sequence's token among the step's sampled ones
            if seq.is_finished:  # aborted, or ended by the step before, after this one was launched
                continue
            seq.num_cached_tokens += seq.num_scheduled_tokens
            seq.num_scheduled_tokens = 0
            self.block_manager.cache_blocks(seq)
            if not s:
                continue
            seq.append_token(PLACEHOLDER)
            placed.append((seq, row))
            if seq.num_completion_tokens >= seq.max_tokens or seq.num_tokens >= self.max_model_len:
                self.finish(seq, "length")
        return placed

    def settle(self, seq: Sequence, token_id: int) -> None:
        """The second half: the placeholder becomes the sampled token; end of sequence finishes it
        (and is the reason, as in postprocess, if the length limit finished it already)."""
        seq.token_ids[-1] = token_id
        if not seq.ignore_eos and token_id in self.eos:
            if seq.is_finished:
                seq.finish_reason = "stop"
            else:
                self.finish(seq, "stop")

    def finish(self, seq: Sequence, reason: str) -> None:
        """Retire a sequence (also for a stop string, or when its request is aborted)."""
        if seq.status == SequenceStatus.RUNNING:
            self.running.remove(seq)
            self.block_manager.deallocate(seq)
        elif seq.status == SequenceStatus.WAITING:
            self.waiting.remove(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
