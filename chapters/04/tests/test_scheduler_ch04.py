"""Chapter 4's engine: the scheduler changes who runs when, never the tokens; and it keeps its rules."""

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ch01
import ch04
from ch02.tests.expected import transformers_greedy
from ch03.block_manager import BlockManager
from ch03.model_runner import compute_slot_mapping
from ch04.scheduler import Scheduler, StaticScheduler
from ch04.sequence import Sequence, SequenceStatus
from course.testing import PROMPTS

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


# --- tokens ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(max_num_seqs=1),  # four prompts, one at a time
        dict(max_num_seqs=3, max_num_batched_tokens=10),  # the 21-token prompt runs alone
        dict(kvcache_block_size=4, num_kvcache_blocks=9),  # the pool forces preemptions
        dict(kvcache_block_size=1, num_kvcache_blocks=28),  # a block per token, and preemptions
    ],
    ids=["default", "one-seq", "token-budget", "tiny-pool", "block-of-one"],
)
def test_tokens_match_chapter_1_and_transformers(tiny_model_dir, options):
    engine = ch04.LLM(tiny_model_dir, **options)
    outs = engine.generate(PROMPTS, GREEDY, use_tqdm=False)
    expected = [list(t) for t in transformers_greedy(tiny_model_dir, GREEDY.max_tokens)]
    assert [o["token_ids"] for o in outs] == expected
    if "num_kvcache_blocks" in options:
        assert engine.scheduler.num_preemptions > 0, "this pool was meant to force preemptions"
    assert engine.scheduler.block_manager.num_free_blocks == engine.config.num_kvcache_blocks, "blocks left over"
    if options == dict(max_num_seqs=1):
        naive = ch01.LLM(tiny_model_dir).generate(PROMPTS, GREEDY)
        assert [o["token_ids"] for o in naive] == expected


def run_steps(engine, prompts, params) -> tuple[list[str], list[list[int]]]:
    """Step the engine by hand; each step as a string: P or D, then the requests it ran (A, B...)."""
    seqs = [engine.add_request(prompt, p) for prompt, p in zip(prompts, params)]
    name = {seq.seq_id: "ABCDEFGH"[i] for i, seq in enumerate(seqs)}
    steps = []
    while not engine.is_finished():
        batch, num_prefill, _ = engine.step()
        steps.append(("P" if num_prefill else "D") + "".join(name[seq.seq_id] for seq in batch))
    return steps, [seq.completion_token_ids for seq in seqs]


def test_continuous_batching_step_by_step_and_static_batching_on_the_same_engine(tiny_qwen3_dir):
    """Prompts A-D of 8, 1, 21 and 5 tokens want 2, 9, 4 and 6 new tokens; two run at a time.
    Static: (A, B) run until B's 9th token, 9 steps, then (C, D) until D's 6th, 6 steps: 15.
    Continuous: C takes A's place the step after A ends, D takes C's: 12 steps, same tokens."""
    params = [ch01.SamplingParams(temperature=0, max_tokens=m, ignore_eos=True) for m in (2, 9, 4, 6)]
    continuous = ch04.LLM(tiny_qwen3_dir, max_num_seqs=2)
    static = ch04.LLM(tiny_qwen3_dir, max_num_seqs=2)
    static.scheduler = StaticScheduler(static.config, static.scheduler.block_manager)
    steps, tokens = run_steps(continuous, PROMPTS, params)
    static_steps, static_tokens = run_steps(static, PROMPTS, params)
    assert steps == ["PAB", "DAB", "PC", "DBC", "DBC", "DBC", "PD", "DBD", "DBD", "DBD", "DBD", "DD"]
    assert static_steps == ["PAB", "DAB"] + ["DB"] * 7 + ["PCD"] + ["DCD"] * 3 + ["DD"] * 2
    assert tokens == static_tokens == [list(t[:m]) for t, m in zip(transformers_greedy(tiny_qwen3_dir, 9), (2, 9, 4, 6))]


# --- preemption and refusal -----------------------------------------------------------------------
def test_preemption_frees_the_newest_and_requeues_it_first(tiny_qwen3_dir):
    """Blocks of 4, a pool of 5. A (8 tokens) holds 2 blocks, B (5 tokens) 2, C (3 tokens) 1: full.
    A's 9th token needs a third block: C, the newest, gives its block back and waits first in line."""
    engine = ch04.LLM(tiny_qwen3_dir, max_num_seqs=3, kvcache_block_size=4, num_kvcache_blocks=5)
    scheduler = engine.scheduler
    a, b, c = (engine.add_request(p, GREEDY) for p in (PROMPTS[0], PROMPTS[3], [9, 8, 7]))
    late = engine.add_request([1, 2], GREEDY)  # arrives after them; stays behind the preempted C
    batch, _, _ = engine.step()  # prefill A, B, C: 2 + 2 + 1 blocks
    assert batch == [a, b, c] and scheduler.block_manager.num_free_blocks == 0
    batch, _, num_decode = engine.step()  # A's 9th token needs a block: C makes room
    assert batch == [a, b] and num_decode == 2 and scheduler.num_preemptions == 1
    assert list(scheduler.waiting) == [c, late] and list(scheduler.running) == [a, b]
    assert c.status == SequenceStatus.WAITING and c.block_table == [] and c.num_cached_tokens == 0
    assert c.num_tokens == 4 and len(c.completion_token_ids) == 1, "preemption keeps the tokens generated so far"


def test_a_request_too_big_for_the_pool_is_refused_and_the_engine_stays_usable(tiny_qwen3_dir):
    engine = ch04.LLM(tiny_qwen3_dir, kvcache_block_size=4, num_kvcache_blocks=6)
    with pytest.raises(ValueError, match="needs 7 KV blocks of 4 tokens, but the pool has 6; raise num_kvcache_blocks"):
        engine.generate(PROMPTS, GREEDY, use_tqdm=False)  # 21 + 8 - 1 tokens at the longest
    assert engine.is_finished(), "a refused batch queues nothing"
    outs = engine.generate([PROMPTS[0], PROMPTS[3]], GREEDY, use_tqdm=False)
    assert [o["token_ids"] for o in outs] == [list(t) for t in transformers_greedy(tiny_qwen3_dir, 8)[0::3]]
    with pytest.raises(ValueError, match="max_model_len is 16"):
        ch04.LLM(tiny_qwen3_dir, max_model_len=16).add_request(PROMPTS[2], GREEDY)


def test_an_error_in_the_middle_of_generate_leaves_the_engine_usable(tiny_qwen3_dir, monkeypatch):
    engine = ch04.LLM(tiny_qwen3_dir, kvcache_block_size=4)
    real_run, calls = engine.model_runner.run, []

    def failing_run(seqs):
        calls.append(len(seqs))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a Ctrl-C in a notebook
        return real_run(seqs)

    monkeypatch.setattr(engine.model_runner, "run", failing_run)
    with pytest.raises(KeyboardInterrupt):
        engine.generate(PROMPTS, GREEDY, use_tqdm=False)
    assert engine.is_finished(), "the interrupted requests are still queued"
    assert engine.scheduler.block_manager.num_free_blocks == engine.config.num_kvcache_blocks, "their blocks were not given back"
    monkeypatch.undo()
    outs = engine.generate(PROMPTS, GREEDY, use_tqdm=False)
    assert [o["token_ids"] for o in outs] == [list(t) for t in transformers_greedy(tiny_qwen3_dir, 8)]


def test_options_are_config_fields_and_unknown_ones_are_listed(tiny_qwen3_dir):
    engine = ch04.LLM(tiny_qwen3_dir, max_num_seqs=3, max_model_len=50, kvcache_block_size=16)
    assert engine.config.num_kvcache_blocks == 3 * 4, "default pool: max_num_seqs rows of ceil(50 / 16) blocks"
    assert engine.model_runner.kv_cache.shape[2:4] == (12, 16)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['block_size'\]; the options are .*'kvcache_block_size'"):
        ch04.LLM(tiny_qwen3_dir, block_size=4)
    with pytest.raises(ValueError, match="max_num_seqs must be >= 1"):
        ch04.LLM(tiny_qwen3_dir, max_num_seqs=0)


# --- the scheduler under random workloads ---------------------------------------------------------
EOS = 0


def next_token(context: list[int]) -> int:
    """A stand-in for the model: a deterministic function of every token before it."""
    return sum((i + 7) * t for i, t in enumerate(context)) * 2654435761 % 97 % 40


class PoolRunner:
    """Writes each computed token into its pool slot and predicts from what it reads back through
    the block table, as the model does with K/V: a wrong slot or a shared block changes the output."""

    def __init__(self, num_blocks: int, block_size: int):
        self.pool: list[int | None] = [None] * (num_blocks * block_size)
        self.block_size = block_size

    def run(self, seqs: list[Sequence]) -> list[int]:
        out = []
        for seq in seqs:
            start, end = seq.num_cached_tokens, seq.num_cached_tokens + seq.num_scheduled_tokens
            for pos, slot in zip(range(start, end), compute_slot_mapping(seq.block_table, start, end, self.block_size)):
                self.pool[slot] = seq.token_ids[pos]
            out.append(next_token([self.pool[s] for s in compute_slot_mapping(seq.block_table, 0, end, self.block_size)]))
        return out


def unpressured(prompt: list[int], max_tokens: int) -> list[int]:
    """The tokens a request gets on its own, with nothing to wait for."""
    tokens = list(prompt)
    while len(tokens) - len(prompt) < max_tokens:
        tokens.append(next_token(tokens))
        if tokens[-1] == EOS:
            break
    return tokens[len(prompt):]


def check_batch(scheduler: Scheduler, batch: list[Sequence], was_running: list[Sequence]) -> None:
    assert len(set(map(id, batch))) == len(batch), "a sequence is twice in one batch"
    assert all(seq.status == SequenceStatus.RUNNING for seq in batch), "a batch holds a sequence that is not running"
    if any(seq not in was_running for seq in batch):  # it admitted someone: a prefill batch
        tokens = sum(seq.num_scheduled_tokens for seq in batch)
        assert tokens <= scheduler.max_num_batched_tokens or len(batch) == 1, "a prefill batch is over its token budget"
        assert all(seq.num_scheduled_tokens == seq.num_tokens for seq in batch), "a prefill must compute every token"
        assert not set(map(id, batch)) & set(map(id, was_running)), "a prefill batch holds a sequence that was running"
        if isinstance(scheduler, StaticScheduler):
            assert not was_running, "static batching admitted a sequence while a batch was still running"
    else:
        assert all(seq.num_scheduled_tokens == 1 for seq in batch), "a decode computes one token per sequence"
        assert batch == list(scheduler.running), "a decode batch is every running sequence, oldest first"
        for seq in batch:
            assert len(seq.block_table) * scheduler.block_manager.block_size >= seq.num_tokens, "no slot for the newest token"


def check_invariants(scheduler: Scheduler, seqs: list[Sequence]) -> None:
    manager = scheduler.block_manager
    held = [b for seq in scheduler.running for b in seq.block_table]
    assert len(held) == len(set(held)), "a block is owned twice"
    assert set(held) == manager.used_block_ids, "used_block_ids is not exactly the blocks running sequences hold"
    assert len(manager.free_block_ids) + len(manager.used_block_ids) == manager.num_blocks, "a block got lost"
    waiting, running = set(map(id, scheduler.waiting)), set(map(id, scheduler.running))
    assert not waiting & running, "a sequence is both waiting and running"
    assert len(scheduler.running) <= scheduler.max_num_seqs, "more than max_num_seqs sequences are running"
    # Admission from the front and preemption of the newest back to the front keep arrival order:
    # whoever runs arrived before whoever waits, and each queue is in arrival order.
    order = [seq.seq_id for seq in scheduler.running] + [seq.seq_id for seq in scheduler.waiting]
    assert order == sorted(order), "requests are not served in arrival order (someone overtook, or went to the back)"
    for seq in seqs:
        queued = (id(seq) in waiting) + (id(seq) in running)
        if seq.status == SequenceStatus.FINISHED:
            assert queued == 0 and seq.block_table == [], "a finished sequence is still queued or holds blocks"
        else:
            assert queued == 1, "a sequence is lost"
            assert (id(seq) in running) == (seq.status == SequenceStatus.RUNNING), "status and queue disagree"
        if seq.status == SequenceStatus.WAITING:
            assert seq.block_table == [] and seq.num_cached_tokens == 0, "a waiting sequence holds blocks"


@settings(max_examples=150, deadline=None)
@given(
    requests=st.lists(st.tuples(st.integers(0, 12), st.integers(1, 20), st.integers(1, 12)), min_size=1, max_size=12),
    block_size=st.sampled_from([1, 2, 4, 8]),
    spare_blocks=st.integers(0, 12),
    max_num_seqs=st.integers(1, 5),
    max_num_batched_tokens=st.integers(1, 64),
    static=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_scheduler_keeps_its_rules_and_the_tokens(requests, block_size, spare_blocks, max_num_seqs,
                                                  max_num_batched_tokens, static, seed):
    """requests: (arrival step, prompt length, max_tokens). The pool fits the biggest request
    alone plus `spare_blocks`: small pools preempt often, large ones never."""
    prompts = [[(seed + 13 * i + 5 * j) % 39 + 1 for j in range(n)] for i, (_, n, _) in enumerate(requests)]
    num_blocks = max(math.ceil((n + m - 1) / block_size) for _, n, m in requests) + spare_blocks
    config = SimpleNamespace(max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens, eos=(EOS,))
    scheduler = (StaticScheduler if static else Scheduler)(config, BlockManager(num_blocks, block_size))
    runner = PoolRunner(num_blocks, block_size)
    arrivals = sorted(range(len(requests)), key=lambda i: requests[i][0])
    seqs: list[Sequence] = []
    by_request: dict[int, Sequence] = {}
    finished: list[Sequence] = []
    lengths: dict[int, int] = {}
    step = 0
    while arrivals or not scheduler.is_finished():
        while arrivals and requests[arrivals[0]][0] <= step:
            i = arrivals.pop(0)
            by_request[i] = Sequence(prompts[i], ch01.SamplingParams(temperature=0, max_tokens=requests[i][2]))
            scheduler.add(by_request[i])
            seqs.append(by_request[i])
        step += 1
        assert step < 1000, "the scheduler makes no progress"
        was_running = list(scheduler.running)
        batch = scheduler.schedule()
        if not batch:
            assert scheduler.is_finished(), "nothing scheduled while requests wait"
            continue
        check_batch(scheduler, batch, was_running)
        scheduler.postprocess(batch, runner.run(batch))
        check_invariants(scheduler, seqs)
        for seq in seqs:
            assert seq.num_tokens >= lengths.get(seq.seq_id, 0), "a sequence lost tokens (preemption must keep them)"
            lengths[seq.seq_id] = seq.num_tokens
        finished += [seq for seq in batch if seq.is_finished]
    assert scheduler.block_manager.num_free_blocks == num_blocks, "blocks left over after every request finished"
    assert sorted(map(id, finished)) == sorted(map(id, seqs)), "a request did not finish exactly once"
    for i, seq in by_request.items():
        assert seq.completion_token_ids == unpressured(prompts[i], requests[i][2]), f"request {i}: other tokens than alone"
