"""Chapter 6 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/06

Each test plugs your function into the real chapter-6 engine (ch06.block_manager.BlockManager,
which ch06.LLM uses) and checks what it does and the tokens the engine then generates. The
notebook notebooks/06_prefix_cache.ipynb walks through every piece and has hints for each
exercise, from a nudge to nearly the answer; the chapter's page shows a solution after each
exercise, folded, so try before you peek.
"""

# What the block-manager exercises (6.2-6.4) work with; `self` is the BlockManager:
#   self.block_size                 tokens per block
#   self.blocks[i]                  the Block with block_id i: .block_id, .ref_count (how many sequences
#                                   hold it), .hash (-1: not cached), .token_ids (the tokens it caches)
#   self.hash_to_block_id           dict: chained hash -> id of the block that caches it
#   self.free_block_ids             OrderedDict of free block ids (values None), least recently freed
#                                   first: popitem(last=False) takes the first, d[i] = None adds at the end
#   self.block_tokens(seq, i)       the token ids of seq's i-th block
#   seq.token_ids, seq.num_tokens, seq.block_table, seq.num_cached_tokens


def compute_hash(token_ids: list[int], prefix: int = -1) -> int:
    """ch06.block_manager.compute_hash: the chained hash of one full block, as a Python int of at
    most 64 bits. `prefix` is the chained hash of the block before it (-1 for a sequence's first
    block, which has none). Feed an xxhash.xxh64() hasher (h.update(bytes), h.intdigest()) the
    prefix as 8 little-endian bytes (int.to_bytes(8, "little")), unless it is -1, then the token
    ids as 64-bit integers (numpy.array(token_ids, dtype=numpy.int64).tobytes())."""
    raise NotImplementedError(
        "Exercise 6.1: write compute_hash (a block's hash must stand for every token before it "
        "too, not only its own); see notebooks/06_prefix_cache.ipynb, section 'Exercise 6.1 — the chained hash'"
    )


def prefix_hits(self, seq) -> list[int]:
    """ch06.block_manager.BlockManager.prefix_hits: the ids of the cached blocks that already hold
    seq's first blocks, in order. Walk seq's full blocks from the first, chaining compute_hash
    (from ch06.block_manager) along the way; block i is a hit when self.hash_to_block_id has its
    hash and that block's token_ids are block i's tokens. The walk stops at the first block that
    is not a hit, and never reaches the block holding seq's last token: that token's logits are
    needed, so it must be computed."""
    raise NotImplementedError(
        "Exercise 6.2: write BlockManager.prefix_hits (which of a prompt's leading blocks are cached, "
        "checked against their tokens, stopping short of the last token); see notebooks/06_prefix_cache.ipynb, "
        "section 'Exercise 6.2 — finding the cached prefix'"
    )


def deallocate(self, seq) -> None:
    """ch06.block_manager.BlockManager.deallocate: seq lets go of every block in its block table,
    the last one first. Each block has one holder fewer; a block nobody holds any more goes to the
    end of the free list, keeping its hash and token ids (it can still be hit until it is reused).
    Afterwards seq holds no blocks and has no cached tokens."""
    raise NotImplementedError(
        "Exercise 6.3: write BlockManager.deallocate (count the holders down; only a block nobody "
        "holds is free, and it stays cached); see notebooks/06_prefix_cache.ipynb, section "
        "'Exercise 6.3 — letting go of shared blocks'"
    )


def take_free_block(self) -> int:
    """ch06.block_manager.BlockManager._take_free_block: hand out a free block for new K/V and
    return its id. Take the least recently freed one; if the hash map still names it, remove that
    entry (only if it names this block); the block then caches nothing (hash -1, no token ids) and
    has one holder."""
    raise NotImplementedError(
        "Exercise 6.4: write BlockManager._take_free_block (evict the least recently freed block, "
        "and make the cache forget it); see notebooks/06_prefix_cache.ipynb, section "
        "'Exercise 6.4 — which cached block to evict'"
    )
