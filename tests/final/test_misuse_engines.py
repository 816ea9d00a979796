"""Engines in one process do not share state: two LLMs with different block sizes each give
their own correct tokens (prefix cache hits included), and a failed constructor changes nothing."""

import pytest
import torch

from nanovllm_final import LLM, SamplingParams
from nanovllm_final.layers.linear import tp_rank_and_size

PARAMS = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)


def test_two_engines_with_different_block_sizes(tiny_qwen3_dir, make_llm, random_prompts, assert_pool_clean):
    prefix = list(range(10, 50))  # 40 shared tokens: prefix cache hits in both engines
    prompts = [prefix + p for p in random_prompts(4, max_len=12, seed=3)]
    small = make_llm(tiny_qwen3_dir, kvcache_block_size=4, num_kvcache_blocks=80)
    expected = small.generate(prompts, PARAMS, use_tqdm=False)
    large = make_llm(tiny_qwen3_dir, kvcache_block_size=32, num_kvcache_blocks=10)
    with pytest.raises(ValueError):  # a failed constructor with yet another block size
        LLM(tiny_qwen3_dir, device="cpu", kvcache_block_size=2, num_kvcache_blocks=1.5)
    default_dtype = torch.get_default_dtype()
    with pytest.raises(ValueError):  # and one that fails late, while loading the model
        LLM(tiny_qwen3_dir, device="cpu", kvcache_block_size=8, num_kvcache_blocks=-1, cpu_kvcache_gib=1e-9)
    assert torch.get_default_dtype() == default_dtype and tp_rank_and_size() == (0, 1)
    assert large.generate(prompts, PARAMS, use_tqdm=False) == expected
    again = small.generate(prompts, PARAMS, use_tqdm=False)  # served from small's prefix cache
    assert small.scheduler.block_manager.num_hit_tokens > 0
    assert again == expected
    assert_pool_clean(small)
    assert_pool_clean(large)


def test_engine_dropped_without_close_is_freed(tiny_qwen3_dir):
    import gc
    import weakref

    llm = LLM(tiny_qwen3_dir, device="cpu", num_kvcache_blocks=8, kvcache_block_size=16)
    assert llm.generate([[1, 2]], PARAMS, use_tqdm=False)
    engine, pool = weakref.ref(llm), weakref.ref(llm.model_runner.kv_cache)
    del llm
    gc.collect()
    assert engine() is None, "something still holds the engine"
    assert pool() is None, "the KV pool outlived its engine"
