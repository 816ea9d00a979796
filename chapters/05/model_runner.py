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

from ch04 import model_runner
from ch04.sequence import Sequence
from ch05.solutions import chunk_inputs, logits_indices  # exercises 5.3, 5.4: the answer key


class ModelRunner(model_runner.ModelRunner):
    def sequence_inputs(self, seq: Sequence) -> tuple[list[int], list[int], list[int], int]:
        """Chapter 3 computed every uncached token; here the scheduler's chunk of them."""
        return chunk_inputs(seq, self.block_size)

    def logits_rows(self, seqs: list[Sequence], cu_seqlens_q: list[int]) -> list[int]:
        """Only a sequence whose step reaches its newest token samples one."""
        return logits_indices(seqs, cu_seqlens_q)
