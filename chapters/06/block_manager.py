"""BlockManager with a prefix cache: blocks whose K/V another prompt already computed are shared.

Many requests begin alike (one system prompt, the same document, the turns of one chat). Their
first blocks hold the same K/V, so a new prompt reuses them instead of computing them again.

    which block?  A full block is named by a **chained hash**: h_i = xxh64(h_{i-1}, token ids of
                  block i). h_i stands for every token from the start to block i's end, so two
                  prompts share block i only when all their tokens up to there agree: the same
                  words after a different beginning have different K/V (attention saw the
                  beginning) and a different hash. `hash_to_block_id` finds a block by its hash;
                  a hit is checked against the block's own token ids (hashes can collide).
    the last      The block holding a prompt's last token is never a hit: that token must run
    token         through the model, or there are no logits to sample the first new token from.
    sharing       A block counts its holders (`ref_count`); it is free only when the last one leaves.
    lazy          A freed block keeps its K/V and hash, and can still be hit, until the pool needs
    eviction      it for something else: free blocks are handed out least recently freed first
                  (LRU), and only then forget their hash.

A block is named only once its K/V is computed (`cache_blocks`, after each step): with chunked
prefill and preemption, a block may be allocated for a while before anything is written in it.
"""

from collections import OrderedDict


from ch03 import block_manager
from ch03.sequence import Sequence
from ch06 import solutions
from ch06.solutions import compute_hash  # exercise 6.1: the answer key


class Block:
    def __init__(self, block_id: int):
        self.block_id = block_id
        self.ref_count = 0  # sequences holding it; 0: on the free list
        self.hash = -1  # -1: not in the prefix cache (not full, or not computed yet)
        self.token_ids: list[int] = []  # the tokens whose K/V it holds, once it has a hash


class BlockManager(block_manager.BlockManager):
    def __init__(self, num_blocks: int, block_size: int):
        super().__init__(num_blocks, block_size)
        # A block is now an object that counts its holders: that count says whether it is used,
        # so chapter 3's set of used blocks goes. The free list becomes ordered by when each block
        # was freed, least recently freed first (every block, at the start).
        del self.used_block_ids
        self.free_block_ids: OrderedDict[int, None] = OrderedDict.fromkeys(self.free_block_ids)
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.hash_to_block_id: dict[int, int] = {}
        self.num_hit_tokens = 0  # prompt tokens served from the cache so far

    # The reference of the chapter's exercises is in solutions.py, its answer key (read it after them).
    _take_free_block = solutions.take_free_block  # exercise 6.4 (solutions.py)

    def block_tokens(self, seq: Sequence, i: int) -> list[int]:
        return seq.token_ids[i * self.block_size:(i + 1) * self.block_size]

    prefix_hits = solutions.prefix_hits  # exercise 6.2 (solutions.py)

    def can_allocate(self, seq: Sequence) -> bool:
        # A hit on a block someone holds costs nothing; a hit on a free block takes it off the list.
        shared = sum(1 for b in self.prefix_hits(seq) if self.blocks[b].ref_count > 0)
        return self.blocks_needed(seq.num_tokens) - shared <= self.num_free_blocks

    def allocate(self, seq: Sequence) -> None:
        """Blocks for every token of a sequence that holds none: its cached prefix shared, fresh
        blocks for the rest. Its prefill starts after the hits (num_cached_tokens)."""
        assert not seq.block_table, f"{seq} already holds blocks {seq.block_table}"
        hits = self.prefix_hits(seq)
        for block_id in hits:
            block = self.blocks[block_id]
            if block.ref_count == 0:
                del self.free_block_ids[block_id]  # freed but not yet reused: its K/V is still good
            block.ref_count += 1
            seq.block_table.append(block_id)
        for _ in range(self.blocks_needed(seq.num_tokens) - len(hits)):
            seq.block_table.append(self._take_free_block())
        seq.num_cached_tokens = len(hits) * self.block_size
        self.num_hit_tokens += seq.num_cached_tokens

    def cache_blocks(self, seq: Sequence, num_computed: int) -> None:
        """After a step in which seq's K/V up to token num_computed was written: name the blocks
        that became full, so that later prompts can hit them."""
        for i in range(seq.num_cached_tokens // self.block_size, num_computed // self.block_size):
            block = self.blocks[seq.block_table[i]]
            prefix = self.blocks[seq.block_table[i - 1]].hash if i > 0 else -1
            block.token_ids = self.block_tokens(seq, i)
            block.hash = compute_hash(block.token_ids, prefix)
            # Two prompts may have computed the same block side by side: the first one stays named.
            self.hash_to_block_id.setdefault(block.hash, block.block_id)

    deallocate = solutions.deallocate  # exercise 6.3 (solutions.py)
