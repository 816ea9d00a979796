"""The equivalence chain: every chapter's engine gives the same greedy tokens as chapter 1's naive
loop, and as transformers, on every tiny model family.

Each chapter changes how the tokens are computed (a cache, pages, a scheduler...), never which
tokens come out. A new chapter joins the chain by adding its package name to CHAPTERS; its LLM
must take (model_path) alone and accept a list of prompts.
"""

import importlib
import json
import shutil

import pytest

from ch01.sampling_params import SamplingParams
from course.paths import DEFAULT_MODEL_DIR
from course.testing import PROMPTS, hf_greedy

CHAPTERS = ["ch01", "ch02", "ch03", "ch04", "ch05", "ch06", "ch07", "ch08"]

# The shared prompts (8, 1, 21 and 5 tokens) plus a few more, so that engines that batch see a
# batch larger than one and of mixed lengths.
CHAIN_PROMPTS = PROMPTS + [[3, 1, 4, 1, 5, 9, 2, 6], list(range(40, 72))]
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def expected():
    cache = {}

    def tokens(path):
        if path not in cache:
            cache[path] = [hf_greedy(path, prompt, MAX_TOKENS) for prompt in CHAIN_PROMPTS]
        return cache[path]

    return tokens


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_greedy_tokens_equal_transformers(chapter, tiny_model_dir, expected):
    engine = importlib.import_module(chapter).LLM(tiny_model_dir)
    outs = engine.generate(CHAIN_PROMPTS, SamplingParams(temperature=0, max_tokens=MAX_TOKENS, ignore_eos=True))
    got = [out["token_ids"] for out in outs]
    for i, (g, e) in enumerate(zip(got, expected(tiny_model_dir))):
        assert g == e, f"{chapter}, prompt {i} ({len(CHAIN_PROMPTS[i])} tokens): {g} != transformers' {e}"


@pytest.mark.parametrize("chapter", CHAPTERS[1:])
def test_eos_stops_like_chapter_1(chapter, tiny_qwen3_dir, expected, tmp_path):
    """With EOS on, every chapter stops each sequence where chapter 1 does, with the same reason.
    A random tiny model rarely says its real EOS, so a folder with the same weights names a token
    it does say as its EOS (each engine reads EOS from the folder, wherever it keeps it)."""
    eos = expected(tiny_qwen3_dir)[0][3]
    path = shutil.copytree(tiny_qwen3_dir, tmp_path / "model")
    for name in ("config.json", "generation_config.json"):
        (path / name).write_text(json.dumps({**json.loads((path / name).read_text()), "eos_token_id": eos}))
    params = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)
    outs = [importlib.import_module(name).LLM(path).generate(CHAIN_PROMPTS, params) for name in (CHAPTERS[0], chapter)]
    assert outs[1] == outs[0]
    assert {out["finish_reason"] for out in outs[0]} == {"stop", "length"}, "the batch should mix early and full-length ends"


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "config.json").exists(), reason="SmolLM2 not fetched (make model)")
@pytest.mark.parametrize("chapter", CHAPTERS[1:])
def test_smollm2_answers_like_chapter_1(chapter):
    """The real model, through each later chapter's engine: chapter 1's answer, word for word."""
    engine = importlib.import_module(chapter).LLM(DEFAULT_MODEL_DIR, max_num_seqs=2, max_model_len=256)
    outs = engine.chat([[{"role": "user", "content": "What is the capital of France?"}],
                        [{"role": "user", "content": "Name three colors."}]], SamplingParams(temperature=0, max_tokens=20))
    assert outs[0]["text"].strip() == "The capital of France is Paris." and outs[0]["finish_reason"] == "stop"
    assert outs[1]["text"].strip().startswith("1. Red")
