"""Model runners that fail on purpose, for the fault tests (a module of its own: rank processes
import it by name to build the same runner)."""

from ch08 import LLM, ModelRunner


class FailsInStep(ModelRunner):
    """Rank 1 raises in its second step, before the step's first all-reduce."""

    def run(self, seqs):
        self.steps = getattr(self, "steps", 0) + 1
        if self.rank == 1 and self.steps == 2:
            raise ValueError("a fault planted on rank 1")
        return super().run(seqs)


class FailsToStart(ModelRunner):
    """Rank 1 cannot build its model."""

    def __init__(self, config, rank=0, channel=None, num_threads=1):
        if rank == 1:
            config.model = "/nonexistent/model"
        super().__init__(config, rank, channel, num_threads)


class LLMFailingInStep(LLM):
    model_runner_class = FailsInStep


class LLMFailingToStart(LLM):
    model_runner_class = FailsToStart
