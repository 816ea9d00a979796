"""Chapter 6's answer key: the reference of every exercise in exercises.py, in its order.

Write your own first (chapters/06/exercises.py, checked by `pytest chapters/06`), and read
this file after: each function here is the one the chapter's engine runs, imported where it is
used (block_manager.py).
"""

import numpy as np
import xxhash

from ch03.sequence import Sequence


def compute_hash(token_ids: list[int], prefix: int = -1) -> int:
    """The chained hash of one full block: the previous block's hash (none for the first block,
    prefix=-1) and this block's token ids, so it stands for the whole prefix up to this block."""
    h = xxhash.xxh64()
    if prefix != -1:
        h.update(prefix.to_bytes(8, "little"))
    h.update(np.array(token_ids, dtype=np.int64).tobytes())
    return h.intdigest()


def prefix_hits(self, seq: Sequence) -> list[int]:
    """Ids of the cached blocks that hold seq's first full blocks, in order, stopping at the
    first miss; never the block of seq's last token."""
    hits, h = [], -1
    for i in range((seq.num_tokens - 1) // self.block_size):  # the full blocks before the last token's
        token_ids = self.block_tokens(seq, i)
        h = compute_hash(token_ids, h)
        block_id = self.hash_to_block_id.get(h)
        if block_id is None or self.blocks[block_id].token_ids != token_ids:
            break
        hits.append(block_id)
    return hits


def deallocate(self, seq: Sequence) -> None:
    """seq lets go of its blocks; a block nobody holds any more is free, its K/V kept."""
    for block_id in reversed(seq.block_table):  # the tail first: the least likely to be shared, evicted first
        block = self.blocks[block_id]
        block.ref_count -= 1
        if block.ref_count == 0:
            self.free_block_ids[block_id] = None  # at the end: the most recently freed
    seq.block_table = []
    seq.num_cached_tokens = 0


def take_free_block(self) -> int:
    """The least recently freed block, for new K/V: whatever it cached is forgotten now."""
    block_id, _ = self.free_block_ids.popitem(last=False)
    block = self.blocks[block_id]
    if self.hash_to_block_id.get(block.hash) == block_id:
        del self.hash_to_block_id[block.hash]
    block.hash, block.token_ids, block.ref_count = -1, [], 1
    return block_id
