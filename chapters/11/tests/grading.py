"""Chapter 11's answer key and the wrong answers its graders must reject (see course/grading.py)."""

import statistics
import time

import torch

from ch05.roofline import element_size
from ch11 import roofline, solutions

REFERENCE = {
    "request_latencies": solutions.request_latencies,
    "percentile": solutions.percentile,
    "timed_generate": solutions.timed_generate,
    "decode_step_bytes": solutions.decode_step_bytes,
    "speedup": solutions.speedup,
}


# --- 11.1 latencies of a request -----------------------------------------------------------------
def latencies_tpot_over_all_tokens(sent, token_times):
    # divides the time after the first token by every token, not by the gaps: TPOT too small
    out = solutions.request_latencies(sent, token_times)
    out["tpot"] = (token_times[-1] - token_times[0]) / len(token_times) if len(token_times) > 1 else None
    return out


def latencies_tpot_includes_ttft(sent, token_times):
    # averages from the send: the wait for the first token is counted again in TPOT
    out = solutions.request_latencies(sent, token_times)
    out["tpot"] = (token_times[-1] - sent) / len(token_times) if len(token_times) > 1 else None
    return out


def latencies_ttft_from_zero(sent, token_times):
    # takes the first timestamp as the TTFT: right only for a request sent at time 0
    out = solutions.request_latencies(sent, token_times)
    out["ttft"] = token_times[0]
    return out


def latencies_itl_from_the_send(sent, token_times):
    # measures each token from the send instead of from the token before it
    out = solutions.request_latencies(sent, token_times)
    out["itl"] = [t - sent for t in token_times[1:]]
    return out


# --- 11.2 percentile ------------------------------------------------------------------------------
def percentile_nearest_rank_floor(values, q):
    # picks a rank without interpolating: p50 of [1, 2, 3, 4] is 2
    ordered = sorted(values)
    return ordered[int((len(ordered) - 1) * q / 100)]


def percentile_unsorted(values, q):
    # interpolates between positions of the values as they came, not sorted
    rank = (len(values) - 1) * q / 100
    below = int(rank)
    above = min(below + 1, len(values) - 1)
    return values[below] + (values[above] - values[below]) * (rank - below)


def percentile_rank_over_n(values, q):
    # ranks over n instead of n - 1: the 100th percentile falls off the end and p50 shifts up
    ordered = sorted(values)
    rank = min(len(ordered) * q / 100, len(ordered) - 1)
    below = int(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)


def percentile_p99_is_the_mean_plus(values, q):
    # a normal-distribution guess: mean + 2.33 standard deviations, whatever the values are
    if len(values) < 2:
        return values[0]
    z = {50: 0.0, 90: 1.28, 99: 2.33}.get(q, (q - 50) / 21.5)
    return statistics.fmean(values) + z * statistics.pstdev(values)


# --- 11.3 timing a run -----------------------------------------------------------------------------
def timed_counts_prompt_tokens(generate, prompts, params, warmup, clock=time.perf_counter):
    # counts the prompt tokens too: a long prompt then looks like fast generation
    out = solutions.timed_generate(generate, prompts, params, warmup, clock)
    out["output_tokens"] += sum(len(p) for p in prompts)
    return out


def timed_includes_the_warmup(generate, prompts, params, warmup, clock=time.perf_counter):
    # starts the clock before the warm-up: one-time costs land in the measurement
    start = clock()
    generate(*warmup)
    outputs = generate(prompts, params)
    return dict(outputs=outputs, output_tokens=sum(len(o["token_ids"]) for o in outputs), seconds=clock() - start)


def timed_without_warmup(generate, prompts, params, warmup, clock=time.perf_counter):
    # no warm-up at all: the first call's one-time costs are timed
    start = clock()
    outputs = generate(prompts, params)
    return dict(outputs=outputs, output_tokens=sum(len(o["token_ids"]) for o in outputs), seconds=clock() - start)


def timed_counts_max_tokens(generate, prompts, params, warmup, clock=time.perf_counter):
    # counts what was asked for, not what came: a request that stopped at EOS counts its max_tokens
    out = solutions.timed_generate(generate, prompts, params, warmup, clock)
    out["output_tokens"] = sum(p.max_tokens for p in params)
    return out


# --- 11.4 bytes of a decode step -----------------------------------------------------------------
def _kv_bytes(config, heads, kv_dtype, factor=2):
    return factor * config.num_hidden_layers * heads * config.head_dim * element_size(kv_dtype)


def step_bytes_keys_only(config, context_lens, dtype=torch.bfloat16, kv_dtype=torch.bfloat16):
    # reads the keys and forgets the values
    return roofline.weight_bytes(config, dtype) + sum(context_lens) * _kv_bytes(config, config.num_key_value_heads, kv_dtype, 1)


def step_bytes_query_heads(config, context_lens, dtype=torch.bfloat16, kv_dtype=torch.bfloat16):
    # one K and V per query head: misses grouped-query attention's sharing
    return roofline.weight_bytes(config, dtype) + sum(context_lens) * _kv_bytes(config, config.num_attention_heads, kv_dtype)


def step_bytes_weights_per_sequence(config, context_lens, dtype=torch.bfloat16, kv_dtype=torch.bfloat16):
    # reads the weights once per sequence, as if nothing were batched
    return (len(context_lens) * roofline.weight_bytes(config, dtype)
            + sum(context_lens) * _kv_bytes(config, config.num_key_value_heads, kv_dtype))


def step_bytes_kv_in_weight_dtype(config, context_lens, dtype=torch.bfloat16, kv_dtype=torch.bfloat16):
    # sizes the cache by the weights' dtype: an FP8 cache costs as much as a bf16 one
    return roofline.weight_bytes(config, dtype) + sum(context_lens) * _kv_bytes(config, config.num_key_value_heads, dtype)


# --- 11.5 a fair comparison ----------------------------------------------------------------------
def speedup_inverted(baseline, candidate):
    # baseline over candidate: a faster engine shows below 1
    solutions.speedup(baseline, candidate)
    return baseline["tokens_per_s"]["median"] / candidate["tokens_per_s"]["median"]


def _blind_to(key: str, why: str):
    """A speedup that copies the baseline's `key` into the candidate before the checks: blind to it."""
    def planted(baseline, candidate):
        return solutions.speedup(baseline, dict(candidate, **{key: baseline[key]}))

    planted.__name__ = planted.__qualname__ = f"speedup_ignores_{key}"
    planted.__doc__ = why
    return planted


speedup_ignores_output_tokens = _blind_to("output_tokens", "checks the workload and the machine, not what the engines produced")
speedup_ignores_the_machine = _blind_to("machine", "compares runs of two machines: the faster machine wins, not the faster engine")
speedup_ignores_the_workload = _blind_to("workload", "only the token totals must match: other prompts, other sampling pass")


def speedup_best_against_median(baseline, candidate):
    # the candidate's best run against the baseline's median: noise counts for the candidate
    solutions.speedup(baseline, candidate)
    return candidate["tokens_per_s"]["best"] / baseline["tokens_per_s"]["median"]


PLANTED = {
    "request_latencies": [latencies_tpot_over_all_tokens, latencies_tpot_includes_ttft, latencies_ttft_from_zero,
                          latencies_itl_from_the_send],
    "percentile": [percentile_nearest_rank_floor, percentile_unsorted, percentile_rank_over_n, percentile_p99_is_the_mean_plus],
    "timed_generate": [timed_counts_prompt_tokens, timed_includes_the_warmup, timed_without_warmup, timed_counts_max_tokens],
    "decode_step_bytes": [step_bytes_keys_only, step_bytes_query_heads, step_bytes_weights_per_sequence,
                          step_bytes_kv_in_weight_dtype],
    "speedup": [speedup_inverted, speedup_ignores_output_tokens, speedup_ignores_the_machine, speedup_best_against_median,
                speedup_ignores_the_workload],
}
