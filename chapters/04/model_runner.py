"""ModelRunner: owns the model and the KV pool, and turns a scheduled batch into one token each.

    run(seqs) = prepare -> run_model -> sample

`prepare` is chapter 3's: the uncached tokens of every sequence back to back, their slots in the
pool (`slot_mapping`) and each sequence's `block_tables` row, published in the Context for the
attention layers; it also names the rows of the batch whose logits are needed (`logits_indices`),
so that a step computing only part of a prompt (chapter 5) samples nothing for it. The model is
chapter 1's with chapter 3's paged attention; the pool is `num_kvcache_blocks` blocks of
`kvcache_block_size` slots. A step whose sequences all compute just their newest token (none
`is_prefill`) is a pure decode batch; this torch path runs every kind of step alike.

The engine reaches the runner through `call(method, *args)`, never a method directly: one runner
here, so `call` is a plain method call; with one runner per GPU (chapter 8) it reaches them all.
"""

import torch

from ch01 import sampler
from ch01.loader import load_model
from ch01.model import Parts
from ch03 import model_runner
from ch03.attention import Attention
from ch03.context import get_context, reset_context
from ch04.config import Config
from ch04.sequence import Sequence


class ModelRunner(model_runner.ModelRunner):
    parts = Parts(attention=Attention)  # the model's pieces: chapter 1's, with chapter 3's paged attention

    def __init__(self, config: Config):
        model = load_model(config.model, dtype=config.dtype, device=config.device, parts=self.parts)
        super().__init__(model, config.num_kvcache_blocks, config.kvcache_block_size)

    def prepare(self, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chapter 3's flat batch, and the rows of it whose logits the step needs (logits_rows)."""
        input_ids, positions = super().prepare(seqs)
        rows = self.logits_rows(seqs, get_context().cu_seqlens_q.tolist())
        return input_ids, positions, torch.tensor(rows, dtype=torch.int64, device=self.device)

    def logits_rows(self, seqs: list[Sequence], cu_seqlens_q: list[int]) -> list[int]:
        """Here every sequence computes up to its newest token: each one's last row. (Chapter 5:
        only those whose step reaches their newest token.)"""
        return [end - 1 for end in cu_seqlens_q[1:]]

    def call(self, method: str, *args):
        """Run one of the runner's methods: call("run", seqs) is run(seqs)."""
        return getattr(self, method)(*args)

    @torch.inference_mode()
    def run(self, seqs: list[Sequence]) -> list[int | None]:
        """One forward over the scheduled tokens of `seqs`; returns each sequence's sampled token,
        or None for one whose step stops short of its newest token (it has nothing to predict)."""
        input_ids, positions, logits_indices = self.prepare(seqs)
        try:
            logits = self.run_model(input_ids, positions, logits_indices)  # (S, vocab_size)
        finally:
            reset_context()
        done = [seq.num_cached_tokens + seq.num_scheduled_tokens == seq.num_tokens for seq in seqs]
        assert len(logits) == sum(done), f"prepare chose {len(logits)} rows for logits, but {sum(done)} sequences sample"
        token_ids = iter(self.sample(logits, [seq for seq, d in zip(seqs, done) if d]))
        return [next(token_ids) if d else None for d in done]

    def run_model(self, input_ids: torch.Tensor, positions: torch.Tensor, logits_indices: torch.Tensor) -> torch.Tensor:
        """(N,) tokens -> (S, vocab_size): the logits of the rows logits_indices (S,) of the batch.

        S == N means a pure decode batch: every sequence computes one token and samples it (none
        `is_prefill`), so the step's shapes depend on the batch size alone."""
        hidden = self.model(input_ids, positions)  # (N, D); every token's K/V is now in the pool
        return self.model.compute_logits(hidden[logits_indices.to(self.device)])

    def sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
        return [sampler.sample(row, seq.sampling_params.temperature) for seq, row in zip(seqs, logits)]
