"""Chapter 8's answer key: the chapter's own versions of the functions exercises.py asks for.

Try the exercises first (chapters/08/exercises.py, with the hints in
notebooks/08_tensor_parallel.ipynb). The layers in linear.py and embed_head.py use these
functions as their methods, so the engine runs on exactly this code.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ch08 import comm


def column_parallel_weight_loader(self, param: nn.Parameter, loaded: torch.Tensor) -> None:
    """ColumnParallelLinear.weight_loader: rank r keeps rows r·s .. (r+1)·s of the checkpoint's
    weight (out_features, in_features) and of its bias (out_features,), s = out_features / n."""
    size = param.shape[0]
    shard = loaded.narrow(0, self.tp_rank * size, size)  # dim 0 of the weight and of the bias alike
    if shard.shape != param.shape:
        raise ValueError(f"a checkpoint tensor of shape {tuple(loaded.shape)} does not split into {tuple(param.shape)}")
    param.data.copy_(shard)


def row_parallel_weight_loader(self, param: nn.Parameter, loaded: torch.Tensor) -> None:
    """RowParallelLinear.weight_loader: rank r keeps columns r·s .. (r+1)·s of the weight,
    s = in_features / n; the bias (out_features,) belongs to the whole output, so it is kept whole."""
    if param.dim() == 2:
        size = param.shape[1]
        loaded = loaded.narrow(1, self.tp_rank * size, size)
    if loaded.shape != param.shape:
        raise ValueError(f"a checkpoint tensor of shape {tuple(loaded.shape)} does not fit {tuple(param.shape)}")
    param.data.copy_(loaded)


def row_parallel_forward(self, x: torch.Tensor) -> torch.Tensor:
    """RowParallelLinear.forward: x (T, in_features / n) -> (T, out_features) on every rank."""
    # The bias joins on rank 0 only: the all-reduce would otherwise add it n times.
    y = F.linear(x, self.weight, self.bias if self.tp_rank == 0 else None)  # (T, out): this rank's partial sum
    if self.tp_size > 1:
        comm.all_reduce(y)  # the sum of the n partial sums: x·Wᵀ over all in_features
    return y


def vocab_parallel_embedding_forward(self, x: torch.Tensor) -> torch.Tensor:
    """VocabParallelEmbedding.forward: token ids x (T,) -> (T, D), every token's embedding on every rank."""
    if self.tp_size == 1:
        return F.embedding(x, self.weight)
    mine = (x >= self.vocab_start_idx) & (x < self.vocab_end_idx)  # (T,): the ids in this rank's rows
    local = (x - self.vocab_start_idx) * mine  # (T,): a row of the shard; 0 (any valid row) for the others
    y = F.embedding(local, self.weight) * mine.unsqueeze(1)  # (T, D): the others' rows zeroed
    comm.all_reduce(y)  # each token's row comes from the one rank that holds it
    return y


def allreduce_bytes_per_token(config, tensor_parallel_size: int, dtype_bytes: int = 2) -> float:
    """Bytes one rank sends, per token, in the all-reduces of one forward pass through the model
    (a ch01.ModelConfig), with ring all-reduces of hidden vectors of `dtype_bytes` numbers."""
    num_all_reduces = 2 * config.num_hidden_layers + 1  # o_proj and down_proj of each layer, the embedding
    return num_all_reduces * comm.ring_all_reduce_bytes(config.hidden_size * dtype_bytes, tensor_parallel_size)
