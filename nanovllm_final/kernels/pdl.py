"""Programmatic dependent launch (PDL): a kernel that starts while the one before it still runs.

On Hopper and later GPUs a kernel launched with PDL may start as soon as every program of the
kernel before it in the stream has signalled `gdc_launch_dependents()` (the engine's kernels do
so first thing), instead of after that kernel's last program has finished. It must then call
`gdc_wait()` before it reads anything the kernel before wrote (or writes anything that kernel
reads): the wait returns once that kernel is done and its writes are visible. What it does before
the wait overlaps the previous kernel's tail: its launch, and in the GEMV (gemv.py) the read of
its first tile of weights, which no earlier kernel writes.

A decode step of one sequence is ~200 small kernels of a few microseconds each, and the launch and
ramp-up of each cost about as much again as its work: with PDL a step of Qwen3-0.6B on an H100
went from 1.07 to 0.98 ms (docs/performance.md).

The kernels of a decode step that use it: the GEMV, decode attention and its reduce, RMSNorm.
Each takes a PDL constexpr (False: no grid dependency control, as Triton's interpreter needs) and
is launched with launch_pdl=pdl(device). Captured in a CUDA graph, the launches keep their
programmatic edges.
"""

import torch

ENABLED = True  # switch off to measure what PDL brings
_CAPABLE = {}


def pdl(device: torch.device) -> bool:
    """Whether kernels on `device` launch with PDL: CUDA, compute capability 9 (Hopper) or later."""
    if not ENABLED or device.type != "cuda":
        return False  # the interpreter (CPU tensors) has no grid dependency control
    if device not in _CAPABLE:
        _CAPABLE[device] = torch.cuda.get_device_capability(device)[0] >= 9
    return _CAPABLE[device]
