"""LLM over a paged KV cache: chapter 2's engine, with blocks taken as sequences grow and given
back as soon as each one finishes.

    llm = LLM(model_path, max_num_seqs=4, max_model_len=1024, kvcache_block_size=16, num_kvcache_blocks=64)
    llm.generate(prompts, SamplingParams(temperature=0, max_tokens=64))
    llm.cache_usage[-1]   # slots reserved (blocks held * kvcache_block_size) vs used, and who holds which block

The two pool settings carry nanovllm_final's names (its Config): kvcache_block_size slots per
block, num_kvcache_blocks blocks in the pool.

The batches are still static (chapter 4 admits new prompts as blocks free up). So a batch that
outgrows the pool cannot wait for room: it stops with an error that says which number to raise.
"""

from dataclasses import dataclass

import torch

from ch01.model import Parts
from ch02 import llm
from ch02.llm import CacheUsage
from ch03.attention import Attention
from ch03.block_manager import BlockManager
from ch03.model_runner import ModelRunner
from ch03.sequence import Sequence


@dataclass(frozen=True)
class PoolUsage(CacheUsage):
    """Chapter 2's record, plus the blocks each sequence of the batch holds after the step."""

    block_tables: tuple[tuple[int, ...], ...] = ()
    num_kvcache_blocks: int = 0  # the pool's size


class LLM(llm.LLM):
    parts = Parts(attention=Attention)
    sequence_class = Sequence

    def __init__(self, model_path, dtype=torch.float32, device="cpu", max_num_seqs: int = 4, max_model_len: int = 1024,
                 kvcache_block_size: int = 16, num_kvcache_blocks: int | None = None):
        if kvcache_block_size < 1 or (num_kvcache_blocks is not None and num_kvcache_blocks < 1):
            raise ValueError(f"need kvcache_block_size >= 1 and num_kvcache_blocks >= 1, "
                             f"got {kvcache_block_size} and {num_kvcache_blocks}")
        self.kvcache_block_size, self.num_kvcache_blocks = kvcache_block_size, num_kvcache_blocks
        super().__init__(model_path, dtype=dtype, device=device, max_num_seqs=max_num_seqs, max_model_len=max_model_len)
        self.block_manager = BlockManager(self.num_kvcache_blocks, kvcache_block_size)

    def make_runner(self) -> ModelRunner:
        if self.num_kvcache_blocks is None:  # by default, the memory of chapter 2's cache: a full row per sequence
            self.num_kvcache_blocks = self.max_num_seqs * -(-self.max_model_len // self.kvcache_block_size)
        return ModelRunner(self.model, self.num_kvcache_blocks, self.kvcache_block_size)

    def check_length(self, prompt_ids: list[int], params) -> None:
        super().check_length(prompt_ids, params)
        longest = len(prompt_ids) + params.max_tokens - 1  # the last sampled token is returned, never stored
        needed = -(-longest // self.kvcache_block_size)  # ceil
        if needed > self.num_kvcache_blocks:
            raise ValueError(
                f"a prompt of {len(prompt_ids):,} tokens with max_tokens={params.max_tokens:,} needs {needed:,} KV blocks "
                f"of {self.kvcache_block_size} tokens, but the pool has {self.num_kvcache_blocks:,}; "
                "raise num_kvcache_blocks, lower max_tokens or shorten the prompt"
            )

    def run_batch(self, seqs: list[Sequence]) -> None:
        try:
            super().run_batch(seqs)
        finally:  # a batch that stopped half-way gives its blocks back: the engine stays usable
            for seq in seqs:
                if seq.block_table:
                    self.block_manager.deallocate(seq)

    def step(self, seqs: list[Sequence]) -> None:
        """Blocks for this step's tokens first, then chapter 2's step, then free the finished."""
        manager = self.block_manager
        for seq in seqs:
            if not seq.block_table:
                if not manager.can_allocate(seq):
                    raise self.out_of_blocks(seq, seqs)
                manager.allocate(seq)
            else:
                if not manager.can_append(seq):
                    raise self.out_of_blocks(seq, seqs)
                manager.may_append(seq)
        super().step(seqs)
        for seq in seqs:
            if seq.is_finished:  # back to the pool now, not when the batch ends
                manager.deallocate(seq)

    def out_of_blocks(self, seq: Sequence, seqs: list[Sequence]) -> ValueError:
        return ValueError(
            f"the KV pool is full: sequence {seq.seq_id} needs a block for token {seq.num_tokens:,}, but all "
            f"{self.num_kvcache_blocks:,} blocks of {self.kvcache_block_size} slots are held by the {len(seqs)} "
            f"running sequences; raise num_kvcache_blocks (now {self.num_kvcache_blocks:,}) or lower max_num_seqs "
            f"(now {self.max_num_seqs}) so that fewer sequences share the pool"
        )

    def kv_usage(self, seqs: list[Sequence], running: int) -> PoolUsage:
        """Only blocks held now count: a finished sequence has given its blocks back."""
        return PoolUsage(
            batch_size=len(seqs),
            running=running,
            reserved_slots=sum(len(seq.block_table) for seq in seqs) * self.kvcache_block_size,
            used_slots=sum(seq.num_cached_tokens for seq in seqs),
            bytes_per_slot=self.runner.bytes_per_slot,
            block_tables=tuple(tuple(seq.block_table) for seq in seqs),
            num_kvcache_blocks=self.num_kvcache_blocks,
        )
