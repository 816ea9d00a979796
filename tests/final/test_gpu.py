"""The engine on a CUDA GPU: Triton kernels, CUDA graphs, FP8, NCCL. Skipped without a GPU.

float32 on the GPU (the Triton kernels use IEEE dot products for it) gives transformers' greedy
tokens exactly; bf16 is checked for graphs on/off giving the same tokens, and for agreeing with
float32 on most tokens (bf16 rounding may flip a near-tie).
"""

import pytest
import torch

from course.testing import PROMPTS, assert_seeded_row_ignores_its_batch
from nanovllm_final import LLM, SamplingParams

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

GREEDY = SamplingParams(temperature=0, ignore_eos=True, max_tokens=16)


def cuda_llm(path, **config):
    # A fixed pool, not a share of the GPU's free memory: `pytest -n 8` runs eight of these at once.
    config = {"device": "cuda", "kvcache_block_size": 16, "max_num_seqs": 64, "max_model_len": 512,
              "num_kvcache_blocks": 2048, **config}
    return LLM(path, **config)


@pytest.mark.parametrize("enforce_eager", [True, False])
def test_float32_greedy_matches_transformers(tiny_model_dir, random_prompts, assert_matches_hf, assert_pool_clean, enforce_eager):
    prompts = PROMPTS + random_prompts(12, seed=20)
    with cuda_llm(tiny_model_dir, dtype=torch.float32, enforce_eager=enforce_eager) as llm:
        outputs = llm.generate(prompts, GREEDY, use_tqdm=False)
        assert_matches_hf(tiny_model_dir, prompts, outputs, 16)
        assert_pool_clean(llm)


def test_float32_scheduling_paths(tiny_qwen3_dir, random_prompts, assert_matches_hf):
    """Chunks, prefix hits and preemption through the Triton prefill/decode kernels."""
    shared = list(range(100, 140))
    prompts = [shared + p for p in random_prompts(10, max_len=12, seed=21)]
    with cuda_llm(tiny_qwen3_dir, dtype=torch.float32, num_kvcache_blocks=24, kvcache_block_size=4,
                  max_num_batched_tokens=7, max_num_seqs=5) as llm:
        outputs = llm.generate(prompts, SamplingParams(temperature=0, ignore_eos=True, max_tokens=20), use_tqdm=False)
        assert llm.scheduler.num_preemptions > 0 and llm.scheduler.block_manager.num_hit_tokens > 0
    assert_matches_hf(tiny_qwen3_dir, prompts, outputs, 20)


def test_bf16_cuda_graphs_on_and_off_agree(tiny_model_dir, random_prompts):
    prompts = PROMPTS + random_prompts(40, seed=22)  # 44 sequences: graph sizes 48 and smaller
    tokens = {}
    for eager in (True, False):
        with cuda_llm(tiny_model_dir, dtype=torch.bfloat16, enforce_eager=eager) as llm:
            tokens[eager] = [o["token_ids"] for o in llm.generate(prompts, GREEDY, use_tqdm=False)]
    assert tokens[True] == tokens[False]
    with cuda_llm(tiny_model_dir, dtype=torch.float32) as llm:
        f32 = [o["token_ids"] for o in llm.generate(prompts, GREEDY, use_tqdm=False)]
    first_token_agree = sum(a[0] == b[0] for a, b in zip(tokens[False], f32)) / len(prompts)
    assert first_token_agree >= 0.9, first_token_agree


@pytest.mark.parametrize("enforce_eager", [True, False])
def test_fp8_kv_cache_on_gpu(tiny_model_dir, random_prompts, enforce_eager):
    prompts = PROMPTS + random_prompts(12, seed=23)
    with cuda_llm(tiny_model_dir, dtype=torch.float32, kv_cache_dtype="fp8", enforce_eager=enforce_eager) as llm:
        outputs = llm.generate(prompts, GREEDY, use_tqdm=False)
    with cuda_llm(tiny_model_dir, dtype=torch.float32) as llm:
        exact = llm.generate(prompts, GREEDY, use_tqdm=False)
    first = sum(o["token_ids"][0] == e["token_ids"][0] for o, e in zip(outputs, exact)) / len(prompts)
    assert first >= 0.8, first  # FP8 tolerance, as on CPU (tests/final/test_fp8_kv.py)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_tp2_over_nccl(tiny_model_factory, random_prompts, assert_matches_hf):
    path = tiny_model_factory("qwen2")
    prompts = PROMPTS + random_prompts(6, seed=24)
    with cuda_llm(path, dtype=torch.float32, tensor_parallel_size=2) as llm:
        outputs = llm.generate(prompts, GREEDY, use_tqdm=False)
    assert_matches_hf(path, prompts, outputs, 16)


def test_async_scheduling_matches_sync_on_gpu(tiny_model_dir, random_prompts):
    """The host one step ahead (decode inputs from the previous step's tokens on the GPU, CUDA
    graphs on) gives the synchronous engine's tokens; also when sequences end by end-of-sequence
    while their next step is already launched."""
    prompts = PROMPTS + random_prompts(20, seed=25)
    outputs = {}
    for mode in (False, True):
        with cuda_llm(tiny_model_dir, dtype=torch.bfloat16, async_scheduling=mode) as llm:
            plain = [o["token_ids"] for o in llm.generate(prompts, GREEDY, use_tqdm=False)]
            llm.scheduler.eos = {plain[0][3], plain[1][5]}
            ended = [(o["token_ids"], o["finish_reason"])
                     for o in llm.generate(prompts, SamplingParams(temperature=0, max_tokens=16), use_tqdm=False)]
            outputs[mode] = plain, ended
            assert llm.is_finished()
    assert outputs[True] == outputs[False]


def test_seeded_row_ignores_its_batch_on_gpu():
    """The same logits: the Triton sampling kernel alone, the sorting path beside top-k/top-p rows."""
    assert_seeded_row_ignores_its_batch("cuda")


@pytest.mark.parametrize("enforce_eager", [True, False])
def test_seeded_request_alone_and_beside_top_p_top_k_on_gpu(tiny_model_dir, enforce_eager):
    """End to end, in float32: logits that differ in their last bits with the batch size flip a
    draw only on a near-tie (layers/sampler.py), far rarer in float32 than in bf16."""
    seeded = SamplingParams(temperature=0.8, max_tokens=24, ignore_eos=True, seed=11)
    others = [SamplingParams(temperature=1.0, top_p=0.9, max_tokens=6, ignore_eos=True),
              SamplingParams(temperature=1.0, top_k=5, max_tokens=30, ignore_eos=True)]
    with cuda_llm(tiny_model_dir, dtype=torch.float32, enforce_eager=enforce_eager) as llm:
        alone = llm.generate([[1, 2, 3]], seeded, use_tqdm=False)[0]["token_ids"]
        batched = llm.generate([[9, 9], [1, 2, 3], [4]], [others[0], seeded, others[1]], use_tqdm=False)[1]["token_ids"]
    assert batched == alone


def test_profile_of_one_sequence_says_where_a_decode_step_goes(tiny_qwen3_dir):
    """bench --num-seqs 1 --profile: the decode window's kernels by group, the gaps and the bound."""
    from nanovllm_final import bench

    llm = cuda_llm(tiny_qwen3_dir, dtype=torch.bfloat16)
    try:
        report, trace = bench.profile(llm, [list(range(1, 40))], [SamplingParams(max_tokens=12, ignore_eos=True)],
                                      windows=((3, 8),))
    finally:
        llm.close()
    assert "where a decode step's GPU time goes (1 sequences; steps 3-7)" in report, report
    for group in ("matrix products", "attention", "add + RMSNorm", "gaps between kernels", "the bound"):
        assert group in report, report
