"""LLM: chapter 6's engine with chapter 7's sequence (it carries the sampling parameters) and
model runner (its sample step is one batched Sampler call)."""

import ch06
from ch07.model_runner import ModelRunner
from ch07.sequence import Sequence


class LLM(ch06.LLM):
    sequence_class = Sequence
    model_runner_class = ModelRunner
