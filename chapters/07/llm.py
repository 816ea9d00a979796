"""LLM: chapter 6's engine with chapter 7's SamplingParams (the filters and a seed), sequence (it
keeps a seeded request's random stream) and model runner (its sample step is one batched Sampler
call)."""

import ch06
from ch07.model_runner import ModelRunner
from ch07.sampling_params import SamplingParams
from ch07.sequence import Sequence


class LLM(ch06.LLM):
    sampling_params_class = SamplingParams
    sequence_class = Sequence
    model_runner_class = ModelRunner
