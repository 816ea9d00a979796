"""What an operator of the server can see from outside: Prometheus metrics at GET /metrics.

Names follow vLLM's (`vllm:` becomes `nanovllm:`), so dashboards and alerts written for vLLM
need only the prefix changed:

    nanovllm:num_requests_running            gauge      sequences in the running batch
    nanovllm:num_requests_waiting            gauge      sequences queued for their prefill
    nanovllm:kv_blocks_used / _free          gauge      KV-cache blocks held by sequences / not
    nanovllm:kv_cache_usage_perc             gauge      used / all blocks, from 0 to 1
    nanovllm:prefix_cache_queries_total      counter    prompt tokens looked up in the prefix cache
    nanovllm:prefix_cache_hits_total         counter    ... and found there
    nanovllm:prefix_cache_hit_rate           gauge      hits / queries since the start
    nanovllm:prompt_tokens_total             counter    prompt tokens of requests that got a token
    nanovllm:generation_tokens_total         counter    tokens generated
    nanovllm:request_success_total           counter    finished requests, by finished_reason
    nanovllm:time_to_first_token_seconds     histogram  request handed to the engine -> its first token
    nanovllm:time_per_output_token_seconds   histogram  between two tokens of one request
    nanovllm:e2e_request_latency_seconds     histogram  handed to the engine -> its last token

The gauges are read from the engine when Prometheus scrapes; the rest are updated by the engine
thread as each delta goes out (EngineLoop's observer). A freed block that still holds a cached
prefix counts as free: it is handed out again when needed. Each server has a registry of its
own (not prometheus_client's global one), so two servers in one process do not collide.
"""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text format
# vLLM's buckets (seconds)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0)


class EngineGauges:
    """A collector that reads the engine's state at scrape time."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        scheduler = self.engine.scheduler
        blocks = scheduler.block_manager
        total, free = len(blocks.blocks), blocks.num_free_blocks
        for name, doc, value in [
            ("num_requests_running", "Sequences in the running batch.", len(scheduler.running)),
            ("num_requests_waiting", "Sequences waiting for their prefill.", len(scheduler.waiting)),
            ("kv_blocks_used", "KV-cache blocks held by sequences.", total - free),
            ("kv_blocks_free", "KV-cache blocks free (some still hold a cached prefix).", free),
            ("kv_cache_usage_perc", "Fraction of the KV-cache blocks in use (0 to 1).", (total - free) / total),
            ("prefix_cache_hit_rate", "Prompt tokens found in the prefix cache / looked up, since the start.",
             blocks.num_hit_tokens / max(1, blocks.num_query_tokens)),
        ]:
            yield GaugeMetricFamily(f"nanovllm:{name}", doc, value=value)
        yield CounterMetricFamily("nanovllm:prefix_cache_queries", "Prompt tokens looked up in the prefix cache.",
                                  value=blocks.num_query_tokens)
        yield CounterMetricFamily("nanovllm:prefix_cache_hits", "Prompt tokens found in the prefix cache.",
                                  value=blocks.num_hit_tokens)


class ServerMetrics:
    """One server's registry. `observe` is EngineLoop's observer; `render()` is /metrics' body."""

    def __init__(self, engine):
        self.registry = CollectorRegistry()
        self.registry.register(EngineGauges(engine))

        def counter(name, doc, **kw):
            return Counter(f"nanovllm:{name}", doc, registry=self.registry, **kw)

        def histogram(name, doc, buckets):
            return Histogram(f"nanovllm:{name}", doc, buckets=buckets, registry=self.registry)

        self.prompt_tokens = counter("prompt_tokens", "Prompt tokens of the requests that got a first token.")
        self.generation_tokens = counter("generation_tokens", "Tokens generated.")
        self.request_success = counter("request_success", "Finished requests.", labelnames=["finished_reason"])
        self.ttft = histogram("time_to_first_token_seconds",
                              "From a request reaching the engine loop to its first token.", TTFT_BUCKETS)
        self.tpot = histogram("time_per_output_token_seconds", "Between two tokens of one request.", TPOT_BUCKETS)
        self.e2e = histogram("e2e_request_latency_seconds",
                             "From a request reaching the engine loop to its last token.", E2E_BUCKETS)

    def observe(self, request, num_new_tokens: int, now: float) -> None:
        """From the engine thread: one delta of `request` with num_new_tokens tokens is going out."""
        seq = request.seq
        if num_new_tokens:
            if request.last_token_at is None:
                self.ttft.observe(now - request.arrival)
                self.prompt_tokens.inc(seq.num_prompt_tokens)
            else:  # a delta holds the tokens of one step: one per request
                self.tpot.observe((now - request.last_token_at) / num_new_tokens)
            self.generation_tokens.inc(num_new_tokens)
            request.last_token_at = now
        if seq.is_finished:
            self.request_success.labels(seq.finish_reason).inc()
            self.e2e.observe(now - request.arrival)

    def render(self) -> bytes:
        return generate_latest(self.registry)
