"""ModelRunner over a paged pool: the pool replaces chapter 2's rows, and each step also says
where every new token's K/V goes (`slot_mapping`) and which blocks each sequence reads
(`block_tables`)."""

import torch

from ch02 import model_runner
from ch02.model_runner import prepare_inputs
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
        input_ids, positions, cu_seqlens_q, context_lens = prepare_inputs(seqs)
        slot_mapping = []
        for seq in seqs:  # the same tokens prepare_inputs picked: the uncached ones
            slot_mapping += compute_slot_mapping(seq.block_table, seq.num_cached_tokens, seq.num_tokens, self.block_size)
        width = max(len(seq.block_table) for seq in seqs)
        block_tables = [seq.block_table + [-1] * (width - len(seq.block_table)) for seq in seqs]
        set_context(Context(
            cu_seqlens_q=cu_seqlens_q,
            context_lens=context_lens,
            slot_mapping=torch.tensor(slot_mapping, dtype=torch.int64, device=self.device),
            block_tables=torch.tensor(block_tables, dtype=torch.int64, device=self.device),  # (B, width)
        ))
        return input_ids.to(self.device), positions.to(self.device)
