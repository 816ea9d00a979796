"""Bad input gives one clear ValueError/FileNotFoundError that names the fix, and the engine
stays usable: the next generate() works and no block leaked."""

import json
import shutil

import pytest

from nanovllm_final import LLM, SamplingParams

GREEDY = SamplingParams(temperature=0, max_tokens=4, ignore_eos=True)


@pytest.fixture(scope="module")
def llm(tiny_qwen3_dir):
    llm = LLM(tiny_qwen3_dir, num_kvcache_blocks=4, kvcache_block_size=16, max_model_len=100, device="cpu")
    yield llm
    llm.close()


@pytest.mark.parametrize(
    "prompts, params, match",
    [
        ([[]], GREEDY, "prompt is empty"),
        ([""], GREEDY, "prompt is empty"),
        ([list(range(1, 101))], GREEDY, "shorten the prompt or raise max_model_len"),
        ([[1, 2, 100000]], GREEDY, "outside the vocabulary"),
        ([[1, -3]], GREEDY, "outside the vocabulary"),
        ([[1, 2.5]], GREEDY, "outside the vocabulary"),
        ([[1, 2], [3, 4]], [GREEDY], "give one, or one per prompt"),
        ([[1, 2]], "greedy", "must be a SamplingParams"),
        ([list(range(1, 61))], SamplingParams(temperature=0, max_tokens=10), "raise num_kvcache_blocks"),
        ([], GREEDY, "non-empty list"),
    ],
)
def test_bad_request_is_rejected_and_engine_still_works(llm, assert_pool_clean, prompts, params, match):
    good = [5, 6, 7]
    with pytest.raises(ValueError, match=match):
        llm.generate([good] + prompts if prompts and not isinstance(params, list) else prompts, params, use_tqdm=False)
    assert_pool_clean(llm)  # the good prompt queued beside the bad one was not left behind
    assert len(llm.generate([good], GREEDY, use_tqdm=False)[0]["token_ids"]) == 4
    assert_pool_clean(llm)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(temperature=-0.5), "temperature must be >= 0"),
        (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
        (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
        (dict(top_k=0), "top_k must be an integer >= 1 or -1"),
        (dict(min_p=2.0), "min_p must be in"),
        (dict(max_tokens=0), "max_tokens must be"),
        (dict(stop=[""]), "stop must be"),
        (dict(seed=1.5), "seed must be"),
    ],
)
def test_invalid_sampling_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SamplingParams(**kwargs)


def test_unknown_option(tiny_qwen3_dir):
    with pytest.raises(ValueError, match="unknown option.*max_num_seq"):
        LLM(tiny_qwen3_dir, max_num_seq=4)


def _copy_model(src, dst, tmp_path):
    out = tmp_path / dst
    shutil.copytree(src, out)
    return out


def test_unknown_architecture(tiny_qwen3_dir, tmp_path):
    path = _copy_model(tiny_qwen3_dir, "gpt2", tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="architecture 'GPT2LMHeadModel' is not supported; supported: Qwen3"):
        LLM(path, device="cpu")


def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LLM(tmp_path / "nowhere")


def test_missing_weights(tiny_qwen3_dir, tmp_path):
    path = _copy_model(tiny_qwen3_dir, "noweights", tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors file"):
        LLM(path, device="cpu")


def test_corrupt_weights(tiny_qwen3_dir, tmp_path):
    path = _copy_model(tiny_qwen3_dir, "corrupt", tmp_path)
    (path / "model.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ValueError, match="not a readable safetensors file.*fetch the model folder again"):
        LLM(path, device="cpu")


def test_truncated_weights(tiny_qwen3_dir, tmp_path):
    path = _copy_model(tiny_qwen3_dir, "truncated", tmp_path)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="fetch the model folder again"):
        LLM(path, device="cpu")


def test_incomplete_weights(tiny_qwen3_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    path = _copy_model(tiny_qwen3_dir, "incomplete", tmp_path)
    tensors = load_file(path / "model.safetensors")
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="lacks weights.*gate_up_proj"):
        LLM(path, device="cpu")


def test_closed_engine_says_so(tiny_qwen3_dir):
    llm = LLM(tiny_qwen3_dir, num_kvcache_blocks=8, kvcache_block_size=16, device="cpu")
    with llm:
        assert llm.generate([[1, 2]], GREEDY, use_tqdm=False)
    with pytest.raises(RuntimeError, match="closed"):
        llm.generate([[1, 2]], GREEDY, use_tqdm=False)
