"""Graders for chapter 9's exercises. `pytest chapters/09` checks chapters/09/exercises.py;
`pytest chapters/09 --reference` checks the chapter's own code.

The three kernels run under Triton's interpreter against their torch twins (kernel_checks.py
says which masks each case reaches); the staging of a graph's inputs is checked by hand on two
steps in a row, then inside the engine: tokens with the padded static-buffer step equal the
plain step's."""

import pytest
import torch

from ch09 import cuda_graph
from ch09.cuda_graph import GraphInputs
from ch09.tests import kernel_checks
from ch09.tests.interpreter import interpreted
from ch09.tests.test_graphs_ch09 import engine_tokens
from course.grading import is_untouched_stub


def grade_kernel(check, solution) -> None:
    if is_untouched_stub(solution):  # it raises its NotImplementedError here as it would in the interpreter
        solution(*[None] * solution.__code__.co_argcount)
    interpreted(check, solution)


# --- 9.1 the store kernel ------------------------------------------------------------------------
@pytest.mark.exercise("store_kvcache_kernel")
def test_store_kernel_against_its_twin(solution):
    grade_kernel(kernel_checks.check_store_kvcache_kernel, solution)


# --- 9.2 the online-softmax step -----------------------------------------------------------------
@pytest.mark.exercise("online_softmax_update")
def test_decode_kernel_with_your_softmax_step(solution):
    grade_kernel(kernel_checks.check_online_softmax_update, solution)


# --- 9.3 residual add + RMSNorm ------------------------------------------------------------------
@pytest.mark.exercise("fused_add_rms_norm_kernel")
def test_fused_add_rms_norm_against_its_twin(solution):
    grade_kernel(kernel_checks.check_fused_add_rms_norm_kernel, solution)


# --- 9.4 the graph's batch size and padding ------------------------------------------------------
def _step(n: int, width: int, seed: int):
    """A decode step of n sequences, with block tables `width` wide."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 300, (n,), generator=g)
    positions = torch.randint(1, 60, (n,), generator=g)
    slots = torch.randperm(200, generator=g)[:n]
    lens = (positions + 1).to(torch.int32)
    tables = torch.randint(0, 12, (n, width), generator=g, dtype=torch.int32)
    return ids, positions, slots, lens, tables


@pytest.mark.exercise("stage_decode_inputs")
def test_staging_by_hand(solution):
    """Graphs of 1, 2, 4, 8, 16 (max 16) and buffers with 5 block-table columns. A step of 6
    sequences, then one of 3 in the same buffers: each runs the smallest graph that holds it, its
    rows are copied, and the rows up to the graph's size store and read nothing (the larger step
    left its rows 3..5 behind)."""
    sizes = cuda_graph.graph_batch_sizes(16)
    assert sizes == [1, 2, 4, 8, 16]
    buffers = GraphInputs.allocate(16, 5, "cpu")
    for n, width, want_bs in ((6, 4, 8), (3, 2, 4), (4, 5, 4), (16, 3, 16), (1, 1, 1)):
        ids, positions, slots, lens, tables = _step(n, width, seed=n)
        bs = solution(buffers, ids, positions, slots, lens, tables, sizes)
        what = f"a step of {n} sequences with graphs of {sizes}"
        assert bs == want_bs, f"{what}: returned batch size {bs}, expected {want_bs} (the smallest graph that holds {n})"
        assert torch.equal(buffers.input_ids[:n], ids), f"{what}: input_ids[:{n}] are not the step's token ids"
        assert torch.equal(buffers.positions[:n], positions), f"{what}: positions[:{n}] are not the step's positions"
        assert torch.equal(buffers.slot_mapping[:n], slots), f"{what}: slot_mapping[:{n}] are not the step's slots"
        assert torch.equal(buffers.context_lens[:n], lens), f"{what}: context_lens[:{n}] are not the step's"
        assert torch.equal(buffers.block_tables[:n, :width], tables), f"{what}: block_tables[:{n}, :{width}] differ"
        assert (buffers.slot_mapping[n:bs] == -1).all(), (
            f"{what}: the padding rows {n}..{bs - 1} have slots {buffers.slot_mapping[n:bs].tolist()}; a padding "
            "row must store nothing (-1), or it overwrites a real token's K/V")
        assert (buffers.context_lens[n:bs] == 0).all(), (
            f"{what}: the padding rows {n}..{bs - 1} have context lengths {buffers.context_lens[n:bs].tolist()}; "
            "a padding row must attend to nothing (0)")


@pytest.mark.exercise("stage_decode_inputs")
def test_staged_engine_gives_the_eager_tokens(solution, tiny_model_dir, monkeypatch):
    """The engine on the tiny model, its decode steps through the padded static buffers (run
    eagerly on a CPU): the same tokens as without them."""
    want = engine_tokens(tiny_model_dir, graphs=False)
    monkeypatch.setattr(cuda_graph, "stage_decode_inputs", solution)
    got = engine_tokens(tiny_model_dir, graphs=True)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"prompt {i}: tokens {g} with graph staging, {w} without"
