"""Chapter 7 — sampling: greedy, temperature, top-k, top-p, min-p and seeds, per request, batched.

Until now every row of a step took one rule. Here each request brings its own SamplingParams and
the sampler applies them all in one call: (B, 1) columns of parameters against (B, V) logits,
no loop over rows. Read sampler.py first (the order of the filters, and the draw), then
sampling_params.py; model_runner.py and llm.py only carry the parameters there, and sequence.py
keeps a seeded request's random stream.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your
exercises pass.
"""

from ch07.llm import LLM
from ch07.model_runner import ModelRunner
from ch07.sampler import Sampler, apply_temperature, draw, filtered_probs, min_p_mask, top_k_mask, top_p_mask
from ch07.sampling_params import SamplingParams
from ch07.sequence import Sequence

__all__ = [
    "LLM", "ModelRunner", "Sampler", "SamplingParams", "Sequence", "apply_temperature", "draw", "filtered_probs",
    "min_p_mask", "top_k_mask", "top_p_mask",
]
