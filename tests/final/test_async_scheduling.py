"""Async scheduling (the host one step ahead of the GPU) gives the synchronous engine's tokens.

On a CPU nothing overlaps, but the code path is the same: placeholders between the two halves of
postprocess, decode inputs taken from the previous step's sampled tensor, sequences that end by
end-of-sequence or a stop string while their next step is already launched. Each case runs both
ways and compares every token and finish reason. The GPU twin is in test_gpu.py.
"""

import pytest

from course.paths import DEFAULT_MODEL_DIR
from nanovllm_final import SamplingParams

GREEDY = SamplingParams(temperature=0, max_tokens=12)


def both_ways(make_llm, model_dir, prompts, params, eos=None, **config):
    outputs = {}
    for mode in (False, True):
        llm = make_llm(model_dir, async_scheduling=mode, **config)
        if eos is not None:
            llm.scheduler.eos = set(eos)
        outputs[mode] = [(o["token_ids"], o["finish_reason"]) for o in llm.generate(prompts, params, use_tqdm=False)]
        assert llm.is_finished() and llm.in_flight is None
        bm = llm.scheduler.block_manager
        assert bm.num_free_blocks == len(bm.blocks)
    return outputs


def test_greedy_tokens_identical(tiny_model_dir, make_llm, random_prompts):
    prompts = random_prompts(9, max_len=40, seed=31)
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in (1, 2, 5, 12, 3, 8, 12, 1, 7)]
    out = both_ways(make_llm, tiny_model_dir, prompts, params)
    assert out[True] == out[False]


def test_end_of_sequence_while_the_next_step_runs(tiny_qwen3_dir, make_llm, random_prompts):
    """Make a token the greedy outputs produce mid-way an end-of-sequence token: sequences end on
    it one step before the host knows, while their next step is already on its way."""
    prompts = random_prompts(8, max_len=30, seed=32)
    llm = make_llm(tiny_qwen3_dir, async_scheduling=False)
    plain = [o["token_ids"] for o in llm.generate(prompts, SamplingParams(temperature=0, max_tokens=12, ignore_eos=True),
                                                  use_tqdm=False)]
    eos = {plain[0][3], plain[1][5]}
    out = both_ways(make_llm, tiny_qwen3_dir, prompts, GREEDY, eos=eos)
    assert out[True] == out[False]
    assert any(reason == "stop" for _, reason in out[True])


def test_preemption_and_chunks(tiny_qwen3_dir, make_llm, random_prompts):
    shared = list(range(100, 140))
    prompts = [shared + p for p in random_prompts(8, max_len=12, seed=33)]
    out = both_ways(make_llm, tiny_qwen3_dir, prompts, SamplingParams(temperature=0, max_tokens=20, ignore_eos=True),
                    num_kvcache_blocks=24, kvcache_block_size=4, max_num_batched_tokens=7, max_num_seqs=5)
    assert out[True] == out[False]


def test_seeded_sampling_identical(tiny_qwen3_dir, make_llm, random_prompts):
    prompts = random_prompts(4, max_len=20, seed=34)
    params = [SamplingParams(temperature=1.0, max_tokens=10, ignore_eos=True, seed=s) for s in range(4)]
    out = both_ways(make_llm, tiny_qwen3_dir, prompts, params)
    assert out[True] == out[False]


def test_abort_between_steps(tiny_qwen3_dir, make_llm, random_prompts):
    llm = make_llm(tiny_qwen3_dir, async_scheduling=True)
    seqs = [llm.add_request(p, SamplingParams(temperature=0, max_tokens=30, ignore_eos=True))
            for p in random_prompts(4, max_len=20, seed=35)]
    for _ in range(4):
        llm.step()
    llm.abort(seqs[:2])  # their next step is in flight
    while not llm.is_finished():
        llm.step()
    assert all(-1 not in seq.token_ids for seq in seqs)
    assert [seq.finish_reason for seq in seqs] == ["abort", "abort", "length", "length"]
    assert llm.scheduler.block_manager.num_free_blocks == len(llm.scheduler.block_manager.blocks)


@pytest.mark.model
@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "config.json").is_file(), reason="needs models/smollm2-135m-instruct")
def test_stop_strings_and_streaming(make_llm):
    prompts = ["The capital of France is", "List three colors:", "1, 2, 3,"]
    params = SamplingParams(temperature=0, max_tokens=12, stop=[".", "\n"])
    out = both_ways(make_llm, DEFAULT_MODEL_DIR, prompts, params)
    assert out[True] == out[False]
    llm = make_llm(DEFAULT_MODEL_DIR, async_scheduling=True)
    texts, tokens = ["", "", ""], [[], [], []]
    for delta in llm.stream(prompts, params):
        texts[delta["index"]] += delta["text"]
        tokens[delta["index"]] += delta["token_ids"]
    assert tokens == [t for t, _ in out[False]]
    assert texts == [o["text"] for o in llm.generate(prompts, params, use_tqdm=False)]
