"""The roofline bound of a workload: no engine on this machine can beat it.

Chapter 5 put one step on the roofline: a step that does F FLOPs and must move B bytes takes at
least max(F / peak, B / bandwidth). A whole workload is a sum of steps, and the fewest bytes it
can move is known in advance:

- each decode step reads every weight once (1.2 GB of bf16 for Qwen3-0.6B: far more than any
  cache holds, so it comes from memory every step), however many sequences share the step;
- and the K and V of every token each running sequence attends to (112 KiB a token in bf16 for
  Qwen3-0.6B, half in FP8).

Running every request from the start shares each weight read among the most sequences, so the
bound takes that schedule: one prefill of all prompts (compute-bound), then decode steps
1, 2, ... in which the sequences that still have tokens to make each read their context. The GEMM
FLOPs are counted as chapter 5 counts them; attention's own products are left out (a small
share at these lengths), which only lowers the bound.
"""

import torch

from ch05.roofline import Roofline, element_size, gemm_flops, model_gemm_shapes
from ch11.solutions import decode_step_bytes  # exercise 11.4: the answer key


def weight_bytes(config, dtype: torch.dtype) -> int:
    """Bytes of every weight a token's forward multiplies by: each layer's projections, the LM head."""
    return sum(k * n for k, n in model_gemm_shapes(config)) * element_size(dtype)


def workload_bound(config, prompt_lens: list[int], output_lens: list[int], machine: Roofline,
                   dtype: torch.dtype = torch.bfloat16, kv_dtype: torch.dtype = torch.bfloat16) -> dict:
    """The least time `machine` needs for the workload (one prefill of every prompt, then the
    decode steps). -> {"seconds", "output_tokens_per_s", "prefill_seconds", "decode_seconds",
    "decode_steps", "bytes_read"}. The prefill's step makes each request's first output token."""
    if len(prompt_lens) != len(output_lens) or not prompt_lens:
        raise ValueError(f"give one output length per prompt; got {len(prompt_lens)} prompts, {len(output_lens)} outputs")
    flops_per_token = sum(gemm_flops(1, k, n) for k, n in model_gemm_shapes(config))
    step = lambda flops, nbytes: max(flops / machine.peak_flops, nbytes / machine.bandwidth)  # noqa: E731
    prefill = step(sum(prompt_lens) * flops_per_token, weight_bytes(config, dtype))
    decode, moved, steps = 0.0, 0, 0
    for t in range(1, max(output_lens)):  # decode step t makes output token t + 1
        live = [p + t for p, n in zip(prompt_lens, output_lens) if n > t]  # tokens each one attends to
        nbytes = decode_step_bytes(config, live, dtype, kv_dtype)
        decode += step(len(live) * flops_per_token, nbytes)
        moved += nbytes
        steps += 1
    seconds = prefill + decode
    return dict(seconds=seconds, output_tokens_per_s=sum(output_lens) / seconds, prefill_seconds=prefill,
                decode_seconds=decode, decode_steps=steps, bytes_read=moved)
