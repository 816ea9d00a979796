"""config.json settings that change the math are implemented (biases, linear and llama3 RoPE
scaling, checked against transformers' own model) or refused with a ValueError naming them; every
checkpoint tensor is loaded or reported; quantized checkpoints are refused."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from course.testing import PROMPTS
from course.tiny import make_tiny_model
from nanovllm_final import LLM, SamplingParams

LLAMA3 = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 128}


def _old_rope_form(path, rope_scaling):
    """Rewrite config.json the way folders written before transformers 5 say it."""
    config = json.loads((path / "config.json").read_text())
    config.pop("rope_parameters", None)
    config["rope_theta"], config["rope_scaling"] = 10000.0, rope_scaling
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "family, overrides, old_form",
    [
        ("llama", dict(attention_bias=True, mlp_bias=True), None),
        ("qwen3", dict(attention_bias=True), None),
        ("llama", dict(rope_parameters=LLAMA3), None),
        ("llama", dict(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}), None),
        ("qwen2", {}, {"type": "linear", "factor": 4.0}),
        ("llama", {}, {k: v for k, v in LLAMA3.items() if k != "rope_theta"}),
    ],
    ids=["llama-biases", "qwen3-biases", "llama3-rope", "linear-rope", "old-linear", "old-llama3"],
)
def test_config_settings_match_transformers(tmp_path, family, overrides, old_form, random_prompts,
                                            assert_matches_hf):
    path = make_tiny_model(tmp_path / "m", family, seed=4, **overrides)
    if old_form:
        _old_rope_form(path, old_form)
    prompts = PROMPTS[:2] + [p * 8 for p in random_prompts(2, max_len=40, seed=5)]  # up to 320 positions
    with LLM(path, device="cpu", num_kvcache_blocks=64, kvcache_block_size=16) as llm:
        outputs = llm.generate(prompts, SamplingParams(temperature=0, max_tokens=6, ignore_eos=True), use_tqdm=False)
    assert_matches_hf(path, prompts, outputs, 6)


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(hidden_act="gelu"), "hidden_act='gelu' is not supported"),
        (dict(use_sliding_window=True, sliding_window=64), "use_sliding_window=true is not supported"),
        (dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}),
         "rope_type='yarn' is not supported"),
        (dict(rope_scaling={"type": "dynamic", "factor": 2.0}), "rope_type='dynamic' is not supported"),
        (dict(rope_parameters={"rope_type": "llama3", "rope_theta": 1e4, "factor": 8.0}),
         r"needs the number\(s\) \['low_freq_factor'"),
        (dict(quantization_config={"quant_method": "fp8", "weight_block_size": [128, 128]}),
         r"quantization_config \(fp8\) is set: quantized checkpoints are not supported"),
    ],
)
def test_unsupported_setting_is_refused(tiny_model_factory, tmp_path, changes, match):
    import shutil

    path = tmp_path / "m"
    shutil.copytree(tiny_model_factory("qwen2"), path)
    _edit_config(path, **changes)
    with pytest.raises(ValueError, match=match):
        LLM(path, device="cpu", num_kvcache_blocks=8)


def _edit_weights(src, dst, edit):
    import shutil

    shutil.copytree(src, dst)
    tensors = load_file(dst / "model.safetensors")
    edit(tensors)
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_unused_checkpoint_tensor_is_reported(tiny_qwen3_dir, tmp_path):
    def add_bias(t):
        t["model.layers.0.self_attn.o_proj.bias"] = torch.zeros(64)
        t["model.layers.9.mlp.up_proj.weight"] = torch.zeros(8, 8)
    path = _edit_weights(tiny_qwen3_dir, tmp_path / "extra", add_bias)
    with pytest.raises(ValueError, match=r"holds 2 tensors this model has no place for.*o_proj.bias.*fix config.json"):
        LLM(path, device="cpu", num_kvcache_blocks=8)


def test_fp8_checkpoint_is_refused(tiny_qwen3_dir, tmp_path):
    def quantize(t):  # as Qwen3-0.6B-FP8 ships: fp8 weights and a block-wise inverse scale
        t["model.layers.0.mlp.up_proj.weight"] = t["model.layers.0.mlp.up_proj.weight"].to(torch.float8_e4m3fn)
        t["model.layers.0.mlp.up_proj.weight_scale_inv"] = torch.ones(1, 1)
    path = _edit_weights(tiny_qwen3_dir, tmp_path / "fp8", quantize)
    with pytest.raises(ValueError, match="quantized checkpoints are not supported"):
        LLM(path, device="cpu", num_kvcache_blocks=8)
