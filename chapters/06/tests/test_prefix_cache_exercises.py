"""Graders for chapter 6's exercises. `pytest chapters/06` checks chapters/06/exercises.py;
`pytest chapters/06 --reference` checks the chapter's own code. Each exercise is checked by hand
on a small block manager (blocks of 4 tokens), then inside the engine on the tiny Qwen3 model
against transformers' tokens."""

import pytest

import ch01
import ch06
from ch04.sequence import Sequence
from ch06 import block_manager, solutions
from ch06.block_manager import BlockManager
from course.testing import assert_same_tokens, hf_greedy

MAX_TOKENS = 6
SYSTEM = list(range(10, 23))  # a 13-token "system prompt": 3 full blocks of 4, then its last token


def cached_sequence(manager: BlockManager, token_ids) -> Sequence:
    """A sequence given its blocks, with all its tokens computed and its full blocks named in the cache."""
    seq = Sequence(list(token_ids))
    manager.allocate(seq)
    manager.cache_blocks(seq, seq.num_tokens)
    seq.num_cached_tokens = seq.num_tokens
    return seq


def check_blocks(manager: BlockManager, running) -> None:
    holders = [0] * manager.num_blocks
    for seq in running:
        for b in seq.block_table:
            holders[b] += 1
    for block in manager.blocks:
        if block.ref_count != holders[block.block_id]:
            raise AssertionError(f"block {block.block_id} has ref_count {block.ref_count} but "
                                 f"{holders[block.block_id]} running sequences hold it")
        if holders[block.block_id] and block.block_id in manager.free_block_ids:
            raise AssertionError(f"block {block.block_id} is on the free list while a running sequence holds it")


def run_waves(path, waves, max_steps=300, **options):
    """Each wave's prompts are sent once the wave before has finished. Steps by hand with a cap,
    checking the blocks' counts after every step. Returns each prompt's tokens and the manager."""
    options = dict(max_num_seqs=4, kvcache_block_size=4) | options
    engine = ch06.LLM(path, **options)
    manager = engine.scheduler.block_manager
    tokens, steps = [], 0
    for wave in waves:
        seqs = [engine.add_request(p, ch01.SamplingParams(temperature=0, max_tokens=m, ignore_eos=True)) for p, m in wave]
        while not engine.is_finished():
            steps += 1
            assert steps <= max_steps, f"not finished after {max_steps} steps"
            batch = engine.scheduler.schedule()
            engine.scheduler.postprocess(batch, engine.model_runner.run(batch))
            check_blocks(manager, engine.scheduler.running)
        tokens += [seq.completion_token_ids for seq in seqs]
    return tokens, manager


def assert_tokens(path, waves, tokens):
    prompts = [(p, m) for wave in waves for p, m in wave]
    for i, ((prompt, m), got) in enumerate(zip(prompts, tokens)):
        assert_same_tokens(got, hf_greedy(path, prompt, m), f"prompt {i} ({len(prompt)} tokens)")


# --- 6.1 the chained hash ------------------------------------------------------------------------
@pytest.mark.exercise("compute_hash")
def test_compute_hash_by_hand(solution):
    a, x = [1, 2, 3, 4], [5, 6, 7, 8]
    h_a = solution(a)
    assert isinstance(h_a, int) and 0 <= h_a < 2**64, f"compute_hash([1, 2, 3, 4]) should be an int of 64 bits, got {h_a!r}"
    assert solution(list(a)) == h_a, "the same block, hashed twice, must give the same hash"
    assert solution(x, h_a) != solution(x), (
        "block [5, 6, 7, 8] after block [1, 2, 3, 4] hashes like [5, 6, 7, 8] at the start: the prefix is left out")
    assert solution(x, h_a) != solution(x, solution([1, 2, 3, 9])), "two different prefixes give the same hash"
    assert solution([5, 6, 7, 9], h_a) != solution(x, h_a), "blocks [5, 6, 7, 8] and [5, 6, 7, 9] hash alike"


@pytest.mark.exercise("compute_hash")
def test_compute_hash_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    """Block [5, 6, 7, 8] is cached after [1, 2, 3, 4]; a prompt that starts with it must not hit
    it (attention saw [1, 2, 3, 4] when its K/V were computed). A repeat of the first prompt hits 8 tokens."""
    monkeypatch.setattr(block_manager, "compute_hash", solution)
    monkeypatch.setattr(solutions, "compute_hash", solution)  # where BlockManager.prefix_hits looks it up
    waves = [[([1, 2, 3, 4, 5, 6, 7, 8, 9], MAX_TOKENS)], [([5, 6, 7, 8, 10, 11], MAX_TOKENS)],
             [([1, 2, 3, 4, 5, 6, 7, 8, 12], MAX_TOKENS)]]
    tokens, manager = run_waves(tiny_qwen3_dir, waves)
    assert_tokens(tiny_qwen3_dir, waves, tokens)
    assert manager.num_hit_tokens == 8, f"{manager.num_hit_tokens} prompt tokens were served from the cache, expected 8"


# --- 6.2 the cached prefix -----------------------------------------------------------------------
@pytest.mark.exercise("prefix_hits")
def test_prefix_hits_by_hand(solution, monkeypatch):
    manager = BlockManager(16, 4)
    first = cached_sequence(manager, range(1, 14))  # 13 tokens: blocks 0-2 full and named
    t = first.block_table
    cases = [
        (range(1, 14), t[:3], "the same 13 tokens: its 3 full blocks"),
        (range(1, 13), t[:2], "tokens 1-12, exactly 3 blocks: the third holds the last token, which is never a hit"),
        (list(range(1, 9)) + [99, 99, 99, 99, 1], t[:2], "a prompt whose block 2 differs: blocks 0 and 1"),
        (range(2, 15), [], "a prompt that differs from the first token: no hit"),
    ]
    for tokens, want, what in cases:
        got = list(solution(manager, Sequence(list(tokens))))
        assert got == want, f"{what}: expected block ids {want}, got {got}"
    del manager.hash_to_block_id[manager.blocks[t[1]].hash]  # as if block 1 had been evicted
    got = list(solution(manager, Sequence(list(range(1, 14)))))
    assert got == t[:1], f"block 1 is no longer cached: only block 0 is a hit (the walk stops there), got {got}"


@pytest.mark.exercise("prefix_hits")
def test_prefix_hits_check_the_tokens(solution, monkeypatch):
    """Every block hashes to 0, as if hashes collided: a hit must also have the block's tokens."""
    collide = lambda token_ids, prefix=-1: 0  # noqa: E731
    monkeypatch.setattr(block_manager, "compute_hash", collide)
    if solution.__globals__ is not vars(block_manager) and "compute_hash" in solution.__globals__:
        # exercises.py's prefix_hits may call the learner's own compute_hash
        monkeypatch.setitem(solution.__globals__, "compute_hash", collide)
    manager = BlockManager(16, 4)
    first = cached_sequence(manager, range(1, 14))
    got = list(solution(manager, Sequence(list(range(50, 63)))))
    assert got == [], f"tokens 50-62 share no block with tokens 1-12, yet got hits {got}: check each hit's token_ids"
    got = list(solution(manager, Sequence(list(range(1, 14)))))
    assert got == first.block_table[:1], f"with every hash equal, only block 0's tokens match, got {got}"


@pytest.mark.exercise("prefix_hits")
def test_prefix_hits_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    """A system prompt shared by later questions; a prompt of exactly 3 blocks repeated; chunks of 5."""
    monkeypatch.setattr(BlockManager, "prefix_hits", solution)
    waves = [[(SYSTEM + [100, 101, 102], MAX_TOKENS)], [(SYSTEM + [110, 111], MAX_TOKENS), (SYSTEM + [120, 121, 122, 123], MAX_TOKENS)],
             [(list(range(40, 52)), MAX_TOKENS)], [(list(range(40, 52)), MAX_TOKENS)]]
    tokens, manager = run_waves(tiny_qwen3_dir, waves, max_num_batched_tokens=5)
    assert_tokens(tiny_qwen3_dir, waves, tokens)
    assert manager.num_hit_tokens == 12 + 12 + 8, f"{manager.num_hit_tokens} prompt tokens hit, expected 32"


# --- 6.3 deallocate ------------------------------------------------------------------------------
@pytest.mark.exercise("deallocate")
def test_deallocate_by_hand(solution):
    manager = BlockManager(10, 4)
    first = cached_sequence(manager, range(1, 10))  # 9 tokens: blocks a, b (named), c
    a, b, c = first.block_table
    second = Sequence(list(range(1, 9)) + [20, 21])  # shares a and b
    manager.allocate(second)
    d = second.block_table[2]
    solution(manager, first)
    assert first.block_table == [] and first.num_cached_tokens == 0, "the sequence should hold nothing afterwards"
    assert [manager.blocks[i].ref_count for i in (a, b, c)] == [1, 1, 0], (
        f"ref counts of the first sequence's blocks should be [1, 1, 0] (the second still holds two), "
        f"got {[manager.blocks[i].ref_count for i in (a, b, c)]}")
    assert a not in manager.free_block_ids and b not in manager.free_block_ids, "a block the second sequence holds was freed"
    assert list(manager.free_block_ids)[-1] == c, "the freed block should go to the end of the free list"
    solution(manager, second)
    assert all(manager.blocks[i].ref_count == 0 for i in (a, b, c, d)), "every ref count should be 0 once both let go"
    assert list(manager.free_block_ids)[-4:] == [c, d, b, a], (
        f"the free list should end with c, then the second's blocks last one first (d, b, a); "
        f"got {list(manager.free_block_ids)[-4:]} for c, d, b, a = {[c, d, b, a]}")
    assert manager.prefix_hits(Sequence(list(range(1, 10)))) == [a, b], "freed blocks should stay cached (hash kept), but nothing hit"


@pytest.mark.exercise("deallocate")
def test_deallocate_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    """Questions under one system prompt finish at different times while others still read its
    blocks; a small pool reuses whatever is freed."""
    monkeypatch.setattr(BlockManager, "deallocate", solution)
    waves = [[(SYSTEM + [100], 3)], [(SYSTEM + [110, 111], 2), (SYSTEM + [120], 10), (list(range(200, 213)), 10)],
             [(SYSTEM + [130, 131], 3)]]
    tokens, manager = run_waves(tiny_qwen3_dir, waves, num_kvcache_blocks=14)
    assert_tokens(tiny_qwen3_dir, waves, tokens)
    assert manager.num_hit_tokens >= 36, f"the system prompt's blocks were hit for {manager.num_hit_tokens} tokens, expected 36 or more"


# --- 6.4 taking a free block ----------------------------------------------------------------------
@pytest.mark.exercise("take_free_block")
def test_take_free_block_by_hand(solution):
    manager = BlockManager(6, 4)
    first = cached_sequence(manager, range(1, 10))  # blocks 0, 1 (named) and 2
    manager.deallocate(first)  # free list: 3, 4, 5 (never used), then 2, 1, 0
    named = manager.blocks[1].hash
    got = [solution(manager) for _ in range(4)]
    assert got == [3, 4, 5, 2], f"the least recently freed blocks first (never used ones, then 2): expected [3, 4, 5, 2], got {got}"
    assert solution(manager) == 1, "after block 2, block 1 is the least recently freed"
    block = manager.blocks[1]
    assert named not in manager.hash_to_block_id, "block 1 now gets new K/V, but the hash map still names it"
    assert (block.hash, block.token_ids, block.ref_count) == (-1, [], 1), (
        f"a block handed out caches nothing and has one holder: (hash, token_ids, ref_count) = "
        f"{(block.hash, block.token_ids, block.ref_count)}")
    assert manager.prefix_hits(Sequence(list(range(1, 10)))) == [0], "block 0 is still free and should still be a hit"


@pytest.mark.exercise("take_free_block")
def test_take_free_block_in_the_engine(solution, tiny_qwen3_dir, monkeypatch):
    """A pool of 6 blocks: a long prompt reuses every block of an earlier one, which then comes again."""
    monkeypatch.setattr(BlockManager, "_take_free_block", solution)
    first = list(range(1, 10))
    waves = [[(first, MAX_TOKENS)], [(list(range(100, 117)), MAX_TOKENS)], [(first, MAX_TOKENS)], [(first, MAX_TOKENS)]]
    tokens, manager = run_waves(tiny_qwen3_dir, waves, num_kvcache_blocks=6)
    assert_tokens(tiny_qwen3_dir, waves, tokens)
    assert manager.num_hit_tokens == 8, f"{manager.num_hit_tokens} prompt tokens hit: only the last repeat should hit (8 tokens)"
