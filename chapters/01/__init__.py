"""Chapter 1 — naive generate: a transformer from scratch, and the simplest generation loop.

Read in this order: config.py (the model's numbers), layers.py (RMSNorm, rotary embedding),
attention.py (causal grouped-query attention), model.py (the decoder, top to bottom),
loader.py (weights by name), naive_generate.py (the loop: the whole sequence again for every
token), llm.py (text in, text out). Run it: `python -m ch01 "What is the capital of France?"`.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your
exercises pass.
"""

from ch01.config import ModelConfig
from ch01.llm import LLM
from ch01.loader import load_model
from ch01.model import CausalLM, Parts
from ch01.sampling_params import SamplingParams

__all__ = ["LLM", "SamplingParams", "ModelConfig", "CausalLM", "Parts", "load_model"]
