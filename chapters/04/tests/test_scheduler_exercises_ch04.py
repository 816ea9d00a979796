"""Graders for chapter 4's exercises. `pytest chapters/04` checks chapters/04/exercises.py;
`pytest chapters/04 --reference` checks the chapter's own code. Each exercise has a test by hand
(a small scheduler, no model) and a test in the engine (tokens of a tiny model, a pool small
enough to force preemptions and more prompts than max_num_seqs)."""

from types import SimpleNamespace

import pytest

import ch01
import ch04
from ch02.tests.expected import transformers_greedy
from ch03.block_manager import BlockManager
from ch04 import llm_engine, scheduler
from ch04.scheduler import Scheduler, StaticScheduler
from ch04.sequence import Sequence, SequenceStatus
from course.testing import PROMPTS, assert_same_tokens

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
WAITING, RUNNING, FINISHED = SequenceStatus.WAITING, SequenceStatus.RUNNING, SequenceStatus.FINISHED


def small_scheduler(num_blocks=10, block_size=4, max_num_seqs=3, max_num_batched_tokens=20, eos=(), cls=Scheduler):
    config = SimpleNamespace(max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens, eos=eos)
    return cls(config, BlockManager(num_blocks, block_size))


def seq_of(n, max_tokens=8, ignore_eos=True):
    return Sequence(list(range(1, n + 1)), ch01.SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=ignore_eos))


def admit(s: Scheduler, *seqs):
    """Put seqs in `running` as the reference does, prefilled, each with one new token to decode."""
    for seq in seqs:
        s.block_manager.allocate(seq)
        seq.status = RUNNING
        s.running.append(seq)
        seq.num_cached_tokens = seq.num_tokens
        seq.append_token(0)


def names(seqs, who):
    return [who[id(seq)] for seq in seqs]


def schedule(s: Scheduler) -> list[Sequence]:
    """s.schedule(), with an error inside the engine's parts reported in one line."""
    try:
        return s.schedule()
    except (IndexError, AssertionError, KeyError, ValueError) as err:
        pytest.fail(f"expected a batch, but scheduling raised {type(err).__name__}: {err}", pytrace=False)


def run_engine(path, max_steps=300, **options):
    """Four prompts (8, 1, 21, 5 tokens), three seats, 9 blocks of 4 tokens: preemptions happen.
    Steps by hand with a cap, so that a sequence that never finishes fails instead of hanging."""
    options = dict(max_num_seqs=3, kvcache_block_size=4, num_kvcache_blocks=9) | options
    engine = ch04.LLM(path, **options)
    seqs = [engine.add_request(prompt, GREEDY) for prompt in PROMPTS]
    for step in range(max_steps):
        if engine.is_finished():
            break
        try:
            engine.step()
        except (IndexError, AssertionError, KeyError, ValueError, RuntimeError) as err:
            pytest.fail(f"expected step {step + 1} to run, but it raised {type(err).__name__}: {err}", pytrace=False)
    unfinished = [seq.seq_id - seqs[0].seq_id for seq in seqs if not seq.is_finished]
    assert not unfinished, f"expected every request to finish within {max_steps} steps; requests {unfinished} did not"
    return engine, seqs


def assert_engine_matches_transformers(path, **options):
    engine, seqs = run_engine(path, **options)
    expected = transformers_greedy(path, GREEDY.max_tokens)
    for i, (seq, want) in enumerate(zip(seqs, expected)):
        assert_same_tokens(seq.completion_token_ids, want, f"prompt {i} ({len(PROMPTS[i])} tokens), 8 greedy tokens "
                           "from the engine (3 seats, a pool of 9 blocks of 4), against transformers'")
    free, pool = engine.scheduler.block_manager.num_free_blocks, engine.config.num_kvcache_blocks
    assert free == pool, f"after every request finished, {free} of the {pool} blocks are free; expected all of them"
    return engine


# --- 4.1 schedule -------------------------------------------------------------------------------
@pytest.mark.exercise("schedule")
def test_schedule_by_hand(solution, monkeypatch):
    monkeypatch.setattr(Scheduler, "schedule", solution)
    # Blocks of 4, a pool of 10, three seats, 20 tokens per step. A, B, C, D: 8, 5, 12, 1 tokens.
    s = small_scheduler()
    a, b, c, d = (seq_of(n) for n in (8, 5, 12, 1))
    who = {id(a): "A", id(b): "B", id(c): "C", id(d): "D"}
    for seq in (a, b, c, d):
        s.add(seq)
    batch = schedule(s)  # A + B = 13 tokens; + C would be 25 > 20: C waits, and D behind it
    assert names(batch, who) == ["A", "B"], f"expected prefill of A, B; got {names(batch, who)}"
    assert [a.num_scheduled_tokens, b.num_scheduled_tokens] == [8, 5], (
        f"A and B have num_scheduled_tokens {[a.num_scheduled_tokens, b.num_scheduled_tokens]}; a prefill computes "
        "every token of the prompt: expected [8, 5]")
    assert names(s.waiting, who) == ["C", "D"], f"waiting is {names(s.waiting, who)} after step 1; expected [C, D]"
    assert a.status == b.status == RUNNING, f"A and B have status {a.status.name}, {b.status.name}; expected RUNNING"
    assert [len(a.block_table), len(b.block_table)] == [2, 2], f"expected 2 blocks each, got {[a.block_table, b.block_table]}"
    s.postprocess(batch, [0, 0])
    batch = schedule(s)  # one seat left: C alone; D waits for a seat
    assert names(batch, who) == ["C"] and c.num_scheduled_tokens == 12, (
        f"expected prefill of C alone (one seat left), all 12 tokens; got {names(batch, who)}")
    s.postprocess(batch, [0])
    batch = schedule(s)  # no seat: decode A, B, C; A (9 tokens) and C (13) start a block
    assert names(batch, who) == ["A", "B", "C"], f"expected decode of A, B, C; got {names(batch, who)}"
    assert [len(q.block_table) for q in (a, b, c)] == [3, 2, 4], (
        f"after the decode A, B, C (9, 6, 13 tokens) hold {[len(q.block_table) for q in (a, b, c)]} blocks of 4; "
        "expected [3, 2, 4]: a token that starts a block needs one more")
    assert [q.num_scheduled_tokens for q in batch] == [1, 1, 1], (
        f"a decode computes one token per sequence; num_scheduled_tokens are {[q.num_scheduled_tokens for q in batch]}")


@pytest.mark.exercise("schedule")
def test_schedule_stops_at_the_first_that_does_not_fit(solution, monkeypatch):
    monkeypatch.setattr(Scheduler, "schedule", solution)
    s = small_scheduler(num_blocks=5, max_num_batched_tokens=100)  # A (2 blocks) + B (2) fit, C (3) does not
    a, b, c, d = (seq_of(n) for n in (8, 5, 12, 1))
    for seq in (a, b, c, d):
        s.add(seq)
    batch = schedule(s)
    who = {id(a): "A", id(b): "B", id(c): "C", id(d): "D"}
    assert names(batch, who) == ["A", "B"] and names(s.waiting, who) == ["C", "D"], (
        f"a pool of 5 blocks: admitted {names(batch, who)}, waiting {names(s.waiting, who)}; expected A, B admitted "
        "and C, D waiting (C needs 3 blocks, 1 is free, and D may not overtake C)")
    s = small_scheduler(max_num_batched_tokens=10)
    s.add(c)
    s.add(seq_of(1))
    batch = schedule(s)
    assert batch == [c], f"a budget of 10 tokens: admitted {len(batch)} sequences; expected the 12-token prompt alone"


@pytest.mark.exercise("schedule")
def test_schedule_static_admits_only_between_batches(solution, monkeypatch):
    monkeypatch.setattr(Scheduler, "schedule", solution)
    s = small_scheduler(cls=StaticScheduler)
    a, b, c = seq_of(3, max_tokens=1), seq_of(3, max_tokens=4), seq_of(3)
    for seq in (a, b):
        s.add(seq)
    s.postprocess(schedule(s), [0, 0])  # A finishes at once
    s.add(c)
    batch = schedule(s)
    assert batch == [b] and b.num_scheduled_tokens == 1, (
        f"StaticScheduler: got a batch of {len(batch)} sequences; expected a decode of B alone (C waits until the "
        "batch of A and B is done)")


@pytest.mark.exercise("schedule")
def test_schedule_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(scheduler.Scheduler, "schedule", solution)
    engine = assert_engine_matches_transformers(tiny_qwen3_dir)
    assert engine.scheduler.num_preemptions > 0, "no preemption in a pool that forces some: is make_room called?"


# --- 4.2 make_room ------------------------------------------------------------------------------
@pytest.mark.exercise("make_room")
def test_make_room_by_hand(solution, monkeypatch):
    monkeypatch.setattr(Scheduler, "make_room", solution)
    # Blocks of 4, a pool of 5: A (8 tokens) 2 blocks, B (5) 2, C (3) 1, admitted in that order.
    s = small_scheduler(num_blocks=5)
    a, b, c = seq_of(8), seq_of(5), seq_of(3)
    admit(s, a, b, c)  # now 9, 6 and 4 tokens: A's newest token needs a third block
    assert s.make_room(a) is True, "expected A to keep running"
    assert list(s.running) == [a, b] and list(s.waiting) == [c], "expected C, the newest, to give way"
    assert s.block_manager.num_free_blocks == 1, f"expected C's block free, got {s.block_manager.num_free_blocks} free"
    assert s.make_room(b) is True and s.num_preemptions == 1, (
        f"B's newest token fits its blocks, so nobody else goes; got {s.num_preemptions} preemptions in all, expected 1")
    # Now B is the newest and needs a block with none free: it gives way itself.
    s = small_scheduler(num_blocks=4)
    a, b = seq_of(8), seq_of(8)
    admit(s, a, b)
    assert s.make_room(b) is False, "expected False: B, the newest, had to give way itself"
    assert list(s.running) == [a] and list(s.waiting) == [b], (
        f"running {len(s.running)}, waiting {len(s.waiting)}; expected A running and B waiting")


@pytest.mark.exercise("make_room")
def test_make_room_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(scheduler.Scheduler, "make_room", solution)
    assert_engine_matches_transformers(tiny_qwen3_dir)


# --- 4.3 preempt --------------------------------------------------------------------------------
@pytest.mark.exercise("preempt")
def test_preempt_by_hand(solution, monkeypatch):
    monkeypatch.setattr(Scheduler, "preempt", solution)
    s = small_scheduler(num_blocks=6)
    a, b, d = seq_of(8), seq_of(5), seq_of(2)
    admit(s, a, b)
    s.add(d)
    tokens = list(b.token_ids)
    s.preempt(b)
    who = {id(a): "A", id(b): "B", id(d): "D"}
    assert names(s.running, who) == ["A"], f"running is {names(s.running, who)} after preempting B; expected [A]"
    assert names(s.waiting, who) == ["B", "D"], (
        f"waiting is {names(s.waiting, who)} after preempting B; expected [B, D]: B goes to the front, ahead of D, "
        "which was never admitted")
    assert b.status == WAITING, f"expected status WAITING, got {b.status}"
    assert b.block_table == [] and b.num_cached_tokens == 0, f"expected B to hold no blocks, got {b.block_table}"
    assert s.block_manager.num_free_blocks == 4, f"expected B's 2 blocks back in the pool, {s.block_manager.num_free_blocks} free"
    assert b.token_ids == tokens and b.num_tokens == 6, "expected B's tokens, generated ones included, kept"
    assert s.num_preemptions == 1, f"num_preemptions is {s.num_preemptions}; expected 1"


@pytest.mark.exercise("preempt")
def test_preempt_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(scheduler.Scheduler, "preempt", solution)
    engine = assert_engine_matches_transformers(tiny_qwen3_dir)
    assert engine.scheduler.num_preemptions > 0, "no preemption counted in a pool that forces some"


# --- 4.4 postprocess ----------------------------------------------------------------------------
@pytest.mark.exercise("postprocess")
def test_postprocess_by_hand(solution, monkeypatch):
    monkeypatch.setattr(Scheduler, "postprocess", solution)
    s = small_scheduler(max_num_seqs=4, eos=(7,))
    a, b, c, d = seq_of(8), seq_of(5, max_tokens=1), seq_of(3, ignore_eos=False), seq_of(3, ignore_eos=True)
    for seq in (a, b, c, d):
        s.add(seq)
    batch = schedule(s)
    s.postprocess(batch, [5, 6, 7, 7])
    assert (a.num_cached_tokens, a.num_tokens, a.token_ids[-1]) == (8, 9, 5), (
        f"after the prefill of an 8-token prompt and token 5: {a.num_cached_tokens} cached of {a.num_tokens} tokens, "
        f"last {a.token_ids[-1]}; expected 8 cached of 9, last 5")
    assert a.num_scheduled_tokens == 0, f"num_scheduled_tokens is {a.num_scheduled_tokens} after the step; expected 0"
    assert a.status == RUNNING, f"A has status {a.status.name}; it has 1 of 8 tokens: expected RUNNING"
    assert (b.finish_reason, c.finish_reason, d.finish_reason) == ("length", "stop", None), (
        f"expected finish reasons length, stop, None; got {b.finish_reason}, {c.finish_reason}, {d.finish_reason}")
    assert b.status == c.status == FINISHED, f"B and C have status {b.status.name}, {c.status.name}; expected FINISHED"
    assert list(s.running) == [a, d], f"{len(s.running)} sequences running; expected A and D (B and C finished)"
    assert b.block_table == c.block_table == [] and s.block_manager.num_free_blocks == 10 - 2 - 1, (
        f"B and C hold {b.block_table} and {c.block_table}, {s.block_manager.num_free_blocks} blocks free; expected "
        "no blocks each and 7 free (A and D hold 2 and 1)")
    batch = schedule(s)  # a decode: A and D compute their newest token
    s.postprocess(batch, [1, 2])
    assert (a.num_cached_tokens, a.num_tokens) == (9, 10), (
        f"after a decode: {a.num_cached_tokens} cached of {a.num_tokens}; expected 9 of 10 (the new token is not cached)")


@pytest.mark.exercise("postprocess")
def test_postprocess_gives_no_token_before_the_prompt_is_done(solution, monkeypatch):
    monkeypatch.setattr(Scheduler, "postprocess", solution)
    s = small_scheduler()
    a = seq_of(8)
    admit(s, a)
    a.num_cached_tokens, a.num_scheduled_tokens = 0, 4  # only half of its tokens computed this step
    s.postprocess([a], [5])
    assert a.num_cached_tokens == 4 and a.num_tokens == 9, "a sequence with uncached tokens left gets no new token"


@pytest.mark.exercise("postprocess")
def test_postprocess_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(scheduler.Scheduler, "postprocess", solution)
    assert_engine_matches_transformers(tiny_qwen3_dir)
    # EOS on: a token the model does say ends each sequence where it first appears.
    expected = [list(t) for t in transformers_greedy(tiny_qwen3_dir, GREEDY.max_tokens)]
    eos = expected[0][3]
    engine = ch04.LLM(tiny_qwen3_dir)
    engine.scheduler.eos = {eos}
    outs = engine.generate(PROMPTS, ch01.SamplingParams(temperature=0, max_tokens=8), use_tqdm=False)
    for i, (out, want) in enumerate(zip(outs, expected)):
        want = want[:want.index(eos) + 1] if eos in want else want
        assert_same_tokens(out["token_ids"], want, f"prompt {i} with token {eos} as EOS (it stops there)")


# --- 4.5 step -----------------------------------------------------------------------------------
@pytest.mark.exercise("step")
def test_step_by_hand(solution, tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(llm_engine.LLMEngine, "step", solution)
    engine = ch04.LLM(tiny_qwen3_dir)
    a, b = engine.add_request(PROMPTS[0], GREEDY), engine.add_request(PROMPTS[3], GREEDY)
    seqs, num_prefill, num_decode = engine.step()
    assert (seqs, num_prefill, num_decode) == ([a, b], 13, 0), f"expected ([A, B], 13 prefill, 0 decode), got {(num_prefill, num_decode)}"
    assert a.num_completion_tokens == b.num_completion_tokens == 1, "expected one new token each after the step"
    seqs, num_prefill, num_decode = engine.step()
    assert (num_prefill, num_decode) == (0, 2), f"expected (0 prefill, 2 decode), got {(num_prefill, num_decode)}"
    while not engine.is_finished():
        engine.step()
    assert engine.step() == ([], 0, 0), "expected ([], 0, 0) from an engine with nothing to do"


@pytest.mark.exercise("step")
def test_step_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(llm_engine.LLMEngine, "step", solution)
    assert_engine_matches_transformers(tiny_qwen3_dir)
