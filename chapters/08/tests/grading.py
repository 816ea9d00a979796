"""Chapter 8's answer key and the wrong answers its graders must reject (see course/grading.py)."""

import torch
import torch.nn.functional as F

from ch08 import comm, solutions

REFERENCE = {
    "column_parallel_weight_loader": solutions.column_parallel_weight_loader,
    "row_parallel_weight_loader": solutions.row_parallel_weight_loader,
    "row_parallel_forward": solutions.row_parallel_forward,
    "vocab_parallel_embedding_forward": solutions.vocab_parallel_embedding_forward,
    "allreduce_bytes_per_token": solutions.allreduce_bytes_per_token,
}


# --- 8.1 the column-parallel loader ----------------------------------------------------------------
def column_loader_first_shard(self, param, loaded):
    # every rank takes the first rows: rank r computes rank 0's outputs
    param.data.copy_(loaded[:param.shape[0]])


def column_loader_interleaved(self, param, loaded):
    # every tp_size-th row from row tp_rank: the right count, but outputs no head is made of
    param.data.copy_(loaded[self.tp_rank::self.tp_size])


def column_loader_by_columns(self, param, loaded):
    # cuts the input features, as a row-parallel layer does
    if param.dim() == 2:
        size = loaded.shape[1] // self.tp_size  # (out, in / n) reshaped to fit (out / n, in)
        param.data.copy_(loaded.narrow(1, self.tp_rank * size, size).reshape(param.shape))
    else:
        param.data.copy_(loaded[:param.shape[0]])


def column_loader_bias_unsplit(self, param, loaded):
    # splits the weight, but every rank takes the first entries of the bias
    if param.dim() == 2:
        solutions.column_parallel_weight_loader(self, param, loaded)
    else:
        param.data.copy_(loaded[:param.shape[0]])


# --- 8.2 the row-parallel loader -------------------------------------------------------------------
def row_loader_by_rows(self, param, loaded):
    # cuts the output features, as a column-parallel layer does
    if param.dim() == 2:
        size = loaded.shape[0] // self.tp_size
        param.data.copy_(loaded.narrow(0, self.tp_rank * size, size).reshape(param.shape))
    else:
        param.data.copy_(loaded)


def row_loader_reversed(self, param, loaded):
    # the shards in reverse order: rank 0 takes the last columns
    if param.dim() == 2:
        size = param.shape[1]
        param.data.copy_(loaded.narrow(1, (self.tp_size - 1 - self.tp_rank) * size, size))
    else:
        param.data.copy_(loaded)


def row_loader_bias_split(self, param, loaded):
    # splits the bias like a column-parallel layer: (out / n,) does not fit; padded with zeros
    if param.dim() == 2:
        solutions.row_parallel_weight_loader(self, param, loaded)
    else:
        size = len(loaded) // self.tp_size
        param.data.zero_()
        param.data[:size].copy_(loaded[self.tp_rank * size:(self.tp_rank + 1) * size])


# --- 8.3 the row-parallel forward ------------------------------------------------------------------
def row_forward_without_all_reduce(self, x):
    # each rank keeps its partial sum
    return F.linear(x, self.weight, self.bias if self.tp_rank == 0 else None)


def row_forward_bias_on_every_rank(self, x):
    # every rank adds the bias: the sum holds it tp_size times
    y = F.linear(x, self.weight, self.bias)
    if self.tp_size > 1:
        comm.all_reduce(y)
    return y


def row_forward_all_reduce_twice(self, x):
    # reduces, then reduces the sum again: tp_size times the answer
    y = F.linear(x, self.weight, self.bias if self.tp_rank == 0 else None)
    if self.tp_size > 1:
        comm.all_reduce(y)
        comm.all_reduce(y)
    return y


def row_forward_average(self, x):
    # averages the partial sums, as data parallelism averages gradients
    y = F.linear(x, self.weight, self.bias if self.tp_rank == 0 else None)
    if self.tp_size > 1:
        comm.all_reduce(y)
        y /= self.tp_size
    return y


# --- 8.4 the vocab-parallel embedding --------------------------------------------------------------
def embedding_clamped(self, x):
    # clamps the ids into this rank's rows instead of masking: other ranks add a wrong row
    local = (x - self.vocab_start_idx).clamp(0, self.weight.shape[0] - 1)
    y = F.embedding(local, self.weight)
    if self.tp_size > 1:
        comm.all_reduce(y)
    return y


def embedding_end_inclusive(self, x):
    # the range's end counted as this rank's: the first id of the next rank is looked up twice
    mine = (x >= self.vocab_start_idx) & (x <= self.vocab_end_idx)
    local = ((x - self.vocab_start_idx) * mine).clamp(max=self.weight.shape[0] - 1)
    y = F.embedding(local, self.weight) * mine.unsqueeze(1)
    if self.tp_size > 1:
        comm.all_reduce(y)
    return y


def embedding_no_offset(self, x):
    # masks, but looks up the global id in the shard: rank r > 0 reads past its rows (clamped to the last)
    mine = (x >= self.vocab_start_idx) & (x < self.vocab_end_idx)
    local = (x * mine).clamp(max=self.weight.shape[0] - 1)
    y = F.embedding(local, self.weight) * mine.unsqueeze(1)
    if self.tp_size > 1:
        comm.all_reduce(y)
    return y


def embedding_without_all_reduce(self, x):
    # each rank keeps its own piece: a token is zero on every rank but one
    mine = (x >= self.vocab_start_idx) & (x < self.vocab_end_idx)
    return F.embedding((x - self.vocab_start_idx) * mine, self.weight) * mine.unsqueeze(1)


# --- 8.5 all-reduce bytes per token ----------------------------------------------------------------
def bytes_one_all_reduce_per_layer(config, tensor_parallel_size, dtype_bytes=2):
    # one all-reduce per layer, as if attention and the MLP shared one
    n = tensor_parallel_size
    return (config.num_hidden_layers + 1) * 2 * (n - 1) / n * config.hidden_size * dtype_bytes


def bytes_half_a_ring(config, tensor_parallel_size, dtype_bytes=2):
    # counts the reduce-scatter and forgets the all-gather
    n = tensor_parallel_size
    return (2 * config.num_hidden_layers + 1) * (n - 1) / n * config.hidden_size * dtype_bytes


def bytes_without_the_embedding(config, tensor_parallel_size, dtype_bytes=2):
    # the two all-reduces of each layer, but not the embedding's
    n = tensor_parallel_size
    return 2 * config.num_hidden_layers * 2 * (n - 1) / n * config.hidden_size * dtype_bytes


def bytes_whole_message_to_everyone(config, tensor_parallel_size, dtype_bytes=2):
    # each rank sends its whole vector to every other rank (a naive all-to-all, not a ring)
    n = tensor_parallel_size
    return (2 * config.num_hidden_layers + 1) * (n - 1) * config.hidden_size * dtype_bytes


PLANTED = {
    "column_parallel_weight_loader": [column_loader_first_shard, column_loader_interleaved, column_loader_by_columns,
                                      column_loader_bias_unsplit],
    "row_parallel_weight_loader": [row_loader_by_rows, row_loader_reversed, row_loader_bias_split],
    "row_parallel_forward": [row_forward_without_all_reduce, row_forward_bias_on_every_rank, row_forward_all_reduce_twice,
                             row_forward_average],
    "vocab_parallel_embedding_forward": [embedding_clamped, embedding_end_inclusive, embedding_no_offset,
                                         embedding_without_all_reduce],
    "allreduce_bytes_per_token": [bytes_one_all_reduce_per_layer, bytes_half_a_ring, bytes_without_the_embedding,
                                  bytes_whole_message_to_everyone],
}
