"""Chapter 8's engine on two GPUs over NCCL: the same code as on the CPU's gloo, the same greedy
tokens as one GPU and as transformers. Skipped without two CUDA GPUs; run it with

    CUDA_VISIBLE_DEVICES=0,1 pytest chapters/08/tests/test_tensor_parallel_gpu_ch08.py --reference -p no:xdist
"""

import pytest
import torch

import ch08
from course.testing import PROMPTS, assert_same_tokens, hf_greedy

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (NCCL)")]

GREEDY = ch08.LLM.sampling_params_class(temperature=0, max_tokens=12, ignore_eos=True)


@pytest.mark.parametrize("family", ["qwen3", "qwen2"])
def test_two_gpus_give_transformers_tokens(family, tiny_model_factory):
    """float32 on both GPUs: rank r on cuda:r, the all-reduces and the LM head's gather over NCCL."""
    path = tiny_model_factory(family)
    prompts = PROMPTS + [list(range(40, 72))]
    expected = [hf_greedy(path, prompt, 12) for prompt in prompts]
    for size in (1, 2):
        llm = ch08.LLM(path, tensor_parallel_size=size, device="cuda", max_num_batched_tokens=16,
                       num_kvcache_blocks=32, kvcache_block_size=4)
        try:
            assert str(llm.model_runner.device) == "cuda:0"
            outs = llm.generate(prompts, GREEDY, use_tqdm=False)
            workers = [p for p, _ in llm.model_runner.workers]
        finally:
            llm.close()
        assert all(p.exitcode is not None for p in workers), "close() left a rank running"
        for prompt, out, e in zip(prompts, outs, expected):
            assert_same_tokens(out["token_ids"], e, f"{family} on {size} GPU(s), prompt of {len(prompt)} tokens")
