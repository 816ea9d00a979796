"""python -m ch01 "What is the capital of France?" [--model DIR] [--max-tokens N] [--temperature T]"""

import argparse
import time

from course.paths import default_model_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ch01", description="Naive generation, one token per full forward pass.")
    parser.add_argument("prompt", nargs="+", help="one or more prompts (each is sent as a chat message)")
    parser.add_argument("--model", default=None, help="model folder (default: $NANOVLLM_MODEL or models/smollm2-135m-instruct)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    parser.add_argument("--raw", action="store_true", help="send the prompt as plain text, without the chat template")
    args = parser.parse_args(argv)

    from ch01 import LLM, SamplingParams

    llm = LLM(args.model or default_model_path())
    params = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens)
    for prompt in args.prompt:
        ids = llm.encode_prompt(prompt) if args.raw else llm.chat_prompt([{"role": "user", "content": prompt}])
        start = time.perf_counter()
        [out] = llm.generate([ids], params)
        seconds = time.perf_counter() - start
        print(f"> {prompt}\n{out['text'].strip()}")
        print(f"  ({len(out['token_ids'])} tokens in {seconds:.2f} s, {len(out['token_ids']) / seconds:.1f} tokens/s)\n")


if __name__ == "__main__":
    main()
