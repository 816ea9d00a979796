"""Chapter 9's engine on a CPU: its decode steps through the CUDA graphs' padded static buffers
(DecodeGraphs(capture=False) runs the recorded step eagerly) give the plain engine's tokens, and
the batch sizes and kinds of steps that take a graph. The captured graphs are checked on a GPU
(test_gpu_ch09.py)."""

import pytest

import ch09
from ch01.sampling_params import SamplingParams
from ch09 import cuda_graph
from ch09.cuda_graph import DecodeGraphs

# Six prompts that finish one after another, so decode batches shrink 6, 5, 4, 3, 2, 1 and most
# are padded: the graphs of max_num_seqs=6 are 1, 2, 4 and 6. Blocks of 4 tokens make block
# tables of 2 to 10 entries and contexts that end at every offset of a block.
PROMPTS = [[1, 17, 42, 99, 100, 7, 250, 31], [5], list(range(260, 281)), [300, 12, 12, 12, 44], [3, 1, 4, 1, 5, 9],
           list(range(40, 52))]
MAX_TOKENS = [9, 14, 5, 11, 3, 7]
CONFIG = dict(max_num_seqs=6, max_model_len=48, kvcache_block_size=4)


def engine_tokens(model_dir, graphs: bool, replays: list | None = None) -> list[list[int]]:
    """Greedy tokens of PROMPTS through chapter 9's engine; with graphs, its decode steps go
    through DecodeGraphs' static buffers (run eagerly), and each step's batch size is appended
    to `replays`."""
    llm = ch09.LLM(model_dir, **CONFIG)
    runner = llm.model_runner
    assert runner.graphs is None, "no graphs are captured on a CPU"
    if graphs:
        runner.graphs = DecodeGraphs(runner.model, CONFIG["max_num_seqs"], CONFIG["max_model_len"],
                                     CONFIG["kvcache_block_size"], capture=False)
        step = runner.graphs.step
        runner.graphs.step = lambda bs: (replays.append(bs) if replays is not None else None, step(bs))
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in MAX_TOKENS]
    return [out["token_ids"] for out in llm.generate(PROMPTS, params, use_tqdm=False)]


@pytest.mark.parametrize("max_num_seqs, sizes", [
    (1, [1]), (6, [1, 2, 4, 6]), (16, [1, 2, 4, 8, 16]), (40, [1, 2, 4, 8, 16, 32, 40]), (48, [1, 2, 4, 8, 16, 32, 48]),
])
def test_graph_batch_sizes(max_num_seqs, sizes):
    assert cuda_graph.graph_batch_sizes(max_num_seqs) == sizes


def test_static_buffer_steps_give_the_plain_tokens(tiny_model_dir):
    replays = []
    assert engine_tokens(tiny_model_dir, graphs=True, replays=replays) == engine_tokens(tiny_model_dir, graphs=False)
    # Every decode step ran through the buffers, at a graph's size: 5 sequences ran as 6, 3 as 4.
    assert set(replays) <= {1, 2, 4, 6} and {6, 4, 1} <= set(replays), replays
    assert len(replays) == max(MAX_TOKENS) - 1, "every step after the prefill is a decode step of the graphs"


def test_enforce_eager_is_an_option():
    assert ch09.Config.__dataclass_fields__["enforce_eager"].default is False
