"""LLM: the public name of the engine (nano-vllm's), with chapter 1's chat helpers.

    llm = LLM("models/smollm2-135m-instruct", max_num_seqs=8, num_kvcache_blocks=256)
    llm.generate(prompts, SamplingParams(temperature=0, max_tokens=64))
    llm.scheduler.num_preemptions   # how often the pool ran out and a sequence gave way
"""

import ch01
from ch04.llm_engine import LLMEngine


class LLM(LLMEngine):
    chat_prompt = ch01.LLM.chat_prompt  # the chat template, as chapter 1 applies it
    chat = ch01.LLM.chat  # conversations -> prompts -> self.generate
