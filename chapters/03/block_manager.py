"""BlockManager: hands out the pool's blocks to sequences and takes them back.

The pool is `num_blocks` blocks of `block_size` slots each (one slot holds one token's K and V).
A sequence holds just enough blocks for its tokens, ceil(num_tokens / block_size):

    allocate     on its first step (prefill): blocks for the whole prompt
    may_append   before each later step: one more block when the newest token would not fit
    deallocate   when it finishes: every block goes back to the free list at once

So a sequence wastes less than one block (the unfilled end of its last block), where chapter 2's
contiguous row wasted everything between its length and max_model_len. And since any free block
will do, a freed block is reused at once by whichever sequence grows next: no fragmentation.
"""

from collections import deque

from ch03 import solutions
from ch03.sequence import Sequence


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks, self.block_size = num_blocks, block_size
        self.free_block_ids: deque[int] = deque(range(num_blocks))  # handed out from the left
        self.used_block_ids: set[int] = set()

    @property
    def num_free_blocks(self) -> int:
        return len(self.free_block_ids)

    def blocks_needed(self, num_tokens: int) -> int:
        return (num_tokens + self.block_size - 1) // self.block_size  # ceil: a partial block is a block

    def _take_free_block(self) -> int:
        block_id = self.free_block_ids.popleft()
        self.used_block_ids.add(block_id)
        return block_id

    def can_allocate(self, seq: Sequence) -> bool:
        return self.blocks_needed(seq.num_tokens) <= self.num_free_blocks

    # The reference of the chapter's exercises is in solutions.py, its answer key (read it after them).
    allocate = solutions.allocate  # exercise 3.1 (solutions.py)

    def can_append(self, seq: Sequence) -> bool:
        return len(seq.block_table) * self.block_size >= seq.num_tokens or self.num_free_blocks >= 1

    may_append = solutions.may_append  # exercise 3.2 (solutions.py)
    deallocate = solutions.deallocate  # exercise 3.3 (solutions.py)
