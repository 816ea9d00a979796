"""What FP8 costs, measured: the same greedy run with the pool in the model's dtype and in FP8.

Letting both engines run free says little once they part: after the first token that differs,
the two continue different texts. So the FP8 engine is fed the reference's tokens instead
(teacher forcing): at every step it computes its logits from the same history, its choice is
recorded, and the reference's token is what it appends. Each step then asks one question: with
this cache, is the most likely token still the same?

    top1_agreement   the share of steps whose FP8 argmax is the reference's token
    max_logit_error  the largest |logit_fp8 - logit_ref| over every step and token
    margins          the reference's gap between its first and second token at each step;
                     the steps FP8 flips are the ones where this gap is small
"""

import torch

from ch10.llm import LLM


def record_steps(llm, forced: dict | None = None) -> dict:
    """Make llm's runner record every step's logits per prompt; with `forced` ({prompt: tokens}),
    append those tokens instead of the sampled ones."""
    steps = {}
    sample = llm.model_runner.sample

    def recording_sample(logits, seqs):
        chosen = sample(logits, seqs)
        for i, seq in enumerate(seqs):
            prompt = tuple(seq.token_ids[:seq.num_prompt_tokens])
            steps.setdefault(prompt, []).append(logits[i].float().cpu())
            if forced is not None:
                chosen[i] = forced[prompt][seq.num_completion_tokens]
        return chosen

    llm.model_runner.sample = recording_sample
    return steps


def compare_fp8(model, prompts: list[list[int]], max_tokens: int, **kwargs) -> dict:
    """Greedy tokens of `model` with the pool in the model's dtype, then the FP8 pool fed the same
    tokens. prompts: token id lists. Returns the measurements of the module docstring."""
    from ch07.sampling_params import SamplingParams

    params = SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    reference = LLM(model, **kwargs)
    ref_steps = record_steps(reference)
    outs = reference.generate(prompts, params, use_tqdm=False)
    forced = {tuple(p): out["token_ids"] for p, out in zip(prompts, outs)}
    fp8 = LLM(model, kv_cache_dtype="fp8", **kwargs)
    fp8_steps = record_steps(fp8, forced)
    fp8.generate(prompts, params, use_tqdm=False)
    ref = torch.stack([row for p in prompts for row in ref_steps[tuple(p)]])  # (steps, vocab)
    got = torch.stack([row for p in prompts for row in fp8_steps[tuple(p)]])
    top2 = ref.topk(2, dim=-1).values
    agree = got.argmax(-1) == ref.argmax(-1)  # (steps,)
    return {
        "steps": len(agree),
        "top1_agreement": agree.float().mean().item(),
        "max_logit_error": (got - ref).abs().max().item(),
        "mean_logit_error": (got - ref).abs().mean().item(),
        "logit_range": (ref.max() - ref.min()).item(),
        "margins": (top2[:, 0] - top2[:, 1]).tolist(),
        "flipped": (~agree).nonzero().flatten().tolist(),
    }
