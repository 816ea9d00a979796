"""Token embedding and LM head, split over the vocabulary across tensor-parallel ranks.

Rank r holds rows [r*V/tp, (r+1)*V/tp) of the embedding matrix. Embedding: each rank looks up
the tokens in its range, writes zeros for the others, and an all-reduce sums the pieces. LM
head: each rank scores its slice of the vocabulary and rank 0 gathers the full logits, since
only rank 0 samples.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from nanovllm_final.kernels import linear
from nanovllm_final.layers.linear import tp_rank_and_size


class VocabParallelEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.tp_rank, self.tp_size = tp_rank_and_size()
        self.num_embeddings = num_embeddings
        # Pad the vocabulary up to a multiple of tp_size; the padding rows are never looked up.
        self.num_embeddings_per_partition = (num_embeddings + self.tp_size - 1) // self.tp_size
        self.vocab_start_idx = self.num_embeddings_per_partition * self.tp_rank
        self.vocab_end_idx = self.vocab_start_idx + self.num_embeddings_per_partition
        self.weight = nn.Parameter(torch.empty(self.num_embeddings_per_partition, embedding_dim), requires_grad=False)
        self.weight.weight_loader = self.weight_loader

    def weight_loader(self, param: nn.Parameter, loaded: torch.Tensor) -> None:
        if loaded.shape[0] != self.num_embeddings or loaded.shape[1] != param.shape[1]:
            raise ValueError(f"embedding of shape {tuple(loaded.shape)} does not fit ({self.num_embeddings}, {param.shape[1]})")
        shard = loaded[self.vocab_start_idx:self.vocab_end_idx]
        param.data.zero_()
        param.data[:shard.shape[0]].copy_(shard)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tp_size == 1:
            return F.embedding(x, self.weight)  # (T, D)
        mine = (x >= self.vocab_start_idx) & (x < self.vocab_end_idx)
        y = F.embedding((x - self.vocab_start_idx) * mine, self.weight)  # (T, D); others look up row 0
        y = y * mine.unsqueeze(1).to(y.dtype)  # ...and are zeroed here
        dist.all_reduce(y)
        return y


class ParallelLMHead(VocabParallelEmbedding):
    def __init__(self, num_embeddings: int, embedding_dim: int, bias: bool = False):
        assert not bias
        super().__init__(num_embeddings, embedding_dim)

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor | None:
        """(N, D) hidden states -> (N, vocab) logits on rank 0, None elsewhere. `out`, a contiguous
        (N, vocab) tensor, takes the logits in place (one rank only: a decode CUDA graph's buffer)."""
        if out is not None:
            assert self.tp_size == 1, "out= needs tensor_parallel_size 1"
            return linear(x, self.weight, out=out)
        logits = linear(x, self.weight)  # (N, V/tp)
        if self.tp_size > 1:
            parts = [torch.empty_like(logits) for _ in range(self.tp_size)] if self.tp_rank == 0 else None
            dist.gather(logits, parts, 0)
            logits = torch.cat(parts, dim=-1) if self.tp_rank == 0 else None
        return logits if logits is None else logits[:, :self.num_embeddings]
