"""Chapter 4 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/04

Each test plugs your function into the real chapter-4 engine (ch04.scheduler.Scheduler,
ch04.llm_engine.LLMEngine) and checks what it does and the tokens the engine then generates.
The notebook notebooks/04_scheduler.ipynb walks through every piece and has hints for each
exercise, from a nudge to nearly the answer; the chapter's page shows a solution after each
exercise, folded, so try before you peek.
"""

# What the scheduler exercises (4.1-4.4) work with; `self` is the Scheduler:
#   self.waiting, self.running     deques of sequences; running is in admission order, oldest first
#   self.max_num_seqs              at most this many sequences running at once
#   self.max_num_batched_tokens    at most this many tokens computed by one prefill step
#   self.admission_room()          how many waiting sequences may join this step
#   self.block_manager             chapter 3's: can_allocate(seq), allocate(seq), can_append(seq),
#                                  may_append(seq), deallocate(seq) (which also zeroes num_cached_tokens)
#   self.make_room(seq), self.preempt(seq), self.num_preemptions, self.eos (a set of token ids)
#   seq.status                     SequenceStatus.WAITING / RUNNING / FINISHED (from ch04.sequence)
#   seq.num_tokens, seq.num_cached_tokens, seq.num_scheduled_tokens, seq.block_table
#   seq.append_token(t), seq.num_completion_tokens, seq.max_tokens, seq.ignore_eos, seq.finish_reason


def schedule(self) -> list:
    """ch04.scheduler.Scheduler.schedule: the next step's sequences (a prefill batch, or else a
    decode batch).

    Prefill first: admit sequences from the front of the waiting queue, in order, while there is
    a seat for them (self.admission_room(), read once at the start), the step's tokens stay within
    the budget (a sequence computes every token it has not cached; the first one of a batch may
    exceed the budget alone), and the block manager can hold it. The first one that does not fit
    stops admission. An admitted sequence gets its blocks, becomes RUNNING, records how many
    tokens it computes in num_scheduled_tokens, and joins `running` and the batch.

    If nobody was admitted, decode: every running sequence, oldest first, that is still running
    and keeps its place after self.make_room(seq), gets a slot for its newest token and computes
    one token."""
    raise NotImplementedError(
        "Exercise 4.1: write Scheduler.schedule (a prefill batch admitted in arrival order within "
        "the seats, the token budget and the free blocks, else a decode batch of the running "
        "sequences); see notebooks/04_scheduler.ipynb, section 'Admission: the next batch'"
    )


def make_room(self, seq) -> bool:
    """ch04.scheduler.Scheduler.make_room: called just before running sequence `seq` decodes.
    As long as its newest token has no slot and no block is free, the running sequence admitted
    most recently is preempted (self.preempt). Return whether `seq` still runs this step: False
    if it had to be preempted itself."""
    raise NotImplementedError(
        "Exercise 4.2: write Scheduler.make_room (preempt the newest running sequences until seq's "
        "token has a slot, and say whether seq survived); see notebooks/04_scheduler.ipynb, "
        "section 'Preemption by recompute'"
    )


def preempt(self, seq) -> None:
    """ch04.scheduler.Scheduler.preempt: a running sequence gives up its place. It leaves
    `running`, its blocks go back to the pool, it becomes WAITING, and it is the very next
    sequence to be admitted. Its tokens stay as they are. Count the preemption."""
    raise NotImplementedError(
        "Exercise 4.3: write Scheduler.preempt (free a running sequence's blocks and queue it to be "
        "recomputed first, keeping its tokens); see notebooks/04_scheduler.ipynb, section "
        "'Preemption by recompute'"
    )


def postprocess(self, seqs, token_ids) -> None:
    """ch04.scheduler.Scheduler.postprocess: after the forward pass, token_ids[i] was sampled for
    seqs[i]. The tokens each sequence computed are now cached (and nothing is scheduled any
    more). A sequence that still has uncached tokens gets no token this step. The others append
    theirs, and finish with finish_reason "stop" on an EOS token (unless they ignore EOS) or
    "length" once they have max_tokens new tokens. A finished sequence is FINISHED, leaves
    `running` and gives its blocks back at once."""
    raise NotImplementedError(
        "Exercise 4.4: write Scheduler.postprocess (mark the computed tokens cached, append each "
        "sampled token, retire finished sequences on the spot); see notebooks/04_scheduler.ipynb, "
        "section 'After the forward pass'"
    )


def step(self) -> tuple[list, int, int]:
    """ch04.llm_engine.LLMEngine.step (`self` is the engine): one forward pass through
    self.scheduler.schedule(), self.model_runner.call("run", seqs) (one token id per sequence) and
    self.scheduler.postprocess. Returns (the step's sequences, prefill tokens, decode tokens): how
    many tokens the step computed, each counted by its sequence's kind: a sequence with
    seq.is_prefill computes its seq.num_scheduled_tokens prompt (or recomputed) tokens, any other
    one decodes one token. With nothing to schedule it returns ([], 0, 0) and runs nothing."""
    raise NotImplementedError(
        "Exercise 4.5: write LLMEngine.step (schedule, run the model, postprocess, and report the "
        "tokens computed); see notebooks/04_scheduler.ipynb, section 'One step of the engine'"
    )
