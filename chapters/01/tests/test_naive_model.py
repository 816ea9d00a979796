"""Chapter 1's model and loop against transformers, and the errors a user can cause."""

import json
import runpy
import shutil
import sys

import pytest
import torch

import ch01
from ch01.config import ModelConfig
from ch01.sampling_params import SamplingParams
from course.paths import DEFAULT_MODEL_DIR
from course.testing import PROMPTS, hf_generate, hf_greedy, hf_logits


@pytest.fixture(scope="module")
def llm_cache():
    return {}


def get_llm(cache, path):
    if path not in cache:
        cache[path] = ch01.LLM(path)
    return cache[path]


def test_logits_match_transformers(tiny_model_dir, llm_cache):
    llm = get_llm(llm_cache, tiny_model_dir)
    for prompt in PROMPTS:
        ids = torch.tensor(prompt)
        ours = llm.model.compute_logits(llm.model(ids, torch.arange(len(prompt))))
        torch.testing.assert_close(ours, hf_logits(tiny_model_dir, prompt), atol=1e-4, rtol=1e-4)


def test_greedy_tokens_match_transformers(tiny_model_dir, llm_cache):
    llm = get_llm(llm_cache, tiny_model_dir)
    outs = llm.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=12, ignore_eos=True))
    for prompt, out in zip(PROMPTS, outs):
        assert out["token_ids"] == hf_greedy(tiny_model_dir, prompt, 12)
        assert out["finish_reason"] == "length"


def test_text_prompts_and_chat(tiny_qwen3_dir, llm_cache):
    llm = get_llm(llm_cache, tiny_qwen3_dir)
    [a] = llm.generate("The capital of France is", SamplingParams(temperature=0, max_tokens=5, ignore_eos=True))
    [b] = llm.generate([llm.tokenizer.encode("The capital of France is")], SamplingParams(temperature=0, max_tokens=5, ignore_eos=True))
    assert a["token_ids"] == b["token_ids"] and isinstance(a["text"], str)
    [c] = llm.chat([{"role": "user", "content": "hello"}], SamplingParams(temperature=0, max_tokens=3))
    assert 1 <= len(c["token_ids"]) <= 3


def test_temperature_sampling_is_seeded_by_torch(tiny_qwen3_dir, llm_cache):
    llm = get_llm(llm_cache, tiny_qwen3_dir)
    params = SamplingParams(temperature=1.0, max_tokens=8, ignore_eos=True)
    torch.manual_seed(3)
    a = llm.generate([PROMPTS[0]], params)[0]["token_ids"]
    torch.manual_seed(3)
    b = llm.generate([PROMPTS[0]], params)[0]["token_ids"]
    assert a == b and len(a) == 8


@pytest.mark.parametrize(
    "prompt,params,message",
    [
        ([], SamplingParams(), "prompt is empty"),
        ([1, 2, 10_000], SamplingParams(), "outside the vocabulary"),
        ([1, -3], SamplingParams(), "outside the vocabulary"),
        ([1] * 1020, SamplingParams(max_tokens=10), "max_model_len"),
    ],
)
def test_bad_prompts_are_clear_errors(tiny_qwen3_dir, llm_cache, prompt, params, message):
    llm = get_llm(llm_cache, tiny_qwen3_dir)
    with pytest.raises(ValueError, match=message):
        llm.generate([prompt], params)
    assert llm.generate([[1, 2]], SamplingParams(temperature=0, max_tokens=2))  # still usable


@pytest.mark.parametrize("kwargs", [dict(temperature=-1), dict(max_tokens=0)])
def test_bad_sampling_params(kwargs):
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_unknown_architecture_and_missing_files(tiny_qwen3_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_qwen3_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    config["architectures"] = ["MambaForCausalLM"]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not supported"):
        ch01.LLM(bad)
    with pytest.raises(FileNotFoundError, match="config.json"):
        ModelConfig.from_pretrained(tmp_path / "nowhere")
    empty = tmp_path / "noweights"
    shutil.copytree(tiny_qwen3_dir, empty)
    (empty / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="safetensors"):
        ch01.LLM(empty)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_qwen3_dir, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="safetensors"):
        ch01.LLM(corrupt)


def test_cli_on_a_tiny_model(tiny_qwen3_dir, monkeypatch, capsys):
    # `python -m ch01 ...` run in this process (runpy, as -m does): a new interpreter would spend
    # most of the test importing torch and transformers again.
    monkeypatch.setattr(sys, "argv", ["ch01", "hello", "--model", str(tiny_qwen3_dir), "--max-tokens", "4"])
    runpy.run_module("ch01", run_name="__main__", alter_sys=False)
    out = capsys.readouterr().out
    assert "> hello" in out and "tokens/s" in out


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "config.json").exists(), reason="SmolLM2 not fetched (make model)")
def test_smollm2_knows_the_capital_of_france():
    llm = ch01.LLM(DEFAULT_MODEL_DIR)
    [out] = llm.chat([{"role": "user", "content": "What is the capital of France?"}], SamplingParams(temperature=0, max_tokens=20))
    assert out["text"].strip() == "The capital of France is Paris."
    assert out["finish_reason"] == "stop"


def test_stops_where_transformers_generate_stops(tiny_qwen3_dir, tmp_path):
    """Without ignore_eos both stop at the model's EOS. Random models rarely emit their EOS, so
    declare a token the model does emit (the 6th greedy token) to be the EOS."""
    eos = hf_greedy(tiny_qwen3_dir, PROMPTS[0], 12)[5]
    path = tmp_path / "eos"
    shutil.copytree(tiny_qwen3_dir, path)
    for name in ("config.json", "generation_config.json"):
        config = json.loads((path / name).read_text())
        config["eos_token_id"] = eos
        (path / name).write_text(json.dumps(config))
    llm = ch01.LLM(path)
    expected = hf_generate(path, PROMPTS[0], 12)
    assert len(expected) < 12 and expected[-1] == eos
    [out] = llm.generate([PROMPTS[0]], SamplingParams(temperature=0, max_tokens=12))
    assert out["token_ids"] == expected and out["finish_reason"] == "stop"
