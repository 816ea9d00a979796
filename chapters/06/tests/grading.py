"""Chapter 6's answer key and the wrong answers its graders must reject (see course/grading.py)."""

import numpy as np
import xxhash

from ch06 import block_manager
from ch06.block_manager import BlockManager

REFERENCE = {
    "compute_hash": block_manager.compute_hash,
    "prefix_hits": BlockManager.prefix_hits,
    "deallocate": BlockManager.deallocate,
    "take_free_block": BlockManager._take_free_block,
}


# --- 6.1 the chained hash ------------------------------------------------------------------------
def hash_block_alone(token_ids, prefix=-1):
    # forgets the prefix: the same words after a different beginning look like the same block
    return xxhash.xxh64(np.array(token_ids, dtype=np.int64).tobytes()).intdigest()


def hash_first_token_only(token_ids, prefix=-1):
    # chained, but only the block's first token counts: blocks that differ later collide
    h = xxhash.xxh64()
    if prefix != -1:
        h.update(prefix.to_bytes(8, "little"))
    h.update(np.array(token_ids[:1], dtype=np.int64).tobytes())
    return h.intdigest()


# --- 6.2 the cached prefix -----------------------------------------------------------------------
def _walk(self, seq, *, num_blocks, check_tokens=True, stop_at_miss=True):
    hits, h = [], -1
    for i in range(num_blocks):
        token_ids = self.block_tokens(seq, i)
        h = block_manager.compute_hash(token_ids, h)
        block_id = self.hash_to_block_id.get(h)
        if block_id is None or (check_tokens and self.blocks[block_id].token_ids != token_ids):
            if stop_at_miss:
                break
            continue
        hits.append(block_id)
    return hits


def hits_reach_the_last_token(self, seq):
    # every full block may hit, the last token's too: a repeated prompt has nothing left to compute
    return _walk(self, seq, num_blocks=seq.num_tokens // self.block_size)


def hits_trust_the_hash(self, seq):
    # no token check: a hash collision serves another prompt's K/V
    return _walk(self, seq, num_blocks=(seq.num_tokens - 1) // self.block_size, check_tokens=False)


def hits_skip_a_miss(self, seq):
    # goes on after a miss: a block whose prefix was evicted is used with a hole before it
    return _walk(self, seq, num_blocks=(seq.num_tokens - 1) // self.block_size, stop_at_miss=False)


# --- 6.3 deallocate ------------------------------------------------------------------------------
def _release(self, seq, *, order, free_shared=False, forget=False, to_front=False):
    for block_id in order(seq.block_table):
        block = self.blocks[block_id]
        block.ref_count = 0 if free_shared else block.ref_count - 1
        if block.ref_count == 0 and block_id not in self.free_block_ids:
            if forget and self.hash_to_block_id.get(block.hash) == block_id:
                del self.hash_to_block_id[block.hash]
                block.hash, block.token_ids = -1, []
            self.free_block_ids[block_id] = None
            if to_front:
                self.free_block_ids.move_to_end(block_id, last=False)
    seq.block_table = []
    seq.num_cached_tokens = 0


def deallocate_frees_shared_blocks(self, seq):
    # a finished sequence frees every block it held, though others still read them
    _release(self, seq, order=reversed, free_shared=True)


def deallocate_forgets_the_hashes(self, seq):
    # eager eviction: a freed block leaves the cache at once, so a request that comes a moment later misses
    _release(self, seq, order=reversed, forget=True)


def deallocate_head_first(self, seq):
    # frees the first block first: the shared beginning is the first to be evicted, the tail the last
    _release(self, seq, order=list)


def deallocate_to_the_front_of_the_free_list(self, seq):
    # a freed block goes first in line: the block just freed, the likeliest to be asked for again, is the next one reused
    _release(self, seq, order=reversed, to_front=True)


# --- 6.4 taking a free block ----------------------------------------------------------------------
def take_most_recently_freed(self):
    # LIFO: the blocks just freed, the likeliest to be asked for again, are evicted first
    block_id, _ = self.free_block_ids.popitem(last=True)
    block = self.blocks[block_id]
    if self.hash_to_block_id.get(block.hash) == block_id:
        del self.hash_to_block_id[block.hash]
    block.hash, block.token_ids, block.ref_count = -1, [], 1
    return block_id


def take_without_evicting(self):
    # the block gets new K/V but the cache still names it by its old tokens: a later hit reads the new K/V
    block_id, _ = self.free_block_ids.popitem(last=False)
    self.blocks[block_id].ref_count = 1
    return block_id


def take_forgets_any_block_with_its_hash(self):
    # deletes the hash entry without asking which block it names: when two blocks were computed with
    # the same tokens side by side, evicting the unnamed copy makes the cache forget the named one
    block_id, _ = self.free_block_ids.popitem(last=False)
    block = self.blocks[block_id]
    self.hash_to_block_id.pop(block.hash, None)
    block.hash, block.token_ids, block.ref_count = -1, [], 1
    return block_id


def take_keeps_the_old_tokens(self):
    # the hash entry goes, but the block's hash and token_ids stay: cache_blocks and the token check read stale data
    block_id, _ = self.free_block_ids.popitem(last=False)
    block = self.blocks[block_id]
    if self.hash_to_block_id.get(block.hash) == block_id:
        del self.hash_to_block_id[block.hash]
    block.ref_count = 1
    return block_id


PLANTED = {
    "compute_hash": [hash_block_alone, hash_first_token_only],
    "prefix_hits": [hits_reach_the_last_token, hits_trust_the_hash, hits_skip_a_miss],
    "deallocate": [deallocate_frees_shared_blocks, deallocate_forgets_the_hashes, deallocate_head_first,
                   deallocate_to_the_front_of_the_free_list],
    "take_free_block": [take_most_recently_freed, take_without_evicting, take_forgets_any_block_with_its_hash,
                        take_keeps_the_old_tokens],
}
