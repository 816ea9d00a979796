"""Chapter 5's answer key and the wrong answers its graders must reject (see course/grading.py)."""

from ch03.model_runner import compute_slot_mapping
from ch04.sequence import SequenceStatus
from ch05 import model_runner, roofline, scheduler
from ch05.roofline import element_size

REFERENCE = {
    "arithmetic_intensity": roofline.arithmetic_intensity,
    "schedule": scheduler.Scheduler.schedule,
    "chunk_inputs": model_runner.chunk_inputs,
    "logits_indices": model_runner.logits_indices,
}


# --- 5.1 arithmetic intensity -------------------------------------------------------------------
def intensity_one_flop_per_multiply_add(m, k, n, dtype):
    # counts a multiply-add as one operation: half of what datasheets (and FlopCounterMode) count
    return m * k * n / ((m * k + k * n + m * n) * element_size(dtype))


def intensity_weight_bytes_only(m, k, n, dtype):
    # forgets the activations: right for one token, far too high for a long prefill
    return 2 * m * k * n / (k * n * element_size(dtype))


def intensity_counts_numbers_not_bytes(m, k, n, dtype):
    # divides by the number of elements: the same for float32 and bfloat16
    return 2 * m * k * n / (m * k + k * n + m * n)


# --- 5.2 the chunked schedule --------------------------------------------------------------------
def _left(seq):
    return seq.num_tokens - seq.num_cached_tokens


def _decodes(self, batch, budget):
    for seq in list(self.running):
        if seq.status == SequenceStatus.RUNNING and _left(seq) == 1 and self.make_room(seq):
            self.block_manager.may_append(seq)
            seq.num_scheduled_tokens = 1
            budget -= 1
            batch.append(seq)
    return budget


def _take(seq, tokens, batch, budget):
    seq.num_scheduled_tokens = tokens
    batch.append(seq)
    return budget - tokens


def _admit_waiting(self, batch, budget, tokens_for):
    """Admit waiting prompts in order while blocks and max_num_seqs allow; tokens_for(seq, budget)
    says how many tokens each takes (None: it does not fit, admission stops)."""
    while self.waiting and budget > 0 and self.admission_room() > 0 and self.block_manager.can_allocate(self.waiting[0]):
        seq = self.waiting[0]
        tokens = tokens_for(seq, budget)
        if tokens is None:
            break
        self.waiting.popleft()
        self.block_manager.allocate(seq)
        seq.status = SequenceStatus.RUNNING
        self.running.append(seq)
        budget = _take(seq, tokens, batch, budget)
    return budget


def _result(batch):
    return batch


def _chunk(seq, budget):
    return min(_left(seq), budget)


def schedule_prefills_first(self):
    # prompt chunks take the budget first; decodes get what is left, so a long prompt stalls them
    budget, batch = self.max_num_batched_tokens, []
    for seq in self.running:
        if budget > 0 and _left(seq) > 1:
            budget = _take(seq, _chunk(seq, budget), batch, budget)
    budget = _admit_waiting(self, batch, budget, _chunk)
    for seq in list(self.running):
        if budget > 0 and seq.num_scheduled_tokens == 0 and _left(seq) == 1 and self.make_room(seq):
            self.block_manager.may_append(seq)
            budget = _take(seq, 1, batch, budget)
    return _result(batch)


def schedule_whole_prompts_only(self):
    # chapter 4's admission beside the decodes: a prompt that does not fit the budget whole waits
    batch = []
    budget = _decodes(self, batch, self.max_num_batched_tokens)
    _admit_waiting(self, batch, budget, lambda seq, budget: _left(seq) if _left(seq) <= budget else None)
    return _result(batch)


def schedule_chunks_ignore_the_budget(self):
    # a prompt takes everything it has left, however little budget remains
    batch = []
    budget = _decodes(self, batch, self.max_num_batched_tokens)
    for seq in self.running:
        if budget > 0 and seq.num_scheduled_tokens == 0:
            budget = _take(seq, _left(seq), batch, budget)
    _admit_waiting(self, batch, budget, lambda seq, budget: _left(seq))
    return _result(batch)


def schedule_forgets_running_prompts(self):
    # only newly admitted prompts get chunks: one started last step never continues
    batch = []
    budget = _decodes(self, batch, self.max_num_batched_tokens)
    _admit_waiting(self, batch, budget, _chunk)
    return _result(batch)


# --- 5.3 a chunk that starts mid-prompt ----------------------------------------------------------
def chunk_positions_from_zero(seq, block_size):
    # numbers the chunk's tokens from 0, as if each chunk were a new prompt: wrong rotary positions
    start, end = seq.num_cached_tokens, seq.num_cached_tokens + seq.num_scheduled_tokens
    return seq.token_ids[start:end], list(range(end - start)), compute_slot_mapping(seq.block_table, start, end, block_size), end


def chunk_attends_to_itself_only(seq, block_size):
    # context_len is the chunk's length: the cached part of the prompt is never read
    start, end = seq.num_cached_tokens, seq.num_cached_tokens + seq.num_scheduled_tokens
    return seq.token_ids[start:end], list(range(start, end)), compute_slot_mapping(seq.block_table, start, end, block_size), end - start


def chunk_slots_from_the_first_block(seq, block_size):
    # stores the chunk where the prompt's first tokens live: overwrites the cached K/V
    start, end = seq.num_cached_tokens, seq.num_cached_tokens + seq.num_scheduled_tokens
    return seq.token_ids[start:end], list(range(start, end)), compute_slot_mapping(seq.block_table, 0, end - start, block_size), end


def chunk_tokens_from_the_start(seq, block_size):
    # computes the prompt's first tokens again instead of the next ones
    start, end = seq.num_cached_tokens, seq.num_cached_tokens + seq.num_scheduled_tokens
    return seq.token_ids[: end - start], list(range(start, end)), compute_slot_mapping(seq.block_table, start, end, block_size), end


# --- 5.4 which rows get logits -------------------------------------------------------------------
def logits_for_every_sequence(seqs, cu_seqlens_q):
    # a row for each sequence, chunks that stop mid-prompt included: tokens go to the wrong sequences
    return [cu_seqlens_q[i + 1] - 1 for i in range(len(seqs))]


def logits_at_the_first_row(seqs, cu_seqlens_q):
    # the right sequences, but each one's first row: the prediction after the wrong token
    return [cu_seqlens_q[i] for i, seq in enumerate(seqs) if seq.num_cached_tokens + seq.num_scheduled_tokens == seq.num_tokens]


def logits_once_past_the_prompt(seqs, cu_seqlens_q):
    # "has its prompt been computed?" instead of "is its newest token computed?": a preempted
    # sequence recomputing its prompt and outputs samples before it has caught up
    return [
        cu_seqlens_q[i + 1] - 1
        for i, seq in enumerate(seqs)
        if seq.num_cached_tokens + seq.num_scheduled_tokens >= seq.num_prompt_tokens
    ]


PLANTED = {
    "arithmetic_intensity": [intensity_one_flop_per_multiply_add, intensity_weight_bytes_only, intensity_counts_numbers_not_bytes],
    "schedule": [schedule_prefills_first, schedule_whole_prompts_only, schedule_chunks_ignore_the_budget, schedule_forgets_running_prompts],
    "chunk_inputs": [chunk_positions_from_zero, chunk_attends_to_itself_only, chunk_slots_from_the_first_block, chunk_tokens_from_the_start],
    "logits_indices": [logits_for_every_sequence, logits_at_the_first_row, logits_once_past_the_prompt],
}
