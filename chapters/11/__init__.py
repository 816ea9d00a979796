"""Chapter 11 — benchmarks: measuring an inference engine without fooling yourself.

No engine part here: the code that measures every chapter's engine. workload.py draws
nano-vllm's benchmark requests (scaled down for a CPU); runner.py runs them through any chapter's
`LLM` and says what is counted; staircase.py puts every chapter on one chart; online.py sends
requests to `python -m nanovllm_final.serve` at a Poisson rate; gpu.py is the GPU run. Read
workload.py, runner.py's docstring and staircase.py first; the exercises come next (metrics.py,
runner.py, roofline.py and compare.py show where each one plugs in).
Your code goes in exercises.py; solutions.py is the answer key: open it only after your exercises pass.
"""

from ch11.compare import machine, speedup
from ch11.metrics import latency_summary, percentile, request_latencies, summary
from ch11.roofline import decode_step_bytes, weight_bytes, workload_bound
from ch11.runner import engines, make_llm, run_offline, timed_generate
from ch11.workload import Workload, nano_vllm_workload

__all__ = [
    "Workload", "decode_step_bytes", "engines", "latency_summary", "machine", "make_llm", "nano_vllm_workload",
    "percentile", "request_latencies", "run_offline", "speedup", "summary", "timed_generate",
    "weight_bytes", "workload_bound",
]
