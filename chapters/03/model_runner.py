"""ModelRunner over a paged pool: the pool replaces chapter 2's rows, and each step also says
where every new token's K/V goes (`slot_mapping`) and which blocks each sequence reads
(`block_tables`)."""

import torch

from ch02 import model_runner
from ch03.context import Context, set_context
from ch03.sequence import Sequence
from ch03.solutions import compute_slot_mapping  # exercise 3.4: the answer key


class ModelRunner(model_runner.ModelRunner):
    def __init__(self, model, num_blocks: int, block_size: int):
        # Chapter 2's cache had one row of max_model_len slots per sequence; the pool is the same
        # kind of tensor with num_blocks short rows of block_size slots:
        # kv_cache (2, n_layers, num_blocks, block_size, n_kv_heads, head_dim).
        super().__init__(model, num_blocks, block_size)
        self.block_size = block_size

    def prepare(self, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every sequence's new tokens back to back in one flat batch (sequence_inputs says which
        tokens), and the batch's layout in the Context for the attention layers."""
        input_ids, positions, slot_mapping, cu_seqlens_q, context_lens = [], [], [], [0], []
        for seq in seqs:
            ids, pos, slots, context_len = self.sequence_inputs(seq)
            input_ids += ids
            positions += pos
            slot_mapping += slots
            cu_seqlens_q.append(cu_seqlens_q[-1] + len(ids))
            context_lens.append(context_len)
        width = max(len(seq.block_table) for seq in seqs)
        block_tables = [seq.block_table + [-1] * (width - len(seq.block_table)) for seq in seqs]
        as_tensor = lambda values: torch.tensor(values, dtype=torch.int64, device=self.device)  # noqa: E731
        set_context(Context(
            cu_seqlens_q=torch.tensor(cu_seqlens_q),  # (B+1,)
            context_lens=torch.tensor(context_lens),  # (B,)
            slot_mapping=as_tensor(slot_mapping),  # (N,)
            block_tables=as_tensor(block_tables),  # (B, width)
        ))
        return as_tensor(input_ids), as_tensor(positions)

    def sequence_inputs(self, seq: Sequence) -> tuple[list[int], list[int], list[int], int]:
        """What this step computes for seq: (input_ids, positions, slot_mapping, context_len) of its
        uncached tokens, as chapter 2's prepare_inputs picks them (the whole prompt, then the newest
        token), with the pool slot of each. Chapter 5 changes only this: a chunk of them."""
        start, end = seq.num_cached_tokens, seq.num_tokens
        slots = compute_slot_mapping(seq.block_table, start, end, self.block_size)
        return seq.token_ids[start:end], list(range(start, end)), slots, end
