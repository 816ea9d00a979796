"""Bytes a step moves to and from memory: torch ops counted one by one, and the fused kernel.

Each torch op on a GPU is (at least) one kernel that reads its inputs from memory and writes its
outputs back; between two ops, nothing stays in registers. `count_ops` runs a function and
records every op it dispatches with the bytes of the tensors it reads and writes (views, which
move nothing, are left out), so that residual add + RMSNorm as torch computes it can be set
against the fused kernel, which reads x, the residual and the weight once and writes its two
outputs once.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ch09.kernels.rmsnorm import fused_add_rms_norm_torch


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        storages = {t.untyped_storage().data_ptr() for t in inputs}
        if outputs and all(t.untyped_storage().data_ptr() in storages for t in outputs):
            return out  # a view (or an in-place op's result): no kernel of its own here
        self.ops.append({"op": func.overloadpacket.__name__, "read": sum(t.nbytes for t in inputs),
                         "written": sum(t.nbytes for t in outputs)})
        return out


def count_ops(fn, *args) -> list[dict]:
    """fn(*args), recording each op: {"op", "read", "written"} (bytes)."""
    recorder = _Recorder()
    with recorder:
        fn(*args)
    return recorder.ops


def add_rms_norm_traffic(num_tokens: int, hidden: int, dtype: torch.dtype) -> dict:
    """Residual add + RMSNorm of (num_tokens, hidden) rows: the torch ops chapter 1 runs (the
    kernel's twin) and their bytes, against the fused kernel's one pass."""
    x = torch.randn(num_tokens, hidden).to(dtype)
    residual = torch.randn(num_tokens, hidden).to(dtype)
    weight = torch.ones(hidden, dtype=dtype)
    ops = count_ops(fused_add_rms_norm_torch, x, residual, weight, 1e-6)
    row_bytes = num_tokens * hidden * x.element_size()
    fused = {"read": 2 * row_bytes + weight.nbytes, "written": 2 * row_bytes}  # x, residual, weight -> normed, h
    return {"num_tokens": num_tokens, "hidden": hidden, "dtype": str(dtype).removeprefix("torch."),
            "unfused_ops": ops, "unfused_bytes": sum(o["read"] + o["written"] for o in ops),
            "fused_bytes": fused["read"] + fused["written"]}
