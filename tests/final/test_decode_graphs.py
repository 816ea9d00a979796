"""The decode CUDA graphs' inputs (cuda_graph.py), checked on a CPU.

On a GPU a decode step goes into the graphs' static buffers, padded to the graph's batch size,
with the block tables spread into their rows on the device and the async step's tokens taken
inside the graph. `DecodeGraphs(capture=False)` runs the same step eagerly at replay, so the
staging can be compared here with the plain path: same tokens, same finish reasons, every block
back. The GPU twin (captured graphs) is in test_gpu.py.
"""

import pytest
import torch

from nanovllm_final import SamplingParams
from nanovllm_final.engine.cuda_graph import DecodeGraphs


def run(make_llm, model_dir, prompts, params, graphs: bool, lm_head: bool = True, **config):
    """-> (tokens and finish reasons, the batch size of each graph replay); with graphs, the
    sampler graphs that ran are in run.kinds."""
    llm = make_llm(model_dir, **config)
    runner, replays = llm.model_runner, []
    run.kinds = set()
    if graphs:
        g = runner.graphs = DecodeGraphs(runner.model, llm.config, runner.device, capture=False, lm_head=lm_head)
        replay, sample = g.replay, g.sample
        g.replay = lambda n: replays.append(n) or replay(n)
        g.sample = lambda n, kind, args: run.kinds.add(kind) or sample(n, kind, args)
    out = [(o["token_ids"], o["finish_reason"]) for o in llm.generate(prompts, params, use_tqdm=False)]
    bm = llm.scheduler.block_manager
    assert llm.is_finished() and bm.num_free_blocks == len(bm.blocks)
    return out, replays


@pytest.mark.parametrize("async_scheduling", [False, True])
@pytest.mark.parametrize("lm_head", [True, False])
def test_staged_decode_gives_the_plain_tokens(tiny_model_dir, make_llm, random_prompts, async_scheduling, lm_head):
    """Prompts of 1 to 70 tokens in 16-token blocks (block tables of 1 to 6 entries, so rows of
    different widths and padding), decode batches of 1 to 10 sequences (graphs of 1, 2, 4, 8 and 12:
    max_num_seqs=12 makes the largest 12), greedy and seeded sampling."""
    prompts = random_prompts(11, max_len=70, seed=41)
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in (1, 9, 4, 13, 2, 16)]
    params += [SamplingParams(temperature=0.8, seed=i, max_tokens=10 + i, ignore_eos=True) for i in range(5)]
    config = dict(async_scheduling=async_scheduling, max_num_seqs=12, max_model_len=128)
    plain, _ = run(make_llm, tiny_model_dir, prompts, params, graphs=False, **config)
    staged, replays = run(make_llm, tiny_model_dir, prompts, params, graphs=True, lm_head=lm_head, **config)
    assert staged == plain
    assert len(replays) > 10 and max(replays) == 10 and min(replays) == 1  # padded to 12; the last one alone
    assert run.kinds == ({"greedy"} if lm_head else set())  # the seeded rows sample eagerly


@pytest.mark.parametrize("kind, params", [
    ("greedy", SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)),
    ("gumbel", SamplingParams(temperature=0.9, max_tokens=12, ignore_eos=True)),
    ("gumbel_min_p", SamplingParams(temperature=0.7, min_p=0.1, max_tokens=12, ignore_eos=True)),
])
def test_sampler_graphs_draw_as_the_sampler(tiny_qwen3_dir, make_llm, random_prompts, kind, params):
    """Eight sequences decode together, a batch of 8 in the graph of 8: the sampler graph of
    the batch's kind draws the same random keys as the eager sampler, so the tokens agree. (In a
    smaller batch the graph draws keys for its padding rows too, and the streams part.)"""
    prompts = random_prompts(8, max_len=40, seed=43)
    config = dict(async_scheduling=True, max_num_seqs=8, max_model_len=128)
    plain, _ = run(make_llm, tiny_qwen3_dir, prompts, params, graphs=False, **config)
    staged, replays = run(make_llm, tiny_qwen3_dir, prompts, params, graphs=True, **config)
    assert staged == plain
    assert run.kinds == {kind} and set(replays) == {8}


@pytest.mark.parametrize("min_p", [0.0, 0.05])
def test_sampler_graph_matches_the_sampler_row_by_row(tiny_qwen3_dir, make_llm, min_p):
    """The same logits and random state: a full graph-sized batch draws the eager sampler's
    tokens, and a new batch's temperatures replace the last one's."""
    llm = make_llm(tiny_qwen3_dir, max_num_seqs=8)
    runner = llm.model_runner
    graphs = DecodeGraphs(runner.model, llm.config, runner.device, capture=False)
    vocab = llm.config.hf_config.vocab_size
    with torch.inference_mode():
        graphs.outputs[:8] = torch.randn(8, vocab) * 3
    flags = dict(all_greedy=False, need_sort=False, need_min_p=min_p > 0, seeded=[])
    for temperature in ([0.5, 1.0, 1.5, 0.8, 1.0, 2.0, 0.7, 1.2], [50.0] * 8):
        args = (torch.tensor(temperature), torch.full((8,), -1), torch.ones(8), torch.full((8,), min_p), [None] * 8,
                flags)
        kind = graphs.sampler_kind(args)
        assert kind == ("gumbel_min_p" if min_p else "gumbel")
        torch.manual_seed(5)
        eager = runner.sampler(graphs.outputs[:8].clone(), *args)
        torch.manual_seed(5)
        with torch.inference_mode():
            assert graphs.sample(8, kind, args).tolist() == eager.tolist()
    assert graphs.sampler_kind(args[:4] + ([None] * 7 + [torch.Generator()], flags)) is None  # a seeded row


def test_one_token_chunks_among_decodes(tiny_qwen3_dir, make_llm, random_prompts):
    """Four sequences at most and a budget of 4 tokens a step: once three of them decode, the
    fourth's prompt goes on one token a step, so a graph's step (one token per sequence) has a
    row that samples nothing."""
    prompts = random_prompts(9, max_len=30, seed=42)
    params = SamplingParams(temperature=0, max_tokens=20, ignore_eos=True)
    config = dict(async_scheduling=True, max_num_seqs=4, max_num_batched_tokens=4, max_model_len=64)
    plain, _ = run(make_llm, tiny_qwen3_dir, prompts, params, graphs=False, **config)
    staged, replays = run(make_llm, tiny_qwen3_dir, prompts, params, graphs=True, **config)
    assert staged == plain and replays.count(4) > 10


def test_stage_pads_to_the_graph_size(tiny_qwen3_dir, make_llm):
    """Three sequences run in the graph of 4: its fourth row stores nothing (slot -1), reads a
    context of one token and takes no token from the step before."""
    llm = make_llm(tiny_qwen3_dir, max_num_seqs=8)
    runner = llm.model_runner
    graphs = DecodeGraphs(runner.model, llm.config, runner.device, capture=False)
    with torch.inference_mode():
        graphs.ints.fill_(7)
    prev = torch.tensor([50, 51, 52])
    graphs.stage([5, 6, 7], [10, 20, 30], [100, 200, 300], [-1, 2, 0], [11, 21, 31],
                 [3, -1, 4, 5, 6, -1], 2, prev)
    assert graphs.staged == 4
    assert graphs.ints[:16].tolist() == [5, 6, 7, 0, 10, 20, 30, 0, 100, 200, 300, -1, -1, 2, 0, -1]
    assert graphs.ints32[:4].tolist() == [11, 21, 31, 1]
    assert graphs.block_tables[:3, :2].tolist() == [[3, -1], [4, 5], [6, -1]]
    assert graphs.prev_tokens[:3].tolist() == [50, 51, 52]
