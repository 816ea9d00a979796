"""Chapter 5 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/05

Each test plugs your function into the real chapter-5 engine (ch05.roofline, ch05.scheduler,
ch05.model_runner) and checks what it does and the tokens the engine then generates. The
notebook notebooks/05_prefill_decode.ipynb walks through every piece, with hints; the chapter's
own code is the answer key, so try before you peek.
"""

import torch


def arithmetic_intensity(m: int, k: int, n: int, dtype: torch.dtype) -> float:
    """FLOPs per byte moved of a matrix multiply of m tokens, (m, k), against a weight (k, n), all
    three matrices in `dtype`. Count 2 FLOPs per multiply-add, and the least memory traffic: each
    operand read once and the result written once."""
    raise NotImplementedError(
        "Exercise 5.1: arithmetic intensity — count the multiply's FLOPs and the bytes of the matrices "
        "it reads and writes, then divide; see notebooks/05_prefill_decode.ipynb, section 'Arithmetic intensity'"
    )


def schedule(self) -> list:
    """ch05.scheduler.Scheduler.schedule (`self` is the scheduler): the next step's sequences, each
    with seq.num_scheduled_tokens set.

    The step computes at most self.max_num_batched_tokens tokens. First every running sequence
    that is decoding (exactly one uncached token) computes that token, oldest first; before each,
    self.make_room(seq) preempts sequences if the pool is full (it returns False if seq itself had
    to go) and self.block_manager.may_append(seq) gives it a block if it needs one. Then running
    sequences part-way through their prompt, then waiting ones (while self.admission_room() and
    self.block_manager.can_allocate allow; allocate, mark RUNNING, append to self.running), each
    take as many of their uncached tokens as the budget has left."""
    raise NotImplementedError(
        "Exercise 5.2: the chunked schedule — decodes first, then running prompts, then waiting ones in "
        "order, each prompt taking what fits of the budget; see notebooks/05_prefill_decode.ipynb, "
        "section 'Chunked prefill: the schedule'"
    )


def chunk_inputs(seq, block_size: int) -> tuple[list[int], list[int], list[int], int]:
    """What seq computes this step: its seq.num_scheduled_tokens tokens after its
    seq.num_cached_tokens cached ones. Return (input_ids, positions, slot_mapping, context_len):
    the token ids, their positions in the sequence, their slots in the pool (through
    seq.block_table; ch03.model_runner.compute_slot_mapping helps) and how many of the sequence's
    tokens the last of them attends to."""
    raise NotImplementedError(
        "Exercise 5.3: a chunk that starts mid-prompt — its tokens, positions and slots continue where the "
        "cache ends, and it attends to the cached part too; see notebooks/05_prefill_decode.ipynb, section "
        "'A chunk in the middle of a prompt'"
    )


def logits_indices(seqs: list, cu_seqlens_q: list[int]) -> list[int]:
    """The rows of the step's flat batch whose logits are computed. seqs[i]'s tokens are rows
    cu_seqlens_q[i] .. cu_seqlens_q[i + 1] - 1; each sequence computes seq.num_scheduled_tokens
    tokens after its seq.num_cached_tokens cached ones, out of seq.num_tokens."""
    raise NotImplementedError(
        "Exercise 5.4: which rows get logits — only a sequence whose step reaches its newest token has a "
        "next token to predict, from its last row; see notebooks/05_prefill_decode.ipynb, section "
        "'A chunk in the middle of a prompt'"
    )
