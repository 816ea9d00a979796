"""Chapter 3 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/03

Each test plugs your function into the real chapter-3 engine (ch03.block_manager,
ch03.model_runner, ch03.attention) and checks what it does and the tokens the engine then
generates. The notebook notebooks/03_paged_kv_blocks.ipynb walks through every piece and has
hints for each exercise, from a nudge to nearly the answer; the chapter's page shows a solution
after each exercise, folded, so try before you peek.
"""

import torch

# What the three BlockManager exercises (3.1-3.3) work with; `self` is the block manager:
#   self.block_size          slots per block (tokens per block)
#   self.free_block_ids      a deque of the ids of the blocks nobody holds
#   self.used_block_ids      a set of the ids of the blocks some sequence holds
#   self._take_free_block()  takes the first free block (moves it from free to used), returns its id
#   seq.num_tokens           the sequence's length, prompt and generated tokens
#   seq.block_table          a list of the pool block ids the sequence holds, in its order
#   seq.num_cached_tokens    how many of its tokens have their K/V stored


def allocate(self, seq) -> None:
    """ch03.block_manager.BlockManager.allocate. `seq` holds no blocks yet; its seq.num_tokens
    tokens (the prompt) are about to be prefilled. Give it just enough blocks to hold all of
    them, and not one more: take each with self._take_free_block() and append it to
    seq.block_table. (The engine has checked there are enough free blocks.)"""
    raise NotImplementedError(
        "Exercise 3.1: write BlockManager.allocate (give a new sequence just enough blocks for its "
        "prompt); see notebooks/03_paged_kv_blocks.ipynb, section 'Allocate, append, free'"
    )


def may_append(self, seq) -> None:
    """ch03.block_manager.BlockManager.may_append. Called before each decode step: seq's newest
    token, at position seq.num_tokens - 1, is about to be stored. If the blocks in
    seq.block_table have no slot for it, append one more block (self._take_free_block());
    otherwise change nothing."""
    raise NotImplementedError(
        "Exercise 3.2: write BlockManager.may_append (take one more block when, and only when, the "
        "newest token has no slot in the blocks held); see notebooks/03_paged_kv_blocks.ipynb, "
        "section 'Allocate, append, free'"
    )


def deallocate(self, seq) -> None:
    """ch03.block_manager.BlockManager.deallocate. `seq` has finished. Every block of
    seq.block_table leaves self.used_block_ids and is appended to self.free_block_ids (at the
    right); then the sequence holds no blocks and no cached tokens (num_cached_tokens 0)."""
    raise NotImplementedError(
        "Exercise 3.3: write BlockManager.deallocate (give every block of a finished sequence back "
        "to the pool); see notebooks/03_paged_kv_blocks.ipynb, section 'Allocate, append, free'"
    )


def compute_slot_mapping(block_table: list[int], start: int, end: int, block_size: int) -> list[int]:
    """The pool slots of one sequence's tokens at positions start .. end - 1 (the tokens this
    step stores), as a list of ints, one per position.

    The pool read as one flat line of slots: block b holds slots b * block_size up to
    (b + 1) * block_size - 1, in order. The sequence's tokens fill its blocks in order,
    block_size tokens per block, and its i-th block is pool block block_table[i].
    """
    raise NotImplementedError(
        "Exercise 3.4: write compute_slot_mapping (the pool slot of each of the sequence's tokens "
        "from start to end - 1); see notebooks/03_paged_kv_blocks.ipynb, section 'From block table "
        "to slots'"
    )


def gather_kv(cache: torch.Tensor, block_table: torch.Tensor, context_len: int) -> torch.Tensor:
    """Read one sequence's keys (or values) back out of the pool, in position order.

    cache: (num_blocks, block_size, n_kv_heads, head_dim), one layer's K (or V) pool.
    block_table: an int64 tensor of the sequence's pool block ids in its order, maybe padded
    with -1 past the blocks it holds. context_len: how many of its tokens to read.
    Returns (context_len, n_kv_heads, head_dim): row p is the token at position p.
    """
    raise NotImplementedError(
        "Exercise 3.5: write gather_kv (read one sequence's first context_len keys or values back "
        "out of the pool, in order); see notebooks/03_paged_kv_blocks.ipynb, section 'Attention "
        "through the block table'"
    )
