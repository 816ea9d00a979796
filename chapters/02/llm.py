"""LLM with a KV cache: the same interface as chapter 1, prompts run together in static batches.

    llm = LLM("models/smollm2-135m-instruct", max_num_seqs=4, max_model_len=1024)
    llm.generate(prompts, SamplingParams(temperature=0, max_tokens=64))
    llm.cache_usage[-1]   # the cache after the last step: slots reserved vs slots used

Static batching: up to `max_num_seqs` prompts start together, each in its own cache row of
`max_model_len` slots, and the batch ends when its last sequence does. A sequence that finishes
early stops computing, but its row stays reserved until then, and the next prompts wait for the
whole batch. `cache_usage` records the price after every step; chapter 3 (blocks) and chapter 4
(continuous batching) bring it down.
"""

from dataclasses import dataclass

import torch

import ch01
from ch01 import sampler
from ch01.model import Parts
from ch01.sampling_params import SamplingParams
from ch02 import solutions
from ch02.attention import Attention
from ch02.model_runner import ModelRunner
from ch02.sequence import RowSequence


@dataclass(frozen=True)
class CacheUsage:
    """The KV cache of one batch after one step. A slot holds one token's K and V, all layers."""

    batch_size: int  # sequences in the batch, finished ones included
    running: int  # sequences still generating
    reserved_slots: int  # slots set aside for the batch's sequences
    used_slots: int  # slots holding a token's K/V
    bytes_per_slot: int

    @property
    def wasted_slots(self) -> int:
        return self.reserved_slots - self.used_slots

    @property
    def waste(self) -> float:
        """The fraction of the reserved slots that hold nothing."""
        return self.wasted_slots / self.reserved_slots if self.reserved_slots else 0.0


class LLM(ch01.LLM):
    parts = Parts(attention=Attention)  # the model's pieces: chapter 1's, with the caching attention
    sequence_class = RowSequence  # what a request becomes inside the engine

    def __init__(self, model_path, dtype=torch.float32, device="cpu", max_num_seqs: int = 4, max_model_len: int = 1024):
        if max_num_seqs < 1 or max_model_len < 2:
            raise ValueError(f"need max_num_seqs >= 1 and max_model_len >= 2, got {max_num_seqs} and {max_model_len}")
        super().__init__(model_path, dtype=dtype, device=device)  # builds the model with self.parts
        self.max_model_len = min(max_model_len, self.config.max_position_embeddings)
        self.max_num_seqs = max_num_seqs
        self.runner = self.make_runner()
        self.cache_usage: list[CacheUsage] = []

    def make_runner(self) -> ModelRunner:
        return ModelRunner(self.model, self.max_num_seqs, self.max_model_len)

    def generate(self, prompts, sampling_params: SamplingParams | list[SamplingParams] | None = None) -> list[dict]:
        seqs = [self.sequence_class(ids, p) for ids, p in self.requests(prompts, sampling_params)]
        self.cache_usage = []
        for i in range(0, len(seqs), self.max_num_seqs):
            self.run_batch(seqs[i:i + self.max_num_seqs])
        return [self.make_output(seq.completion_token_ids, seq.finish_reason) for seq in seqs]

    def run_batch(self, seqs: list[RowSequence]) -> None:
        """Static batching: all of `seqs` start together and the batch runs until the last ends."""
        for row, seq in enumerate(seqs):
            seq.cache_row = row
        running = list(seqs)
        while running:
            self.step(running)
            running = [seq for seq in running if not seq.is_finished]
            self.cache_usage.append(self.kv_usage(seqs, len(running)))

    def step(self, seqs: list[RowSequence]) -> None:
        """One forward pass for every running sequence (its prefill, or one decode token)."""
        logits = self.runner.run(seqs)  # (B, vocab_size)
        token_ids = [sampler.sample(row, seq.sampling_params.temperature) for seq, row in zip(seqs, logits)]
        self.postprocess(seqs, token_ids)

    # The reference of the chapter's exercises is in solutions.py, its answer key (read it after them).
    postprocess = solutions.postprocess  # exercise 2.4 (solutions.py)

    def kv_usage(self, seqs: list[RowSequence], running: int) -> CacheUsage:
        """Every sequence of the batch holds a whole row until the batch ends, finished or not."""
        return CacheUsage(
            batch_size=len(seqs),
            running=running,
            reserved_slots=len(seqs) * self.max_model_len,
            used_slots=sum(seq.num_cached_tokens for seq in seqs),
            bytes_per_slot=self.runner.bytes_per_slot,
        )
