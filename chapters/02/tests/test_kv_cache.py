"""Chapter 2's engine: the cache changes how much is computed, never what."""

import pytest
import torch

import ch01
import ch02
from ch02.sequence import RowSequence
from ch02.tests.expected import transformers_greedy
from course.testing import PROMPTS

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


@pytest.mark.parametrize("max_num_seqs", [1, 4])
def test_tokens_match_chapter_1_and_transformers(tiny_model_dir, max_num_seqs):
    cached = ch02.LLM(tiny_model_dir, max_num_seqs=max_num_seqs, max_model_len=64).generate(PROMPTS, GREEDY)
    naive = ch01.LLM(tiny_model_dir).generate(PROMPTS, GREEDY)
    expected = transformers_greedy(tiny_model_dir, GREEDY.max_tokens)
    assert [o["token_ids"] for o in cached] == [o["token_ids"] for o in naive] == [list(t) for t in expected]
    assert [o["text"] for o in cached] == [o["text"] for o in naive]


@torch.inference_mode()
def test_cached_logits_equal_uncached_logits_at_every_step(tiny_model_dir):
    """Run two sequences of different lengths through the runner step by step; at each step the
    logits from the cache equal chapter 1's logits from the whole sequence."""
    engine = ch02.LLM(tiny_model_dir, max_num_seqs=2, max_model_len=64)
    naive = ch01.LLM(tiny_model_dir).model
    seqs = [RowSequence(PROMPTS[0]), RowSequence(PROMPTS[2])]
    for row, seq in enumerate(seqs):
        seq.cache_row = row
    for step in range(6):
        logits = engine.runner.run(seqs)  # (2, vocab)
        for seq, row in zip(seqs, logits):
            ids = torch.tensor(seq.token_ids)
            full = naive.compute_logits(naive(ids, torch.arange(len(ids))))[-1]
            torch.testing.assert_close(row, full, atol=1e-4, rtol=1e-4, msg=f"step {step}, sequence of {len(seq)} tokens")
        engine.postprocess(seqs, [int(row.argmax()) for row in logits])
    assert [seq.num_cached_tokens for seq in seqs] == [len(PROMPTS[0]) + 5, len(PROMPTS[2]) + 5]


def test_each_step_computes_only_the_uncached_tokens(tiny_qwen3_dir):
    engine = ch02.LLM(tiny_qwen3_dir, max_num_seqs=2, max_model_len=64)
    seqs = [RowSequence(PROMPTS[0]), RowSequence(PROMPTS[3])]
    for row, seq in enumerate(seqs):
        seq.cache_row = row
    input_ids, positions = engine.runner.prepare(seqs)
    assert input_ids.tolist() == PROMPTS[0] + PROMPTS[3]  # prefill: both prompts whole
    assert positions.tolist() == list(range(8)) + list(range(5))
    engine.step(seqs)
    input_ids, positions = engine.runner.prepare(seqs)
    assert input_ids.tolist() == [seqs[0].last_token, seqs[1].last_token]  # decode: one token each
    assert positions.tolist() == [8, 5]
    ch02.reset_context()


def test_cache_size_is_what_the_formula_says(tiny_qwen3_dir):
    engine = ch02.LLM(tiny_qwen3_dir, max_num_seqs=3, max_model_len=40)
    c = engine.config
    per_token = 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4  # K and V, float32
    assert engine.runner.bytes_per_slot == per_token == 2 * c.kv_bytes_per_token  # ch01's figure is for bf16
    assert engine.runner.kv_cache.nbytes == 3 * 40 * per_token  # every row reserved up front
    assert engine.runner.kv_cache.shape == (2, c.num_hidden_layers, 3, 40, c.num_key_value_heads, c.head_dim)


def test_static_batch_reserves_rows_until_the_last_sequence_ends(tiny_qwen3_dir):
    """Four prompts of 8, 1, 21 and 5 tokens asking for 2, 9, 4 and 6 tokens: one batch of 9 steps."""
    engine = ch02.LLM(tiny_qwen3_dir, max_num_seqs=4, max_model_len=64)
    max_tokens = [2, 9, 4, 6]
    params = [ch01.SamplingParams(temperature=0, max_tokens=m, ignore_eos=True) for m in max_tokens]
    outs = engine.generate(PROMPTS, params)
    assert [len(o["token_ids"]) for o in outs] == max_tokens
    usage = engine.cache_usage
    assert len(usage) == 9  # the longest request decides the batch's length
    assert [u.running for u in usage] == [sum(m > step for m in max_tokens) for step in range(1, 10)]
    assert {u.reserved_slots for u in usage} == {4 * 64}
    final_lengths = [len(p) + m for p, m in zip(PROMPTS, max_tokens)]  # 10, 10, 25, 11
    assert usage[-1].used_slots == sum(n - 1 for n in final_lengths)  # the last sampled token is never stored
    assert usage[-1].wasted_slots == 4 * 64 - 52
    assert usage[-1].waste == pytest.approx(1 - 52 / 256)
    assert usage[-1].bytes_per_slot == engine.runner.bytes_per_slot


def test_more_prompts_than_rows_run_in_several_batches(tiny_qwen3_dir):
    prompts = PROMPTS + [[7, 8, 9]]
    one_by_one = ch02.LLM(tiny_qwen3_dir, max_num_seqs=1, max_model_len=64)
    in_pairs = ch02.LLM(tiny_qwen3_dir, max_num_seqs=2, max_model_len=64)
    assert in_pairs.generate(prompts, GREEDY) == one_by_one.generate(prompts, GREEDY)
    assert [u.batch_size for u in in_pairs.cache_usage] == [2] * 8 + [2] * 8 + [1] * 8


def test_sampling_keeps_to_max_tokens_and_eos(tiny_qwen3_dir):
    engine = ch02.LLM(tiny_qwen3_dir, max_model_len=64)
    torch.manual_seed(0)
    outs = engine.generate(PROMPTS, ch01.SamplingParams(temperature=1.0, max_tokens=5))
    for out in outs:
        assert 1 <= len(out["token_ids"]) <= 5
        ended = out["token_ids"][-1] in engine.config.eos_token_ids
        assert out["finish_reason"] == ("stop" if ended else "length")


def test_user_errors_name_the_fix(tiny_qwen3_dir):
    engine = ch02.LLM(tiny_qwen3_dir, max_model_len=16)
    with pytest.raises(ValueError, match="max_model_len is 16"):
        engine.generate([PROMPTS[2]], GREEDY)  # 21 prompt tokens + 8
    with pytest.raises(ValueError, match="max_num_seqs"):
        ch02.LLM(tiny_qwen3_dir, max_num_seqs=0)
    assert engine.generate([PROMPTS[0]], ch01.SamplingParams(temperature=0, max_tokens=8))  # still usable
    assert ch02.LLM(tiny_qwen3_dir, max_model_len=10**6).max_model_len == engine.config.max_position_embeddings
