"""Linear layers split across tensor-parallel ranks (Megatron-LM's scheme, nano-vllm's names).

A linear layer is y = x Wᵀ + b with W of shape (out_features, in_features). Split it over n ranks:

    ColumnParallelLinear   W cut along out_features: rank r holds rows r·out/n .. (r+1)·out/n and
                           computes that slice of y. No communication: its output stays split.
    RowParallelLinear      W cut along in_features: rank r holds those columns, takes the matching
                           slice of x (which a column-parallel layer just produced) and computes a
                           partial sum of the whole y. One all-reduce adds the n partial sums.

So a column-parallel layer feeding a row-parallel one costs one all-reduce for the pair:
q/k/v -> o in attention (rank r computes heads r·H/n .. (r+1)·H/n end to end), and gate/up ->
down in the MLP (rank r computes features r·F/n .. (r+1)·F/n). Two all-reduces per decoder layer.

Each layer's `weight_loader(param, loaded)` receives the whole checkpoint tensor and keeps this
rank's slice: a rank never holds more than its shard. `QKVParallelLinear` and
`MergedColumnParallelLinear` pack several checkpoint matrices into one (q, k, v; gate, up), as
nano-vllm's model does, each taking its shard into its place (`weight_loader(param, loaded, shard_id)`).

Which rank a layer is built for comes from `tensor_parallel(rank, size)` around the model's
construction, not from global torch state, so a one-rank engine and a four-rank one can live in
the same process.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ch08 import solutions

_building = {"rank": 0, "size": 1}  # the rank and world size of the layers being built


@contextmanager
def tensor_parallel(rank: int, size: int):
    """Layers constructed inside this block are rank `rank`'s shards of a `size`-way split."""
    saved = dict(_building)
    _building.update(rank=rank, size=size)
    try:
        yield
    finally:
        _building.update(saved)


def divide(numerator: int, denominator: int, what: str) -> int:
    if numerator % denominator:
        raise ValueError(f"{what} ({numerator}) does not split into {denominator} equal shards")
    return numerator // denominator


class LinearBase(nn.Module):
    """A weight (output_size, input_size) and an optional bias, each with this layer's loader."""

    def __init__(self, input_size: int, output_size: int, bias: bool = False):
        super().__init__()
        self.tp_rank, self.tp_size = _building["rank"], _building["size"]
        self.weight = self.shard_parameter(output_size, input_size)
        self.bias = self.shard_parameter(output_size) if bias else None

    def shard_parameter(self, *shape: int) -> nn.Parameter:
        """This rank's empty shard; load_weights fills it through the layer's weight_loader."""
        param = nn.Parameter(torch.empty(*shape), requires_grad=False)
        param.weight_loader = self.weight_loader
        return param


class ColumnParallelLinear(LinearBase):
    """(T, in_features) -> (T, out_features / n): this rank's slice of the outputs."""

    def __init__(self, input_size: int, output_size: int, bias: bool = False):
        size = _building["size"]
        super().__init__(input_size, divide(output_size, size, "out_features"), bias)

    # The reference of exercise 8.1 is in the answer key:
    weight_loader = solutions.column_parallel_weight_loader  # exercise 8.1 (solutions.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class RowParallelLinear(LinearBase):
    """(T, in_features / n), this rank's slice of the inputs -> (T, out_features), the whole
    output: the partial sums of every rank, added up."""

    def __init__(self, input_size: int, output_size: int, bias: bool = False):
        size = _building["size"]
        super().__init__(divide(input_size, size, "in_features"), output_size, bias)

    # The references of exercises 8.2 and 8.3 are in the answer key:
    weight_loader = solutions.row_parallel_weight_loader  # exercise 8.2 (solutions.py)
    forward = solutions.row_parallel_forward  # exercise 8.3 (solutions.py)


class MergedColumnParallelLinear(ColumnParallelLinear):
    """Several column-parallel matrices stacked, e.g. gate_up = [gate; up] of the MLP: rank r
    holds [gate_r; up_r], so silu(gate_r) * up_r pairs the right features without communication."""

    def __init__(self, input_size: int, output_sizes: list[int], bias: bool = False):
        self.output_sizes = output_sizes
        super().__init__(input_size, sum(output_sizes), bias)

    def weight_loader(self, param: nn.Parameter, loaded: torch.Tensor, shard_id: int) -> None:
        """Checkpoint matrix number `shard_id` (gate 0, up 1): this rank's rows of it, in its place."""
        size = self.output_sizes[shard_id] // self.tp_size
        offset = sum(self.output_sizes[:shard_id]) // self.tp_size
        shard = loaded.narrow(0, self.tp_rank * size, size)
        _copy(param.data.narrow(0, offset, size), shard, f"shard {shard_id}")


class QKVParallelLinear(ColumnParallelLinear):
    """q, k and v in one matrix, split by heads: rank r holds its query heads and the K/V heads
    they read. With grouped-query attention a K/V head serves H / H_kv query heads; when ranks
    outnumber K/V heads, each K/V head is copied to the n / H_kv ranks whose query heads read it."""

    def __init__(self, hidden_size: int, head_dim: int, total_num_heads: int, total_num_kv_heads: int,
                 bias: bool = False):
        size = _building["size"]
        self.head_dim = head_dim
        self.num_heads = divide(total_num_heads, size, "num_attention_heads")
        if size <= total_num_kv_heads:
            self.num_kv_heads = divide(total_num_kv_heads, size, "num_key_value_heads")
            self.num_kv_head_replicas = 1
        else:  # more ranks than K/V heads: one K/V head per rank, each held by several ranks
            self.num_kv_heads = 1
            self.num_kv_head_replicas = divide(size, total_num_kv_heads, "tensor_parallel_size")
        out = (self.num_heads + 2 * self.num_kv_heads) * head_dim * size
        super().__init__(hidden_size, out, bias)

    def weight_loader(self, param: nn.Parameter, loaded: torch.Tensor, shard_id: str) -> None:
        """Checkpoint tensor `shard_id` ("q", "k" or "v"): this rank's heads of it, in their place."""
        q_size, kv_size = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        if shard_id == "q":
            offset, size, first_head = 0, q_size, self.tp_rank * self.num_heads
        else:
            offset, size = (q_size, kv_size) if shard_id == "k" else (q_size + kv_size, kv_size)
            first_head = self.tp_rank // self.num_kv_head_replicas * self.num_kv_heads
        shard = loaded.narrow(0, first_head * self.head_dim, size)
        _copy(param.data.narrow(0, offset, size), shard, f"shard {shard_id!r}")


def _copy(dst: torch.Tensor, src: torch.Tensor, what: str) -> None:
    if dst.shape != src.shape:
        raise ValueError(f"{what}: a checkpoint slice of shape {tuple(src.shape)} does not fit {tuple(dst.shape)}")
    dst.copy_(src)

