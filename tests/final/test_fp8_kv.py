"""FP8 (e4m3) KV cache on CPU, through the torch reference store and attention.

FP8 keeps 3 mantissa bits, so logits move. The stated tolerance, teacher-forced over every
position of 10 prompts (4 fixed, 6 random of 20-200 tokens) against transformers in float32,
on the tiny random models (logit std ~1.2, weights wider than a trained model's):

    top-1 agreement >= 85% of positions   (measured: qwen3 91%, qwen2 89%, llama 92%)
    max |logit error| <= 1.5              (measured: 0.58, 0.85, 1.17)
    mean |logit error| <= 0.1             (measured: at most 0.062, 0.076, 0.074)

The cache keeps one scale per KV head and layer, taken from the first prompt (so that attention's
inner loop has no scales in it); one scale per token and head, as this engine had before, measured
94% / 92% / 90% and 0.44 / 0.63 / 0.74: a little less error for a kernel that ran slower than bf16.
The float32 cache through the same code path agrees to 1e-4, so the error is the FP8 rounding.
"""

import pytest
import torch

from course.testing import PROMPTS, hf_logits
from nanovllm_final import SamplingParams
from nanovllm_final.config import Config
from nanovllm_final.engine.sequence import Sequence
from nanovllm_final.utils.context import reset_context


def engine_logits(llm, tokens) -> torch.Tensor:
    """Logits at every position of `tokens`: one prefill whose attention reads the paged cache."""
    bm, runner = llm.scheduler.block_manager, llm.model_runner
    seq = Sequence(tokens)
    bm.allocate(seq)
    seq.num_scheduled_tokens = seq.num_tokens - seq.num_cached_tokens
    batch = runner.prepare_batch([seq])
    with torch.inference_mode():
        logits = runner.model.compute_logits(runner.run_model(batch))
    reset_context()
    bm.deallocate(seq)
    return logits


@pytest.mark.parametrize("kv_cache_dtype", ["fp8", "auto"])
def test_fp8_kv_cache_within_tolerance(tiny_model_dir, make_llm, random_prompts, kv_cache_dtype, assert_pool_clean):
    llm = make_llm(tiny_model_dir, kv_cache_dtype=kv_cache_dtype)
    if kv_cache_dtype == "fp8":
        assert llm.model_runner.kv_cache.dtype == torch.float8_e4m3fn
        # Each layer's cache seen as (blocks, block_size, Hkv, d), stored K head-major and V
        # key-major: a head's keys, and a head's values of one dimension, each one run of bytes.
        attn = next(m for m in llm.model_runner.model.modules() if hasattr(m, "k_cache"))
        _, bs, _, d = attn.k_cache.shape
        assert attn.k_cache.stride()[1:] == (d, bs * d, 1) and attn.v_cache.stride()[1:] == (1, bs * d, bs)
    # The cache starts zeroed: the FP8 decode kernel reads a context's last tile whole, past its end
    assert not llm.model_runner.kv_cache.view(torch.uint8).any()
    prompts = PROMPTS + [p + list(range(20)) for p in random_prompts(6, max_len=180, seed=12)]
    agree = total = 0
    max_err, mean_errs = 0.0, []
    for prompt in prompts:
        ref, got = hf_logits(tiny_model_dir, prompt), engine_logits(llm, prompt)
        err = (got - ref).abs()
        max_err, mean_errs = max(max_err, err.max().item()), mean_errs + [err.mean().item()]
        agree += (got.argmax(-1) == ref.argmax(-1)).sum().item()
        total += len(prompt)
    if kv_cache_dtype == "fp8":
        assert agree / total >= 0.85 and max_err <= 1.5 and max(mean_errs) <= 0.1, (agree / total, max_err, mean_errs)
    else:
        assert agree == total and max_err <= 1e-4, max_err
    # And the whole engine runs on it: decode, scheduling, pool returned.
    outs = llm.generate(prompts, SamplingParams(temperature=0, max_tokens=8, ignore_eos=True), use_tqdm=False)
    assert all(len(o["token_ids"]) == 8 for o in outs)
    assert_pool_clean(llm)


def test_default_block_size_follows_the_device_and_the_cache(tiny_qwen3_dir, monkeypatch):
    """16 keys a block on a CPU; on a GPU 256, and 128 for an FP8 cache, whose decode tiles are
    128 keys: a tile is then a whole block (config.py). The GPU is pretended: Config only asks
    torch whether there is one."""
    assert Config(str(tiny_qwen3_dir), kv_cache_dtype="fp8").kvcache_block_size == 16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert Config(str(tiny_qwen3_dir), device="cuda").kvcache_block_size == 256
    assert Config(str(tiny_qwen3_dir), device="cuda", kv_cache_dtype="fp8").kvcache_block_size == 128
    chosen = Config(str(tiny_qwen3_dir), device="cuda", kv_cache_dtype="fp8", kvcache_block_size=256)
    assert chosen.kvcache_block_size == 256  # a block size asked for wins
