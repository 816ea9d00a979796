"""Chapter 7's sampler: greedy rows exact, each filter against a plain per-row reference, the
draws' distribution by a chi-square test, seeded requests the same alone and in any batch, and
clear errors for invalid parameters."""

import pytest
import torch

import ch07
from ch07.sampler import Sampler, apply_temperature, filtered_probs
from ch07.tests import plain
from course.testing import PROMPTS, assert_close, assert_same_tokens


def chi_square_p_value(tokens: torch.Tensor, probs: list[float]) -> float:
    """P-value of Pearson's chi-square test that `tokens` were drawn from `probs`. Tokens whose
    expected count is under 5 are pooled into one bin (the test's approximation needs it); a
    token of probability 0 that was drawn gives 0."""
    n = len(tokens)
    counts = torch.bincount(tokens.cpu(), minlength=len(probs)).double()
    expected = torch.tensor(probs, dtype=torch.float64) * n
    if (counts[expected == 0] > 0).any():
        return 0.0
    small = (expected < 5) & (expected > 0)
    big = expected >= 5
    obs = torch.cat([counts[big], counts[small].sum().reshape(1)])
    exp = torch.cat([expected[big], expected[small].sum().reshape(1)])
    obs, exp = obs[exp > 0], exp[exp > 0]
    statistic = float(((obs - exp) ** 2 / exp).sum())
    df = len(exp) - 1
    if df == 0:
        return 1.0
    return float(torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64), torch.tensor(statistic / 2, dtype=torch.float64)))


def engine_tokens(path, requests, **options) -> list[list[int]]:
    """requests: (prompt, SamplingParams) pairs, run together through a fresh chapter-7 engine."""
    engine = ch07.LLM(path, **options)
    outs = engine.generate([prompt for prompt, _ in requests], [params for _, params in requests], use_tqdm=False)
    return [out["token_ids"] for out in outs]


@pytest.mark.parametrize("kwargs, field", [
    (dict(temperature=-0.1), "temperature"), (dict(top_k=0), "top_k"), (dict(top_k=-2), "top_k"),
    (dict(top_k=2.5), "top_k"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(top_p=float("nan")), "top_p"),
    (dict(min_p=-0.1), "min_p"), (dict(min_p=1.01), "min_p"), (dict(max_tokens=0), "max_tokens"), (dict(seed=1.5), "seed"),
])
def test_invalid_params_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ch07.SamplingParams(**kwargs)


def test_valid_edges_are_accepted():
    ch07.SamplingParams(temperature=0, top_k=-1, top_p=1.0, min_p=0.0, seed=0)
    ch07.SamplingParams(top_k=1, top_p=1e-9, min_p=1.0, seed=-5)


def random_params(batch: int, generator: torch.Generator):
    """A batch of mixed requests: greedy, plain, top-k, top-p, min-p and combinations."""
    pick = lambda choices: torch.tensor(choices)[torch.randint(len(choices), (batch,), generator=generator)]  # noqa: E731
    return (pick([0.0, 0.5, 1.0, 1.7]), pick([-1, 1, 3, 7]), pick([1.0, 0.5, 0.8, 0.95]), pick([0.0, 0.05, 0.3]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_greedy_rows_are_exact_argmax(dtype):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(64, 300, generator=g) * 3).to(dtype)
    temperatures, top_ks, top_ps, min_ps = random_params(64, g)
    tokens = Sampler()(logits, temperatures, top_ks, top_ps, min_ps)
    greedy = temperatures == 0
    assert greedy.any() and (~greedy).any()
    assert torch.equal(tokens[greedy], logits[greedy].argmax(dim=-1))
    all_greedy = Sampler()(logits, torch.zeros(64), top_ks, top_ps, min_ps)
    assert torch.equal(all_greedy, logits.argmax(dim=-1))


def test_filters_match_the_plain_reference():
    """Every row of a mixed batch, through temperature, top-k, top-p and min-p, against the
    one-row-at-a-time reference in Python floats."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(48, 12, generator=g) * 2
    temperatures, top_ks, top_ps, min_ps = random_params(48, g)
    temperatures = temperatures.clamp_min(0.5)  # the sampled rows; greedy rows take the argmax instead
    got = filtered_probs(apply_temperature(logits, temperatures), top_ks, top_ps, min_ps)
    expected = torch.tensor([plain.filtered(*args) for args in zip(logits.tolist(), temperatures.tolist(), top_ks.tolist(),
                                                                     top_ps.tolist(), min_ps.tolist())], dtype=torch.float32)
    assert_close(got, expected, "filtered probabilities against the per-row reference", axes=("row", "token"), atol=1e-6, rtol=1e-5)


def test_draws_follow_the_filtered_distribution():
    """Four kinds of request, 10,000 rows each, in one batch: each kind's counts pass a chi-square
    test against its filtered distribution (p-value above 1e-6; the seed is fixed, so the test
    cannot flake), and no dropped token is ever drawn."""
    torch.manual_seed(0)
    row = torch.tensor([2.0, 1.5, 1.0, 0.7, 0.2, 0.0, -0.5, -1.0, -2.0, -3.0])
    kinds = [(1.0, -1, 1.0, 0.0), (0.7, 4, 1.0, 0.0), (1.3, -1, 0.8, 0.0), (1.0, 6, 0.9, 0.2)]
    n = 10_000
    columns = [torch.tensor([k[i] for k in kinds]).repeat_interleave(n) for i in range(4)]
    tokens = Sampler()(row.expand(len(kinds) * n, -1), *columns)
    for i, (t, k, p, m) in enumerate(kinds):
        probs = plain.filtered(row.tolist(), t, k, p, m)
        value = chi_square_p_value(tokens[i * n:(i + 1) * n], probs)
        assert value > 1e-6, f"temperature {t}, top_k {k}, top_p {p}, min_p {m}: chi-square p-value {value:.2g}"


def test_seeded_request_same_alone_and_in_any_batch(tiny_qwen3_dir):
    seeded = ch07.SamplingParams(temperature=1.0, top_k=50, min_p=0.02, max_tokens=8, ignore_eos=True, seed=42)
    alone = engine_tokens(tiny_qwen3_dir, [(PROMPTS[0], seeded)])[0]
    assert engine_tokens(tiny_qwen3_dir, [(PROMPTS[0], seeded)])[0] == alone, "the same seed twice"
    others = [(PROMPTS[2], ch07.SamplingParams(temperature=1.2, max_tokens=5, ignore_eos=True)),
              (PROMPTS[3], ch07.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)),
              (PROMPTS[1], ch07.SamplingParams(temperature=0.9, top_p=0.9, max_tokens=8, ignore_eos=True, seed=7))]
    for place in range(4):
        requests = others[:place] + [(PROMPTS[0], seeded)] + others[place:]
        assert_same_tokens(engine_tokens(tiny_qwen3_dir, requests)[place], alone, f"seed 42 at place {place} of a batch of 4")
    # A pool too small for all four: sequences are preempted and recomputed, the seeded stream goes on.
    engine = ch07.LLM(tiny_qwen3_dir, kvcache_block_size=4, num_kvcache_blocks=10)
    requests = others + [(PROMPTS[0], seeded)]
    outs = engine.generate([prompt for prompt, _ in requests], [params for _, params in requests], use_tqdm=False)
    assert engine.scheduler.num_preemptions > 0
    assert_same_tokens(outs[3]["token_ids"], alone, "seed 42 in a batch whose pool forces preemptions")
    other_seed = ch07.SamplingParams(**{**vars(seeded), "seed": 43})
    assert engine_tokens(tiny_qwen3_dir, [(PROMPTS[0], other_seed)])[0] != alone, "seeds 42 and 43 gave the same 8 tokens"


def test_chapter_1_params_mean_no_filter_and_no_seed(tiny_qwen3_dir):
    """The engine's SamplingParams is chapter 7's (`sampling_params_class`); chapter 1's, given to
    it, is read as top_k=-1, top_p=1, min_p=0, no seed."""
    import ch01

    engine = ch07.LLM(tiny_qwen3_dir)
    assert engine.sampling_params_class is ch07.SamplingParams
    seq = engine.add_request([1, 2, 3], ch01.SamplingParams(temperature=0.5, max_tokens=3))
    p = seq.sampling_params
    assert isinstance(p, ch07.SamplingParams), f"the sequence carries a {type(p).__name__}, expected chapter 7's"
    assert (p.temperature, p.top_k, p.top_p, p.min_p, p.seed, p.max_tokens) == (0.5, -1, 1.0, 0.0, None, 3)