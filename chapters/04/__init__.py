"""Chapter 4 — the scheduler: continuous batching, admission by free blocks, preemption by recompute.

Chapters 1–3 built the model, the KV cache and the paged pool, and ran prompts in static batches.
Here the engine takes nano-vllm's shape and a scheduler decides every step who runs: a finished
sequence's blocks go to the next waiting one at once, and when the pool runs dry the newest
sequence gives way and recomputes later. Read scheduler.py first, then llm_engine.py (the loop),
model_runner.py, sequence.py and config.py; llm.py is the public name.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your
exercises pass.
"""

from ch01.sampling_params import SamplingParams
from ch04.config import Config
from ch04.llm import LLM
from ch04.llm_engine import LLMEngine
from ch04.model_runner import ModelRunner
from ch04.scheduler import Scheduler, StaticScheduler
from ch04.sequence import Sequence, SequenceStatus

__all__ = [
    "LLM", "LLMEngine", "SamplingParams", "Config", "Sequence", "SequenceStatus", "Scheduler", "StaticScheduler",
    "ModelRunner",
]
