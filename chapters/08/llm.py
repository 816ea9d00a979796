"""LLM: chapter 7's engine over `tensor_parallel_size` ranks.

    llm = LLM("models/smollm2-135m-instruct", tensor_parallel_size=3)
    llm.generate(prompts, SamplingParams(temperature=0, max_tokens=64))
    llm.close()    # the other ranks' processes leave; dropping the LLM does the same

Nothing above the model runner changes: the scheduler, the block manager and the sampler run on
rank 0 alone, and every rank's pool has the same blocks (each holds its own heads' K/V in them).
"""

import ch07
from ch08.config import Config
from ch08.model_runner import ModelRunner, start_workers


class LLM(ch07.LLM):
    config_class = Config
    model_runner_class = ModelRunner

    def start_model_runner(self, config: Config) -> ModelRunner:
        """Ranks 1 .. n-1 in processes of their own, then rank 0's runner here, which drives them."""
        workers = start_workers(self.model_runner_class, config) if config.tensor_parallel_size > 1 else []
        return self.model_runner_class(config, 0, workers)

    def close(self) -> None:
        """Stop the other ranks and free the process group. Safe to call twice."""
        self.model_runner.close()
