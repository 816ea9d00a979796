"""The batched sampler: greedy, temperature, top-k, top-p, min-p, per-request seeds, and rows
with different parameters in one batch. Distributions are checked on many rows at once (one
batch of N copies of the same logits) against the exact filtered softmax."""

import pytest
import torch

from course.testing import assert_seeded_row_ignores_its_batch
from nanovllm_final import SamplingParams
from nanovllm_final.layers.sampler import Sampler

LOGITS = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -1.0, -3.0])  # probabilities fall off token by token
N = 40_000


def sample(logits, n=N, temperature=1.0, top_k=-1, top_p=1.0, min_p=0.0, generators=None):
    col = lambda v, dtype: torch.full((n,), v, dtype=dtype)  # noqa: E731
    return Sampler()(logits.expand(n, -1), col(temperature, torch.float32), col(top_k, torch.long),
                     col(top_p, torch.float32), col(min_p, torch.float32), generators)


def frequencies(tokens, vocab=len(LOGITS)):
    return torch.bincount(tokens, minlength=vocab).float() / len(tokens)


def assert_distribution(tokens, expected):
    # 4 sigma of a binomial frequency at N samples: a wrong filter is off by far more.
    assert torch.allclose(frequencies(tokens), expected, atol=4 * (0.25 / len(tokens)) ** 0.5), (frequencies(tokens), expected)


def test_greedy_is_argmax_whatever_the_filters():
    logits = torch.randn(64, 1000, generator=torch.Generator().manual_seed(0))
    n = logits.shape[0]
    out = Sampler()(logits, torch.zeros(n), torch.full((n,), 5), torch.full((n,), 0.1), torch.full((n,), 0.5))
    assert torch.equal(out, logits.argmax(-1))


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_temperature(temperature):
    torch.manual_seed(0)
    assert_distribution(sample(LOGITS, temperature=temperature), (LOGITS / temperature).softmax(-1))


def test_top_k():
    torch.manual_seed(1)
    expected = torch.zeros(len(LOGITS))
    expected[:3] = LOGITS[:3].softmax(-1)
    assert_distribution(sample(LOGITS, top_k=3), expected)


def test_top_p():
    torch.manual_seed(2)
    probs = LOGITS.softmax(-1)  # 0.41, 0.25, 0.15, ... : tokens 0-2 are needed to reach 0.7
    expected = torch.zeros(len(LOGITS))
    expected[:3] = probs[:3] / probs[:3].sum()
    assert_distribution(sample(LOGITS, top_p=0.7), expected)
    assert torch.all(sample(LOGITS, top_p=0.01) == 0)  # a tiny nucleus is the top token alone


def test_min_p():
    torch.manual_seed(3)
    probs = LOGITS.softmax(-1)
    keep = probs >= 0.3 * probs.max()  # tokens 0, 1, 2
    expected = torch.where(keep, probs, 0) / probs[keep].sum()
    assert_distribution(sample(LOGITS, min_p=0.3), expected)


def test_mixed_parameters_in_one_batch():
    """Each row obeys its own parameters: greedy, top-k=2, top-p=0.5, min-p=0.5, plain T=1."""
    torch.manual_seed(4)
    n = 5 * 8000
    kinds = torch.arange(n) % 5
    temps = torch.where(kinds == 0, 0.0, 1.0)
    top_ks = torch.where(kinds == 1, 2, -1)
    top_ps = torch.where(kinds == 2, 0.5, 1.0)
    min_ps = torch.where(kinds == 3, 0.5, 0.0)
    out = Sampler()(LOGITS.expand(n, -1), temps, top_ks, top_ps, min_ps)
    probs = LOGITS.softmax(-1)
    assert torch.all(out[kinds == 0] == 0)
    assert set(out[kinds == 1].tolist()) == {0, 1}
    assert set(out[kinds == 2].tolist()) == {0, 1}  # 0.41 < 0.5, so the second token is needed
    assert set(out[kinds == 3].tolist()) == {0, 1}  # p1 = 0.62 p0 >= 0.5 p0; p2 = 0.37 p0 is not
    assert_distribution(out[kinds == 4], probs)


def test_seeded_rows_reproduce_whatever_the_batch():
    def draws(seed, position, batch, steps=5):
        gen = torch.Generator().manual_seed(seed)
        gens = [None] * batch
        gens[position] = gen
        return [int(sample(LOGITS, n=batch, generators=gens)[position]) for _ in range(steps)]

    torch.manual_seed(5)
    a = draws(seed=7, position=0, batch=1)
    torch.manual_seed(6)  # other rows' randomness changes; the seeded row must not
    b = draws(seed=7, position=3, batch=8)
    assert a == b
    assert any(draws(seed=s, position=0, batch=1) != a for s in range(8, 12))


def test_seeded_requests_reproduce_end_to_end(tiny_qwen3_dir, make_llm):
    llm = make_llm(tiny_qwen3_dir)
    seeded = SamplingParams(temperature=1.0, top_k=50, max_tokens=10, ignore_eos=True, seed=123)
    other = SamplingParams(temperature=1.0, max_tokens=10, ignore_eos=True)
    alone = llm.generate([[1, 2, 3]], seeded, use_tqdm=False)[0]["token_ids"]
    batched = llm.generate([[9, 9], [1, 2, 3], [4]], [other, seeded, other], use_tqdm=False)[1]["token_ids"]
    assert alone == batched
    differs = llm.generate([[1, 2, 3]], SamplingParams(temperature=1.0, top_k=50, max_tokens=10, ignore_eos=True, seed=124),
                           use_tqdm=False)[0]["token_ids"]
    assert differs != alone


def test_a_seeded_row_ignores_its_neighbours_parameters():
    assert_seeded_row_ignores_its_batch("cpu")  # the kernel's torch twin; the Triton kernel: test_kernels_interpret.py


def test_seeded_request_alone_and_beside_top_p_top_k_requests(tiny_qwen3_dir, make_llm):
    llm = make_llm(tiny_qwen3_dir)
    seeded = SamplingParams(temperature=0.8, max_tokens=10, ignore_eos=True, seed=11)
    alone = llm.generate([[1, 2, 3]], seeded, use_tqdm=False)[0]["token_ids"]
    others = [SamplingParams(temperature=1.0, top_p=0.9, max_tokens=4, ignore_eos=True),
              SamplingParams(temperature=1.0, top_k=5, max_tokens=12, ignore_eos=True)]
    batched = llm.generate([[9, 9], [1, 2, 3], [4]], [others[0], seeded, others[1]], use_tqdm=False)[1]["token_ids"]
    assert batched == alone
