"""Chapter 4 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/04

Each test plugs your function into the real chapter-4 engine (ch04.scheduler.Scheduler,
ch04.llm_engine.LLMEngine) and checks what it does and the tokens the engine then generates.
The notebook notebooks/04_scheduler.ipynb walks through every piece, with hints; the chapter's
own code is the answer key, so try before you peek.
"""


def schedule(self) -> tuple[list, bool]:
    """ch04.scheduler.Scheduler.schedule (`self` is the scheduler): pick the next step's batch.
    Returns (sequences, is_prefill).

    Prefill first. At most self.admission_room() sequences may join (read it once, at the start).
    Look at the front of self.waiting again and again; a sequence of it computes its uncached
    tokens, seq.num_tokens - seq.num_cached_tokens. Stop at the first that does not fit: adding
    its tokens would take the batch past self.max_num_batched_tokens (unless the batch is still
    empty: a long prompt may run alone), or self.block_manager.can_allocate(seq) says no. Each
    one admitted leaves the waiting queue, gets its blocks (block_manager.allocate), becomes
    SequenceStatus.RUNNING, has seq.num_scheduled_tokens set to its uncached tokens, and is
    appended to self.running and to the batch. If anyone was admitted, return (batch, True).

    Otherwise a decode: each running sequence, oldest first, that is still RUNNING and for which
    self.make_room(seq) returns True gets a slot for its newest token
    (block_manager.may_append), num_scheduled_tokens = 1, and joins the batch. Return (batch, False).
    """
    raise NotImplementedError(
        "Exercise 4.1: schedule — admit from the front of the waiting queue while the seats, the "
        "token budget and the free blocks allow; if nobody was admitted, decode every running "
        "sequence that keeps its place; see notebooks/04_scheduler.ipynb, section 'Exercise 4.1: a step's batch'"
    )


def make_room(self, seq) -> bool:
    """ch04.scheduler.Scheduler.make_room: called before `seq` (a running sequence) decodes.
    While self.block_manager.can_append(seq) is False (its newest token needs a block and none is
    free), preempt with self.preempt(victim) the running sequence that was admitted last. If that
    victim is `seq` itself, return False at once (it no longer runs this step). Return True once
    seq can append."""
    raise NotImplementedError(
        "Exercise 4.2: make room — while seq cannot append, preempt the most recently admitted "
        "running sequence, and stop if that was seq itself; see notebooks/04_scheduler.ipynb, "
        "section 'Exercise 4.2 and 4.3: preemption'"
    )


def preempt(self, seq) -> None:
    """ch04.scheduler.Scheduler.preempt: take a running sequence off the GPU's hands. It leaves
    self.running, gives its blocks back (self.block_manager.deallocate, which also zeroes
    num_cached_tokens), becomes SequenceStatus.WAITING and is put back in self.waiting so that it
    is the next one admitted. Its tokens are kept. Count it in self.num_preemptions."""
    raise NotImplementedError(
        "Exercise 4.3: preempt — out of running, blocks back to the pool, status waiting, first in "
        "the waiting queue, tokens untouched; see notebooks/04_scheduler.ipynb, section "
        "'Exercise 4.2 and 4.3: preemption'"
    )


def postprocess(self, seqs, token_ids) -> None:
    """ch04.scheduler.Scheduler.postprocess: after the forward pass, token_ids[i] was sampled for
    seqs[i]. For each sequence: its num_scheduled_tokens are now cached (add them to
    num_cached_tokens, then set num_scheduled_tokens to 0). If some of its tokens are still
    uncached, it gets no token this step. Otherwise append the token (seq.append_token); it
    finishes with finish_reason "stop" if the token is in self.eos (unless seq.ignore_eos), or
    "length" once it has seq.max_tokens completion tokens. A finished sequence becomes
    SequenceStatus.FINISHED, leaves self.running and gives its blocks back at once."""
    raise NotImplementedError(
        "Exercise 4.4: postprocess — mark the computed tokens cached, append the sampled token, and "
        "retire a finished sequence on the spot (status, running queue, blocks); see "
        "notebooks/04_scheduler.ipynb, section 'Exercise 4.4: after the forward pass'"
    )


def step(self) -> tuple[list, int, int]:
    """ch04.llm_engine.LLMEngine.step (`self` is the engine): one forward pass. Ask
    self.scheduler.schedule() for (seqs, is_prefill); if seqs is empty, return ([], 0, 0).
    Otherwise count the tokens the step computes (the sum of seq.num_scheduled_tokens), run
    self.model_runner.run(seqs, is_prefill) for one token id per sequence, and hand them to
    self.scheduler.postprocess(seqs, token_ids). Return (seqs, prefill tokens, decode tokens):
    the count goes in the prefill place for a prefill step, in the decode place otherwise."""
    raise NotImplementedError(
        "Exercise 4.5: the engine's step — schedule, run the model, postprocess, and report how many "
        "prefill and decode tokens the step computed; see notebooks/04_scheduler.ipynb, section "
        "'Exercise 4.5: the loop'"
    )
