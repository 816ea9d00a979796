"""tensor_parallel_size=2 on CPU: two processes over gloo give transformers' greedy tokens, and
the worker process leaves when the engine is closed or its process dies."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from course.testing import PROMPTS
from nanovllm_final import SamplingParams


@pytest.mark.slow
def test_tp2_matches_transformers(tiny_model_factory, make_llm, random_prompts, assert_matches_hf, assert_pool_clean):
    path = tiny_model_factory("qwen2")  # untied: the vocab-parallel head and embedding are separate
    prompts = PROMPTS + random_prompts(4, seed=11)
    llm = make_llm(path, tensor_parallel_size=2, max_num_batched_tokens=16)  # chunked, too
    outputs = llm.generate(prompts, SamplingParams(temperature=0, ignore_eos=True, max_tokens=10), use_tqdm=False)
    assert_matches_hf(path, prompts, outputs, 10)
    assert_pool_clean(llm)
    workers = list(llm.ps)
    llm.close()
    assert workers and not any(p.is_alive() for p in workers)


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return True
    state = next((line for line in status.read_text().splitlines() if line.startswith("State:")), "")
    return "Z" in state  # a zombie has exited; only its parent has not collected it


CRASH = """
import os, sys
from nanovllm_final import LLM, SamplingParams
if __name__ == "__main__":
    llm = LLM(sys.argv[1], tensor_parallel_size=2, num_kvcache_blocks=16, kvcache_block_size=16, device="cpu")
    llm.generate([[1, 2, 3]], SamplingParams(max_tokens=2), use_tqdm=False)
    print("pids", *[p.pid for p in llm.ps], flush=True)
    os._exit(1)  # die without any cleanup: no atexit, no close()
"""


@pytest.mark.slow
def test_workers_exit_when_the_engine_process_dies(tiny_qwen3_dir, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    proc = subprocess.run([sys.executable, str(script), str(tiny_qwen3_dir)], capture_output=True, text=True, timeout=300)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("pids")), None)
    assert line, proc.stderr[-3000:]
    pids = [int(p) for p in line.split()[1:]]
    deadline = time.time() + 30
    while time.time() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.5)
    assert all(_gone(p) for p in pids), "a tensor-parallel worker outlived its engine"


@pytest.mark.slow
def test_tp2_faults(tiny_qwen3_dir):
    """tp_faults.py in its own session: Ctrl-C, an error on one rank, failed constructors, a
    dropped LLM (the same script checks NCCL on two GPUs: `python tests/final/tp_faults.py DIR cuda`)."""
    script = Path(__file__).with_name("tp_faults.py")
    proc = subprocess.run([sys.executable, str(script), str(tiny_qwen3_dir), "cpu"], capture_output=True, text=True,
                          timeout=600, start_new_session=True, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0 and "all ok" in proc.stdout, proc.stdout + proc.stderr[-3000:]
