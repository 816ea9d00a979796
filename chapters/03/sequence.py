"""Sequence with a block table: the list of pool blocks that hold its keys and values, in order.

Token i of the sequence lives in block block_table[i // block_size], at offset i % block_size.
The blocks need not be next to each other in the pool, nor in order: the table is what keeps
the sequence's tokens in order. It extends chapter 2's Sequence, not its RowSequence: the table
replaces the row.
"""

from ch01.sampling_params import SamplingParams
from ch02 import sequence


class Sequence(sequence.Sequence):
    def __init__(self, token_ids: list[int], sampling_params: SamplingParams = SamplingParams()):
        super().__init__(token_ids, sampling_params)
        self.block_table: list[int] = []
