"""Chapter 5's scheduler, which now also tells the block manager what each step computed.

The prefix cache may only name a block once its K/V is written: a prompt in chunks, or one
preempted half-way, holds blocks that are still empty. So after every forward pass, before
chapter 4's postprocess (which may finish a sequence and free its blocks), each sequence's
newly filled blocks are named in the cache (`BlockManager.cache_blocks`).
"""

from ch04.sequence import Sequence
from ch05 import scheduler


class Scheduler(scheduler.Scheduler):
    def postprocess(self, seqs: list[Sequence], token_ids: list[int | None]) -> None:
        for seq in seqs:
            self.block_manager.cache_blocks(seq, seq.num_cached_tokens + seq.num_scheduled_tokens)
        super().postprocess(seqs, token_ids)
