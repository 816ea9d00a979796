"""LLM: chapter 9's engine with chapter 10's Config (kv_cache_dtype) and model runner (the pool
in that dtype, with FP8 scales)."""

import ch09
from ch10.config import Config
from ch10.model_runner import ModelRunner


class LLM(ch09.LLM):
    config_class = Config
    model_runner_class = ModelRunner
