"""Chapter 3's answer key: the reference of every exercise in exercises.py, in its order.

Write your own first (chapters/03/exercises.py, checked by `pytest chapters/03`), and read
this file after: each function here is the one the chapter's engine runs, imported where it is
used (attention.py, block_manager.py, model_runner.py).
"""

import torch

from ch03.sequence import Sequence


def allocate(self, seq: Sequence) -> None:
    """Blocks for every token of a sequence that holds none yet (its prefill)."""
    assert not seq.block_table, f"{seq} already holds blocks {seq.block_table}"
    for _ in range(self.blocks_needed(seq.num_tokens)):
        seq.block_table.append(self._take_free_block())


def may_append(self, seq: Sequence) -> None:
    """Before a decode step: the newest token goes to position num_tokens - 1; if the blocks
    held end before it, take one more block."""
    if len(seq.block_table) * self.block_size < seq.num_tokens:
        seq.block_table.append(self._take_free_block())


def deallocate(self, seq: Sequence) -> None:
    """Give back every block of a finished sequence; none of its K/V is cached any more."""
    for block_id in reversed(seq.block_table):
        self.used_block_ids.remove(block_id)
        self.free_block_ids.append(block_id)
    seq.block_table = []
    seq.num_cached_tokens = 0


def compute_slot_mapping(block_table: list[int], start: int, end: int, block_size: int) -> list[int]:
    """The pool slots of a sequence's tokens at positions start .. end - 1.

    Position p is in the sequence's block p // block_size, at offset p % block_size; the block
    table turns the sequence's block number into the pool's block id.
    """
    return [block_table[p // block_size] * block_size + p % block_size for p in range(start, end)]


def gather_kv(cache: torch.Tensor, block_table: torch.Tensor, context_len: int) -> torch.Tensor:
    """The first context_len keys (or values) of one sequence, in order: (context_len, n_kv_heads, head_dim).

    cache: (num_blocks, block_size, n_kv_heads, head_dim); block_table: (>= ceil(context_len /
    block_size),) block ids, possibly padded with -1 past the ones in use.
    """
    block_size = cache.shape[1]
    num_blocks = (context_len + block_size - 1) // block_size
    blocks = cache[block_table[:num_blocks]]  # (num_blocks, block_size, n_kv_heads, head_dim), in the sequence's order
    return blocks.flatten(0, 1)[:context_len]  # (num_blocks * block_size, ...) -> drop the unfilled end of the last block
