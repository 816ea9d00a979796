"""Chapter 8's engine over 2 and 3 ranks, as gloo processes on the CPU: the same greedy tokens
as one rank and as transformers, with chunked prefill and preemption; one process per rank,
reaped on close() and on a dropped LLM; a rank's error reaches rank 0 as one clear exception,
and nothing waits without a limit.

Tolerance: a split layer adds its partial sums in another order than the unsplit one, so logits
differ in the last bits of float32 (test_tensor_parallel_exercises.py holds them to 1e-4 of
transformers'). Greedy tokens can only differ where the top two logits are that close; the tiny
random models here decide every token by a far wider margin, so their tokens must be equal."""

import gc

import pytest

import ch08
from ch08.tests import faults
from course.testing import PROMPTS, assert_same_tokens, hf_greedy

MAX_TOKENS = 8
GREEDY = ch08.LLM.sampling_params_class(temperature=0, max_tokens=MAX_TOKENS, ignore_eos=True)
# A pool and a budget small enough that prompts are chunked and a sequence is preempted.
SMALL = dict(max_num_batched_tokens=16, num_kvcache_blocks=10, kvcache_block_size=4)


@pytest.fixture(scope="module")
def three_way_model(tiny_model_factory):
    """Qwen3 with 6 heads, 3 K/V heads and an MLP of 192: it splits 1 and 3 ways (not 2)."""
    return tiny_model_factory("qwen3", hidden_size=96, num_attention_heads=6, num_key_value_heads=3, intermediate_size=192)


def greedy_tokens(llm, prompts=PROMPTS):
    return [out["token_ids"] for out in llm.generate(prompts, GREEDY, use_tqdm=False)]


class TestThreeRanks:
    """One engine of three ranks for these tests (one tensor-parallel LLM may be open in a
    process at a time: the ranks' process group is the process's own)."""

    @pytest.fixture(scope="class")
    def tp3(self, three_way_model):
        llm = ch08.LLM(three_way_model, tensor_parallel_size=3, **SMALL)
        yield llm
        llm.close()

    def test_three_ranks_give_one_rank_s_tokens(self, tp3, three_way_model):
        """Each rank holds 2 query heads and 1 K/V head, a third of the MLP and of the vocabulary."""
        expected = [hf_greedy(three_way_model, prompt, MAX_TOKENS) for prompt in PROMPTS]
        one_rank = greedy_tokens(ch08.LLM(three_way_model, **SMALL))
        got = greedy_tokens(tp3)
        for prompt, g, one, e in zip(PROMPTS, got, one_rank, expected):
            assert_same_tokens(one, e, f"one rank, prompt {prompt}, against transformers")
            assert_same_tokens(g, e, f"three ranks, prompt {prompt}, against transformers")
        assert tp3.scheduler.num_preemptions > 0, "the small pool should have preempted a sequence"
        assert len(tp3.model_runner.workers) == 2 and all(p.is_alive() for p, _ in tp3.model_runner.workers)

    def test_each_rank_holds_its_shard_and_its_heads_cache(self, tp3):
        runner = tp3.model_runner
        attn = runner.model.model.layers[0].self_attn
        assert (attn.attn.num_heads, attn.attn.num_kv_heads) == (2, 1)
        assert attn.q_proj.weight.shape == (32, 96) and attn.o_proj.weight.shape == (96, 32)
        assert runner.kv_cache.shape[-2] == 1, "each rank caches the K/V of its own K/V head only"


@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_two_ranks_give_transformers_tokens(family, tiny_model_factory):
    """The default tiny models (4 heads, 2 K/V heads): Qwen2 has biases on q/k/v and an untied LM
    head, Llama a tied one."""
    path = tiny_model_factory(family)
    llm = ch08.LLM(path, tensor_parallel_size=2, **SMALL)
    try:
        got = greedy_tokens(llm)
    finally:
        llm.close()
    for prompt, g in zip(PROMPTS, got):
        assert_same_tokens(g, hf_greedy(path, prompt, MAX_TOKENS), f"{family}, two ranks, prompt {prompt}")


def test_a_size_that_cuts_heads_is_refused(three_way_model):
    with pytest.raises(ValueError, match="the sizes that work for this model are 1, 3"):
        ch08.LLM(three_way_model, tensor_parallel_size=2)


def test_close_and_drop_reap_every_rank(three_way_model):
    llm = ch08.LLM(three_way_model, tensor_parallel_size=3, **SMALL)
    workers = [p for p, _ in llm.model_runner.workers]
    llm.close()
    llm.close()  # twice is fine
    assert all(p.exitcode is not None for p in workers), "close() left a rank running"
    with pytest.raises(RuntimeError, match="this LLM is closed"):
        llm.generate(PROMPTS[:1], GREEDY, use_tqdm=False)
    llm = ch08.LLM(three_way_model, tensor_parallel_size=3, **SMALL)  # the process group is free again
    workers = [p for p, _ in llm.model_runner.workers]
    del llm
    gc.collect()
    assert all(p.exitcode is not None for p in workers), "a dropped LLM left a rank running"


def test_an_error_on_one_rank_is_one_clear_error_on_rank_0(three_way_model):
    llm = faults.LLMFailingInStep(three_way_model, tensor_parallel_size=3, **SMALL)
    workers = [p for p, _ in llm.model_runner.workers]
    with pytest.raises(RuntimeError, match="rank 1 failed in run: ValueError: a fault planted on rank 1"):
        llm.generate(PROMPTS, GREEDY, use_tqdm=False)
    with pytest.raises(RuntimeError, match="(?s)out of step.*close"):
        llm.generate(PROMPTS[:1], GREEDY, use_tqdm=False)
    llm.close()
    assert all(p.exitcode is not None for p in workers)


def test_a_rank_that_cannot_start_fails_the_constructor(three_way_model):
    with pytest.raises(RuntimeError, match="rank 1 failed in start: FileNotFoundError"):
        faults.LLMFailingToStart(three_way_model, tensor_parallel_size=3, **SMALL)
    llm = ch08.LLM(three_way_model, tensor_parallel_size=3, **SMALL)  # nothing of the failed one is left
    llm.close()
