"""python -m nanovllm_final.bench_cpu [--model DIR]: CPU throughput against transformers.

32 chat prompts of mixed lengths (short questions, and the same questions after 1-12 sentences
of context), each answered with exactly --max-tokens tokens (ignore_eos), greedy. The same
prompts and lengths go through:

    nanovllm_final   continuous batching over the paged KV cache; prompts that share their
                     beginning compute it once (in-batch prefix sharing, engine/scheduler.py)
    transformers     model.generate on the whole batch, left-padded (its fastest plain use)
    transformers     model.generate one prompt at a time (--hf-sequential; slow)

and the output tokens per second of each are printed, with the ratio.
"""

import argparse
import os
import time
from pathlib import Path

import torch

from nanovllm_final import LLM, SamplingParams

QUESTIONS = ["What is the capital of France?", "Why is the sky blue?", "Name three primary colors.",
             "What does a KV cache store?", "Write a haiku about autumn.", "How many legs does a spider have?",
             "What is 12 times 12?", "Who wrote Romeo and Juliet?"]
CONTEXT = ("Language models generate text one token at a time, and each new token attends to all the "
           "tokens before it. ")


def chat_prompts(tokenizer, n: int = 32) -> list[list[int]]:
    prompts = []
    for i in range(n):
        context = CONTEXT * (0 if i % 4 == 0 else 1 + (i * 5) % 12)  # 0 to 12 sentences of context
        messages = [{"role": "user", "content": context + QUESTIONS[i % len(QUESTIONS)]}]
        prompts.append(list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                          return_dict=False)))
    return prompts


@torch.inference_mode()
def hf_generate(model, prompts, max_tokens, pad_id, batched=True) -> float:
    start = time.perf_counter()
    batches = [prompts] if batched else [[p] for p in prompts]
    for batch in batches:
        width = max(map(len, batch))
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in batch])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
        model.generate(ids, attention_mask=mask, max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                       do_sample=False, pad_token_id=pad_id)
    return time.perf_counter() - start


def main(argv=None) -> None:
    default = Path(__file__).resolve().parent.parent / "models" / "smollm2-135m-instruct"
    parser = argparse.ArgumentParser(prog="python -m nanovllm_final.bench_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("NANOVLLM_MODEL", str(default)))
    parser.add_argument("--num-prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--hf-sequential", action="store_true", help="also time transformers one prompt at a time")
    args = parser.parse_args(argv)

    llm = LLM(args.model, device="cpu", max_model_len=1024)
    prompts = chat_prompts(llm.tokenizer, args.num_prompts)
    tokens = len(prompts) * args.max_tokens
    lengths = sorted(map(len, prompts))
    print(f"{len(prompts)} prompts of {lengths[0]}-{lengths[-1]} tokens, {args.max_tokens} new tokens each, "
          f"torch threads: {torch.get_num_threads()}")
    params = SamplingParams(temperature=0, max_tokens=args.max_tokens, ignore_eos=True)
    # Warm-up on an unrelated prompt, so the measured run starts with an empty prefix cache.
    llm.generate(["Count to three."], SamplingParams(temperature=0, max_tokens=4), use_tqdm=False)
    hits_before = llm.scheduler.block_manager.num_hit_tokens
    start = time.perf_counter()
    llm.generate(prompts, params, use_tqdm=False)
    ours = tokens / (time.perf_counter() - start)
    hits = llm.scheduler.block_manager.num_hit_tokens - hits_before
    llm.close()
    print(f"nanovllm_final:               {ours:8.1f} tokens/s   ({hits} of {sum(lengths)} prompt tokens "
          "shared through the prefix cache)")

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    hf_generate(model, prompts[:2], 4, pad_id)  # warm-up
    batched = tokens / hf_generate(model, prompts, args.max_tokens, pad_id)
    print(f"transformers, batched:        {batched:8.1f} tokens/s   (nanovllm_final is {ours / batched:.2f}x)")
    if args.hf_sequential:
        sequential = tokens / hf_generate(model, prompts, args.max_tokens, pad_id, batched=False)
        print(f"transformers, one at a time:  {sequential:8.1f} tokens/s   (nanovllm_final is {ours / sequential:.2f}x)")


if __name__ == "__main__":
    main()
