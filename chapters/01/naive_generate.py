"""Naive generation: run the whole sequence through the model for every new token.

    tokens = prompt
    repeat: logits = model(tokens)[-1]; next = sample(logits); tokens.append(next)

Step t recomputes all t tokens, so the work of one step grows with the length and the total
work with its square. Chapter 2 keeps the keys and values of past tokens and makes each step
cost one token.
"""

import torch

from ch01 import sampler
from ch01.model import CausalLM
from ch01.sampling_params import SamplingParams


@torch.inference_mode()
def generate(model: CausalLM, prompt_ids: list[int], params: SamplingParams, eos_token_ids=(), generator=None) -> list[int]:
    """Return the new token ids (not the prompt), stopping at max_tokens or an EOS token."""
    device = model.lm_head.weight.device
    tokens = list(prompt_ids)
    new_tokens = []
    for _ in range(params.max_tokens):
        input_ids = torch.tensor(tokens, device=device)  # (T,): the whole sequence, every step
        positions = torch.arange(len(tokens), device=device)  # (T,)
        hidden = model(input_ids, positions)  # (T, D)
        logits = model.compute_logits(hidden[-1:])[0]  # (vocab,): only the last position predicts
        next_id = sampler.sample(logits, params.temperature, generator)
        tokens.append(next_id)
        new_tokens.append(next_id)
        if next_id in eos_token_ids and not params.ignore_eos:
            break
    return new_tokens
