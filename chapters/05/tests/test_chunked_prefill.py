"""Chapter 5's engine: chunking changes when each token is computed, never which tokens come out;
and every step keeps the budget, runs every decode and computes each prompt token once."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ch01
import ch04
import ch05
from ch02.tests.expected import transformers_greedy
from ch03.block_manager import BlockManager
from ch04.sequence import Sequence, SequenceStatus
from ch05.scheduler import Scheduler
from course.testing import PROMPTS

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


# --- tokens ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        dict(max_num_seqs=4, max_num_batched_tokens=4),  # the 21-token prompt in chunks of at most 4, beside decodes
        dict(max_num_seqs=2, max_num_batched_tokens=3, kvcache_block_size=4),  # chunks end inside blocks and on them
        dict(max_num_seqs=4, max_num_batched_tokens=5, kvcache_block_size=4, num_kvcache_blocks=9),  # and preemptions
        dict(max_num_seqs=4, max_num_batched_tokens=64),  # large: every prompt whole, as in chapter 4
    ],
    ids=["budget-4", "budget-3-blocks-of-4", "budget-5-tiny-pool", "budget-64"],
)
def test_tokens_match_chapter_4_and_transformers(tiny_model_dir, options):
    engine = ch05.LLM(tiny_model_dir, **options)
    steps, tokens = run_steps(engine, PROMPTS, [GREEDY] * len(PROMPTS))
    chapter_4 = ch04.LLM(tiny_model_dir, max_num_seqs=options["max_num_seqs"]).generate(PROMPTS, GREEDY, use_tqdm=False)
    assert tokens == [o["token_ids"] for o in chapter_4] == [list(t) for t in transformers_greedy(tiny_model_dir, 8)]
    c_prompt_steps = [step for step in steps if any(p[0] == "C" and int(p[1:]) > 1 for p in step.split())]
    chunked = options["max_num_batched_tokens"] < len(PROMPTS[2])
    assert (len(c_prompt_steps) > 1) == chunked, f"the 21-token prompt C should run {'in chunks' if chunked else 'whole'}"
    if "num_kvcache_blocks" in options:
        assert engine.scheduler.num_preemptions > 0, "this pool was meant to force preemptions"
    assert engine.scheduler.block_manager.num_free_blocks == engine.config.num_kvcache_blocks, "blocks left over"


def run_steps(engine, prompts, params) -> tuple[list[str], list[list[int]]]:
    """Step the engine by hand. Returns each step as a string of request and tokens computed
    (e.g. 'A1 C3': request A one token, C three), and each request's generated tokens."""
    seqs = [engine.add_request(prompt, p) for prompt, p in zip(prompts, params)]
    name = {seq.seq_id: "ABCDEFGH"[i] for i, seq in enumerate(seqs)}
    steps = []
    while not engine.is_finished():
        batch = engine.scheduler.schedule()
        steps.append(" ".join(f"{name[s.seq_id]}{s.num_scheduled_tokens}" for s in batch))
        engine.scheduler.postprocess(batch, engine.model_runner.run(batch))
    return steps, [seq.completion_token_ids for seq in seqs]


def test_a_long_prompt_is_chunked_behind_the_decodes(tiny_qwen3_dir):
    """Budget 6. A (8 tokens) and B (1 token) arrive first, then C (21 tokens).
    Step 1: A takes 6 of its 8 prompt tokens and the budget is spent.
    Step 2: A's last 2; B's whole prompt (1); C's first 3.
    Steps 3-6: A and B decode (1 token each) and C continues 4 at a time: A and B never skip a step.
    Step 7: A and B are done; C's last 2 prompt tokens. Step 8: C's one decode."""
    params = [ch01.SamplingParams(temperature=0, max_tokens=m, ignore_eos=True) for m in (5, 5, 2)]
    engine = ch05.LLM(tiny_qwen3_dir, max_num_seqs=4, max_num_batched_tokens=6)
    steps, _ = run_steps(engine, PROMPTS[:3], params)
    assert steps == ["A6", "A2 B1 C3"] + ["A1 B1 C4"] * 4 + ["C2", "C1"]


def test_logits_only_where_a_sequence_reaches_its_newest_token(tiny_qwen3_dir):
    engine = ch05.LLM(tiny_qwen3_dir, max_num_seqs=4, max_num_batched_tokens=6)
    a, b = engine.add_request(PROMPTS[0], GREEDY), engine.add_request(PROMPTS[1], GREEDY)
    batch = engine.scheduler.schedule()  # A's first 6 of 8 tokens: nothing to sample
    assert [s.num_scheduled_tokens for s in batch] == [6]
    _, _, rows = engine.model_runner.prepare(batch)
    assert rows.tolist() == []
    tokens = engine.model_runner.run(batch)
    assert tokens == [None]
    engine.scheduler.postprocess(batch, tokens)
    assert a.num_cached_tokens == 6 and a.num_completion_tokens == 0
    batch = engine.scheduler.schedule()  # A's last 2 (rows 0-1), B's only token (row 2)
    _, _, rows = engine.model_runner.prepare(batch)
    assert rows.tolist() == [1, 2]


# --- the schedule's rules under random workloads --------------------------------------------------
REQUESTS = st.lists(st.tuples(st.integers(1, 40), st.integers(1, 6), st.integers(0, 6)), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    requests=REQUESTS,  # (prompt tokens, tokens to generate, step at which it arrives)
    budget=st.integers(1, 48),
    max_num_seqs=st.integers(1, 5),
    block_size=st.sampled_from([1, 3, 4, 16]),
    spare_blocks=st.integers(0, 12),
)
def test_schedule_keeps_the_budget_runs_every_decode_and_computes_each_token_once(
    requests, budget, max_num_seqs, block_size, spare_blocks
):
    budget = max(budget, max_num_seqs)  # Config refuses less: every running decode must fit
    longest = max(-(-(p + g) // block_size) for p, g, _ in requests)
    manager = BlockManager(longest + spare_blocks, block_size)
    config = type("C", (), dict(max_num_seqs=max_num_seqs, max_num_batched_tokens=budget, eos=()))
    scheduler = Scheduler(config, manager)
    seqs = [Sequence(list(range(1, p + 1)), ch01.SamplingParams(max_tokens=g, ignore_eos=True)) for p, g, _ in requests]
    computed = {seq.seq_id: [0] * (p + g) for seq, (p, g, _) in zip(seqs, requests)}  # times each position ran
    preempted = set()
    for step in range(1000):
        for seq, (_, _, arrives) in zip(seqs, requests):
            if arrives == step:
                scheduler.add(seq)
        if scheduler.is_finished() and step > max(r[2] for r in requests):
            break
        before, running_before = scheduler.num_preemptions, {s.seq_id for s in scheduler.running}
        decoding = [s for s in scheduler.running if s.num_tokens - s.num_cached_tokens == 1]
        batch = scheduler.schedule()
        assert sum(s.num_scheduled_tokens for s in batch) <= budget, "a step exceeds max_num_batched_tokens"
        assert len({s.seq_id for s in batch}) == len(batch), "a sequence is twice in one step"
        if scheduler.num_preemptions == before:
            missing = [s.seq_id for s in decoding if s not in batch]
            assert not missing, f"running decodes {missing} skipped a step"
        preempted |= {s.seq_id for s in scheduler.waiting if s.seq_id in running_before}
        held = [b for s in scheduler.running for b in s.block_table]
        assert len(held) == len(set(held)), "a block is owned twice"
        for s in batch:
            assert s.status == SequenceStatus.RUNNING and s.num_scheduled_tokens >= 1
            assert s.num_cached_tokens + s.num_scheduled_tokens <= s.num_tokens, "computes past its newest token"
            for p in range(s.num_cached_tokens, s.num_cached_tokens + s.num_scheduled_tokens):
                computed[s.seq_id][p] += 1
        # Pretend the model ran: the sequences that reached their newest token sample a token.
        scheduler.postprocess(batch, [7 if s.num_cached_tokens + s.num_scheduled_tokens == s.num_tokens else None for s in batch])
    else:
        raise AssertionError("the requests never finished")
    assert manager.num_free_blocks == manager.num_blocks, "blocks left over"
    for seq, (p, g, _) in zip(seqs, requests):
        assert seq.num_completion_tokens == g and seq.status == SequenceStatus.FINISHED
        runs = computed[seq.seq_id][: p + g - 1]  # the last sampled token is never computed
        if seq.seq_id in preempted:
            assert min(runs) >= 1, "a token was never computed"
        else:
            assert runs == [1] * (p + g - 1), f"a token computed {runs} times without a preemption"


def test_config_refuses_a_budget_below_max_num_seqs(tiny_qwen3_dir):
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        ch05.LLM(tiny_qwen3_dir, max_num_seqs=8, max_num_batched_tokens=4)
