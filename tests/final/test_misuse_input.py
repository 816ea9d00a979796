"""One clear ValueError per bad input, naming the field and the fix; numpy numbers accepted.
The table of what is accepted and refused is in README.md."""

import json
import shutil

import numpy as np
import pytest
import torch

from nanovllm_final import LLM, SamplingParams

GREEDY = SamplingParams(temperature=0, max_tokens=4, ignore_eos=True)


@pytest.fixture(scope="module")
def llm(tiny_qwen3_dir):
    llm = LLM(tiny_qwen3_dir, num_kvcache_blocks=8, kvcache_block_size=16, max_model_len=100, device="cpu")
    yield llm
    llm.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(temperature=float("nan")), r"temperature must be >= 0 \(0 is greedy\) and finite, got nan"),
        (dict(temperature=float("inf")), "temperature must be .* finite, got inf"),
        (dict(temperature="0.7"), r"temperature must be .*got '0.7' \(str\)"),
        (dict(temperature=None), r"temperature must be .*got None"),
        (dict(top_p=None), r"top_p must be in \(0, 1\].*got None"),
        (dict(top_k="5"), r"top_k must be an integer.*got '5' \(str\)"),
        (dict(top_k=True), r"top_k must be an integer.*got True \(bool\)"),
        (dict(max_tokens=None), "max_tokens must be an integer >= 1, got None"),
        (dict(max_tokens=8.0), r"max_tokens must be an integer >= 1, got 8.0 \(float\)"),
        (dict(min_p="0"), "min_p must be in"),
        (dict(ignore_eos="no"), r"ignore_eos must be True or False, got 'no'"),
        (dict(seed=True), r"seed must be an integer, got True \(bool\); use None"),
        (dict(seed=2**64), "seed must fit in 64 bits"),
        (dict(seed=-2**63 - 1), "seed must fit in 64 bits"),
        (dict(stop=5), "stop must be a non-empty string or a list of them, got 5"),
        (dict(stop=["ok", None]), "stop must be a non-empty string or a list of them"),
        (dict(stop={"a": 1}), "stop must be"),
    ],
)
def test_bad_sampling_value_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SamplingParams(**kwargs)


def test_tiny_temperature_is_greedy(llm):
    greedy = llm.generate([[5, 6, 7]], SamplingParams(temperature=0, max_tokens=6, ignore_eos=True), use_tqdm=False)
    tiny = SamplingParams(temperature=1e-40, max_tokens=6, ignore_eos=True)
    assert tiny.temperature == 0.0
    assert llm.generate([[5, 6, 7]], tiny, use_tqdm=False) == greedy


def test_numpy_scalars_are_accepted(llm, assert_pool_clean):
    params = SamplingParams(temperature=np.float32(0.0), max_tokens=np.int64(4), top_k=np.int32(-1),
                            ignore_eos=np.bool_(True), seed=np.uint64(7))
    assert type(params.max_tokens) is int and type(params.temperature) is float
    ids = [5, 6, 7]
    expected = llm.generate([ids], GREEDY, use_tqdm=False)
    assert llm.generate([np.array(ids, dtype=np.int64).tolist()], params, use_tqdm=False) == expected
    assert llm.generate([list(np.array(ids, dtype=np.int64))], params, use_tqdm=False) == expected
    assert llm.generate(list(np.array(ids, dtype=np.int32)), params, use_tqdm=False) == expected  # one prompt
    assert_pool_clean(llm)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("temperature", float("nan"), "temperature must be"),
        ("max_tokens", 0, "max_tokens must be an integer >= 1"),
        ("seed", "42", "seed must be an integer"),
        ("stop", 3, "stop must be"),
    ],
)
def test_params_changed_after_construction_are_checked_at_add(llm, assert_pool_clean, field, value, match):
    params = SamplingParams(temperature=0, max_tokens=4)
    setattr(params, field, value)
    with pytest.raises(ValueError, match=match):
        llm.generate([[5, 6], [7, 8]], params, use_tqdm=False)
    assert_pool_clean(llm)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_kvcache_blocks=0), "num_kvcache_blocks must be an integer >= 1 or -1, got 0; -1 sizes the pool"),
        (dict(num_kvcache_blocks=-5), "num_kvcache_blocks must be an integer >= 1 or -1, got -5"),
        (dict(num_kvcache_blocks=1.5), r"num_kvcache_blocks must be an integer .*got 1.5 \(float\)"),
        (dict(max_model_len=0), "max_model_len must be an integer >= 2, got 0"),
        (dict(kvcache_block_size=2.5), r"kvcache_block_size must be an integer >= 1, got 2.5 \(float\)"),
        (dict(max_num_seqs="8"), r"max_num_seqs must be an integer >= 1, got '8' \(str\)"),
        (dict(max_num_batched_tokens=None), "max_num_batched_tokens must be an integer >= 1, got None"),
        (dict(tensor_parallel_size=1.0), "tensor_parallel_size must be an integer"),
        (dict(cpu_kvcache_gib=0), r"cpu_kvcache_gib must be a number of GiB > 0 \(the CPU KV pool's budget\)"),
        (dict(num_kvcache_blocks=-1, cpu_kvcache_gib=1e-9), "cpu_kvcache_gib=1e-09 holds no KV block.*raise cpu_kvcache_gib"),
        (dict(gpu_memory_utilization=float("nan")), "gpu_memory_utilization must be in"),
        (dict(device="foo"), "device must be 'cpu' or 'cuda', got 'foo'"),
        (dict(device="mps"), "device must be 'cpu' or 'cuda', got 'mps'"),
        (dict(dtype="float64"), "dtype must be one of .*'bf16'.* got 'float64'"),
        (dict(dtype="bfloat"), "dtype must be one of"),
        (dict(dtype=torch.int8), "dtype must be torch.float32, torch.bfloat16 or torch.float16, got torch.int8"),
        (dict(enforce_eager="yes"), "enforce_eager must be True or False"),
        (dict(seed=None), "seed must be an integer"),
    ],
)
def test_bad_option_names_the_field(tiny_qwen3_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LLM(tiny_qwen3_dir, **{"device": "cpu", "num_kvcache_blocks": 8, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_refused(tiny_qwen3_dir, device):
    with pytest.raises(ValueError, match="device"):
        LLM(tiny_qwen3_dir, device=device, num_kvcache_blocks=8)


def test_numpy_options_are_accepted(tiny_qwen3_dir):
    with LLM(tiny_qwen3_dir, device="cpu", num_kvcache_blocks=np.int64(8), kvcache_block_size=np.int32(16),
             max_model_len=np.int64(64), dtype="fp32") as llm:
        assert llm.config.kvcache_block_size == 16 and type(llm.config.num_kvcache_blocks) is int
        assert len(llm.generate([[1, 2]], GREEDY, use_tqdm=False)[0]["token_ids"]) == 4


def _edited(src, tmp_path, name, edit):
    out = tmp_path / name
    shutil.copytree(src, out)
    edit(out)
    return out


def _edit_config(**changes):
    def edit(folder):
        config = json.loads((folder / "config.json").read_text())
        for key, value in changes.items():
            if value is None:
                del config[key]
            else:
                config[key] = value
        (folder / "config.json").write_text(json.dumps(config))
    return edit


def _damage(file):
    def edit(folder):
        (folder / file).write_text('{"version": "1.0", "model": ')
    return edit


def _remove_tokenizer(folder):
    for f in folder.glob("*token*"):
        f.unlink()
    (folder / "chat_template.jinja").unlink(missing_ok=True)


@pytest.mark.parametrize(
    "name, edit, match",
    [
        ("nokey", _edit_config(hidden_size=None), r"config.json: the key\(s\) \['hidden_size'\] are missing"),
        ("archstr", _edit_config(architectures="Qwen3ForCausalLM"),
         r'architectures must be a list like \["Qwen3ForCausalLM"\], got the string'),
        ("badgen", _damage("generation_config.json"), "generation_config.json is not valid JSON"),
        ("badtok", _damage("tokenizer.json"), "tokenizer.json is not valid JSON"),
        ("badtokcfg", _damage("tokenizer_config.json"), "tokenizer_config.json is not valid JSON"),
    ],
)
def test_damaged_folder_names_the_file(tiny_qwen3_dir, tmp_path, name, edit, match):
    path = _edited(tiny_qwen3_dir, tmp_path, name, edit)
    with pytest.raises(ValueError, match=match):
        LLM(path, device="cpu", num_kvcache_blocks=8)


def test_folder_without_tokenizer_refuses_stop_and_chat(tiny_qwen3_dir, tmp_path):
    path = _edited(tiny_qwen3_dir, tmp_path, "notok", _remove_tokenizer)
    with LLM(path, device="cpu", num_kvcache_blocks=8) as llm:
        assert llm.tokenizer is None
        with pytest.raises(ValueError, match="stop strings need a tokenizer"):
            llm.generate([[1, 2]], SamplingParams(max_tokens=4, stop=["a"]), use_tqdm=False)
        with pytest.raises(ValueError, match="chat.. needs a tokenizer"):
            llm.chat([{"role": "user", "content": "hi"}], GREEDY, use_tqdm=False)
        assert len(llm.generate([[1, 2]], GREEDY, use_tqdm=False)[0]["token_ids"]) == 4
