"""Several tensor-parallel ranks as threads of one process, for tests and the notebook.

    outputs = run_ranks(3, lambda rank: layers[rank](x_shards[rank]))

Each rank runs `fn(rank)` in its own thread; while they run, ch08.comm's all_reduce and
gather_to_first are replaced by versions that meet at a barrier and add up (or collect) the
ranks' tensors in rank order. That is what gloo or NCCL do between processes, with no process
to start: a layer's arithmetic can be checked in milliseconds. The engine's own tests run real
processes (test_tensor_parallel_ch08.py).
"""

import threading
from contextlib import contextmanager

import torch

from ch08 import comm

TIMEOUT = 10.0  # seconds a rank waits for the others at a collective: a rank that skips one fails the test


class ThreadGroup:
    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=TIMEOUT)
        self.slots: list = [None] * size
        self.local = threading.local()  # .rank of the calling thread

    def exchange(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's x, in rank order, as each rank handed it in."""
        self.slots[self.local.rank] = x.clone()
        self.barrier.wait()
        everyone = list(self.slots)
        self.barrier.wait()  # nobody overwrites a slot before all have read them
        return everyone

    def all_reduce(self, x: torch.Tensor) -> None:
        x.copy_(torch.stack(self.exchange(x)).sum(dim=0))

    def gather_to_first(self, x: torch.Tensor, rank: int, size: int):
        assert (rank, size) == (self.local.rank, self.size), f"a layer of rank {rank} of {size} ran on thread rank {self.local.rank} of {self.size}"
        everyone = self.exchange(x)
        return everyone if rank == 0 else None


@contextmanager
def thread_collectives(group: ThreadGroup):
    saved = comm.all_reduce, comm.gather_to_first
    comm.all_reduce, comm.gather_to_first = group.all_reduce, group.gather_to_first
    try:
        yield
    finally:
        comm.all_reduce, comm.gather_to_first = saved


def run_ranks(size: int, fn) -> list:
    """[fn(0), ..., fn(size - 1)], each rank in its own thread; the first error is raised here."""
    group = ThreadGroup(size)
    results, errors = [None] * size, [None] * size

    def body(rank):
        group.local.rank = rank
        try:
            with torch.inference_mode():  # per thread: the caller's mode does not carry over
                results[rank] = fn(rank)
        except BaseException as err:  # noqa: BLE001 -- handed to the caller below
            errors[rank] = err
            group.barrier.abort()  # the others stop waiting for this rank

    threads = [threading.Thread(target=body, args=(rank,), name=f"rank {rank}") for rank in range(size)]
    with thread_collectives(group):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    first = next((e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)), None)
    if first is not None or any(errors):
        raise first or next(e for e in errors if e is not None)
    return results


def build_shards(size: int, make) -> list:
    """[make() built as rank 0, ..., as rank size - 1]: one after another, in this thread (the
    rank a layer is built for is module state; threads building at once would mix it up)."""
    from ch08.linear import tensor_parallel

    shards = []
    for rank in range(size):
        with tensor_parallel(rank, size):
            shards.append(make())
    return shards


def split_model_logits(path, size: int, prompt: list[int]) -> list:
    """Chapter 1's model from `path`, with chapter 8's parallel layers, split over `size` ranks
    (threads); each rank's logits for every position of `prompt` (None on ranks > 0)."""
    from ch01.loader import load_model
    from ch01.model import Parts
    from ch08.model_runner import PARALLEL_LAYERS

    models = build_shards(size, lambda: load_model(path, parts=Parts(**PARALLEL_LAYERS)))
    ids, positions = torch.tensor(prompt), torch.arange(len(prompt))
    return run_ranks(size, lambda rank: models[rank].compute_logits(models[rank](ids, positions)))
