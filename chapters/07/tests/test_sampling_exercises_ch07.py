"""Graders for chapter 7's exercises. `pytest chapters/07` checks chapters/07/exercises.py;
`pytest chapters/07 --reference` checks the chapter's own code. Each exercise is checked on
hand-made rows against the plain per-row reference (ch07/tests/plain.py), then inside the
sampler or the engine on the tiny Qwen3 model."""

import pytest
import torch

import ch07
from ch07 import sampler
from ch07.tests import plain
from ch07.tests.test_sampling_ch07 import chi_square_p_value, engine_tokens
from course.testing import PROMPTS, assert_close, assert_same_tokens

# Three rows of eight logits, no ties, with very different shapes: peaked, flat, two-headed.
LOGITS = torch.tensor([
    [4.0, 2.5, 1.0, 0.5, 0.0, -1.0, -2.0, -3.0],
    [0.3, 0.1, 0.2, 0.0, -0.1, 0.25, 0.05, -0.2],
    [1.0, 3.0, -2.0, 2.9, 0.0, -1.0, 0.5, -0.5],
])
# Ties: three logits at 2.0 and two at 0.5. top_k = 2 keeps all three 2.0s (each is tied with the 2nd
# largest), top_k = 4 keeps the 2.0s and both 0.5s.
TIES = torch.tensor([
    [1.0, 2.0, 2.0, 0.5, 2.0, -1.0, 0.5, 0.0],
    [0.5, -1.0, 0.5, 0.5, 3.0, 0.5, 0.0, -2.0],
])
# Exact in float32: the running totals 0.5, 0.75, 0.875, 0.9375, 1.
PROBS = torch.tensor([[0.5, 0.25, 0.125, 0.0625, 0.0625, 0.0, 0.0, 0.0]])


def kept(mask: torch.Tensor) -> list[list[int]]:
    return [[i for i, d in enumerate(row) if not d] for row in mask.tolist()]


def assert_keeps(mask, expected: list[set[int]], what: str):
    assert isinstance(mask, torch.Tensor) and mask.dtype == torch.bool, f"{what}: expected a bool mask, got {mask!r:.80}"
    assert tuple(mask.shape) == (len(expected), mask.shape[-1]), f"{what}: got shape {tuple(mask.shape)}"
    got = kept(mask)
    for b, (g, e) in enumerate(zip(got, expected)):
        assert set(g) == e, f"{what}: row {b} keeps tokens {g}, expected {sorted(e)} (the mask is True where a token is dropped)"


# --- 7.1 temperature ----------------------------------------------------------------------------
@pytest.mark.exercise("apply_temperature")
def test_temperature_per_row(solution):
    temperatures = torch.tensor([0.5, 0.0, 2.0])
    expected = torch.tensor([plain.tempered(row, t) for row, t in zip(LOGITS.tolist(), temperatures.tolist())])
    logits = LOGITS.clone()
    assert_close(solution(logits, temperatures), expected, "apply_temperature for temperatures [0.5, 0 (greedy), 2.0]",
                 axes=("row", "token"))
    changed = (logits != LOGITS).any(dim=-1).nonzero().flatten().tolist()
    assert not changed, (
        f"apply_temperature changed the logits it was given (rows {changed}): the sampler still needs them (the greedy "
        "rows take their argmax). `.float()` of float32 logits is the same tensor: divide out of place")
    assert_close(solution(LOGITS.bfloat16(), temperatures), expected.bfloat16().float(),
                 "apply_temperature of bfloat16 logits (expected float32 back)", axes=("row", "token"))


@pytest.mark.exercise("apply_temperature")
def test_temperature_in_the_sampler(solution, monkeypatch):
    """Temperature 2 on one row, 0.5 on the next: 20,000 draws of each against the tempered softmax."""
    monkeypatch.setattr(sampler, "apply_temperature", solution)
    torch.manual_seed(0)
    n, row = 20_000, LOGITS[0]
    temperatures = torch.tensor([2.0] * n + [0.5] * n)
    tokens = ch07.Sampler()(row.expand(2 * n, -1), temperatures, torch.full((2 * n,), -1), torch.ones(2 * n), torch.zeros(2 * n))
    for half, t in ((tokens[:n], 2.0), (tokens[n:], 0.5)):
        p = chi_square_p_value(half, plain.softmax(plain.tempered(row.tolist(), t)))
        assert p > 1e-6, f"draws at temperature {t} do not follow softmax(logits / {t}) (chi-square p-value {p:.2g})"


# --- 7.2 top-k -----------------------------------------------------------------------------------
@pytest.mark.exercise("top_k_mask")
def test_top_k_per_row(solution):
    for ks in ([1, 3, -1], [3, 8, 2], [100, 1, 5]):
        expected = [plain.top_k_keep(row, k) for row, k in zip(LOGITS.tolist(), ks)]
        assert_keeps(solution(LOGITS, torch.tensor(ks)), expected, f"top_k_mask with top_ks {ks}")


@pytest.mark.exercise("top_k_mask")
def test_top_k_keeps_ties(solution):
    """A token tied with the k-th largest logit stays: top_k = 2 of [1, 2, 2, 0.5, 2, ...] keeps three."""
    for ks in ([2, 1], [4, 2], [3, 5]):
        expected = [plain.top_k_keep(row, k) for row, k in zip(TIES.tolist(), ks)]
        assert_keeps(solution(TIES, torch.tensor(ks)), expected,
                     f"top_k_mask of rows with tied logits {TIES.tolist()} with top_ks {ks} (a token tied with the k-th stays)")


@pytest.mark.exercise("top_k_mask")
def test_top_k_in_the_engine(solution, monkeypatch, tiny_qwen3_dir):
    """top_k = 1 is greedy at any temperature, and the engine must say so."""
    monkeypatch.setattr(sampler, "top_k_mask", solution)
    greedy = engine_tokens(tiny_qwen3_dir, [(PROMPTS[0], ch07.SamplingParams(temperature=0, max_tokens=6, ignore_eos=True))])
    top1 = engine_tokens(tiny_qwen3_dir, [
        (PROMPTS[0], ch07.SamplingParams(temperature=1.5, top_k=1, max_tokens=6, ignore_eos=True)),
        (PROMPTS[1], ch07.SamplingParams(temperature=0.7, top_k=-1, max_tokens=6, ignore_eos=True)),
    ])
    assert_same_tokens(top1[0], greedy[0], "top_k=1 at temperature 1.5 (beside a top_k=-1 request) against greedy")


# --- 7.3 top-p -----------------------------------------------------------------------------------
@pytest.mark.exercise("top_p_mask")
def test_top_p_on_exact_probabilities(solution):
    """Probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625: p = 0.6 keeps two (0.5 is short of 0.6),
    p = 0.75 keeps two (they reach it exactly), p = 0.3 keeps one, p = 1 keeps all eight."""
    for p, count in ((0.6, 2), (0.75, 2), (0.3, 1), (0.9, 4), (1.0, 8)):
        assert_keeps(solution(PROBS, torch.tensor([p])), [set(range(count))], f"top_p_mask of {PROBS[0, :5].tolist()} with top_p {p}")


@pytest.mark.exercise("top_p_mask")
def test_top_p_per_row(solution):
    probs = torch.softmax(LOGITS, dim=-1)
    for ps in ([0.9, 0.5, 0.7], [0.2, 0.95, 1.0]):
        expected = [plain.top_p_keep(row, p) for row, p in zip(probs.tolist(), ps)]
        assert_keeps(solution(probs, torch.tensor(ps)), expected, f"top_p_mask of softmax(LOGITS) with top_ps {ps}")


# --- 7.4 min-p -----------------------------------------------------------------------------------
@pytest.mark.exercise("min_p_mask")
def test_min_p_per_row(solution):
    probs = torch.cat([PROBS, torch.softmax(LOGITS, dim=-1)])
    for ms in ([0.5, 0.1, 0.0, 0.3], [0.25, 0.9, 0.5, 1.0]):
        expected = [plain.min_p_keep(row, m) for row, m in zip(probs.tolist(), ms)]
        assert_keeps(solution(probs, torch.tensor(ms)), expected, f"min_p_mask with min_ps {ms}")


# --- 7.5 the draw --------------------------------------------------------------------------------
@pytest.mark.exercise("draw")
def test_draw_follows_the_probabilities(solution):
    """20,000 rows of one distribution with a zero: the counts pass a chi-square test (p-value
    above 1e-6; the seed is fixed, so the outcome is too) and the zero is never drawn."""
    torch.manual_seed(0)
    probs = torch.tensor([0.05, 0.4, 0.0, 0.25, 0.2, 0.1])
    tokens = solution(probs.expand(20_000, -1).clone())
    assert tokens.shape == (20_000,), f"draw of (20000, 6) probabilities: expected shape (20000,), got {tuple(tokens.shape)}"
    assert not (tokens == 2).any(), "token 2 has probability 0 and was drawn"
    p = chi_square_p_value(tokens, probs.tolist())
    counts = torch.bincount(tokens, minlength=6).tolist()
    assert p > 1e-6, f"20,000 draws of {probs.tolist()} came out {counts} (chi-square p-value {p:.2g})"


@pytest.mark.exercise("draw")
def test_a_seeded_row_ignores_its_neighbours(solution):
    """A seeded row draws the same tokens alone as in a batch, in any place, beside other seeded
    and unseeded rows; and a different seed gives different tokens."""
    torch.manual_seed(0)
    probs = torch.softmax(LOGITS, dim=-1)
    gen = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731

    def five_draws(make_batch):
        g = gen(7)
        return [int(v) for v in (make_batch(g) for _ in range(5))]

    alone = five_draws(lambda g: solution(probs[1:2], [g])[0])
    first = five_draws(lambda g: solution(probs[[1, 0, 2]], [g, gen(3), None])[0])
    last = five_draws(lambda g: solution(probs[[0, 2, 1]], [None, gen(11), g])[2])
    assert first == alone, f"seed 7's tokens alone were {alone}, first in a batch {first}"
    assert last == alone, f"seed 7's tokens alone were {alone}, last in a batch after a seeded row {last}"
    others = [[int(solution(probs[1:2], [g])[0]) for _ in range(5)] for g in (gen(8), gen(9))]
    assert alone != others[0] or alone != others[1], "seeds 7, 8 and 9 gave the same five tokens: is the seed used?"


@pytest.mark.exercise("draw")
def test_draw_in_the_engine(solution, monkeypatch, tiny_qwen3_dir):
    monkeypatch.setattr(sampler, "draw", solution)
    seeded = ch07.SamplingParams(temperature=1.0, top_p=0.95, max_tokens=6, ignore_eos=True, seed=1234)
    alone = engine_tokens(tiny_qwen3_dir, [(PROMPTS[0], seeded)])[0]
    mixed = engine_tokens(tiny_qwen3_dir, [
        (PROMPTS[2], ch07.SamplingParams(temperature=0.8, max_tokens=4, ignore_eos=True)),
        (PROMPTS[0], seeded),
        (PROMPTS[3], ch07.SamplingParams(temperature=1.0, max_tokens=6, ignore_eos=True, seed=5)),
    ])[1]
    assert_same_tokens(mixed, alone, "seed 1234's tokens in a batch of three, against alone")
