"""Greedy tokens of the final engine equal transformers' generate on tiny random models (CPU),
through every scheduling path: concurrent prompts, preemption, prefix-cache hits, chunked
prefill. Families: qwen3 (tied, QK-norm), qwen2 (untied, QKV bias), llama (tied); all GQA 4:2,
plus an untied multi-head llama."""

from course.testing import PROMPTS
from nanovllm_final import SamplingParams

GREEDY = SamplingParams(temperature=0, ignore_eos=True, max_tokens=12)


def test_many_concurrent_prompts(tiny_model_dir, make_llm, random_prompts, assert_matches_hf, assert_pool_clean):
    prompts = PROMPTS + random_prompts(12)
    llm = make_llm(tiny_model_dir, num_kvcache_blocks=128)
    outputs = llm.generate(prompts, GREEDY, use_tqdm=False)
    assert_matches_hf(tiny_model_dir, prompts, outputs, 12)
    assert all(o["finish_reason"] == "length" for o in outputs)
    assert_pool_clean(llm)


def test_untied_multi_head(tiny_model_factory, make_llm, random_prompts, assert_matches_hf):
    path = tiny_model_factory("llama", tie_word_embeddings=False, num_key_value_heads=4)
    prompts = PROMPTS + random_prompts(4, seed=1)
    outputs = make_llm(path).generate(prompts, GREEDY, use_tqdm=False)
    assert_matches_hf(path, prompts, outputs, 12)


def test_tiny_pool_forces_preemption(tiny_model_dir, make_llm, random_prompts, assert_matches_hf, assert_pool_clean):
    # 12 blocks of 4 tokens: each request alone fits (<= 12 blocks), all of them at once cannot.
    prompts = random_prompts(8, max_len=24, seed=2)
    llm = make_llm(tiny_model_dir, num_kvcache_blocks=12, kvcache_block_size=4)
    outputs = llm.generate(prompts, SamplingParams(temperature=0, ignore_eos=True, max_tokens=16), use_tqdm=False)
    assert llm.scheduler.num_preemptions > 0
    assert_matches_hf(tiny_model_dir, prompts, outputs, 16)
    assert_pool_clean(llm)


def test_prefix_cache_hits(tiny_model_dir, make_llm, random_prompts, assert_matches_hf, assert_pool_clean):
    shared = random_prompts(1, max_len=40, seed=3)[0] + list(range(40))  # > 2 blocks of 16
    prompts = [shared + tail for tail in random_prompts(5, max_len=10, seed=4)] + [shared, shared]
    llm = make_llm(tiny_model_dir)
    first = llm.generate(prompts[:1], GREEDY, use_tqdm=False)  # fills the cache
    assert llm.scheduler.block_manager.num_hit_tokens == 0
    rest = llm.generate(prompts[1:], GREEDY, use_tqdm=False)
    assert llm.scheduler.block_manager.num_hit_tokens >= 7 * 32  # every later prompt reused >= 2 blocks
    assert_matches_hf(tiny_model_dir, prompts, first + rest, 12)
    again = llm.generate(prompts, GREEDY, use_tqdm=False)  # repeated prompts, all from the cache
    assert [o["token_ids"] for o in again] == [o["token_ids"] for o in first + rest]
    assert_pool_clean(llm)


def test_prompts_sent_together_compute_their_shared_prefix_once(tiny_model_dir, make_llm, random_prompts,
                                                                assert_matches_hf, assert_pool_clean):
    shared = list(range(100))  # 6 full blocks of 16 before any prompt's last token
    prompts = [shared + tail for tail in random_prompts(4, max_len=10, seed=5)]
    llm = make_llm(tiny_model_dir, num_kvcache_blocks=128)
    outputs = llm.generate(prompts, GREEDY, use_tqdm=False)
    # The first prompt computes the 96 shared tokens; the other three wait a step and hit them.
    assert llm.scheduler.block_manager.num_hit_tokens == 3 * 96
    assert_matches_hf(tiny_model_dir, prompts, outputs, 12)
    assert_pool_clean(llm)


def test_prompt_of_exactly_full_blocks_recomputes_its_last_token(tiny_qwen3_dir, make_llm, assert_matches_hf):
    prompt = list(range(10, 42))  # exactly 2 blocks of 16: the second must not be a hit
    llm = make_llm(tiny_qwen3_dir)
    outs = [llm.generate([prompt], GREEDY, use_tqdm=False)[0] for _ in range(2)]
    assert llm.scheduler.block_manager.num_hit_tokens == 16
    assert_matches_hf(tiny_qwen3_dir, [prompt, prompt], outs, 12)


def test_chunked_prefill(tiny_model_dir, make_llm, random_prompts, assert_matches_hf, assert_pool_clean, budget=5):
    prompts = PROMPTS + random_prompts(5, seed=5)
    llm = make_llm(tiny_model_dir, max_num_batched_tokens=budget, max_num_seqs=budget)
    outputs = llm.generate(prompts, GREEDY, use_tqdm=False)
    assert_matches_hf(tiny_model_dir, prompts, outputs, 12)
    assert_pool_clean(llm)


def test_everything_at_once(tiny_qwen3_dir, make_llm, random_prompts, assert_matches_hf, assert_pool_clean):
    """Chunks, prefix hits and preemption in the same run."""
    shared = list(range(100, 130))
    prompts = [shared + p for p in random_prompts(10, max_len=12, seed=6)]
    llm = make_llm(tiny_qwen3_dir, num_kvcache_blocks=20, kvcache_block_size=4, max_num_batched_tokens=7, max_num_seqs=5)
    params = SamplingParams(temperature=0, ignore_eos=True, max_tokens=20)
    outputs = llm.generate(prompts, params, use_tqdm=False)
    assert llm.scheduler.num_preemptions > 0 and llm.scheduler.block_manager.num_hit_tokens > 0
    assert_matches_hf(tiny_qwen3_dir, prompts, outputs, 20)
    assert_pool_clean(llm)
