"""Helpers the tests of every chapter share: transformers as the reference, and fixed prompts."""

import functools

import torch

from course.tiny import load_reference

# Token-id prompts for the tiny models (vocab 320): different lengths, one of a single token.
PROMPTS = [
    [1, 17, 42, 99, 100, 7, 250, 31],
    [5],
    [260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277, 278, 279, 280],
    [300, 12, 12, 12, 44],
]


@functools.lru_cache(maxsize=16)
def _reference(path):
    return load_reference(path)


@torch.inference_mode()
def hf_logits(path, prompt_ids) -> torch.Tensor:
    """transformers' logits for every position of one prompt: (T, vocab)."""
    return _reference(str(path))(torch.tensor([prompt_ids])).logits[0]


@torch.inference_mode()
def hf_greedy(path, prompt_ids, max_new_tokens: int) -> list[int]:
    """transformers' greedy continuation of one prompt, EOS treated as an ordinary token
    (as `ignore_eos=True` does): transformers' own forward with its own KV cache, argmax each step.

    Not `generate(min_new_tokens=...)`: that logits processor sets the EOS logit to -inf, so
    wherever EOS is the argmax it would pick the runner-up.
    """
    model = _reference(str(path))
    out = model(torch.tensor([prompt_ids]), use_cache=True)
    tokens = []
    for _ in range(max_new_tokens):
        tokens.append(int(out.logits[0, -1].argmax()))
        out = model(torch.tensor([[tokens[-1]]]), past_key_values=out.past_key_values, use_cache=True)
    return tokens


@torch.inference_mode()
def hf_generate(path, prompt_ids, max_new_tokens: int) -> list[int]:
    """transformers' `generate`, greedy, stopping at the model's EOS like an engine without ignore_eos."""
    model = _reference(str(path))
    out = model.generate(
        torch.tensor([prompt_ids]),
        attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=0,
    )
    return out[0, len(prompt_ids):].tolist()
