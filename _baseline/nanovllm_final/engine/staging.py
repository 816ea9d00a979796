"""Pinned host buffers that a GPU step reuses for its copies between host and device.

A copy from ordinary (pageable) host memory to the GPU makes the host wait until the GPU has
taken the data; from page-locked ("pinned") memory it is queued on the stream and the host moves
on. But allocating pinned memory costs tens of microseconds, and a step makes several copies.
So the runner keeps a small ring of pinned buffers and reuses them in turn:

    host = ring.host(n, torch.int32)   a pinned (n,) tensor; waits only if the copy that last
                                       used this buffer has not finished yet
    ...fill host, queue a copy from (or into) it...
    ring.sent()                        mark the copy queued: the buffer is busy until it is done

A buffer comes round again only `slots` copies later. The engine runs at most one step ahead of
the GPU and makes a few copies per step, so in practice the wait never happens; it is there to
keep the data right if it did.

Lists of numbers become tensors through numpy: filling a numpy view of the buffer from a list
is about three times faster than torch.tensor(list).
"""

import numpy as np
import torch


class PinnedRing:
    """`pinned=False` (a CPU runner, or a test without a GPU): plain buffers, no events."""

    def __init__(self, slots: int = 8, pinned: bool = True):
        self.pinned = pinned
        self.buffers: list[torch.Tensor | None] = [None] * slots
        self.events: list[torch.cuda.Event | None] = [None] * slots
        self.slot = -1
        self.handed_out = 0  # buffers handed out so far: the `slots` latest are the live ones

    def host(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        """The next buffer as a pinned (n,) tensor of `dtype`, free to fill."""
        self.slot = i = (self.slot + 1) % len(self.buffers)
        self.handed_out += 1
        if self.events[i] is not None:
            self.events[i].synchronize()  # done long ago, unless the host ran `slots` copies ahead
        nbytes, buffer = n * dtype.itemsize, self.buffers[i]
        if buffer is None or buffer.numel() < nbytes:  # grow by doubling: few allocations ever
            size = max(nbytes, 1 << 14, 0 if buffer is None else 2 * buffer.numel())
            buffer = self.buffers[i] = torch.empty(size, dtype=torch.uint8, pin_memory=self.pinned)
        return buffer[:nbytes].view(dtype)

    def sent(self) -> None:
        """The copy from (or into) the last buffer handed out is queued on the current stream."""
        if not self.pinned:
            return
        if self.events[self.slot] is None:
            self.events[self.slot] = torch.cuda.Event()
        self.events[self.slot].record()


def pack(columns: list[list], dtype: torch.dtype, out: torch.Tensor | None = None):
    """Columns of numbers back to back in one (n,) tensor, each starting 16-byte aligned (Triton
    compiles a separate kernel for a pointer that is not) -> (the tensor, [(start, length)] per
    column). `out`: a function n -> an (n,) CPU tensor to write into (a pinned buffer); without
    it a new tensor."""
    per_16_bytes = 16 // dtype.itemsize
    spans, n = [], 0
    for column in columns:
        spans.append((n, len(column)))
        n += len(column) + (-len(column) % per_16_bytes)
    t = out(n) if out is not None else torch.empty(n, dtype=dtype)
    view = t.numpy()
    for (start, length), column in zip(spans, columns):
        view[start:start + length] = column
    return t, spans
