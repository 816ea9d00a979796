"""Tensor-parallel faults, run as a script in its own session (so a Ctrl-C reaches only it):

    python tests/final/tp_faults.py MODEL_DIR [cpu|cuda]

1. Ctrl-C (SIGINT to every process, as a terminal sends it) during generate(): KeyboardInterrupt,
   then the same engine gives the same tokens again: the ranks stayed in step.
2. An error inside a step on rank 0 alone: the next call says the LLM must be recreated; close()
   reaps the workers and frees the shared memory and the process group.
3. A constructor that fails after the workers started leaves no process, zombie or shared memory.
4. A new LLM in the same process then works.
5. Its worker killed between steps: the next call says so; dropped without close(), the LLM frees
   what is left.
Prints one "ok ..." line per check and "all ok" at the end; exits 1 at the first failure.
"""

import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

import torch.distributed as dist

import nanovllm_final.engine.llm_engine as llm_engine
from nanovllm_final import LLM, SamplingParams

PROMPTS = [[1, 17, 42, 99, 100, 7, 250, 31], [5], [300, 12, 12, 12, 44]]
PARAMS = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)


def children_left() -> list[str]:
    """This process's child processes, zombies included (multiprocessing's resource tracker aside)."""
    me, found = os.getpid(), []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) == me and "resource_tracker" not in _cmdline(status.parent):
            found.append(f"{status.parent.name} {fields['State'].strip()}")
    return found


def _cmdline(proc: Path) -> str:
    try:
        return proc.joinpath("cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def check(ok: bool, what: str) -> None:
    if not ok:
        print("FAILED", what, flush=True)
        sys.exit(1)
    print("ok", what, flush=True)


PORTS: list[int] = []  # every port this script's engines were given: their shared memory is named after it
_free_port = llm_engine.free_port


def _recording_free_port() -> int:
    PORTS.append(_free_port())
    return PORTS[-1]


llm_engine.free_port = _recording_free_port


def shm_left() -> list[str]:
    """This script's engines' shared memory still in /dev/shm (other tests running in parallel have their own)."""
    return [f"nanovllm-{port}" for port in PORTS if (Path("/dev/shm") / f"nanovllm-{port}").exists()]


def make(model, device, **kwargs):
    return LLM(model, tensor_parallel_size=2, device=device, num_kvcache_blocks=64, kvcache_block_size=16, max_num_seqs=16,
               enforce_eager=device == "cpu", **kwargs)


def main(model: str, device: str) -> None:
    start = time.perf_counter()
    llm = make(model, device)
    shm = Path("/dev/shm") / llm.model_runner.shm_name
    expected = llm.generate(PROMPTS, PARAMS, use_tqdm=False)
    check(shm.exists() and len(children_left()) == 1, f"engine up, one worker ({time.perf_counter() - start:.1f} s)")

    # 1. Ctrl-C to the whole process group while steps run.
    threading.Timer(0.5, os.killpg, (os.getpgrp(), signal.SIGINT)).start()
    interrupted, deadline = False, time.time() + 60
    try:
        while time.time() < deadline:
            llm.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=40, ignore_eos=True), use_tqdm=False)
    except KeyboardInterrupt:
        interrupted = True
    check(interrupted, "Ctrl-C raised KeyboardInterrupt in generate()")
    check(all(p.is_alive() for p in llm.ps), "the worker ignored Ctrl-C")
    check(llm.generate(PROMPTS, PARAMS, use_tqdm=False) == expected, "after Ctrl-C: same tokens, ranks in step")

    # 2. An error on rank 0 alone, half-way through the layers: the worker waits in a collective.
    layer = llm.model_runner.model.model.layers[1]
    layer.forward = lambda *args: 1 / 0
    try:
        llm.generate(PROMPTS, PARAMS, use_tqdm=False)
        check(False, "the injected error was raised")
    except ZeroDivisionError:
        pass
    del layer.forward
    try:
        llm.generate(PROMPTS, PARAMS, use_tqdm=False)
        check(False, "a broken engine refuses to run")
    except RuntimeError as err:
        check("create a new one" in str(err), f"a broken engine says so: {err}")
    workers = list(llm.ps)
    t = time.perf_counter()
    llm.close()
    check(not any(p.is_alive() for p in workers) and not children_left(), f"close() reaped the stuck worker ({time.perf_counter() - t:.1f} s)")
    check(not shm.exists() and not dist.is_initialized(), "close() freed the shared memory and the process group")

    # 3. A constructor that fails on every rank after the workers started.
    bad = {"cpu_kvcache_gib": 1e-9} if device == "cpu" else {"gpu_memory_utilization": 1e-4}
    try:
        LLM(model, tensor_parallel_size=2, device=device, num_kvcache_blocks=-1, **bad)
        check(False, "the constructor failed")
    except ValueError as err:
        print("  constructor:", err)
    check(not children_left() and not multiprocessing.active_children(), "a failed constructor left no worker or zombie")
    check(not dist.is_initialized() and not shm_left(), "nor a process group or shared memory")

    # 4. A new LLM in the same process works; dropped without close(), it reaps its worker.
    llm = make(model, device)
    check(llm.generate(PROMPTS, PARAMS, use_tqdm=False) == expected, "a new LLM after these failures works")
    llm.ps[0].kill()  # 5. a worker that dies between steps
    llm.ps[0].join()
    try:
        llm.generate(PROMPTS, PARAMS, use_tqdm=False)
        check(False, "an engine whose worker died refuses to run")
    except RuntimeError as err:
        check("worker" in str(err) and "create a new one" in str(err), f"a dead worker is reported: {err}")
    del llm
    gc.collect()
    check(not children_left() and not dist.is_initialized() and not shm_left(),
          "a dropped LLM freed its worker, process group and shared memory")
    print(f"all ok ({time.perf_counter() - start:.1f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "cpu")
