"""Graders for chapter 3's exercises. `pytest chapters/03` checks chapters/03/exercises.py;
`pytest chapters/03 --reference` checks the chapter's own code. (The file name is unique across
chapters: pytest's importlib mode names a test module after its path from the package root,
tests.<file>, so two chapters' tests/test_exercises.py would shadow each other in one run.)"""

import pytest
import torch

import ch01
import ch03
from ch02.tests.expected import transformers_greedy
from ch03 import attention, block_manager, model_runner
from ch03.block_manager import BlockManager
from ch03.sequence import Sequence
from ch03.tests import grading
from course.testing import PROMPTS, assert_close, assert_same_tokens

GREEDY = ch01.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)


def assert_engine_matches_transformers(path, kvcache_block_size=4, num_kvcache_blocks=None, runs=1):
    """Four prompts of 8, 1, 21 and 5 tokens: blocks of 4 tokens are crossed at every length."""
    engine = ch03.LLM(path, max_num_seqs=4, max_model_len=64, kvcache_block_size=kvcache_block_size,
                      num_kvcache_blocks=num_kvcache_blocks)
    for _ in range(runs):
        outs = engine.generate(PROMPTS, GREEDY)
        for prompt, out, expected in zip(PROMPTS, outs, transformers_greedy(path, GREEDY.max_tokens)):
            assert_same_tokens(out["token_ids"], expected, f"prompt {prompt}, 8 greedy tokens from the engine, against transformers'")
    return engine


def sequence_of(n):
    return Sequence(list(range(1, n + 1)))


# --- 3.1 allocate -------------------------------------------------------------------------------
@pytest.mark.exercise("allocate")
def test_allocate_by_hand(solution):
    manager = BlockManager(num_blocks=10, block_size=4)
    seqs = [sequence_of(n) for n in (1, 4, 5, 8, 9)]
    for seq in seqs:
        solution(manager, seq)
    for seq, blocks in zip(seqs, [1, 1, 2, 2, 3]):
        assert len(seq.block_table) == blocks, (
            f"a sequence of {seq.num_tokens} tokens got {len(seq.block_table)} blocks of 4 slots; it needs {blocks}")
    held = [b for seq in seqs for b in seq.block_table]
    assert len(set(held)) == len(held), f"a block belongs to two sequences: the tables are {[s.block_table for s in seqs]}"
    assert manager.used_block_ids == set(held), (
        f"manager.used_block_ids is {sorted(manager.used_block_ids)}; the tables hold {sorted(held)}")
    assert set(manager.free_block_ids) == set(range(10)) - set(held), (
        f"manager.free_block_ids is {sorted(manager.free_block_ids)}; with {sorted(held)} taken it should be "
        f"{sorted(set(range(10)) - set(held))}")


@pytest.mark.exercise("allocate")
def test_allocate_in_the_engine(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(block_manager.BlockManager, "allocate", solution)
    # A pool just big enough for the four sequences at their longest (5 + 3 + 8 + 4 blocks).
    assert_engine_matches_transformers(tiny_model_dir, num_kvcache_blocks=20)


# --- 3.2 may_append -----------------------------------------------------------------------------
@pytest.mark.exercise("may_append")
@pytest.mark.parametrize("block_size", [4, 1], ids=["blocks of 4", "blocks of 1"])  # with 1, every token starts a block
def test_may_append_at_the_boundary(solution, block_size):
    num_blocks = -(-10 // block_size) + 1
    manager = BlockManager(num_blocks=num_blocks, block_size=block_size)
    seq = sequence_of(3)
    manager.allocate(seq)
    for _ in range(7):  # grow from 3 to 10 tokens, one decode step at a time
        seq.num_cached_tokens = seq.num_tokens
        seq.append_token(0)
        solution(manager, seq)
        needed = -(-seq.num_tokens // block_size)
        assert len(seq.block_table) == needed, (
            f"with blocks of {block_size} slots, a sequence grown to {seq.num_tokens} tokens (its newest at position "
            f"{seq.num_tokens - 1}) holds {len(seq.block_table)} blocks after may_append; it needs {needed}")
    free = num_blocks - len(seq.block_table)
    assert manager.num_free_blocks == free and manager.used_block_ids == set(seq.block_table), (
        f"after growing to 10 tokens: {manager.num_free_blocks} free blocks and used {sorted(manager.used_block_ids)}; "
        f"expected {free} free and used = the table {seq.block_table}")


@pytest.mark.exercise("may_append")
def test_may_append_in_the_engine(solution, tiny_model_dir, monkeypatch):
    """Right tokens, and after every call just enough blocks: a block taken one token early
    still gives the right tokens, but holds a block nobody writes to."""
    calls = []

    def checked(self, seq):
        solution(self, seq)
        needed = -(-seq.num_tokens // self.block_size)  # blocks for the tokens stored after this step
        calls.append((seq.num_tokens, len(seq.block_table), needed))

    monkeypatch.setattr(block_manager.BlockManager, "may_append", checked)
    assert_engine_matches_transformers(tiny_model_dir, num_kvcache_blocks=20)
    wrong = [(n, held, needed) for n, held, needed in calls if held != needed]
    assert not wrong, (
        "with blocks of 4 slots, a sequence of {} tokens (its newest about to be stored) held {} blocks "
        "after may_append; it needs {}".format(*wrong[0])
    )


# --- 3.3 deallocate -----------------------------------------------------------------------------
@pytest.mark.exercise("deallocate")
def test_deallocate_by_hand(solution):
    manager = BlockManager(num_blocks=5, block_size=4)
    a, b = sequence_of(9), sequence_of(6)
    manager.allocate(a)
    manager.allocate(b)
    a.num_cached_tokens = 9
    held_a = list(a.block_table)
    solution(manager, a)
    assert a.block_table == [], f"after deallocate the sequence still holds blocks {a.block_table}; its table should be empty"
    assert a.num_cached_tokens == 0, f"after deallocate num_cached_tokens is {a.num_cached_tokens}; nothing is cached any more: 0"
    assert manager.num_free_blocks == 3, (
        f"a pool of 5 blocks held 3 (a: {held_a}) and 2 (b: {b.block_table}); after freeing a, {manager.num_free_blocks} "
        f"are free, expected 3 (free list {manager.free_block_ids})")
    assert manager.used_block_ids == set(b.block_table), (
        f"after freeing a, used_block_ids is {sorted(manager.used_block_ids)}; only b's blocks {b.block_table} are in use")
    solution(manager, b)
    assert sorted(manager.free_block_ids) == list(range(5)) and not manager.used_block_ids, (
        f"after freeing both, free_block_ids is {manager.free_block_ids} and used_block_ids {sorted(manager.used_block_ids)}; "
        "expected every block 0-4 free once, none used")


@pytest.mark.exercise("deallocate")
def test_deallocate_in_the_engine(solution, tiny_model_dir, monkeypatch):
    """Twice through a pool that only just fits: a block not given back makes the second run fail."""
    monkeypatch.setattr(block_manager.BlockManager, "deallocate", solution)
    engine = assert_engine_matches_transformers(tiny_model_dir, num_kvcache_blocks=20, runs=2)
    assert engine.block_manager.num_free_blocks == 20 and not engine.block_manager.used_block_ids


# --- 3.4 slot_mapping ---------------------------------------------------------------------------
@pytest.mark.exercise("compute_slot_mapping")
def test_slot_mapping_by_hand(solution):
    # Blocks of 4; the sequence's blocks are pool blocks 7, 2 and 9.
    #   position  0  1  2  3 | 4  5  6  7 | 8  9
    #   slot     28 29 30 31 | 8  9 10 11 |36 37
    assert_slots(solution, [7, 2, 9], 0, 10, 4, "a prefill of 10 tokens")
    assert_slots(solution, [7, 2, 9], 5, 10, 4, "a prefill that starts after 5 cached tokens")
    assert_slots(solution, [7, 2, 9], 9, 10, 4, "a decode step")
    assert_slots(solution, [3], 0, 1, 1, "blocks of one token")
    assert_slots(solution, [3, 0], 1, 2, 1, "blocks of one token, a decode step")


def assert_slots(solution, table, start, end, block_size, what):
    """The slots of positions start..end-1, and at the first wrong one, where it should have gone."""
    call = f"compute_slot_mapping({table}, start={start}, end={end}, block_size={block_size}), {what}"
    got = solution(table, start, end, block_size)
    expected = grading.REFERENCE["compute_slot_mapping"](table, start, end, block_size)
    if not isinstance(got, list):
        raise AssertionError(f"{call}: returned {type(got).__name__}; return a list of ints, one slot per position")
    if len(got) != len(expected):
        raise AssertionError(f"{call}: got {len(got)} slots {got}, expected {len(expected)}, one per position {start}..{end - 1}")
    for i, (slot, right) in enumerate(zip(got, expected)):
        if slot != right:
            position = start + i
            block = table[position // block_size]
            raise AssertionError(
                f"{call}: position {position} went to slot {slot}; it lives in the sequence's block "
                f"{position // block_size}, pool block {block}, which starts at slot {block * block_size} (got {got})"
            )


@pytest.mark.exercise("compute_slot_mapping")
def test_slot_mapping_in_the_engine(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(model_runner, "compute_slot_mapping", solution)
    assert_engine_matches_transformers(tiny_model_dir)


# --- 3.5 gather through the block table ----------------------------------------------------------
@pytest.mark.exercise("gather_kv")
def test_gather_kv_by_hand(solution):
    # Every slot of a pool of 6 blocks of 4 holds its own slot number: gathered, a sequence reads
    # back the slots its block table points at, in order.
    pool = torch.arange(24, dtype=torch.float32).view(6, 4, 1, 1).expand(6, 4, 2, 3).contiguous()
    table = torch.tensor([5, 1, 3, -1])
    what = "gather_kv(pool, block_table=[5, 1, 3, -1], context_len={}) on a pool of 6 blocks of 4 slots (2 heads, 3 dims)"
    out = solution(pool, table, 10)
    expected = grading.REFERENCE["gather_kv"](pool, table, 10)
    assert tuple(out.shape) == (10, 2, 3), f"{what.format(10)}: got shape {tuple(out.shape)}, expected (10, 2, 3) (token, K/V head, dim)"
    slots = out[:, 0, 0].tolist()
    assert slots == [20, 21, 22, 23, 4, 5, 6, 7, 12, 13], (
        f"{what.format(10)} read slots {slots}; every slot of this pool holds its own number, so expected "
        "[20, 21, 22, 23, 4, 5, 6, 7, 12, 13]: blocks 5, 1, 3 in table order")
    assert_close(out, expected, what.format(10), axes=("token", "K/V head", "dim"))
    one = solution(pool, table, 1)[:, 0, 0].tolist()
    assert one == [20], f"{what.format(1)} read slots {one}, expected [20]: only the first token"


@pytest.mark.exercise("gather_kv")
def test_gather_kv_in_the_engine(solution, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(attention, "gather_kv", solution)
    # The second run gets blocks back in the order the first run freed them: tables out of order.
    assert_engine_matches_transformers(tiny_model_dir, num_kvcache_blocks=20, runs=2)
