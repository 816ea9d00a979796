"""Fixtures for the final engine's tests: build an LLM on a tiny model, compare with transformers.

Helpers are handed out as fixtures (tests here are not a package, so they cannot import them).
"""

import contextlib
import random
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from course.testing import hf_greedy
from nanovllm_final import LLM


def random_prompts(n: int, vocab: int = 300, max_len: int = 60, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(rng.randint(1, max_len))] for _ in range(n)]


def assert_matches_hf(model_dir, prompts, outputs, max_tokens):
    for i, (prompt, out) in enumerate(zip(prompts, outputs)):
        expected = hf_greedy(model_dir, prompt, max_tokens)
        assert out["token_ids"] == expected, f"prompt {i} (length {len(prompt)}): engine {out['token_ids']} != transformers {expected}"


def assert_pool_clean(llm: LLM):
    """Nothing running or waiting, every block free, every ref count zero."""
    sched = llm.scheduler
    assert not sched.running and not sched.waiting
    bm = sched.block_manager
    assert bm.num_free_blocks == len(bm.blocks)
    assert all(b.ref_count == 0 for b in bm.blocks)


@pytest.fixture
def make_llm():
    """make_llm(model_dir, **config) -> LLM on CPU with a small pool; closed after the test."""
    made = []

    def make(model_dir, **config):
        config = {"num_kvcache_blocks": 64, "kvcache_block_size": 16, "device": "cpu", **config}
        llm = LLM(model_dir, **config)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


@contextlib.contextmanager
def running_server(llm: LLM, name: str = "tiny", **app_options):
    """Serve `llm` on a free port of 127.0.0.1 from a thread; yields (base_url, app). Leaving
    the block shuts the server down as a signal would (Server.shutdown)."""
    import uvicorn  # the server's packages only where a test serves: the GPU machine has no FastAPI

    from nanovllm_final.serve import Server, build_app

    app = build_app(llm, name, **app_options)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# `python -m nanovllm_final.serve ARGS`, with each engine step made `delay` seconds slower
# (a server that is busy generating, without a model large enough to be slow on its own).
SLOWED_CLI = """
import sys, time
from nanovllm_final.engine.llm_engine import LLMEngine
from nanovllm_final.serve import main

delay, step = float(sys.argv[1]), LLMEngine.step
LLMEngine.step = lambda self: (time.sleep(delay), step(self))[1]
main(sys.argv[2:])
"""


@contextlib.contextmanager
def cli_server(model_dir, *options: str, delay: float = 0.0):
    """The command-line server in a subprocess on a free port; yields (process, base_url) once
    /health answers. The process's output is in process.stdout (text). Killed if still running."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-c", SLOWED_CLI, str(delay), str(model_dir), "--port", str(port), "--device", "cpu",
               *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/health").status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()


@pytest.fixture(name="cli_server", scope="session")
def _cli_server():
    return cli_server


@pytest.fixture(name="running_server", scope="session")
def _running_server():
    return running_server


@pytest.fixture(name="random_prompts")
def _random_prompts():
    return random_prompts


@pytest.fixture(name="assert_matches_hf")
def _assert_matches_hf():
    return assert_matches_hf


@pytest.fixture(name="assert_pool_clean")
def _assert_pool_clean():
    return assert_pool_clean
