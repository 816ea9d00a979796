"""Helpers the tests of every chapter share: transformers as the reference, fixed prompts, and
assertions whose failure tells a learner what was expected, what came, and where."""

import functools
import traceback
import warnings
from pathlib import Path

import torch

from course.paths import REPO_ROOT
from course.tiny import load_reference

# Token-id prompts for the tiny models (vocab 320): different lengths, one of a single token.
PROMPTS = [
    [1, 17, 42, 99, 100, 7, 250, 31],
    [5],
    [260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277, 278, 279, 280],
    [300, 12, 12, 12, 44],
]


@functools.lru_cache(maxsize=16)
def _reference(path):
    return load_reference(path)


@torch.inference_mode()
def hf_logits(path, prompt_ids) -> torch.Tensor:
    """transformers' logits for every position of one prompt: (T, vocab)."""
    return _reference(str(path))(torch.tensor([prompt_ids])).logits[0]


@torch.inference_mode()
def hf_greedy(path, prompt_ids, max_new_tokens: int) -> list[int]:
    """transformers' greedy continuation of one prompt, EOS treated as an ordinary token
    (as `ignore_eos=True` does): transformers' own forward with its own KV cache, argmax each step.

    Not `generate(min_new_tokens=...)`: that logits processor sets the EOS logit to -inf, so
    wherever EOS is the argmax it would pick the runner-up.
    """
    model = _reference(str(path))
    out = model(torch.tensor([prompt_ids]), use_cache=True)
    tokens = []
    with warnings.catch_warnings():
        # transformers 5 renames past_key_values to cache; the old name works on every version we support.
        warnings.filterwarnings("ignore", message=".*past_key_values.*deprecated", category=FutureWarning)
        for _ in range(max_new_tokens):
            tokens.append(int(out.logits[0, -1].argmax()))
            out = model(torch.tensor([[tokens[-1]]]), past_key_values=out.past_key_values, use_cache=True)
    return tokens


@torch.inference_mode()
def hf_generate(path, prompt_ids, max_new_tokens: int) -> list[int]:
    """transformers' `generate`, greedy, stopping at the model's EOS like an engine without ignore_eos."""
    model = _reference(str(path))
    out = model.generate(
        torch.tensor([prompt_ids]),
        attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=0,
    )
    return out[0, len(prompt_ids):].tolist()


# ---------------------------------------------------------------------------------------------
# Assertions for graders. A learner reads their message first (course.grading prints it before
# any traceback), so each says what was checked, what was expected and what came, and where.


def _index_text(index, axes) -> str:
    if axes and len(axes) == len(index):
        return ", ".join(f"{name} {i}" for name, i in zip(axes, index))
    return f"index {list(index)}"


def assert_close(actual, expected, what: str, *, axes=None, rtol=None, atol=None, check_dtype=True) -> None:
    """torch.testing.assert_close, with a failure that names `what` and the first wrong value.

    what: the thing compared, as a learner would name it ("rms_norm(x, weight, eps) for x of
    shape (5, 7, 64)"); axes: names of the dimensions ("token", "head", "dim") so the first
    mismatch reads "token 3, head 1, dim 0" instead of an index.
    """
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{what}: got {type(actual).__name__}, expected a tensor of shape {tuple(expected.shape)}")
    if actual.shape != expected.shape:
        names = f" ({', '.join(axes)})" if axes and len(axes) == expected.dim() else ""
        raise AssertionError(f"{what}: got shape {tuple(actual.shape)}, expected {tuple(expected.shape)}{names}")
    if check_dtype and actual.dtype != expected.dtype:
        raise AssertionError(f"{what}: got dtype {actual.dtype}, expected {expected.dtype}")
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, check_dtype=False, equal_nan=False)
        return
    except AssertionError:
        pass
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    if rtol is None or atol is None:  # torch's defaults for the dtype, as assert_close used them
        rtol, atol = {torch.float16: (1e-3, 1e-5), torch.bfloat16: (1.6e-2, 1e-5), torch.float64: (1e-7, 1e-7)}.get(
            expected.dtype, (1.3e-6, 1e-5) if expected.is_floating_point() else (0, 0))
    bad = ~torch.isclose(a, e, rtol=rtol, atol=atol)
    if not bad.any():  # e.g. a NaN in both
        bad = torch.isnan(a) | torch.isnan(e)
    first = tuple(int(i) for i in bad.nonzero()[0]) if bad.dim() else ()
    diff = (a - e).abs().nan_to_num(float("inf"))
    raise AssertionError(
        f"{what}: {int(bad.sum())} of {bad.numel()} values differ; the first at {_index_text(first, axes)}: "
        f"got {a[first].item():.6g}, expected {e[first].item():.6g} "
        f"(largest difference {diff.max().item():.3g}, allowed {atol:g} + {rtol:g} × |expected|)"
    )


def assert_same_tokens(actual, expected, what: str) -> None:
    """Two token-id lists are equal; else say where they part: "prompt [5]: new token 3 is 17,
    expected 42 (the first 3 agree)"."""
    actual, expected = list(actual), list(expected)
    if actual == expected:
        return
    same = next((i for i, (x, y) in enumerate(zip(actual, expected)) if x != y), min(len(actual), len(expected)))
    agree = f"the first {same} agree" if same else "they differ from the first"
    if same < min(len(actual), len(expected)):
        raise AssertionError(
            f"{what}: token {same} is {actual[same]}, expected {expected[same]} ({agree}; got {actual}, expected {expected})"
        )
    raise AssertionError(f"{what}: got {len(actual)} tokens, expected {len(expected)} ({agree}; got {actual}, expected {expected})")


def seeded_row_tokens(logits: torch.Tensor, neighbours: list[tuple[int, float]], steps: int = 8) -> list[int]:
    """nanovllm_final's Sampler: the tokens a seeded row (temperature 0.8, no top-k or top-p)
    draws over `steps` positions from the (V,) logits, batched with neighbours: unseeded rows of
    (top_k, top_p). Its generator is reseeded per position, as ModelRunner.prepare_sample does."""
    from nanovllm_final.engine.model_runner import position_seed
    from nanovllm_final.layers.sampler import Sampler

    n, device = 1 + len(neighbours), logits.device
    top_ks = torch.tensor([-1] + [k for k, _ in neighbours], device=device)
    top_ps = torch.tensor([1.0] + [p for _, p in neighbours], device=device)
    temperatures, min_ps = torch.full((n,), 0.8, device=device), torch.zeros(n, device=device)
    generator = torch.Generator(device)
    tokens = []
    for position in range(steps):
        generator.manual_seed(position_seed(7, position))
        out = Sampler()(logits.expand(n, -1).contiguous(), temperatures, top_ks, top_ps, min_ps,
                        [generator] + [None] * len(neighbours))
        tokens.append(int(out[0]))
    return tokens


def assert_seeded_row_ignores_its_batch(device: str) -> None:
    """A seeded row draws the same tokens alone and beside top-k and top-p rows (which send the
    batch down the sampler's sorting path, while the row alone takes the sampling kernel's)."""
    logits = torch.randn(1000, generator=torch.Generator().manual_seed(0)).to(device)
    alone = seeded_row_tokens(logits, [])
    assert len(set(alone)) > 1, "the seeded row should draw different tokens at different positions"
    for neighbours in ([(50, 1.0)], [(-1, 0.9), (5, 0.5), (-1, 1.0)]):
        assert seeded_row_tokens(logits, neighbours) == alone, f"beside {neighbours}, other tokens"
def raised_at(error: BaseException) -> str:
    """Where an exception was raised, for a grader's one-line failure (`pytest.fail(...,
    pytrace=False)` prints no traceback): the last line of an exercises.py it passed through, else
    the innermost line of the repository's own code. '' when neither is found.

        chapters/04/exercises.py:57 in schedule: seq = self.waiting[5]
    """
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if Path(f.filename).name == "exercises.py"]
    ours = [f for f in frames if _in_repo(f.filename)]
    frame = (mine or ours or [None])[-1]
    if frame is None:
        return ""
    path = Path(frame.filename).resolve()
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    return f"{shown}:{frame.lineno} in {frame.name}: {(frame.line or '').strip()}"


def _in_repo(filename: str) -> bool:
    path = Path(filename).resolve()
    return path.is_relative_to(REPO_ROOT) and ".venv" not in path.parts and "site-packages" not in path.parts
