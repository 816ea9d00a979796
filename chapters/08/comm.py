"""The collectives tensor parallelism needs, and what they cost.

    all_reduce(x)          every rank's x becomes the sum of all ranks' x (in place)
    gather_to_first(x)     rank 0 gets every rank's x, in rank order; the others get None

Layers call these two functions rather than torch.distributed directly, so the tests can run
several ranks as threads of one process (ch08.tests.ranks) and a reader sees every message
a rank sends in one file. With one rank they do nothing: there is nobody to talk to.

A ring all-reduce of a message of B bytes over n ranks sends 2·(n-1)/n·B bytes from each rank:
a reduce-scatter (each rank ends with the sum of one n-th of the message) and an all-gather
(each rank collects the other sums), each n-1 hops of B/n bytes. That is why the cost of
tensor parallelism barely shrinks as ranks are added: the hidden vector is exchanged whole.
"""

import torch
import torch.distributed as dist


def all_reduce(x: torch.Tensor) -> None:
    dist.all_reduce(x)  # sum, the default op


def gather_to_first(x: torch.Tensor, rank: int, size: int) -> list[torch.Tensor] | None:
    parts = [torch.empty_like(x) for _ in range(size)] if rank == 0 else None
    dist.gather(x, parts, dst=0)
    return parts


def ring_all_reduce_bytes(message_bytes: int, num_ranks: int) -> float:
    """Bytes one rank sends in a ring all-reduce of a `message_bytes` message."""
    return 2 * (num_ranks - 1) / num_ranks * message_bytes
