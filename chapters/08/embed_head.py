"""The token embedding and the LM head, split over the vocabulary.

Both are a (vocab_size, D) matrix, the largest of a small model (SmolLM2: 49,152 × 576, a fifth
of its weights). Rank r holds rows r·V/n .. (r+1)·V/n, the vocabulary padded up to a multiple
of n with rows no token id reaches.

    VocabParallelEmbedding   each rank looks up the ids in its rows and writes zeros for the
                             others; an all-reduce adds the n pieces, so every token's vector
                             comes from the one rank that holds it
    ParallelLMHead           each rank scores its slice of the vocabulary, (T, V/n); rank 0,
                             the one that samples, gathers the n slices into (T, V)
"""

import torch
import torch.nn.functional as F
from torch import nn

from ch08 import comm, solutions
from ch08.linear import _building


class VocabParallelEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.tp_rank, self.tp_size = _building["rank"], _building["size"]
        self.num_embeddings = num_embeddings
        self.num_embeddings_per_partition = -(-num_embeddings // self.tp_size)  # padded: the last rank's tail is unused
        self.vocab_start_idx = self.tp_rank * self.num_embeddings_per_partition
        self.vocab_end_idx = min(self.vocab_start_idx + self.num_embeddings_per_partition, num_embeddings)
        self.weight = nn.Parameter(torch.empty(self.num_embeddings_per_partition, embedding_dim), requires_grad=False)
        self.weight.weight_loader = self.weight_loader

    def weight_loader(self, param: nn.Parameter, loaded: torch.Tensor) -> None:
        """The checkpoint's (vocab_size, D) matrix: this rank's rows; padding rows are zero."""
        if tuple(loaded.shape) != (self.num_embeddings, param.shape[1]):
            raise ValueError(f"an embedding of shape {tuple(loaded.shape)} does not fit ({self.num_embeddings}, {param.shape[1]})")
        shard = loaded[self.vocab_start_idx:self.vocab_end_idx]  # (<= V/n, D)
        param.data.zero_()
        param.data[:len(shard)].copy_(shard)

    # The reference of exercise 8.4 is in the answer key:
    forward = solutions.vocab_parallel_embedding_forward  # exercise 8.4 (solutions.py)


class ParallelLMHead(VocabParallelEmbedding):
    """Takes chapter 1's LM-head arguments (hidden size, vocab size, bias); shares the
    embedding's shard when the model ties the two."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        if bias:
            raise ValueError("a vocab-parallel LM head has no bias (none of the supported models has one)")
        super().__init__(out_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """(S, D) hidden states -> (S, vocab_size) logits on rank 0; None on the other ranks."""
        logits = F.linear(x, self.weight)  # (S, V/n): this rank's slice of the vocabulary
        if self.tp_size > 1:
            parts = comm.gather_to_first(logits, self.tp_rank, self.tp_size)
            if parts is None:
                return None  # only rank 0 samples
            logits = torch.cat(parts, dim=-1)  # (S, n·V/n): the slices side by side, in rank order
        return logits[:, :self.num_embeddings]  # drop the padding rows' scores
