"""Linear layers that can be split across tensor-parallel ranks (Megatron-style).

    ColumnParallelLinear   y = x W^T with W's output rows split: each rank computes a slice of y
    RowParallelLinear      W's input columns split: each rank computes a partial sum of y, and an
                           all-reduce adds them up
    ReplicatedLinear       every rank holds all of W

A column-parallel layer feeding a row-parallel one (q/k/v -> o, gate/up -> down) needs only one
all-reduce per pair. `QKVParallelLinear` and `MergedColumnParallelLinear` pack several
checkpoint matrices into one (one matmul instead of three or two); their `weight_loader` puts
each checkpoint tensor, already sliced for this rank, into its place in the packed matrix.
"""

import torch
import torch.distributed as dist
from torch import nn

from nanovllm_final.kernels import linear, norm_linear


_TP = (0, 1)  # (rank, size) for the model being built; set by the model runner


def set_tp(rank: int, size: int) -> None:
    """Layers read their rank and the number of ranks when built, not from global torch state,
    so a single-process engine and a tensor-parallel one can live in the same process."""
    global _TP
    _TP = (rank, size)


def tp_rank_and_size() -> tuple[int, int]:
    return _TP


class LinearBase(nn.Module):
    def __init__(self, input_size: int, output_size: int, bias: bool = False, tp_dim: int | None = None):
        super().__init__()
        self.tp_rank, self.tp_size = tp_rank_and_size()
        self.tp_dim = tp_dim  # the weight dim split across ranks: 0 (column), 1 (row), None (replicated)
        self.weight = nn.Parameter(torch.empty(output_size, input_size), requires_grad=False)
        self.weight.weight_loader = self.weight_loader
        if bias:
            self.bias = nn.Parameter(torch.empty(output_size), requires_grad=False)
            self.bias.weight_loader = self.weight_loader
        else:
            self.register_parameter("bias", None)

    def weight_loader(self, param: nn.Parameter, loaded: torch.Tensor, shard_id=None) -> None:
        if self.tp_dim is not None and self.tp_dim < loaded.dim():
            size = param.shape[self.tp_dim]
            loaded = loaded.narrow(self.tp_dim, self.tp_rank * size, size)  # this rank's slice
        _copy(param.data, loaded)


def _copy(dst: torch.Tensor, src: torch.Tensor) -> None:
    if dst.shape != src.shape:
        raise ValueError(f"weight of shape {tuple(src.shape)} does not fit a parameter of shape {tuple(dst.shape)}")
    dst.copy_(src)


class ReplicatedLinear(LinearBase):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class ColumnParallelLinear(LinearBase):
    def __init__(self, input_size: int, output_size: int, bias: bool = False):
        tp_size = tp_rank_and_size()[1]
        assert output_size % tp_size == 0
        super().__init__(input_size, output_size // tp_size, bias, tp_dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)  # (T, output_size / tp)

    def normed(self, x: torch.Tensor, residual: torch.Tensor | None, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(self(norm(x + residual)), x + residual), or with residual None (self(norm(x)), x): the
        RMSNorm before this product, fused into it (kernels.norm_linear: one kernel at one row)."""
        return norm_linear(x, residual, norm.weight, norm.eps, self.weight, self.bias)


class MergedColumnParallelLinear(ColumnParallelLinear):
    """Several column-parallel matrices side by side, e.g. gate_up = [gate; up]."""

    def __init__(self, input_size: int, output_sizes: list[int], bias: bool = False):
        self.output_sizes = output_sizes
        super().__init__(input_size, sum(output_sizes), bias)

    def weight_loader(self, param: nn.Parameter, loaded: torch.Tensor, shard_id: int) -> None:
        offset = sum(self.output_sizes[:shard_id]) // self.tp_size
        size = self.output_sizes[shard_id] // self.tp_size
        dst = param.data.narrow(0, offset, size)
        _copy(dst, loaded.chunk(self.tp_size, 0)[self.tp_rank])


class QKVParallelLinear(ColumnParallelLinear):
    """q, k and v projections in one matrix; each rank holds its own heads of each."""

    def __init__(self, hidden_size: int, head_dim: int, num_heads: int, num_kv_heads: int, bias: bool = False):
        tp_size = tp_rank_and_size()[1]
        self.head_dim = head_dim
        self.num_heads = num_heads // tp_size  # per rank
        self.num_kv_heads = num_kv_heads // tp_size
        super().__init__(hidden_size, (num_heads + 2 * num_kv_heads) * head_dim, bias)

    def weight_loader(self, param: nn.Parameter, loaded: torch.Tensor, shard_id: str) -> None:
        q_size, kv_size = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        offset, size = {"q": (0, q_size), "k": (q_size, kv_size), "v": (q_size + kv_size, kv_size)}[shard_id]
        dst = param.data.narrow(0, offset, size)
        _copy(dst, loaded.chunk(self.tp_size, 0)[self.tp_rank])


class RowParallelLinear(LinearBase):
    def __init__(self, input_size: int, output_size: int, bias: bool = False):
        tp_size = tp_rank_and_size()[1]
        assert input_size % tp_size == 0
        super().__init__(input_size // tp_size, output_size, bias, tp_dim=1)

    def forward(self, x: torch.Tensor, silu_mul: bool = False) -> torch.Tensor:
        """silu_mul: x is an MLP's [gate | up], and the product reads silu(gate) * up (one kernel
        at one row, kernels.linear)."""
        # The bias is added once, on rank 0, so the all-reduce does not count it tp_size times.
        y = linear(x, self.weight, self.bias if self.tp_rank == 0 else None, silu_mul)  # partial sum
        if self.tp_size > 1:
            dist.all_reduce(y)
        return y
