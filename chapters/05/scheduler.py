"""Scheduler with chunked prefill: every step mixes decodes and pieces of prompts under one budget.

Chapter 4's steps were either all prefill or all decode. A step of decodes alone reads every
weight for one token per sequence and leaves the arithmetic idle; a step holding a long prompt
makes every running sequence wait for it. Here each step fills a budget of
`max_num_batched_tokens` tokens in this order:

    1. decodes     every running sequence whose prompt is done computes its newest token (one
                   token each), oldest first; preemption as in chapter 4 when a block is missing
    2. running     prompts part-way through continue, oldest first
       prefills
    3. waiting     then prompts from the queue, first come first served, while blocks and
       prompts     max_num_seqs allow

A prompt takes min(what it has left, what the budget has left) tokens: a **chunk**. What does not
fit continues next step, after that step's decodes. So no running sequence ever skips a step,
and a long prompt costs every step only as much time as the budget allows.
"""

from ch04 import scheduler
from ch04.sequence import Sequence, SequenceStatus


class Scheduler(scheduler.Scheduler):
    def schedule(self) -> list[Sequence]:
        """The next step's sequences, each with seq.num_scheduled_tokens set."""
        budget = self.max_num_batched_tokens
        batch: list[Sequence] = []
        # 1. Decodes: a running sequence with one uncached token (its newest) computes it.
        for seq in list(self.running):  # oldest first: they keep going, the newest give way
            if seq.status != SequenceStatus.RUNNING or seq.num_tokens - seq.num_cached_tokens != 1:
                continue
            if self.make_room(seq):
                self.block_manager.may_append(seq)
                seq.num_scheduled_tokens = 1
                budget -= 1
                batch.append(seq)
        # 2. Prompts already running, part-way through: the next chunk of each, oldest first.
        for seq in self.running:
            if budget > 0 and seq.num_scheduled_tokens == 0:
                seq.num_scheduled_tokens = min(seq.num_tokens - seq.num_cached_tokens, budget)
                budget -= seq.num_scheduled_tokens
                batch.append(seq)
        # 3. Waiting prompts in arrival order; the first that cannot have its blocks stops admission.
        room = self.admission_room()
        while self.waiting and budget > 0 and room > 0:
            seq = self.waiting[0]
            if not self.block_manager.can_allocate(seq):
                break
            self.waiting.popleft()
            self.block_manager.allocate(seq)  # blocks for every token now: its chunks only fill them
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            room -= 1
            seq.num_scheduled_tokens = min(seq.num_tokens - seq.num_cached_tokens, budget)
            budget -= seq.num_scheduled_tokens
            batch.append(seq)
        return batch
