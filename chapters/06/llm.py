"""LLM: chapter 5's engine with the prefix cache (chapter 6's block manager, and the scheduler
that tells it which blocks each step filled).

    llm = LLM("models/smollm2-135m-instruct")
    llm.generate(prompts, SamplingParams(temperature=0, max_tokens=64))
    llm.scheduler.block_manager.num_hit_tokens   # prompt tokens served from the cache so far
"""

import ch05
from ch06.block_manager import BlockManager
from ch06.scheduler import Scheduler


class LLM(ch05.LLM):
    block_manager_class = BlockManager
    scheduler_class = Scheduler
