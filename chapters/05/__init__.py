"""Chapter 5 — prefill vs decode, and chunked prefill mixed with decodes.

Chapter 4's steps were all-prefill or all-decode. Decode is memory-bound (each weight read from
memory feeds one multiply-add per running sequence) and a long prefill is compute-bound, so a
step here runs every decode first and fills the rest of a `max_num_batched_tokens` budget with
chunks of prompts, in one flat batch. Read roofline.py first (why), then scheduler.py
(`Scheduler.schedule`) and model_runner.py (`ModelRunner.prepare`, a chunk that starts
mid-prompt, which rows get logits); config.py and llm.py only name the new parts.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your
exercises pass.
"""

from ch01.sampling_params import SamplingParams
from ch05.config import Config
from ch05.llm import LLM
from ch05.model_runner import ModelRunner, chunk_inputs, logits_indices
from ch05.scheduler import Scheduler

__all__ = ["LLM", "Config", "ModelRunner", "SamplingParams", "Scheduler", "chunk_inputs", "logits_indices"]
