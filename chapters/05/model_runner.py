"""ModelRunner for mixed steps: decodes and prompt chunks in one flat batch.

A sequence computes seq.num_scheduled_tokens tokens this step, starting after its
num_cached_tokens cached ones: one token for a decode, a chunk for a prompt. For a chunk that
starts in the middle of its prompt, at position s = num_cached_tokens and ending at e:

    input_ids     token_ids[s:e]
    positions     s .. e - 1              (its place in the sequence, not in the chunk)
    slot_mapping  the pool slots of positions s .. e - 1, through the block table
    context_len   e                       (it attends to the s cached tokens and to itself)

Chapter 2's attention already handles queries that start after a cached prefix, so a chunk is
computed exactly as the same tokens would be in one long prefill. Only a sequence whose step
reaches its newest token has a next token to predict: the rows of the other chunks get no logits.
"""

import torch

from ch03.context import Context, set_context
from ch04 import model_runner
from ch04.sequence import Sequence
from ch05.solutions import chunk_inputs, logits_indices  # exercises 5.3, 5.4: the answer key


class ModelRunner(model_runner.ModelRunner):
    def prepare(self, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        input_ids, positions, slot_mapping, cu_seqlens_q, context_lens = [], [], [], [0], []
        for seq in seqs:
            ids, pos, slots, context_len = chunk_inputs(seq, self.block_size)
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
        return as_tensor(input_ids), as_tensor(positions), as_tensor(logits_indices(seqs, cu_seqlens_q))
