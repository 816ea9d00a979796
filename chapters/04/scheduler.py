"""Scheduler: which sequences the next step computes. Continuous batching with preemption.

Requests wait in `waiting` (first come, first served); the ones holding KV blocks are in
`running`, oldest first. Each step is one of two kinds:

    prefill  admit waiting sequences, in order, while three limits allow: at most max_num_seqs
             running, at most max_num_batched_tokens computed in the step, and free blocks for
             the whole prompt. The first that does not fit stops admission, so nobody overtakes it.
    decode   when nobody can be admitted: every running sequence computes one token. One that
             needs a new block when none is free preempts the most recently admitted running
             sequence (itself, if it is the newest): its blocks go back to the pool, its tokens
             stay, and it waits at the front of the queue to recompute them.

A sequence leaves `running` the step it finishes, and its blocks go to the next admitted one at
once: that is what makes the batching continuous. `StaticScheduler` is chapters 2 and 3's way,
on the same engine: a new batch starts only once the whole last batch has finished.
"""

from collections import deque

from ch03.block_manager import BlockManager
from ch04.config import Config
from ch04.sequence import Sequence, SequenceStatus


class Scheduler:
    def __init__(self, config: Config, block_manager: BlockManager):
        self.max_num_seqs = config.max_num_seqs
        self.max_num_batched_tokens = config.max_num_batched_tokens
        self.eos = set(config.eos)
        self.block_manager = block_manager
        self.waiting: deque[Sequence] = deque()
        self.running: deque[Sequence] = deque()  # in admission order: the oldest first
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def is_finished(self) -> bool:
        return not self.waiting and not self.running

    def admission_room(self) -> int:
        """How many waiting sequences may join the running ones this step."""
        return self.max_num_seqs - len(self.running)

    def schedule(self) -> list[Sequence]:
        """The next step's sequences, each with seq.num_scheduled_tokens set: a prefill batch, or
        else a decode batch."""
        batch, num_batched_tokens, room = [], 0, self.admission_room()
        while self.waiting and len(batch) < room:
            seq = self.waiting[0]
            num_new_tokens = seq.num_tokens - seq.num_cached_tokens  # a preempted one recomputes its output too
            # A prompt longer than the whole budget cannot be split here: it runs alone.
            if batch and num_batched_tokens + num_new_tokens > self.max_num_batched_tokens:
                break
            if not self.block_manager.can_allocate(seq):
                break
            self.waiting.popleft()
            self.block_manager.allocate(seq)
            seq.status = SequenceStatus.RUNNING
            seq.num_scheduled_tokens = num_new_tokens
            num_batched_tokens += num_new_tokens
            self.running.append(seq)
            batch.append(seq)
        if batch:
            return batch
        for seq in list(self.running):  # oldest first: they keep going, the newest give way
            if seq.status == SequenceStatus.RUNNING and self.make_room(seq):
                self.block_manager.may_append(seq)
                seq.num_scheduled_tokens = 1
                batch.append(seq)
        return batch

    def make_room(self, seq: Sequence) -> bool:
        """Before seq's decode: if its newest token needs a new block and none is free, preempt
        running sequences from the newest end until one is. Returns False if seq itself had to go."""
        while not self.block_manager.can_append(seq):
            victim = self.running[-1]  # the most recently admitted: the least work to redo
            self.preempt(victim)
            if victim is seq:
                return False
        return True

    def preempt(self, seq: Sequence) -> None:
        """Take a running sequence's blocks back. Its tokens stay: at the front of the queue, it is
        admitted again first and recomputes their K/V, so nothing it generated is lost."""
        self.running.remove(seq)
        self.block_manager.deallocate(seq)  # also sets num_cached_tokens to 0: none of its K/V is kept
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def postprocess(self, seqs: list[Sequence], token_ids: list[int]) -> None:
        """After the forward pass: each sequence's computed tokens are cached, it takes its sampled
        token, and one that is done leaves `running` and gives its blocks back at once."""
        for seq, token_id in zip(seqs, token_ids):
            seq.num_cached_tokens += seq.num_scheduled_tokens
            seq.num_scheduled_tokens = 0
            if seq.num_cached_tokens < seq.num_tokens:
                continue  # part of a prompt is still to compute (chapter 5's chunks): no new token yet
            seq.append_token(token_id)
            if token_id in self.eos and not seq.ignore_eos:
                seq.finish_reason = "stop"
            elif seq.num_completion_tokens == seq.max_tokens:
                seq.finish_reason = "length"
            if seq.is_finished:
                seq.status = SequenceStatus.FINISHED
                self.running.remove(seq)
                self.block_manager.deallocate(seq)

    def abort(self, seqs: list[Sequence]) -> None:
        """Drop unfinished sequences from the queues, their blocks back to the pool (after an error
        or Ctrl-C in the middle of generate, so that the engine stays usable)."""
        for seq in seqs:
            if seq.status == SequenceStatus.RUNNING:
                self.running.remove(seq)
                self.block_manager.deallocate(seq)
            elif seq.status == SequenceStatus.WAITING:
                self.waiting.remove(seq)
            if not seq.is_finished:
                seq.status, seq.finish_reason = SequenceStatus.FINISHED, "abort"


class StaticScheduler(Scheduler):
    """Static batching (chapters 2 and 3) on this engine, as a baseline: up to max_num_seqs
    sequences start together, and nobody joins until the last of them has finished."""

    def admission_room(self) -> int:
        return 0 if self.running else self.max_num_seqs
