"""Chapter 4's answer key and the wrong answers its graders must reject (see course/grading.py)."""

from ch04 import llm_engine, scheduler
from ch04.sequence import SequenceStatus

REFERENCE = {
    "schedule": scheduler.Scheduler.schedule,
    "make_room": scheduler.Scheduler.make_room,
    "preempt": scheduler.Scheduler.preempt,
    "postprocess": scheduler.Scheduler.postprocess,
    "step": llm_engine.LLMEngine.step,
}


# --- 4.1 schedule -------------------------------------------------------------------------------
def _schedule(self, *, seats=None, fifo=True, check_blocks=True, grow=True):
    batch, num_batched_tokens = [], 0
    room = self.admission_room() if seats is None else seats(self)
    candidates = list(self.waiting)
    for seq in candidates:
        if len(batch) >= room:
            break
        num_new_tokens = seq.num_tokens - seq.num_cached_tokens
        fits = not batch or num_batched_tokens + num_new_tokens <= self.max_num_batched_tokens
        if not fits or (check_blocks and not self.block_manager.can_allocate(seq)):
            if fifo:
                break
            continue
        self.waiting.remove(seq)
        self.block_manager.allocate(seq)
        seq.status = SequenceStatus.RUNNING
        seq.num_scheduled_tokens = num_new_tokens
        num_batched_tokens += num_new_tokens
        self.running.append(seq)
        batch.append(seq)
    if batch:
        return batch
    for seq in list(self.running):
        if seq.status == SequenceStatus.RUNNING and self.make_room(seq):
            if grow:
                self.block_manager.may_append(seq)
            seq.num_scheduled_tokens = 1
            batch.append(seq)
    return batch


def schedule_lets_later_sequences_overtake(self):
    # a sequence that does not fit is skipped and the next one tried: a long prompt may wait forever
    return _schedule(self, fifo=False)


def schedule_counts_only_this_batch_against_max_num_seqs(self):
    # nano-vllm's first version: each prefill admits up to max_num_seqs, however many already run
    return _schedule(self, seats=lambda s: s.max_num_seqs)


def schedule_without_the_block_check(self):
    # admits on the token budget alone: the pool runs dry in the middle of an allocation
    return _schedule(self, check_blocks=False)


def schedule_decode_without_a_new_block(self):
    # the decode forgets may_append: a token that starts a new block has no slot
    return _schedule(self, grow=False)


# --- 4.2 make_room ------------------------------------------------------------------------------
def make_room_preempts_the_oldest(self, seq):
    # the sequence that has done the most work is thrown away first
    while not self.block_manager.can_append(seq):
        victim = self.running[0]
        self.preempt(victim)
        if victim is seq:
            return False
    return True


def make_room_preempts_the_one_that_needs_the_block(self, seq):
    # it gives way itself, though newer sequences could have
    if self.block_manager.can_append(seq):
        return True
    self.preempt(seq)
    return False


def make_room_keeps_going_after_preempting_itself(self, seq):
    # seq was the newest and has gone back to waiting, but it is still decoded
    while not self.block_manager.can_append(seq):
        self.preempt(self.running[-1])
    return True


# --- 4.3 preempt --------------------------------------------------------------------------------
def preempt_to_the_back_of_the_queue(self, seq):
    # requests that arrived later are admitted before it
    self.running.remove(seq)
    self.block_manager.deallocate(seq)
    seq.status = SequenceStatus.WAITING
    self.waiting.append(seq)
    self.num_preemptions += 1


def preempt_without_freeing_blocks(self, seq):
    # its blocks are never given back: the pool is as full as before
    self.running.remove(seq)
    seq.status = SequenceStatus.WAITING
    self.waiting.appendleft(seq)
    self.num_preemptions += 1


def preempt_forgets_the_generated_tokens(self, seq):
    # "recompute" taken as "start over": the tokens it generated are thrown away
    self.running.remove(seq)
    self.block_manager.deallocate(seq)
    del seq.token_ids[seq.num_prompt_tokens:]
    seq.num_tokens = seq.num_prompt_tokens
    seq.status = SequenceStatus.WAITING
    self.waiting.appendleft(seq)
    self.num_preemptions += 1


def preempt_leaves_the_status_running(self, seq):
    self.running.remove(seq)
    self.block_manager.deallocate(seq)
    self.waiting.appendleft(seq)
    self.num_preemptions += 1


# --- 4.4 postprocess ----------------------------------------------------------------------------
def _postprocess(self, seqs, token_ids, *, eos=True, last=lambda seq: seq.num_completion_tokens == seq.max_tokens,
                 free=True, leave=True, cache_new_token=False, wait_for_prompt=True):
    for seq, token_id in zip(seqs, token_ids):
        seq.num_cached_tokens += seq.num_scheduled_tokens
        seq.num_scheduled_tokens = 0
        if wait_for_prompt and seq.num_cached_tokens < seq.num_tokens:
            continue
        seq.append_token(token_id)
        if cache_new_token:
            seq.num_cached_tokens = seq.num_tokens
        if eos and token_id in self.eos and not seq.ignore_eos:
            seq.finish_reason = "stop"
        elif last(seq):
            seq.finish_reason = "length"
        if seq.is_finished:
            seq.status = SequenceStatus.FINISHED
            if leave:
                self.running.remove(seq)
            if free:
                self.block_manager.deallocate(seq)


def postprocess_appends_before_the_prompt_is_done(self, seqs, token_ids):
    # a prompt computed in parts would take a token after every part
    _postprocess(self, seqs, token_ids, wait_for_prompt=False)


def postprocess_ignores_eos(self, seqs, token_ids):
    _postprocess(self, seqs, token_ids, eos=False)


def postprocess_one_token_too_many(self, seqs, token_ids):
    _postprocess(self, seqs, token_ids, last=lambda seq: seq.num_completion_tokens > seq.max_tokens)


def postprocess_keeps_the_blocks_of_finished_sequences(self, seqs, token_ids):
    # finished sequences leave the running queue, but their blocks never return to the pool
    _postprocess(self, seqs, token_ids, free=False)


def postprocess_leaves_finished_sequences_running(self, seqs, token_ids):
    _postprocess(self, seqs, token_ids, leave=False)


def postprocess_counts_the_new_token_as_cached(self, seqs, token_ids):
    # the sampled token has no K/V yet: the next step must compute it
    _postprocess(self, seqs, token_ids, cache_new_token=True)


# --- 4.5 step -----------------------------------------------------------------------------------
def _count(seqs):
    """(prefill tokens, decode tokens) of a scheduled batch, as the reference counts them."""
    return (sum(seq.num_scheduled_tokens for seq in seqs if seq.is_prefill), sum(1 for seq in seqs if not seq.is_prefill))


def step_counts_tokens_after_postprocess(self):
    # postprocess has spent num_scheduled_tokens by then: every step reports 0 tokens
    seqs = self.scheduler.schedule()
    if not seqs:
        return [], 0, 0
    token_ids = self.model_runner.call("run", seqs)
    self.scheduler.postprocess(seqs, token_ids)
    return seqs, *_count(seqs)


def step_counts_sequences_not_tokens(self):
    # a prefill of 8- and 5-token prompts computes 13 tokens, not 2
    seqs = self.scheduler.schedule()
    if not seqs:
        return [], 0, 0
    num_prefill = sum(1 for seq in seqs if seq.is_prefill)
    num_decode = len(seqs) - num_prefill
    self.scheduler.postprocess(seqs, self.model_runner.call("run", seqs))
    return seqs, num_prefill, num_decode


def step_runs_when_nothing_is_scheduled(self):
    seqs = self.scheduler.schedule()
    counts = _count(seqs)
    self.scheduler.postprocess(seqs, self.model_runner.call("run", seqs))
    return seqs, *counts


def step_without_postprocess(self):
    # the model runs, but no sequence ever gets its token
    seqs = self.scheduler.schedule()
    if not seqs:
        return [], 0, 0
    counts = _count(seqs)
    self.model_runner.call("run", seqs)
    return seqs, *counts


PLANTED = {
    "schedule": [
        schedule_lets_later_sequences_overtake,
        schedule_counts_only_this_batch_against_max_num_seqs,
        schedule_without_the_block_check,
        schedule_decode_without_a_new_block,
    ],
    "make_room": [
        make_room_preempts_the_oldest,
        make_room_preempts_the_one_that_needs_the_block,
        make_room_keeps_going_after_preempting_itself,
    ],
    "preempt": [
        preempt_to_the_back_of_the_queue,
        preempt_without_freeing_blocks,
        preempt_forgets_the_generated_tokens,
        preempt_leaves_the_status_running,
    ],
    "postprocess": [
        postprocess_appends_before_the_prompt_is_done,
        postprocess_ignores_eos,
        postprocess_one_token_too_many,
        postprocess_keeps_the_blocks_of_finished_sequences,
        postprocess_leaves_finished_sequences_running,
        postprocess_counts_the_new_token_as_cached,
    ],
    "step": [
        step_counts_tokens_after_postprocess,
        step_counts_sequences_not_tokens,
        step_runs_when_nothing_is_scheduled,
        step_without_postprocess,
    ],
}
