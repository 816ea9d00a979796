"""Chapter 11's answer key: the chapter's own versions of the functions exercises.py asks for.

Try the exercises first (chapters/11/exercises.py, with the hints in
notebooks/11_benchmarks.ipynb). metrics.py, runner.py, roofline.py and compare.py import these
functions, so the benchmarks run on exactly this code.
"""

import math
import time

import torch

from ch05.roofline import element_size


def request_latencies(sent: float, token_times: list[float]) -> dict:
    """One request's TTFT, TPOT, ITL gaps and E2EL, in the units of its timestamps. TPOT is None
    for a request of one token (there is no second token to be late)."""
    if not token_times:
        raise ValueError("a request with no output token has no latency; drop it or count it as failed")
    first, last, n = token_times[0], token_times[-1], len(token_times)
    return dict(
        ttft=first - sent,
        tpot=(last - first) / (n - 1) if n > 1 else None,  # the first token's wait is TTFT's, not TPOT's
        itl=[b - a for a, b in zip(token_times, token_times[1:])],
        e2el=last - sent,
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `values`, interpolated linearly between the two
    nearest ranks: numpy.percentile's default, so p50 of [1, 2, 3, 4] is 2.5."""
    if not values:
        raise ValueError("the percentile of no values is undefined; measure at least one")
    if not 0 <= q <= 100:
        raise ValueError(f"q is a percentage, 0 to 100; got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100  # 0 is the smallest, len - 1 the largest
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)


def timed_generate(generate, prompts, params, warmup, clock=time.perf_counter) -> dict:
    """Time one generate(prompts, params) after an untimed generate(*warmup).
    -> {"outputs", "output_tokens", "seconds"}: output tokens are those the engine returned."""
    generate(*warmup)  # one-time costs are paid here, outside the clock
    start = clock()
    outputs = generate(prompts, params)
    seconds = clock() - start
    return dict(outputs=outputs, output_tokens=sum(len(out["token_ids"]) for out in outputs), seconds=seconds)


def decode_step_bytes(config, context_lens: list[int], dtype: torch.dtype = torch.bfloat16,
                      kv_dtype: torch.dtype = torch.bfloat16) -> int:
    """The fewest bytes one decode step reads from memory: every weight once, for the whole
    batch, and the keys and values of each sequence's context (context_lens[i] tokens), every
    layer, every KV head. `config` is a ch01.ModelConfig."""
    from ch11.roofline import weight_bytes  # here, not at the top: roofline.py imports this module

    kv_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * element_size(kv_dtype)
    return weight_bytes(config, dtype) + sum(context_lens) * kv_per_token


def speedup(baseline: dict, candidate: dict) -> float:
    """How many times faster `candidate` is than `baseline`: the ratio of their median output
    tokens/s. Each is a result dict with "workload", "output_tokens", "machine" and
    "tokens_per_s" {"best", "median"}. Refuses (ValueError) results that are not comparable."""
    for key, what in (("workload", "workloads"), ("output_tokens", "output-token totals")):
        if baseline[key] != candidate[key]:
            raise ValueError(f"different {what}: {baseline[key]} against {candidate[key]}; "
                             "run both on the same requests (same scale, sampling and ignore_eos)")
    if baseline["machine"]["device"] != candidate["machine"]["device"]:
        raise ValueError(f"different machines: {baseline['machine']['device']} against "
                         f"{candidate['machine']['device']}; compare runs of one machine")
    return candidate["tokens_per_s"]["median"] / baseline["tokens_per_s"]["median"]
