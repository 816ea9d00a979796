"""Chapter 4's answer key: the reference of every exercise in exercises.py, in its order.

Write your own first (chapters/04/exercises.py, checked by `pytest chapters/04`), and read
this file after: each function here is the one the chapter's engine runs, imported where it is
used (llm_engine.py, scheduler.py).
"""

from ch04.sequence import Sequence, SequenceStatus


def schedule(self) -> list[Sequence]:
    """The next step's sequences, each with seq.num_scheduled_tokens set: a prefill batch, or
    else a decode batch."""
    batch, num_batched_tokens, room = [], 0, self.admission_room()
    while self.waiting and len(batch) < room:
        seq = self.waiting[0]
        num_new_tokens = seq.num_tokens - seq.num_cached_tokens  # a preempted one recomputes its output too
        # A prompt longer than the whole budget cannot be split here: it runs alone.
        if batch and num_batched_tokens + num_new_tokens > self.max_num_batched_tokens:
            break
        if not self.block_manager.can_allocate(seq):
            break
        self.waiting.popleft()
        self.block_manager.allocate(seq)
        seq.status = SequenceStatus.RUNNING
        seq.num_scheduled_tokens = num_new_tokens
        num_batched_tokens += num_new_tokens
        self.running.append(seq)
        batch.append(seq)
    if batch:
        return batch
    for seq in list(self.running):  # oldest first: they keep going, the newest give way
        if seq.status == SequenceStatus.RUNNING and self.make_room(seq):
            self.block_manager.may_append(seq)
            seq.num_scheduled_tokens = 1
            batch.append(seq)
    return batch


def make_room(self, seq: Sequence) -> bool:
    """Before seq's decode: if its newest token needs a new block and none is free, preempt
    running sequences from the newest end until one is. Returns False if seq itself had to go."""
    while not self.block_manager.can_append(seq):
        victim = self.running[-1]  # the most recently admitted: the least work to redo
        self.preempt(victim)
        if victim is seq:
            return False
    return True


def preempt(self, seq: Sequence) -> None:
    """Take a running sequence's blocks back. Its tokens stay: at the front of the queue, it is
    admitted again first and recomputes their K/V, so nothing it generated is lost."""
    self.running.remove(seq)
    self.block_manager.deallocate(seq)  # also sets num_cached_tokens to 0: none of its K/V is kept
    seq.status = SequenceStatus.WAITING
    self.waiting.appendleft(seq)
    self.num_preemptions += 1


def postprocess(self, seqs: list[Sequence], token_ids: list[int]) -> None:
    """After the forward pass: each sequence's computed tokens are cached, it takes its sampled
    token, and one that is done leaves `running` and gives its blocks back at once."""
    for seq, token_id in zip(seqs, token_ids):
        seq.num_cached_tokens += seq.num_scheduled_tokens
        seq.num_scheduled_tokens = 0
        if seq.num_cached_tokens < seq.num_tokens:
            continue  # part of a prompt is still to compute (chapter 5's chunks): no new token yet
        seq.append_token(token_id)
        if token_id in self.eos and not seq.ignore_eos:
            seq.finish_reason = "stop"
        elif seq.num_completion_tokens == seq.max_tokens:
            seq.finish_reason = "length"
        if seq.is_finished:
            seq.status = SequenceStatus.FINISHED
            self.running.remove(seq)
            self.block_manager.deallocate(seq)


def step(self) -> tuple[list[Sequence], int, int]:
    """One forward pass. Returns its sequences, and how many prefill and decode tokens it computed."""
    seqs = self.scheduler.schedule()
    if not seqs:
        return [], 0, 0
    num_prefill = sum(seq.num_scheduled_tokens for seq in seqs if seq.is_prefill)
    num_decode = sum(1 for seq in seqs if not seq.is_prefill)
    token_ids = self.model_runner.call("run", seqs)
    self.scheduler.postprocess(seqs, token_ids)
    return seqs, num_prefill, num_decode
