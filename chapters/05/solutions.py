"""Chapter 5's answer key: the reference of every exercise in exercises.py, in its order.

Write your own first (chapters/05/exercises.py, checked by `pytest chapters/05`), and read
this file after: each function here is the one the chapter's engine runs, imported where it is
used (model_runner.py, roofline.py, scheduler.py).
"""

import torch

from ch03.model_runner import compute_slot_mapping
from ch04.sequence import Sequence, SequenceStatus


def arithmetic_intensity(m: int, k: int, n: int, dtype: torch.dtype) -> float:
    """FLOPs per byte moved of a GEMM of m tokens (m, k) against a (k, n) weight, all in `dtype`."""
    return roofline.gemm_flops(m, k, n) / roofline.gemm_bytes(m, k, n, dtype)


def schedule(self) -> list[Sequence]:
    """The next step's sequences, each with seq.num_scheduled_tokens set."""
    budget = self.max_num_batched_tokens
    batch: list[Sequence] = []
    # 1. Decodes: a running sequence with one uncached token (its newest) computes it.
    for seq in list(self.running):  # oldest first: they keep going, the newest give way
        if seq.status != SequenceStatus.RUNNING or seq.num_tokens - seq.num_cached_tokens != 1:
            continue
        if self.make_room(seq):
            self.block_manager.may_append(seq)
            seq.num_scheduled_tokens = 1
            budget -= 1
            batch.append(seq)
    # 2. Prompts already running, part-way through: the next chunk of each, oldest first.
    for seq in self.running:
        if budget > 0 and seq.num_scheduled_tokens == 0:
            seq.num_scheduled_tokens = min(seq.num_tokens - seq.num_cached_tokens, budget)
            budget -= seq.num_scheduled_tokens
            batch.append(seq)
    # 3. Waiting prompts in arrival order; the first that cannot have its blocks stops admission.
    room = self.admission_room()
    while self.waiting and budget > 0 and room > 0:
        seq = self.waiting[0]
        if not self.block_manager.can_allocate(seq):
            break
        self.waiting.popleft()
        self.block_manager.allocate(seq)  # blocks for every token now: its chunks only fill them
        seq.status = SequenceStatus.RUNNING
        self.running.append(seq)
        room -= 1
        seq.num_scheduled_tokens = min(seq.num_tokens - seq.num_cached_tokens, budget)
        budget -= seq.num_scheduled_tokens
        batch.append(seq)
    return batch


def chunk_inputs(seq: Sequence, block_size: int) -> tuple[list[int], list[int], list[int], int]:
    """The tokens seq computes this step (seq.num_scheduled_tokens of them, after its
    seq.num_cached_tokens cached ones): (input_ids, positions, slot_mapping, context_len)."""
    start = seq.num_cached_tokens
    end = start + seq.num_scheduled_tokens
    slots = compute_slot_mapping(seq.block_table, start, end, block_size)
    return seq.token_ids[start:end], list(range(start, end)), slots, end


def logits_indices(seqs: list[Sequence], cu_seqlens_q: list[int]) -> list[int]:
    """The rows of the flat batch whose logits the step computes: the last row of each sequence
    whose step reaches its newest token. seqs[i]'s rows are cu_seqlens_q[i]:cu_seqlens_q[i + 1]."""
    return [
        cu_seqlens_q[i + 1] - 1
        for i, seq in enumerate(seqs)
        if seq.num_cached_tokens + seq.num_scheduled_tokens == seq.num_tokens
    ]


# Last, not at the top: roofline.py imports arithmetic_intensity from this file.
from ch05 import roofline  # noqa: E402
