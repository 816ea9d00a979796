"""ModelRunner: one per rank, each in its own process, all running the same steps in lockstep.

    rank 0      lives in the engine's process: it schedules, samples and answers the caller
    ranks > 0   started by the engine (LLM.start_model_runner calls `start_workers`); each builds
                its shard of the model and its own K/V pool (its own heads' K/V), then follows
                rank 0 in `loop`

Each step, rank 0's `call("run", seqs)` sends the method's name and arguments down a pipe to
every other rank, runs it itself, and waits for each rank's short reply. The ranks meet inside
the model at every all-reduce, so they must run the same collectives in the same order: a rank
that fails, or rank 0 cut short in the middle of a step, leaves the others out of step, and the
runner refuses to go on (close the LLM and make a new one). A rank's error reaches rank 0 as
one RuntimeError that names the rank and its error; nothing waits without a time limit.

torch.distributed carries the all-reduces: gloo between CPU processes, NCCL between GPUs. The
code is the same; only the backend's name changes.
"""

import signal
import time
import traceback
import weakref
from dataclasses import replace
from datetime import timedelta
from multiprocessing import get_all_start_methods, get_context, parent_process
from pathlib import Path

import torch
import torch.distributed as dist

import ch07
from ch03.context import reset_context
from ch08.config import Config
from ch08.embed_head import ParallelLMHead, VocabParallelEmbedding
from ch08.linear import ColumnParallelLinear, RowParallelLinear, tensor_parallel

REPLY_TIMEOUT = 300.0  # seconds rank 0 waits for a rank's reply to one call (a first step includes warm-up)
JOIN_TIMEOUT = 3.0  # seconds a rank has to leave once told to, before it is terminated


# The Parts of chapter 1's model that tensor parallelism replaces; attention, norms and the rest
# stay as they are, and compute whatever heads and features the layers around them hold.
PARALLEL_LAYERS = dict(column_linear=ColumnParallelLinear, row_linear=RowParallelLinear,
                       embedding=VocabParallelEmbedding, lm_head=ParallelLMHead)


class ModelRunner(ch07.ModelRunner):
    parts = replace(ch07.ModelRunner.parts, **PARALLEL_LAYERS)

    def __init__(self, config: Config, rank: int = 0, channel=None, num_threads: int = 1):
        """Rank 0: ModelRunner(config, 0, workers), `workers` from start_workers (none for one
        rank). Ranks > 0 are started by start_workers with their end of a pipe as `channel`;
        their constructor returns only when rank 0 tells them to exit."""
        self.rank, self.world_size = rank, config.tensor_parallel_size
        self.workers = (channel or []) if rank == 0 else []  # rank 0: (process, pipe) of each other rank
        self.pipe = channel if rank > 0 else None
        self.broken = None  # rank 0: why the ranks may be out of step, once they may be
        if self.world_size == 1:
            super().__init__(config)
            return
        if rank > 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is rank 0's to handle
            torch.set_num_threads(num_threads)
        self._release = weakref.finalize(self, release, self.workers)  # close(), or a dropped LLM
        try:
            if config.device == "cuda":
                torch.cuda.set_device(rank)
            dist.init_process_group("nccl" if config.device == "cuda" else "gloo",
                                    init_method=f"tcp://127.0.0.1:{config.dist_port}", rank=rank,
                                    world_size=self.world_size, timeout=timedelta(seconds=REPLY_TIMEOUT))
            with tensor_parallel(rank, self.world_size):  # every layer built here is this rank's shard
                super().__init__(config)
        except BaseException as err:
            if rank > 0:
                self.pipe.send(("error", describe(err)))
            self._release()
            raise
        if rank == 0:
            failures = self.replies("start", timeout=REPLY_TIMEOUT)
            if failures:
                self._release()
                raise RuntimeError(failures)
        else:
            self.pipe.send(("ok", None))
            self.loop()

    # ---- the step ------------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, seqs) -> list[int | None] | None:
        """Rank 0: chapter 7's step, its sampled tokens. Other ranks compute the same forward pass
        (their heads, their K/V) and have no logits to sample: they return None."""
        if self.rank == 0:
            return super().run(seqs)
        input_ids, positions, logits_indices = self.prepare(seqs)
        try:
            self.run_model(input_ids, positions, logits_indices)  # ParallelLMHead: None off rank 0
        finally:
            reset_context()
        return None

    # ---- rank 0 drives, the others follow ------------------------------------------------------
    def call(self, method: str, *args):
        """On rank 0: run `method(*args)` here and on every other rank; its result on rank 0."""
        if self.workers and not self._release.alive:
            raise RuntimeError("this LLM is closed: its ranks are gone; make a new one")
        if self.broken:
            raise RuntimeError(f"the tensor-parallel ranks are out of step ({self.broken}); close() this LLM and make a new one")
        for _, pipe in self.workers:
            pipe.send((method, args))
        try:
            result = getattr(self, method)(*args)
        except BaseException as err:
            # A rank that failed usually takes rank 0's collective down with it: name the cause.
            failures = self.replies(method, timeout=JOIN_TIMEOUT if isinstance(err, RuntimeError) else 0.0)
            self.broken = failures or f"rank 0 stopped in {method}: {type(err).__name__}: {err}"
            if failures:
                raise RuntimeError(failures) from err
            raise
        failures = self.replies(method, timeout=REPLY_TIMEOUT)
        if failures:
            self.broken = failures
            raise RuntimeError(failures)
        return result

    def replies(self, method: str, timeout: float) -> str:
        """Collect every other rank's reply to one call; what went wrong, or '' if all went well."""
        failures, deadline = [], time.monotonic() + timeout
        for rank, (process, pipe) in enumerate(self.workers, start=1):
            while not pipe.poll(0.05):
                if not process.is_alive():
                    failures.append(f"rank {rank} died during {method} (exit code {process.exitcode})")
                    break
                if time.monotonic() > deadline:
                    if timeout > 0:
                        failures.append(f"rank {rank} gave no answer to {method} within {timeout:.0f} s")
                    break
            else:
                status, detail = pipe.recv()
                if status == "error":
                    failures.append(f"rank {rank} failed in {method}: {detail}")
        return "; ".join(failures)

    def loop(self) -> None:
        """Ranks > 0: run each call rank 0 sends; reply "ok" or the error. Leave on exit, on an
        error (rank 0 cannot continue without this rank), or when rank 0's process is gone."""
        parent = parent_process()
        while True:
            if not self.pipe.poll(1.0):
                if parent is not None and not parent.is_alive():
                    return
                continue
            try:
                method, args = self.pipe.recv()
            except EOFError:  # rank 0 closed the pipe: the engine was closed or dropped
                return
            try:
                getattr(self, method)(*args)
            except BaseException as err:
                self.pipe.send(("error", describe(err)))
                return  # this process ends: its sockets close, so no rank waits on it in a collective
            self.pipe.send(("ok", None))
            if method == "exit":
                return

    def exit(self) -> None:
        """Every rank, through call("exit"): leave the process group."""
        if dist.is_initialized():
            dist.destroy_process_group()

    def close(self) -> None:
        """Rank 0: stop the other ranks (asking first, then by force) and free the process group."""
        if self.world_size > 1 and self.rank == 0:
            if not self.broken and all(process.is_alive() for process, _ in self.workers):
                try:
                    self.call("exit")
                except RuntimeError:
                    pass  # they are reaped below all the same
            self._release()


def describe(err: BaseException) -> str:
    """An error as one rank reports it to rank 0, on one line: what, and where it was raised."""
    where = traceback.extract_tb(err.__traceback__)[-1:]
    at = f" (at {Path(where[0].filename).name}:{where[0].lineno}, in {where[0].name})" if where else ""
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}{at}"


def start_workers(runner_class, config: Config) -> list:
    """Start ranks 1 .. n-1 of `runner_class`, each in a process of its own; (process, pipe) for each.

    Not forked from this process, whose threads, CUDA context or locks a child would inherit
    half-way: from a fork server, a clean process that imported this module once (the first LLM
    pays for importing torch there; later ones start in a blink), or spawned where there is none."""
    if dist.is_initialized():
        raise ValueError("another tensor-parallel LLM is open in this process; close() it before making a new one")
    if "forkserver" in get_all_start_methods():
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
    else:
        ctx = get_context("spawn")
    workers = []
    for rank in range(1, config.tensor_parallel_size):
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=runner_class, args=(config, rank, theirs, torch.get_num_threads()),
                              name=f"tensor-parallel rank {rank}", daemon=True)
        process.start()
        theirs.close()  # the child holds its end; when it exits, our recv sees EOF
        workers.append((process, ours))
    return workers


def release(workers: list) -> None:
    """Rank 0's side of an ending, without collectives: safe after an error, and when the LLM is
    dropped without close(). Every rank's process is joined (no zombie); the group is freed."""
    for _, pipe in workers:
        pipe.close()  # a rank still waiting for a call sees EOF and leaves
    for process, _ in workers:
        process.join(JOIN_TIMEOUT)
        if process.is_alive():  # stuck in a collective of a step that rank 0 never finished
            process.terminate()
            process.join(JOIN_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
    if dist.is_initialized():
        dist.destroy_process_group()

