"""Graders for chapter 1's exercises. `pytest chapters/01` checks chapters/01/exercises.py;
`pytest chapters/01 --reference` checks the chapter's own code."""

import pytest
import torch

import ch01
from ch01 import attention, layers, naive_generate
from ch01.sampling_params import SamplingParams
from ch01.tests import grading
from course.testing import PROMPTS, assert_close, assert_same_tokens, hf_greedy, hf_logits


def _logits(llm, ids):
    return llm.model.compute_logits(llm.model(torch.tensor(ids), torch.arange(len(ids))))


# --- 1.1 RMSNorm ------------------------------------------------------------------------------
@pytest.mark.exercise("rms_norm")
@pytest.mark.parametrize("scale,eps", [(1.0, 1e-6), (1e-3, 1e-2)])  # small vectors: eps matters
def test_rms_norm_values(solution, scale, eps):
    torch.manual_seed(0)
    x, w = scale * torch.randn(5, 7, 64), 1 + 0.5 * torch.randn(64)
    out = solution(x, w, eps)
    assert_close(out, grading.REFERENCE["rms_norm"](x, w, eps), f"rms_norm(x, weight, eps={eps}) for x of shape (5, 7, 64)")


@pytest.mark.exercise("rms_norm")
def test_rms_norm_in_float16(solution):
    """A model run in 16-bit floats: its residual stream holds values in the hundreds, whose
    squares overflow float16 (largest 65,504). Only a norm computed in float32 survives."""
    torch.manual_seed(0)
    x = (300 * torch.randn(4, 64)).half()  # (T, D)
    w = (1 + 0.5 * torch.randn(64)).half()
    out = solution(x, w, 1e-6)
    assert out.dtype == torch.float16, f"rms_norm should return x's dtype, float16; it returned {out.dtype}"
    expected = grading.REFERENCE["rms_norm"](x, w, 1e-6)
    survived = bool(torch.isfinite(out).all() and out.abs().amax() > 0.1)
    assert survived, (
        f"a float16 x around 300 came out as {out[0, :4].tolist()}..., expected {expected[0, :4].tolist()}...: "
        "x squared overflows float16; compute the norm in float32 (x.float()) and cast back"
    )
    assert_close(out, expected, "rms_norm(x, weight, 1e-6) for a float16 x of shape (4, 64)", axes=("token", "dim"))


@pytest.mark.exercise("rms_norm")
def test_rms_norm_in_the_model(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(layers, "rms_norm", solution)
    llm = ch01.LLM(tiny_model_dir)
    assert_close(_logits(llm, PROMPTS[0]), hf_logits(tiny_model_dir, PROMPTS[0]),
                 "the model's logits with your rms_norm, against transformers'", axes=("position", "token id"), atol=1e-4, rtol=1e-4)


# --- 1.2 rotary embedding ---------------------------------------------------------------------
@pytest.mark.exercise("apply_rope")
def test_apply_rope_values(solution):
    torch.manual_seed(0)
    x = torch.randn(9, 4, 16)
    cos, sin = layers.rope_cos_sin(torch.arange(3, 12), 16, 10000.0)
    assert_close(solution(x, cos, sin), grading.REFERENCE["apply_rope"](x, cos, sin),
                 "apply_rope(x, cos, sin) for x of shape (9, 4, 16) at positions 3..11", axes=("token", "head", "dim"))


@pytest.mark.exercise("apply_rope")
def test_apply_rope_keeps_relative_positions(solution):
    """q·k after rotation depends only on the distance between the two positions."""
    torch.manual_seed(1)
    q, k = torch.randn(1, 1, 16), torch.randn(1, 1, 16)

    def score(pq, pk):
        cq, sq = layers.rope_cos_sin(torch.tensor([pq]), 16, 10000.0)
        ck, sk = layers.rope_cos_sin(torch.tensor([pk]), 16, 10000.0)
        return (solution(q, cq, sq) * solution(k, ck, sk)).sum()

    assert_close(score(7, 3), score(104, 100), "q·k for positions 7 and 3, against 104 and 100 (the same distance apart)")
    assert_close(score(5, 5), (q * k).sum(), "q·k for q and k both at position 5, against q·k unrotated")
    ref_q = grading.REFERENCE["apply_rope"](q, *layers.rope_cos_sin(torch.tensor([7]), 16, 10000.0))
    assert_close(solution(q, *layers.rope_cos_sin(torch.tensor([7]), 16, 10000.0)), ref_q, "q rotated to position 7",
                 axes=("token", "head", "dim"))


@pytest.mark.exercise("apply_rope")
def test_apply_rope_in_the_model(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(layers, "apply_rope", solution)
    llm = ch01.LLM(tiny_model_dir)
    assert_close(_logits(llm, PROMPTS[2]), hf_logits(tiny_model_dir, PROMPTS[2]),
                 "the model's logits with your apply_rope, against transformers'", axes=("position", "token id"), atol=1e-4, rtol=1e-4)


# --- 1.3 causal grouped-query attention ---------------------------------------------------------
@pytest.mark.exercise("causal_attention")
@pytest.mark.parametrize("n_heads,n_kv_heads", [(4, 4), (4, 2), (6, 2)])
def test_causal_attention_values(solution, n_heads, n_kv_heads):
    torch.manual_seed(0)
    T, d = 11, 8
    q, k, v = torch.randn(T, n_heads, d), torch.randn(T, n_kv_heads, d), torch.randn(T, n_kv_heads, d)
    out = solution(q, k, v, d**-0.5)
    assert_close(out, grading.REFERENCE["causal_attention"](q, k, v, d**-0.5),
                 f"causal_attention for {T} tokens, {n_heads} query heads, {n_kv_heads} K/V heads", axes=("token", "head", "dim"))


@pytest.mark.exercise("causal_attention")
def test_causal_attention_ignores_the_future(solution):
    """Changing a later token's K/V must not change any earlier token's output."""
    torch.manual_seed(2)
    q, k, v = torch.randn(6, 2, 8), torch.randn(6, 1, 8), torch.randn(6, 1, 8)
    k2, v2 = k.clone(), v.clone()
    k2[4:], v2[4:] = torch.randn(2, 1, 8), torch.randn(2, 1, 8)
    a, b = solution(q, k, v, 0.35), solution(q, k2, v2, 0.35)
    assert_close(a[:4], b[:4], "tokens 0-3's outputs after tokens 4-5's K and V changed (the future must not matter)",
                 axes=("token", "head", "dim"))
    assert_close(a[0], v[0].expand(2, 8), "token 0's output, which can only be its own value (it sees only itself)",
                 axes=("head", "dim"))


@pytest.mark.exercise("causal_attention")
def test_causal_attention_in_the_model(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(attention, "causal_attention", solution)
    llm = ch01.LLM(tiny_model_dir)
    assert_close(_logits(llm, PROMPTS[0]), hf_logits(tiny_model_dir, PROMPTS[0]),
                 "the model's logits with your causal_attention, against transformers'", axes=("position", "token id"),
                 atol=1e-4, rtol=1e-4)


# --- 1.4 the generate loop ----------------------------------------------------------------------
@pytest.mark.exercise("generate")
def test_generate_matches_transformers(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(naive_generate, "generate", solution)
    llm = ch01.LLM(tiny_model_dir)
    params = SamplingParams(temperature=0, max_tokens=10, ignore_eos=True)
    for prompt in PROMPTS[:3]:
        [out] = llm.generate([prompt], params)
        assert_same_tokens(out["token_ids"], hf_greedy(tiny_model_dir, prompt, 10),
                           f"prompt {prompt}, 10 greedy tokens, against transformers'")


@pytest.mark.exercise("generate")
def test_generate_stops_at_eos(solution, tiny_qwen3_dir):
    llm = ch01.LLM(tiny_qwen3_dir)
    greedy = hf_greedy(tiny_qwen3_dir, PROMPTS[0], 8)
    eos = greedy[3]  # pretend the 4th greedy token ends the sequence
    first = greedy.index(eos) + 1
    params = SamplingParams(temperature=0, max_tokens=8)
    prompt = list(PROMPTS[0])
    assert_same_tokens(solution(llm.model, prompt, params, eos_token_ids=(eos,)), greedy[:first],
                       f"generate with EOS token {eos} (greedy token number {first}): the loop returns it, then stops")
    assert prompt == PROMPTS[0], (
        f"generate changed the prompt list it was given: {PROMPTS[0]} became {prompt}. The caller still owns that "
        "list; build the growing sequence in a new one (list(prompt_ids))")
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    assert_same_tokens(solution(llm.model, PROMPTS[0], params, eos_token_ids=(eos,)), greedy,
                       f"generate with ignore_eos=True and EOS token {eos}: it runs on to max_tokens=8")
