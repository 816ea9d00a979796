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
from ch04 import solutions
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

    # The reference of the chapter's exercises is in solutions.py, its answer key (read it after them).
    schedule = solutions.schedule  # exercise 4.1 (solutions.py)
    make_room = solutions.make_room  # exercise 4.2 (solutions.py)
    preempt = solutions.preempt  # exercise 4.3 (solutions.py)
    postprocess = solutions.postprocess  # exercise 4.4 (solutions.py)

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
