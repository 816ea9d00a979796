"""Latency metrics from per-token timestamps, vLLM's `bench serve` conventions.

A request is sent at time `sent`; its output tokens arrive at `token_times` (seconds, one per
token, in order). From those alone:

    TTFT   time to first token: first token - sent (what a user waits before anything shows)
    TPOT   time per output token after the first: (last - first) / (tokens - 1), one per request
    ITL    inter-token latency: every gap between two consecutive tokens, of every request
    E2EL   end-to-end latency: last token - sent

Each is summarised over a run by its mean, its median (p50) and its 99th percentile (p99): the
mean hides the slow requests, the p99 is what the unluckiest 1 in 100 users gets. The offline
runner (runner.py) and the online runner (online.py) both report through `latency_summary`.
"""

import statistics

from ch11.solutions import percentile, request_latencies  # exercises 11.1, 11.2: the answer key


def summary(values: list[float]) -> dict:
    """{"mean", "p50", "p99"} of `values`."""
    return dict(mean=statistics.fmean(values), p50=percentile(values, 50), p99=percentile(values, 99))


def latency_summary(requests: list[tuple[float, list[float]]]) -> dict:
    """requests: (sent, token_times) per request, in seconds. -> {"ttft_ms", "tpot_ms", "itl_ms",
    "e2el_ms"}: each a summary() in milliseconds; TPOT and ITL need requests of 2 tokens or more."""
    per_request = [request_latencies(sent, times) for sent, times in requests if times]
    if not per_request:
        raise ValueError("no request produced a token; nothing to measure")
    columns = {"ttft": [r["ttft"] for r in per_request], "e2el": [r["e2el"] for r in per_request],
               "tpot": [r["tpot"] for r in per_request if r["tpot"] is not None],
               "itl": [gap for r in per_request for gap in r["itl"]]}
    return {f"{name}_ms": summary([v * 1e3 for v in values]) for name, values in columns.items() if values}
