"""BlockManager: hands out KV-cache blocks and shares the ones whose contents repeat.

Prefix caching. A full block is named by a chained hash: xxhash of (previous block's hash, this
block's token ids), so one hash stands for the whole prefix up to the block's end. A new
sequence looks its full prompt blocks up in `hash_to_block_id`; a hit whose token ids match
too (hash collisions are rare, not impossible) is shared by raising its ref count instead of
being computed again.

Three details keep it correct:
- A block is registered only after its K/V has been computed (`cache_blocks`), so a sequence
  never reads a block another sequence has not filled yet (chunked prefill makes that possible).
- The block holding a prompt's last token is never a hit: that token's logits are needed, so at
  least one token must run through the model.
- Freed blocks keep their contents and hash (lazy eviction): they sit in `free_block_ids` in the
  order they were freed, are handed out oldest first (LRU), and only then lose their hash.
"""

from collections import OrderedDict

import numpy as np
import xxhash

from nanovllm_final.engine.sequence import Sequence


class Block:
    def __init__(self, block_id: int):
        self.block_id = block_id
        self.ref_count = 0
        self.hash = -1  # -1: not in the prefix cache
        self.token_ids: list[int] = []

    def reset(self) -> None:
        self.ref_count = 1
        self.hash = -1
        self.token_ids = []


def compute_hash(token_ids: list[int], prefix: int = -1) -> int:
    """The chained hash of one full block: it covers every token from the sequence's start."""
    h = xxhash.xxh64()
    if prefix != -1:
        h.update(prefix.to_bytes(8, "little"))
    h.update(np.array(token_ids, dtype=np.int64).tobytes())
    return h.intdigest()


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int):
        self.block_size = block_size
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.hash_to_block_id: dict[int, int] = {}
        self.free_block_ids: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))  # LRU first
        self.num_hit_tokens = 0  # prompt tokens served from the prefix cache, for stats and tests
        self.num_query_tokens = 0  # prompt tokens looked up there (hit rate: hits / queries)

    @property
    def num_free_blocks(self) -> int:
        return len(self.free_block_ids)

    def _take_free_block(self, block_id: int | None = None) -> Block:
        """Take the least recently freed block (or a given one); evict its cached contents."""
        if block_id is None:
            block_id, _ = self.free_block_ids.popitem(last=False)
        else:
            del self.free_block_ids[block_id]
        block = self.blocks[block_id]
        assert block.ref_count == 0
        if block.hash != -1 and self.hash_to_block_id.get(block.hash) == block_id:
            del self.hash_to_block_id[block.hash]
        block.reset()
        return block

    def blocks_needed(self, num_tokens: int) -> int:
        """Blocks that num_tokens tokens fill (chapter 3's name). The block size is this pool's: two
        engines with different sizes can live in one process."""
        return (num_tokens + self.block_size - 1) // self.block_size

    def block_tokens(self, seq: Sequence, i: int) -> list[int]:
        """The token ids of the sequence's i-th block (the last one may be partial)."""
        return seq.token_ids[i * self.block_size:(i + 1) * self.block_size]

    def block_hashes(self, seq: Sequence) -> list[int]:
        """The chained hashes of the sequence's full blocks that may be shared: all but the block
        holding its last token. Kept on the sequence and only extended: a full block never changes."""
        hashes = seq.block_hashes
        for i in range(len(hashes), (seq.num_tokens - 1) // self.block_size):
            hashes.append(compute_hash(self.block_tokens(seq, i), hashes[-1] if hashes else -1))
        return hashes[:(seq.num_tokens - 1) // self.block_size]

    def num_cached_blocks(self, hashes: list[int]) -> int:
        """How many of these leading block hashes the prefix cache holds (by hash alone)."""
        n = 0
        while n < len(hashes) and hashes[n] in self.hash_to_block_id:
            n += 1
        return n

    def prefix_hits(self, seq: Sequence) -> list[int]:
        """Block ids already holding this sequence's leading full blocks (never the last token's)."""
        hits = []
        for i, h in enumerate(self.block_hashes(seq)):
            block_id = self.hash_to_block_id.get(h, -1)
            if block_id == -1 or self.blocks[block_id].token_ids != self.block_tokens(seq, i):
                break
            hits.append(block_id)
        return hits

    def can_allocate(self, seq: Sequence) -> bool:
        hits = self.prefix_hits(seq)
        # A hit on a block nobody uses still takes it off the free list.
        in_use = sum(1 for b in hits if self.blocks[b].ref_count > 0)
        return self.blocks_needed(seq.num_tokens) - in_use <= self.num_free_blocks

    def allocate(self, seq: Sequence) -> None:
        """Give a waiting sequence blocks for all its tokens, reusing cached prefix blocks."""
        assert not seq.block_table
        hits = self.prefix_hits(seq)
        for block_id in hits:
            block = self.blocks[block_id]
            if block.ref_count == 0:
                del self.free_block_ids[block_id]  # revived before eviction: contents still valid
            block.ref_count += 1
            seq.block_table.append(block_id)
        for _ in range(self.blocks_needed(seq.num_tokens) - len(hits)):
            seq.block_table.append(self._take_free_block().block_id)
        seq.num_cached_tokens = len(hits) * self.block_size
        seq.num_hashed_blocks = len(hits)
        self.num_hit_tokens += seq.num_cached_tokens
        self.num_query_tokens += seq.num_tokens

    def deallocate(self, seq: Sequence) -> None:
        # Last block first, so a sequence's tail (least likely to be shared) is evicted first.
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            assert block.ref_count >= 0
            if block.ref_count == 0:
                self.free_block_ids[block_id] = None
        seq.block_table = []
        seq.num_cached_tokens = 0
        seq.num_hashed_blocks = 0

    def can_append(self, seq: Sequence) -> bool:
        """Room for the newest token: a fresh block only when the table is full."""
        return len(seq.block_table) * self.block_size >= seq.num_tokens or self.num_free_blocks >= 1

    def may_append(self, seq: Sequence) -> None:
        if len(seq.block_table) * self.block_size < seq.num_tokens:
            seq.block_table.append(self._take_free_block().block_id)

    def cache_blocks(self, seq: Sequence) -> None:
        """Register the sequence's blocks that became full and computed in the last step."""
        num_full = seq.num_cached_tokens // self.block_size
        for i in range(seq.num_hashed_blocks, num_full):
            prefix = self.blocks[seq.block_table[i - 1]].hash if i > 0 else -1
            block = self.blocks[seq.block_table[i]]
            token_ids = self.block_tokens(seq, i)
            block.hash = compute_hash(token_ids, prefix)
            block.token_ids = token_ids
            # Two sequences may have computed the same prefix side by side; the first one stays.
            self.hash_to_block_id.setdefault(block.hash, block.block_id)
        seq.num_hashed_blocks = max(seq.num_hashed_blocks, num_full)
