"""Graders for chapter 5's exercises. `pytest chapters/05` checks chapters/05/exercises.py;
`pytest chapters/05 --reference` checks the chapter's own code. Each exercise is checked by hand
on a small case, then inside the engine on the tiny Qwen3 model against transformers' tokens."""

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import ch01
import ch05
from ch02.tests.expected import transformers_greedy
from ch03.block_manager import BlockManager
from ch04.sequence import Sequence, SequenceStatus
from ch05 import model_runner, scheduler
from course.testing import PROMPTS, assert_same_tokens

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


def generate_in_steps(engine, prompts, params, max_steps=300) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Add every prompt, step until all finish (a schedule that never runs some prompt fails
    instead of looping). Returns each request's tokens and each step's (request, tokens) pairs."""
    seqs = [engine.add_request(prompt, params) for prompt in prompts]
    index = {seq.seq_id: i for i, seq in enumerate(seqs)}
    steps = []
    while not engine.is_finished():
        assert len(steps) < max_steps, f"not finished after {max_steps} steps: some request never gets its turn"
        batch = engine.scheduler.schedule()
        assert batch, "an empty step while requests are waiting: nothing would ever change"
        steps.append([(index[seq.seq_id], seq.num_scheduled_tokens) for seq in batch])
        engine.scheduler.postprocess(batch, engine.model_runner.run(batch))
    return [seq.completion_token_ids for seq in seqs], steps


def assert_engine_matches_transformers(path, **options):
    engine = ch05.LLM(path, **options)
    tokens, steps = generate_in_steps(engine, PROMPTS, GREEDY)
    for prompt, got, expected in zip(PROMPTS, tokens, transformers_greedy(path, GREEDY.max_tokens)):
        assert_same_tokens(got, expected, f"prompt {prompt}, 8 greedy tokens from the engine with {options}, against transformers'")
    return engine, steps


# --- 5.1 arithmetic intensity -------------------------------------------------------------------
@pytest.mark.exercise("arithmetic_intensity")
def test_arithmetic_intensity_against_counted_flops_and_bytes(solution):
    for m, k, n, dtype in [(1, 576, 1536, torch.float32), (32, 4096, 4096, torch.bfloat16), (512, 64, 96, torch.float32),
                           (7, 3, 5, torch.float16)]:
        # On the meta device the multiply is counted from the shapes and never run: a real
        # (32, 4096) @ (4096, 4096) in bf16 takes tens of seconds on a laptop CPU.
        x, w = torch.empty(m, k, dtype=dtype, device="meta"), torch.empty(k, n, dtype=dtype, device="meta")
        with FlopCounterMode(display=False) as counter:
            y = x @ w
        counted = counter.get_total_flops() / (x.nbytes + w.nbytes + y.nbytes)  # what the multiply really moves
        assert solution(m, k, n, dtype) == pytest.approx(counted, rel=1e-9), f"M={m}, ({k}, {n}), {dtype}"


# --- 5.2 the chunked schedule --------------------------------------------------------------------
@pytest.mark.exercise("schedule")
def test_schedule_step_by_step(solution, tiny_qwen3_dir, monkeypatch):
    """Budget 6. Requests 0 (8 tokens), 1 (1 token), 2 (21 tokens), 5, 5 and 2 new tokens.
    Step 1: 6 of request 0's 8 prompt tokens. Step 2: its last 2, request 1's 1, request 2's
    first 3. Then 0 and 1 decode every step while 2 continues 4 tokens at a time."""
    monkeypatch.setattr(scheduler.Scheduler, "schedule", solution)
    engine = ch05.LLM(tiny_qwen3_dir, max_num_seqs=4, max_num_batched_tokens=6)
    seqs = [engine.add_request(p, ch01.SamplingParams(temperature=0, max_tokens=m, ignore_eos=True))
            for p, m in zip(PROMPTS[:3], (5, 5, 2))]
    steps = []
    while not engine.is_finished() and len(steps) < 20:
        batch = engine.scheduler.schedule()
        steps.append(([(seqs.index(s), s.num_scheduled_tokens) for s in batch], any(s.is_prefill for s in batch)))
        engine.scheduler.postprocess(batch, engine.model_runner.run(batch))
    decoding = [(0, 1), (1, 1)]
    assert steps == (
        [([(0, 6)], True), ([(0, 2), (1, 1), (2, 3)], True)]
        + [(decoding + [(2, 4)], True)] * 4
        + [([(2, 2)], True), ([(2, 1)], False)]
    ), "decodes first, then the running prompt's chunk, then waiting prompts, each min(left, budget left)"


def random_workloads(count=12, seed=0):
    rng = random.Random(seed)
    for _ in range(count):
        yield dict(
            prompts=[[rng.randrange(1, 300) for _ in range(rng.randint(1, 30))] for _ in range(rng.randint(2, 6))],
            max_tokens=rng.randint(1, 5),
            budget=rng.randint(4, 12),
            block_size=rng.choice([1, 2, 4, 16]),
            spare_blocks=rng.randint(0, 6),
        )


@pytest.mark.exercise("schedule")
def test_schedule_rules_on_random_workloads(solution, monkeypatch):
    """No model: after every step, the budget holds, every decode that was running ran, and no
    prompt token is computed twice unless its sequence was preempted."""
    monkeypatch.setattr(scheduler.Scheduler, "schedule", solution)
    for w in random_workloads():
        longest = max(-(-(len(p) + w["max_tokens"]) // w["block_size"]) for p in w["prompts"])
        manager = BlockManager(longest + w["spare_blocks"], w["block_size"])
        config = type("Config", (), dict(max_num_seqs=4, max_num_batched_tokens=w["budget"], eos=()))
        sched = scheduler.Scheduler(config, manager)
        params = ch01.SamplingParams(max_tokens=w["max_tokens"], ignore_eos=True)
        seqs = [Sequence(p, params) for p in w["prompts"]]
        for seq in seqs:
            sched.add(seq)
        computed = {seq.seq_id: [0] * seq.num_tokens for seq in seqs}
        preempted = set()
        for _ in range(500):
            if sched.is_finished():
                break
            preemptions, running = sched.num_preemptions, {s.seq_id for s in sched.running}
            decoding = [s for s in sched.running if s.num_tokens - s.num_cached_tokens == 1]
            batch = sched.schedule()
            assert sum(s.num_scheduled_tokens for s in batch) <= w["budget"], f"a step exceeds the budget of {w['budget']}"
            if sched.num_preemptions == preemptions:
                assert all(s in batch for s in decoding), "a running decode skipped a step"
            preempted |= {s.seq_id for s in sched.waiting if s.seq_id in running}
            for s in batch:
                assert s.status == SequenceStatus.RUNNING and s.num_scheduled_tokens >= 1
                end = s.num_cached_tokens + s.num_scheduled_tokens
                assert end <= s.num_tokens, "a sequence computes past its newest token"
                for p in range(s.num_cached_tokens, min(end, s.num_prompt_tokens)):
                    computed[s.seq_id][p] += 1
            sched.postprocess(batch, [7 if s.num_cached_tokens + s.num_scheduled_tokens == s.num_tokens else None for s in batch])
        else:
            raise AssertionError("the requests never finished: some prompt never gets its turn")
        for seq in seqs:
            if seq.seq_id not in preempted:
                assert computed[seq.seq_id][: seq.num_prompt_tokens] == [1] * seq.num_prompt_tokens, "a prompt token computed twice"


@pytest.mark.exercise("schedule")
def test_schedule_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    monkeypatch.setattr(scheduler.Scheduler, "schedule", solution)
    _, steps = assert_engine_matches_transformers(tiny_qwen3_dir, max_num_seqs=4, max_num_batched_tokens=5,
                                                  kvcache_block_size=4, num_kvcache_blocks=9)
    assert max(sum(n for _, n in step) for step in steps) <= 5, "a step exceeds max_num_batched_tokens"


# --- 5.3 a chunk that starts mid-prompt ----------------------------------------------------------
@pytest.mark.exercise("chunk_inputs")
def test_chunk_inputs_by_hand(solution):
    # Blocks of 4; the sequence's blocks are pool blocks 7, 2 and 9. 5 of its 10 prompt tokens
    # are cached; this step computes the next 4:
    #   position  0  1  2  3 | 4  5  6  7 | 8  9
    #   slot     28 29 30 31 | 8  9 10 11 |36 37
    #   cached    x  x  x  x   x
    #   chunk                     5  6  7   8
    seq = Sequence(list(range(100, 110)))
    seq.block_table, seq.num_cached_tokens, seq.num_scheduled_tokens = [7, 2, 9], 5, 4
    ids, positions, slots, context_len = solution(seq, 4)
    assert list(ids) == [105, 106, 107, 108], "the tokens after the cached ones"
    assert list(positions) == [5, 6, 7, 8], "positions in the sequence, not in the chunk"
    assert list(slots) == [9, 10, 11, 36], "the slots of those positions, through the block table"
    assert context_len == 9, "the chunk's last token attends to all 9 tokens up to itself"
    seq.num_cached_tokens, seq.num_scheduled_tokens = 0, 3  # a first chunk
    assert [list(x) if isinstance(x, list) else x for x in solution(seq, 4)] == [[100, 101, 102], [0, 1, 2], [28, 29, 30], 3]


@pytest.mark.exercise("chunk_inputs")
def test_chunk_inputs_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    """Budgets of 3 and 5 with blocks of 4: chunks start and end inside blocks and on their edges."""
    monkeypatch.setattr(model_runner, "chunk_inputs", solution)
    assert_engine_matches_transformers(tiny_qwen3_dir, max_num_seqs=2, max_num_batched_tokens=3, kvcache_block_size=4)
    assert_engine_matches_transformers(tiny_qwen3_dir, max_num_seqs=4, max_num_batched_tokens=5, kvcache_block_size=4)


# --- 5.4 which rows get logits -------------------------------------------------------------------
@pytest.mark.exercise("logits_indices")
def test_logits_indices_by_hand(solution):
    def seq(num_tokens, num_prompt_tokens, cached, scheduled):
        s = Sequence(list(range(1, num_prompt_tokens + 1)))
        s.token_ids += [0] * (num_tokens - num_prompt_tokens)
        s.num_tokens = num_tokens
        s.num_cached_tokens, s.num_scheduled_tokens = cached, scheduled
        return s

    seqs = [
        seq(9, 5, 8, 1),    # rows 0:     a decode
        seq(20, 20, 0, 6),  # rows 1-6:   the first chunk of a 20-token prompt: nothing to predict yet
        seq(20, 20, 12, 8), # rows 7-14:  the last chunk of a prompt: sample after its last row
        seq(8, 5, 0, 6),    # rows 15-20: preempted after 3 new tokens, recomputing: not caught up yet
        seq(8, 5, 6, 2),    # rows 21-22: the same one's last chunk: caught up
    ]
    cu_seqlens_q = [0, 1, 7, 15, 21, 23]
    assert list(solution(seqs, cu_seqlens_q)) == [0, 14, 22]


@pytest.mark.exercise("logits_indices")
def test_logits_indices_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    """Small budgets split the prompts, and a tiny pool makes sequences recompute after preemption."""
    monkeypatch.setattr(model_runner, "logits_indices", solution)
    engine, _ = assert_engine_matches_transformers(tiny_qwen3_dir, max_num_seqs=4, max_num_batched_tokens=5,
                                                   kvcache_block_size=4, num_kvcache_blocks=9)
    assert engine.scheduler.num_preemptions > 0
