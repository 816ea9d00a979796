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

import math
import statistics


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


# ----- Exercise 11.1's answer is below: try chapters/11/exercises.py first ---------------------
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


# ----- Exercise 11.2's answer is below: try chapters/11/exercises.py first ---------------------
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
