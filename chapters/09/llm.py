"""LLM: chapter 8's engine with chapter 9's Config (enforce_eager) and model runner (the kernels
and the CUDA graphs)."""

import ch08
from ch09.config import Config
from ch09.model_runner import ModelRunner


class LLM(ch08.LLM):
    config_class = Config
    model_runner_class = ModelRunner
