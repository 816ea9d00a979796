"""Chapter 6's engine: the prefix cache changes how much of a prompt is computed, never the tokens;
and under any workload the blocks' reference counts, the free list and the hash map stay true."""

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ch01
import ch06
from ch03.model_runner import compute_slot_mapping
from ch04.sequence import Sequence, SequenceStatus
from ch06 import block_manager
from ch06.block_manager import BlockManager
from ch06.scheduler import Scheduler
from course.testing import assert_same_tokens, hf_greedy

MAX_TOKENS = 6
GREEDY = ch01.SamplingParams(temperature=0, max_tokens=MAX_TOKENS, ignore_eos=True)

# Blocks of 4 tokens. Each scenario is a list of waves: a wave is sent once the one before it has
# finished, so its prompts can hit the blocks the earlier waves computed.
SYSTEM = list(range(10, 23))  # 13 tokens: blocks 0-2 full, its last token starts block 3
SCENARIOS = {
    # Q1 fills blocks 0-3; Q2 (15 tokens) and Q3 (19) then hit the system prompt's 3 full blocks each.
    "shared-system-prompt": ([[SYSTEM + [100, 101, 102]], [SYSTEM + [110, 111], SYSTEM + [120, 121, 122, 123, 124, 125]]], 24),
    # 10 tokens again: blocks 0 and 1 hit; block 2 holds the last token, which is computed again.
    "exact-repeat": ([[list(range(30, 40))], [list(range(30, 40))]], 8),
    # 12 tokens, exactly 3 blocks: only 2 hit, since the third holds the last token.
    "exactly-3-blocks": ([[list(range(40, 52))], [list(range(40, 52))]], 8),
    # The 9-token prompt is the start of the 16-token one: the long one hits the short one's 2 full
    # blocks (its third holds the short one's answer), then the short one hits 2 of the long one's.
    "prefix-of-another": ([[list(range(60, 69))], [list(range(60, 76))], [list(range(60, 69))]], 16),
}
OPTIONS = {
    "whole-prompts": dict(max_num_seqs=4, kvcache_block_size=4),
    "chunks-of-5": dict(max_num_seqs=4, kvcache_block_size=4, max_num_batched_tokens=5),  # hits, then chunks resume after them
    "tiny-pool": dict(max_num_seqs=3, kvcache_block_size=4, num_kvcache_blocks=8),  # evictions and preemptions
}


def run_waves(engine, waves) -> list[list[int]]:
    return [out["token_ids"] for wave in waves for out in engine.generate(wave, GREEDY, use_tqdm=False)]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_tokens_with_and_without_hits_equal_transformers(tiny_model_dir, scenario):
    waves, hit_tokens = SCENARIOS[scenario]
    expected = [hf_greedy(tiny_model_dir, prompt, MAX_TOKENS) for wave in waves for prompt in wave]
    for name, options in OPTIONS.items():
        engine = ch06.LLM(tiny_model_dir, **options)
        manager = engine.scheduler.block_manager
        for i, (got, want) in enumerate(zip(run_waves(engine, waves), expected)):
            assert_same_tokens(got, want, f"{scenario}, {name}, prompt {i}")
        if name == "whole-prompts":
            assert manager.num_hit_tokens == hit_tokens, f"{scenario}: {manager.num_hit_tokens} prompt tokens hit"
        assert manager.num_free_blocks == manager.num_blocks, f"{name}: blocks left over"
        assert all(b.ref_count == 0 for b in manager.blocks), f"{name}: a block is still referenced"


def test_preempted_sequence_hits_its_own_blocks(tiny_qwen3_dir):
    """A sequence preempted by recompute finds its blocks still cached when it comes back, unless
    the pool had to reuse them: recomputing costs less than chapter 5's full redo."""
    prompts = [list(range(1, 14)), list(range(100, 113)), list(range(200, 213))]
    engine = ch06.LLM(tiny_qwen3_dir, max_num_seqs=3, kvcache_block_size=4, num_kvcache_blocks=10)
    outs = engine.generate(prompts, ch01.SamplingParams(temperature=0, max_tokens=12, ignore_eos=True), use_tqdm=False)
    for prompt, out in zip(prompts, outs):
        assert_same_tokens(out["token_ids"], hf_greedy(tiny_qwen3_dir, prompt, 12), f"prompt {prompt[0]}..")
    assert engine.scheduler.num_preemptions > 0, "this pool was meant to force preemptions"
    assert engine.scheduler.block_manager.num_hit_tokens > 0, "a preempted sequence found none of its blocks"


def test_a_hash_collision_is_caught_by_the_token_check(tiny_qwen3_dir):
    """Every block hashes alike: the second prompt's first block finds the first prompt's, whose
    tokens differ, so it is not a hit; its tokens come out right."""
    first, second = [1, 2, 3, 4, 5, 6, 7, 8, 9], [11, 12, 13, 14, 15, 16, 17, 18, 19]
    with mock.patch.object(block_manager, "compute_hash", lambda token_ids, prefix=-1: 0):
        engine = ch06.LLM(tiny_qwen3_dir, kvcache_block_size=4)
        outs = run_waves(engine, [[first], [second]])
    assert engine.scheduler.block_manager.num_hit_tokens == 0, "a hit on a block holding other tokens"
    assert_same_tokens(outs[1], hf_greedy(tiny_qwen3_dir, second, MAX_TOKENS), "the second prompt")


# --- the block manager's rules under random workloads, no model ------------------------------------
def fake_token(prefix) -> int:
    """What a deterministic model would say after `prefix`: equal prefixes, equal tokens."""
    return hash(tuple(prefix)) % 3 + 1


def check_invariants(manager: BlockManager, running, pool, collide: bool) -> None:
    holders = [0] * manager.num_blocks
    for seq in running:
        for b in seq.block_table:
            holders[b] += 1
    for block in manager.blocks:
        assert block.ref_count == holders[block.block_id], (
            f"block {block.block_id}: ref_count {block.ref_count} but {holders[block.block_id]} holders")
    free = set(manager.free_block_ids)
    assert not free & {b for b, n in enumerate(holders) if n}, "a block is both free and held"
    assert len(free) + sum(1 for n in holders if n) == manager.num_blocks, "a block got lost"
    for h, b in manager.hash_to_block_id.items():
        assert manager.blocks[b].hash == h, "the hash map names a block that no longer has that hash"
    for seq in running:  # every cached token's slot holds that token's K/V (here: the token, and its prefix)
        for p, slot in enumerate(compute_slot_mapping(seq.block_table, 0, seq.num_cached_tokens, manager.block_size)):
            want = seq.token_ids[p] if collide else tuple(seq.token_ids[: p + 1])
            got = pool.get(slot)
            got = got[-1] if collide and got else got
            assert got == want, f"a hit served from a block whose tokens differ (position {p})"


REQUESTS = st.lists(
    st.tuples(st.integers(0, 2), st.lists(st.integers(1, 4), max_size=9), st.integers(1, 5), st.integers(0, 8)),
    min_size=1, max_size=7,
)  # (which shared beginning, own tokens, tokens to generate, step it arrives at)


@settings(max_examples=120, deadline=None)
@given(requests=REQUESTS, block_size=st.sampled_from([1, 2, 3, 4]), spare_blocks=st.integers(0, 6),
       budget=st.integers(4, 24), max_num_seqs=st.integers(1, 4), collide=st.booleans())
def test_ref_counts_free_list_and_hits_stay_true(requests, block_size, spare_blocks, budget, max_num_seqs, collide):
    """collide: every hash is one of 3 values, so hashes of different blocks collide all the time."""
    beginnings = [[1, 2, 3, 4, 1, 2, 3], [1, 2, 3, 4, 4], [2] * 6]
    prompts = [beginnings[b] + own for b, own, _, _ in requests]
    longest = max(-(-(len(p) + g) // block_size) for p, (_, _, g, _) in zip(prompts, requests))
    manager = BlockManager(longest + spare_blocks, block_size)
    config = type("C", (), dict(max_num_seqs=max_num_seqs, max_num_batched_tokens=max(budget, max_num_seqs), eos=()))
    scheduler = Scheduler(config, manager)
    seqs = [Sequence(p, ch01.SamplingParams(max_tokens=g, ignore_eos=True)) for p, (_, _, g, _) in zip(prompts, requests)]
    pool = {}  # slot -> the prefix whose last token's K/V was written there
    colliding = (lambda token_ids, prefix=-1: (prefix + sum(token_ids)) % 3) if collide else block_manager.compute_hash
    with mock.patch.object(block_manager, "compute_hash", colliding):
        for step in range(500):
            for seq, (_, _, _, arrives) in zip(seqs, requests):
                if arrives == step:
                    scheduler.add(seq)
            if scheduler.is_finished() and step > max(r[3] for r in requests):
                break
            batch = scheduler.schedule()
            check_invariants(manager, scheduler.running, pool, collide)
            for s in batch:  # the forward pass: write each computed token's K/V to its slot
                start, end = s.num_cached_tokens, s.num_cached_tokens + s.num_scheduled_tokens
                for p, slot in zip(range(start, end), compute_slot_mapping(s.block_table, start, end, block_size)):
                    pool[slot] = tuple(s.token_ids[: p + 1])
            scheduler.postprocess(batch, [fake_token(s.token_ids) if s.num_cached_tokens + s.num_scheduled_tokens == s.num_tokens
                                          else None for s in batch])
            check_invariants(manager, scheduler.running, pool, collide)
        else:
            raise AssertionError("the requests never finished")
    assert all(seq.status == SequenceStatus.FINISHED for seq in seqs)
    assert all(b.ref_count == 0 for b in manager.blocks), "a ref count is not zero at the end"
    assert manager.num_free_blocks == manager.num_blocks, "blocks left over"
