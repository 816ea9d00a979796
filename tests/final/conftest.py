"""Fixtures for the final engine's tests: build an LLM on a tiny model, compare with transformers.

Helpers are handed out as fixtures (tests here are not a package, so they cannot import them).
"""

import random

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


@pytest.fixture(name="random_prompts")
def _random_prompts():
    return random_prompts


@pytest.fixture(name="assert_matches_hf")
def _assert_matches_hf():
    return assert_matches_hf


@pytest.fixture(name="assert_pool_clean")
def _assert_pool_clean():
    return assert_pool_clean
