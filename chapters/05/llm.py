"""LLM: chapter 4's engine with chapter 5's scheduler and model runner (and Config)."""

import ch04
from ch05.config import Config
from ch05.model_runner import ModelRunner
from ch05.scheduler import Scheduler


class LLM(ch04.LLM):
    config_class = Config
    scheduler_class = Scheduler
    model_runner_class = ModelRunner
