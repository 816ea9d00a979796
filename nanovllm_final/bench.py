"""python -m nanovllm_final.bench [--kv-cache-dtype fp8] [--num-seqs 256]: nano-vllm's benchmark.

The workload is nano-vllm's bench.py exactly: random.seed(0); 256 sequences; prompts of
randint(100, 1024) random token ids in [0, 10000]; outputs of randint(100, 1024) tokens with
ignore_eos (133,966 output tokens in all, checked below); temperature 0.6; one warm-up request.
The model is Qwen3-0.6B's architecture with random bf16 weights (load_format="dummy"):
throughput does not depend on the values. Prints output tokens/s, the hardware and versions.
"""

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path

import torch

from nanovllm_final import LLM, SamplingParams

QWEN3_0_6B = dict(
    architectures=["Qwen3ForCausalLM"], vocab_size=151936, hidden_size=1024, intermediate_size=3072,
    num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
    rope_theta=1000000.0, max_position_embeddings=40960, tie_word_embeddings=True, eos_token_id=151645,
)
CHECKSUM = 133_966  # output tokens of the 256-sequence workload


def workload(num_seqs: int):
    random.seed(0)
    prompts = [[random.randint(0, 10000) for _ in range(random.randint(100, 1024))] for _ in range(num_seqs)]
    params = [SamplingParams(temperature=0.6, ignore_eos=True, max_tokens=random.randint(100, 1024)) for _ in range(num_seqs)]
    return prompts, params


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nanovllm_final.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--num-seqs", type=int, default=256)
    parser.add_argument("--kv-cache-dtype", default="auto", choices=["auto", "fp8"])
    parser.add_argument("--enforce-eager", action="store_true")
    parser.add_argument("--max-model-len", type=int, default=4096)
    args = parser.parse_args(argv)
    prompts, params = workload(args.num_seqs)
    total = sum(p.max_tokens for p in params)
    if args.num_seqs == 256:
        assert total == CHECKSUM, f"workload drifted: {total} output tokens, expected {CHECKSUM}"
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(QWEN3_0_6B))
        llm = LLM(folder, load_format="dummy", kv_cache_dtype=args.kv_cache_dtype,
                  enforce_eager=args.enforce_eager, max_model_len=args.max_model_len)
    llm.generate([[1, 2, 3]], SamplingParams(max_tokens=8), use_tqdm=False)  # warm-up
    start = time.perf_counter()
    llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    device = torch.cuda.get_device_name() if llm.config.device == "cuda" else platform.processor() or "cpu"
    print(f"device: {device} | torch {torch.__version__} | kv cache: {args.kv_cache_dtype} | "
          f"blocks: {llm.config.num_kvcache_blocks} x {llm.config.kvcache_block_size} | "
          f"cuda graphs: {not args.enforce_eager} | preemptions: {llm.scheduler.num_preemptions}")
    print(f"Total: {total} tok, Time: {seconds:.2f} s, Throughput: {total / seconds:.2f} tok/s")
    llm.close()


if __name__ == "__main__":
    main()
