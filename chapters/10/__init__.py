"""Chapter 10 — the FP8 KV cache: keys and values in one byte each, with a scale per head.

Chapter 9's engine kept its KV pool in the model's dtype. Here `LLM(model, kv_cache_dtype="fp8")`
keeps it in e4m3: the store kernel divides each head by its scale, clamps and casts; attention
multiplies the scale back. Half the bytes per token of bf16: twice the blocks in the same memory,
and half the cache to read per decode step, for a small measured error. Start with the notebook:
it leads to each exercise (10.1-10.4) before the file that answers it (e4m3.py, fp8.py, config.py;
each answer sits below a marked line). kernels/, attention.py and model_runner.py then put FP8
in the engine.
"""

from ch10.attention import Attention
from ch10.config import Config
from ch10.llm import LLM
from ch10.model_runner import ModelRunner

__all__ = ["Attention", "Config", "LLM", "ModelRunner"]
