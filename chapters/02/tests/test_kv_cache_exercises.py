"""Graders for chapter 2's exercises. `pytest chapters/02` checks chapters/02/exercises.py;
`pytest chapters/02 --reference` checks the chapter's own code. (The file name is unique across
chapters: pytest's importlib mode names a test module after its path from the package root,
tests.<file>, so two chapters' tests/test_exercises.py would shadow each other in one run.)"""

import dataclasses

import pytest
import torch

import ch01
import ch02
from ch02 import attention, llm, model_runner, solutions
from ch02.context import Context, reset_context, set_context
from ch02.sequence import Sequence
from ch02.tests import grading
from ch02.tests.expected import transformers_greedy
from course.testing import PROMPTS, assert_close, assert_same_tokens

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


def assert_engine_matches_transformers(path, max_num_seqs=3):
    """Four prompts of different lengths in two static batches: the same tokens as transformers."""
    outs = ch02.LLM(path, max_num_seqs=max_num_seqs, max_model_len=64).generate(PROMPTS, GREEDY)
    for prompt, out, expected in zip(PROMPTS, outs, transformers_greedy(path, GREEDY.max_tokens)):
        assert_same_tokens(out["token_ids"], expected, f"prompt {prompt}, 8 greedy tokens from the engine, against transformers'")


def random_row(max_len, n_kv_heads, head_dim, context_len, seed):
    """A cache row whose slots past context_len hold leftovers of an earlier sequence."""
    g = torch.Generator().manual_seed(seed)
    row = torch.randn(max_len, n_kv_heads, head_dim, generator=g)
    row[context_len:] = 5 * torch.randn(max_len - context_len, n_kv_heads, head_dim, generator=g)
    return row


# --- 2.1 attention over the cache ---------------------------------------------------------------
@pytest.mark.exercise("cached_attention")
@pytest.mark.parametrize("n,context_len", [(9, 9), (1, 9), (4, 9), (1, 1)], ids=["prefill", "decode", "chunk", "first"])
@pytest.mark.parametrize("n_heads,n_kv_heads", [(4, 2), (6, 3)])
def test_cached_attention_values(solution, n, context_len, n_heads, n_kv_heads):
    d = 8
    q = torch.randn(n, n_heads, d, generator=torch.Generator().manual_seed(1))
    k_cache, v_cache = random_row(16, n_kv_heads, d, context_len, 2), random_row(16, n_kv_heads, d, context_len, 3)
    out = solution(q, k_cache, v_cache, context_len, d**-0.5)
    assert_close(out, grading.REFERENCE["cached_attention"](q, k_cache, v_cache, context_len, d**-0.5),
                 f"cached_attention for {n} new tokens over context_len={context_len} (a cache row of 16 slots; "
                 f"{n_heads} query heads, {n_kv_heads} K/V heads)", axes=("new token", "head", "dim"))


@pytest.mark.exercise("cached_attention")
def test_cached_attention_decode_equals_the_last_row_of_full_attention(solution):
    """One new query over the cache sees what the last row of chapter 1's attention sees."""
    g = torch.Generator().manual_seed(4)
    q, k, v = torch.randn(7, 4, 8, generator=g), torch.randn(7, 2, 8, generator=g), torch.randn(7, 2, 8, generator=g)
    full = ch01.attention.causal_attention(q, k, v, 0.3)
    k_cache, v_cache = torch.zeros(12, 2, 8), torch.zeros(12, 2, 8)
    k_cache[:7], v_cache[:7] = k, v
    axes = ("new token", "head", "dim")
    assert_close(solution(q[-1:], k_cache, v_cache, 7, 0.3), full[-1:],
                 "one new token over 7 cached, against the last row of chapter 1's causal_attention", axes=axes)
    assert_close(solution(q[-3:], k_cache, v_cache, 7, 0.3), full[-3:],
                 "3 new tokens over context_len=7, against the last 3 rows of chapter 1's causal_attention", axes=axes)
    assert_close(solution(q, k_cache, v_cache, 7, 0.3), full,
                 "7 new tokens over context_len=7 (a prefill), against chapter 1's causal_attention", axes=axes)


@pytest.mark.exercise("cached_attention")
def test_cached_attention_in_the_engine(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(attention, "cached_attention", solution)
    monkeypatch.setattr(solutions, "cached_attention", solution)  # where Attention.forward looks it up
    assert_engine_matches_transformers(tiny_model_dir)


# --- 2.2 store, then attend ---------------------------------------------------------------------
@pytest.mark.exercise("attention_forward")
def test_attention_forward_stores_and_attends(solution):
    """Two sequences in rows 2 and 0: a fresh prompt of 3 tokens, and one token after 4 cached."""
    torch.manual_seed(5)
    n_heads, n_kv_heads, d = 4, 2, 8

    def layer():
        attn = attention.Attention(n_heads, d, d**-0.5, n_kv_heads)
        attn.k_cache, attn.v_cache = torch.zeros(3, 10, n_kv_heads, d), torch.zeros(3, 10, n_kv_heads, d)
        attn.k_cache[0, :4], attn.v_cache[0, :4] = torch.randn(4, n_kv_heads, d), torch.randn(4, n_kv_heads, d)
        return attn

    ours, ref = layer(), layer()
    ref.k_cache.copy_(ours.k_cache), ref.v_cache.copy_(ours.v_cache)
    q, k, v = torch.randn(4, n_heads, d), torch.randn(4, n_kv_heads, d), torch.randn(4, n_kv_heads, d)
    set_context(Context(cu_seqlens_q=torch.tensor([0, 3, 4]), context_lens=torch.tensor([3, 5]), cache_rows=torch.tensor([2, 0])))
    try:
        out = solution(ours, q, k, v)
        expected = grading.REFERENCE["attention_forward"](ref, q, k, v)
    finally:
        reset_context()
    cache_axes = ("cache row", "slot", "K/V head", "dim")
    assert_close(ours.k_cache, ref.k_cache, "self.k_cache after the step (a 3-token prompt for row 2, one token at slot 4 of row 0)",
                 axes=cache_axes)
    assert_close(ours.v_cache, ref.v_cache, "self.v_cache after the step (a 3-token prompt for row 2, one token at slot 4 of row 0)",
                 axes=cache_axes)
    assert_close(out, expected, "the attention output of the step's 4 tokens", axes=("token", "head", "dim"))


@pytest.mark.exercise("attention_forward")
def test_attention_forward_in_the_engine(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(attention.Attention, "forward", solution)
    assert_engine_matches_transformers(tiny_model_dir)


# --- 2.3 prepare the step's inputs -------------------------------------------------------------
def _two_sequences():
    fresh = Sequence([5, 6, 7])
    decoding = Sequence([10, 11, 12, 13])
    decoding.num_cached_tokens = 4
    decoding.append_token(14)  # sampled last step; its K/V are not cached yet
    return [fresh, decoding]


@pytest.mark.exercise("prepare_inputs")
def test_prepare_inputs_by_hand(solution):
    input_ids, positions, cu_seqlens_q, context_lens = solution(_two_sequences())
    assert input_ids.tolist() == [5, 6, 7, 14], "input_ids: the fresh prompt whole, then only the uncached token"
    assert positions.tolist() == [0, 1, 2, 4], "positions: each token's index in its own sequence"
    assert cu_seqlens_q.tolist() == [0, 3, 4], "cu_seqlens_q: where each sequence's tokens start in input_ids, then the total"
    assert context_lens.tolist() == [3, 5], "context_lens: each sequence's length once this step's tokens are stored"
    assert input_ids.dtype == positions.dtype == torch.int64, (
        f"input_ids and positions are {input_ids.dtype} and {positions.dtype}; the model indexes with torch.int64 (torch.long)")


@pytest.mark.exercise("prepare_inputs")
def test_prepare_inputs_in_the_engine(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(model_runner, "prepare_inputs", solution)
    assert_engine_matches_transformers(tiny_model_dir)


# --- 2.4 after the step ---------------------------------------------------------------------------
class _Engine:  # what postprocess reads from the LLM
    class config:
        eos_token_ids = (2,)


@pytest.mark.exercise("postprocess")
def test_postprocess_by_hand(solution):
    params = ch01.SamplingParams(temperature=0, max_tokens=2)
    prefilled, decoding, last, ignoring = (Sequence([5, 6, 7], params) for _ in range(4))
    decoding.num_cached_tokens = 3
    decoding.append_token(8)
    last.num_cached_tokens = 3
    last.append_token(8)
    ignoring.ignore_eos = True
    solution(_Engine(), [prefilled, decoding, last, ignoring], [9, 2, 4, 2])
    assert [s.num_cached_tokens for s in (prefilled, decoding, last)] == [3, 4, 4], (
        "after a step, every token the sequence had before it is cached; the sampled one is not"
    )
    assert prefilled.token_ids == [5, 6, 7, 9], f"the sampled token is appended: got {prefilled.token_ids}, expected [5, 6, 7, 9]"
    assert not prefilled.is_finished, "one new token of max_tokens=2, and not an EOS token: the sequence goes on"
    assert decoding.finish_reason == "stop", "token 2 is an EOS token"
    assert last.finish_reason == "length", "two new tokens of max_tokens=2"
    assert not ignoring.is_finished, "ignore_eos: keep going past EOS"


@pytest.mark.exercise("postprocess")
def test_postprocess_in_the_engine(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(llm.LLM, "postprocess", solution)
    assert_engine_matches_transformers(tiny_model_dir)


@pytest.mark.exercise("postprocess")
def test_postprocess_stops_each_sequence_on_its_own(solution, tiny_qwen3_dir, monkeypatch):
    """A static batch where one sequence meets its EOS early and the others run on."""
    monkeypatch.setattr(llm.LLM, "postprocess", solution)
    engine = ch02.LLM(tiny_qwen3_dir, max_num_seqs=4, max_model_len=64)
    greedy = [list(t) for t in transformers_greedy(tiny_qwen3_dir, 8)[:3]]
    eos = greedy[0][2]  # pretend the third token of the first prompt ends it
    engine.config = dataclasses.replace(engine.config, eos_token_ids=(eos,))
    outs = engine.generate(PROMPTS[:3], ch01.SamplingParams(temperature=0, max_tokens=8))
    for out, tokens in zip(outs, greedy):
        expected = tokens[:tokens.index(eos) + 1] if eos in tokens else tokens
        assert_same_tokens(out["token_ids"], expected, f"a batch where token {eos} is EOS: this sequence's tokens")
        reason = "stop" if eos in tokens else "length"
        assert out["finish_reason"] == reason, f"finish_reason is {out['finish_reason']!r}, expected {reason!r}"
