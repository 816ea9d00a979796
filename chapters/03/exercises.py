"""Chapter 3 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/03

Each test plugs your function into the real chapter-3 engine (ch03.block_manager,
ch03.model_runner, ch03.attention) and checks what it does and the tokens the engine then
generates. The notebook notebooks/03_paged_kv_blocks.ipynb walks through every piece; the
chapter's own code is the answer key, so try before you peek.
"""

import torch


def allocate(self, seq) -> None:
    """ch03.block_manager.BlockManager.allocate (`self` is the block manager): `seq` holds no
    blocks yet and has seq.num_tokens tokens (its prompt). Give it ceil(num_tokens / block_size)
    blocks: take each with self._take_free_block() (it pops the free list and records the block
    as used) and append it to seq.block_table."""
    raise NotImplementedError(
        "Exercise 3.1: allocate — a partial block is still a block: ceil(num_tokens / block_size) "
        "blocks from the free list into seq.block_table; see notebooks/03_paged_kv_blocks.ipynb, "
        "section 'Allocate, append, free'"
    )


def may_append(self, seq) -> None:
    """ch03.block_manager.BlockManager.may_append: before a decode step, seq's newest token (at
    position seq.num_tokens - 1) is about to be stored. If the blocks in seq.block_table cannot
    hold it, append one more block (self._take_free_block()); otherwise do nothing."""
    raise NotImplementedError(
        "Exercise 3.2: grow at the block boundary — take a new block exactly when the newest token "
        "falls past the end of the last block; see notebooks/03_paged_kv_blocks.ipynb, section "
        "'Allocate, append, free'"
    )


def deallocate(self, seq) -> None:
    """ch03.block_manager.BlockManager.deallocate: `seq` has finished. Every block of
    seq.block_table leaves self.used_block_ids and goes back to self.free_block_ids (append at
    the right); then the sequence holds no blocks and has no cached tokens (num_cached_tokens 0)."""
    raise NotImplementedError(
        "Exercise 3.3: free — return each block of the table to the free list, clear the table and "
        "num_cached_tokens; see notebooks/03_paged_kv_blocks.ipynb, section 'Allocate, append, free'"
    )


def compute_slot_mapping(block_table: list[int], start: int, end: int, block_size: int) -> list[int]:
    """The pool slots of one sequence's tokens at positions start .. end - 1 (the tokens this
    step stores). Slot s of the pool is block s // block_size at offset s % block_size; the
    sequence's i-th block is pool block block_table[i]."""
    raise NotImplementedError(
        "Exercise 3.4: slot_mapping — position p goes to block_table[p // block_size] * block_size "
        "+ p % block_size; see notebooks/03_paged_kv_blocks.ipynb, section 'From block table to slots'"
    )


def gather_kv(cache: torch.Tensor, block_table: torch.Tensor, context_len: int) -> torch.Tensor:
    """cache: (num_blocks, block_size, n_kv_heads, head_dim), one layer's K (or V) pool;
    block_table: (>= ceil(context_len / block_size),) int64 block ids of one sequence, maybe
    padded with -1 at the end. Return the sequence's first context_len keys (or values) in
    order: (context_len, n_kv_heads, head_dim)."""
    raise NotImplementedError(
        "Exercise 3.5: gather through the block table — take the sequence's blocks in table order, "
        "lay them end to end, keep context_len tokens; see notebooks/03_paged_kv_blocks.ipynb, "
        "section 'Attention through the block table'"
    )
