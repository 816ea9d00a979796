"""Chapter 10 — the FP8 KV cache: keys and values in one byte each, with a scale per head.

Chapter 9's engine kept its KV pool in the model's dtype. Here `LLM(model, kv_cache_dtype="fp8")`
keeps it in e4m3: the store kernel divides each head by its scale, clamps and casts; attention
multiplies the scale back. Half the bytes per token of bf16: twice the blocks in the same memory,
and half the cache to read per decode step, for a small measured error. Start with the notebook,
which leads to each exercise (10.1-10.4); read e4m3.py first (the format), then fp8.py (scales),
kernels/ (the store and decode kernels), attention.py and model_runner.py (FP8 in the engine),
config.py and agreement.py (what FP8 buys and costs). Your code goes in exercises.py;
solutions.py is the answer key: open it only after your exercises pass.
"""

from ch10.attention import Attention
from ch10.config import Config
from ch10.llm import LLM
from ch10.model_runner import ModelRunner

__all__ = ["Attention", "Config", "LLM", "ModelRunner"]
