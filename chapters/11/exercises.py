"""Chapter 11 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/11

Each test checks your function on small hand-made numbers first, then plugs it into the real
benchmark code (the runner, the metrics of a streamed run of nanovllm_final, the roofline bound
of nano-vllm's workload, the staircase) and checks what comes out. The notebook
notebooks/11_benchmarks.ipynb walks through every piece, with hints; chapters/11/solutions.py is
the answer key, so try before you peek.
"""

import time

import torch


def request_latencies(sent: float, token_times: list[float]) -> dict:
    """One request, sent at time `sent`, whose output tokens arrived at `token_times` (one time
    per token, in order, same unit as `sent`). Return a dict with
        "ttft": time to first token,
        "tpot": time per output token after the first (None for a one-token request),
        "itl":  the list of gaps between consecutive tokens (empty for one token),
        "e2el": end-to-end latency, from the send to the last token.
    Raise ValueError for a request with no token."""
    raise NotImplementedError(
        "Exercise 11.1: TTFT, TPOT, ITL and E2EL of one request from its token timestamps; see "
        "notebooks/11_benchmarks.ipynb, section 'Latency from timestamps'"
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile of `values` (0 <= q <= 100), interpolated linearly between the two
    nearest ranks as numpy.percentile does by default: q = 0 is the smallest value, q = 100 the
    largest, q = 50 the median. Raise ValueError for no values or q outside [0, 100]."""
    raise NotImplementedError(
        "Exercise 11.2: a percentile by linear interpolation between ranks; see notebooks/11_benchmarks.ipynb, "
        "section 'Mean, median and p99'"
    )


def timed_generate(generate, prompts, params, warmup, clock=time.perf_counter) -> dict:
    """generate(prompts, params) runs an engine and returns one dict per prompt, each with the
    "token_ids" it generated. `warmup` is a (prompts, params) pair for a first, untimed call.
    `clock()` gives the time in seconds. Return {"outputs": what the timed call returned,
    "output_tokens": the output tokens it produced, "seconds": how long it took}."""
    raise NotImplementedError(
        "Exercise 11.3: time the workload, not the warm-up, and count only the tokens the engine generated; "
        "see notebooks/11_benchmarks.ipynb, section 'What is counted'"
    )


def decode_step_bytes(config, context_lens: list[int], dtype: torch.dtype = torch.bfloat16,
                      kv_dtype: torch.dtype = torch.bfloat16) -> int:
    """The fewest bytes one decode step of the model `config` (a ch01.ModelConfig) must read: the
    weights of every projection of every layer and of the LM head (ch11.roofline.weight_bytes
    gives them), once for the whole batch, plus the keys and values of each running sequence's
    context (context_lens[i] tokens each). dtype: the weights'; kv_dtype: the KV cache's
    (torch.float8_e4m3fn for an FP8 cache)."""
    raise NotImplementedError(
        "Exercise 11.4: the bytes a decode step reads: weights once, KV per context token; see "
        "notebooks/11_benchmarks.ipynb, section 'The roofline bound'"
    )


def speedup(baseline: dict, candidate: dict) -> float:
    """How many times faster `candidate` runs than `baseline`, by their median output tokens/s.
    Each is a result dict: {"workload": {...}, "output_tokens": int, "machine": {"device": ...},
    "tokens_per_s": {"best": ..., "median": ...}}. Raise ValueError, saying what differs, when the
    two are not a fair comparison: other requests, other output-token totals, or other machines."""
    raise NotImplementedError(
        "Exercise 11.5: compare two runs only when they measured the same thing; see "
        "notebooks/11_benchmarks.ipynb, section 'A fair comparison'"
    )
