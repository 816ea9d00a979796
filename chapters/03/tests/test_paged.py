"""Chapter 3's engine: paging changes where K/V live, never the tokens; and it wastes less."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ch01
import ch02
import ch03
from ch02.tests.expected import transformers_greedy
from ch03.block_manager import BlockManager
from ch03.sequence import Sequence
from course.testing import PROMPTS

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_tokens_match_chapters_1_and_2_and_transformers(tiny_model_dir, block_size):
    paged = ch03.LLM(tiny_model_dir, max_num_seqs=4, max_model_len=64, kvcache_block_size=block_size).generate(PROMPTS, GREEDY)
    cached = ch02.LLM(tiny_model_dir, max_num_seqs=4, max_model_len=64).generate(PROMPTS, GREEDY)
    expected = [list(t) for t in transformers_greedy(tiny_model_dir, GREEDY.max_tokens)]
    assert [o["token_ids"] for o in paged] == [o["token_ids"] for o in cached] == expected
    if block_size == 4:
        naive = ch01.LLM(tiny_model_dir).generate(PROMPTS, GREEDY)
        assert [o["token_ids"] for o in naive] == expected


# --- the block manager under random workloads ----------------------------------------------------
# An operation: start a sequence of n tokens, grow a running one by one token, or finish one.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.integers(1, 40)),
        st.tuples(st.just("grow"), st.integers(0, 10**6)),
        st.tuples(st.just("finish"), st.integers(0, 10**6)),
    ),
    max_size=60,
)


def check_invariants(manager: BlockManager, running: list[Sequence]) -> None:
    held = [b for seq in running for b in seq.block_table]
    assert len(held) == len(set(held)), "a block is owned twice"
    assert set(held) == manager.used_block_ids, "used_block_ids is not exactly the blocks sequences hold"
    assert not manager.used_block_ids & set(manager.free_block_ids), "a block is both used and free"
    assert len(manager.free_block_ids) + len(manager.used_block_ids) == manager.num_blocks, "a block got lost"
    for seq in running:
        assert len(seq.block_table) == math.ceil(seq.num_tokens / manager.block_size)


@settings(max_examples=150, deadline=None)
@given(num_blocks=st.integers(1, 24), block_size=st.sampled_from([1, 2, 3, 4, 16]), ops=OPS)
def test_block_manager_invariants(num_blocks, block_size, ops):
    manager = BlockManager(num_blocks, block_size)
    running: list[Sequence] = []
    for op, arg in ops:
        if op == "start":
            seq = Sequence(list(range(arg)))
            if manager.can_allocate(seq):
                manager.allocate(seq)
                running.append(seq)
            else:
                assert math.ceil(arg / block_size) > manager.num_free_blocks
        elif op == "grow" and running:
            seq = running[arg % len(running)]
            seq.num_cached_tokens = seq.num_tokens
            seq.append_token(0)
            if manager.can_append(seq):
                manager.may_append(seq)
            else:  # it needs a block and none is free: a real engine would stop or preempt it
                assert manager.num_free_blocks == 0 and len(seq.block_table) * block_size < seq.num_tokens
                manager.deallocate(seq)
                running.remove(seq)
        elif op == "finish" and running:
            seq = running.pop(arg % len(running))
            manager.deallocate(seq)
            assert seq.block_table == [] and seq.num_cached_tokens == 0
        check_invariants(manager, running)
    for seq in running:
        manager.deallocate(seq)
    assert manager.num_free_blocks == num_blocks and not manager.used_block_ids, "blocks left over after every sequence finished"


# --- what a step hands to the attention layers -----------------------------------------------------
def test_slot_mapping_and_block_tables_of_a_step(tiny_qwen3_dir):
    """Blocks of 4. A holds pool blocks [3, 0] with 6 of 7 tokens cached (a decode step); B is a
    fresh prompt of 5 tokens in blocks [5, 1]."""
    engine = ch03.LLM(tiny_qwen3_dir, max_num_seqs=2, max_model_len=32, kvcache_block_size=4, num_kvcache_blocks=8)
    a, b = Sequence([11, 12, 13, 14, 15, 16, 17]), Sequence([21, 22, 23, 24, 25])
    a.block_table, a.num_cached_tokens = [3, 0], 6
    b.block_table = [5, 1]
    input_ids, positions = engine.runner.prepare([a, b])
    ctx = ch03.get_context()
    ch03.reset_context()
    assert input_ids.tolist() == [17, 21, 22, 23, 24, 25]
    assert positions.tolist() == [6, 0, 1, 2, 3, 4]
    # A's position 6: block 6 // 4 = 1 of its table (pool block 0), offset 2 -> slot 0*4 + 2 = 2.
    # B's positions 0-3: pool block 5 -> slots 20-23; position 4: pool block 1, offset 0 -> slot 4.
    assert ctx.slot_mapping.tolist() == [2, 20, 21, 22, 23, 4]
    assert ctx.block_tables.tolist() == [[3, 0], [5, 1]]
    assert ctx.cu_seqlens_q.tolist() == [0, 1, 6] and ctx.context_lens.tolist() == [7, 5]
    assert not hasattr(ctx, "cache_rows")  # chapter 2's row: a block table replaces it
    assert not hasattr(a, "cache_row") and not hasattr(b, "cache_row")  # on the sequences too


def test_the_pool_holds_what_a_contiguous_cache_would(tiny_qwen3_dir):
    """After a prefill, gathering a sequence's K/V through its block table gives back exactly the
    K/V chapter 2 stores in its contiguous row."""
    paged = ch03.LLM(tiny_qwen3_dir, max_num_seqs=2, max_model_len=32, kvcache_block_size=4, num_kvcache_blocks=16)
    rows = ch02.LLM(tiny_qwen3_dir, max_num_seqs=2, max_model_len=32)
    p_seqs = [ch03.Sequence(PROMPTS[0]), ch03.Sequence(PROMPTS[2])]
    r_seqs = [ch02.RowSequence(PROMPTS[0]), ch02.RowSequence(PROMPTS[2])]
    paged.block_manager.allocate(p_seqs[1])  # the second sequence takes the first blocks
    paged.block_manager.allocate(p_seqs[0])
    for row, seq in enumerate(r_seqs):
        seq.cache_row = row
    paged.runner.run(p_seqs)
    rows.runner.run(r_seqs)
    for layer in range(paged.config.num_hidden_layers):
        for kv in range(2):
            pool, cache = paged.runner.kv_cache[kv, layer], rows.runner.kv_cache[kv, layer]
            for i, seq in enumerate(p_seqs):
                gathered = ch03.gather_kv(pool, torch.tensor(seq.block_table), seq.num_tokens)
                torch.testing.assert_close(gathered, cache[i, :seq.num_tokens], rtol=0, atol=0)


# --- memory -------------------------------------------------------------------------------------------
MAX_TOKENS = [2, 9, 4, 6]  # four prompts of 8, 1, 21 and 5 tokens: final lengths 10, 10, 25, 11


def test_paging_reserves_less_than_a_block_per_sequence_beyond_what_it_uses(tiny_qwen3_dir):
    params = [ch01.SamplingParams(temperature=0, max_tokens=m, ignore_eos=True) for m in MAX_TOKENS]
    paged = ch03.LLM(tiny_qwen3_dir, max_num_seqs=4, max_model_len=64, kvcache_block_size=4)
    rows = ch02.LLM(tiny_qwen3_dir, max_num_seqs=4, max_model_len=64)
    assert paged.generate(PROMPTS, params) == rows.generate(PROMPTS, params)
    assert len(paged.cache_usage) == len(rows.cache_usage) == 9
    for step, (p, r) in enumerate(zip(paged.cache_usage, rows.cache_usage), start=1):
        assert p.used_slots <= r.used_slots  # finished sequences' K/V are gone from the pool
        assert p.wasted_slots == 0 or p.wasted_slots < 4 * p.running, f"step {step}: a block or more wasted per sequence"
        assert r.reserved_slots == 4 * 64
        for table in p.block_tables:
            assert len(table) * 4 <= p.reserved_slots
    # after the prefill: prompts of 8, 1, 21, 5 tokens hold 2 + 1 + 6 + 2 blocks
    assert paged.cache_usage[0].reserved_slots == 11 * 4 and paged.cache_usage[0].used_slots == 35
    peak = max(u.reserved_slots for u in paged.cache_usage)
    assert peak <= sum(math.ceil((len(p) + m - 1) / 4) * 4 for p, m in zip(PROMPTS, MAX_TOKENS))
    assert paged.block_manager.num_free_blocks == paged.num_kvcache_blocks


def test_a_finished_sequence_frees_its_blocks_at_once_and_others_reuse_them(tiny_qwen3_dir):
    """A pool of 9 blocks of 4 tokens: the long request only fits because it takes over the
    blocks the short ones give back when they finish."""
    prompts = [PROMPTS[0], PROMPTS[3], [9, 8, 7]]  # 8, 5 and 3 tokens
    params = [ch01.SamplingParams(temperature=0, max_tokens=m, ignore_eos=True) for m in (1, 2, 24)]
    engine = ch03.LLM(tiny_qwen3_dir, max_num_seqs=3, max_model_len=64, kvcache_block_size=4, num_kvcache_blocks=9)
    outs = engine.generate(prompts, params)
    reference = ch02.LLM(tiny_qwen3_dir, max_num_seqs=3, max_model_len=64).generate(prompts, params)
    assert outs == reference
    first, second = engine.cache_usage[0], engine.cache_usage[1]
    assert first.block_tables[0] == () and second.block_tables[1] == ()  # freed at the step they finished
    long_table = engine.cache_usage[-2].block_tables[2]
    assert len(long_table) == 7 and set(long_table) & {0, 1, 2, 3, 4}, "the long request reuses freed blocks"


def test_a_pool_too_small_for_the_batch_says_what_to_raise(tiny_qwen3_dir):
    engine = ch03.LLM(tiny_qwen3_dir, max_num_seqs=4, max_model_len=64, kvcache_block_size=4, num_kvcache_blocks=12)
    with pytest.raises(ValueError, match=r"KV pool is full.*raise num_kvcache_blocks \(now 12\) or lower max_num_seqs"):
        engine.generate(PROMPTS, GREEDY)  # needs 20 blocks at its longest
    assert engine.block_manager.num_free_blocks == 12, "a failed batch gives its blocks back"
    assert engine.generate(PROMPTS[:2], GREEDY)  # and the engine still works
    with pytest.raises(ValueError, match="needs 7 KV blocks of 4 tokens, but the pool has 6"):
        ch03.LLM(tiny_qwen3_dir, kvcache_block_size=4, num_kvcache_blocks=6).generate([PROMPTS[2]], GREEDY)  # 21 + 8 - 1 tokens
    with pytest.raises(ValueError, match="kvcache_block_size"):
        ch03.LLM(tiny_qwen3_dir, kvcache_block_size=0)


def test_default_pool_has_the_memory_of_chapter_2s_cache(tiny_qwen3_dir):
    paged = ch03.LLM(tiny_qwen3_dir, max_num_seqs=3, max_model_len=50, kvcache_block_size=16)
    rows = ch02.LLM(tiny_qwen3_dir, max_num_seqs=3, max_model_len=50)
    assert paged.num_kvcache_blocks == 3 * 4  # ceil(50 / 16) blocks per sequence
    assert paged.runner.kv_cache.nbytes == 3 * 64 * rows.runner.bytes_per_slot
    assert paged.runner.bytes_per_slot == rows.runner.bytes_per_slot
