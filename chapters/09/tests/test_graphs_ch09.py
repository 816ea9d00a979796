"""Chapter 9's engine on a CPU: its decode steps through the CUDA graphs' padded static buffers
(DecodeGraphs(capture=False) runs the recorded step eagerly) give the plain engine's tokens, and
the batch sizes and kinds of steps that take a graph. The captured graphs are checked on a GPU
(test_gpu_ch09.py)."""

import json

import pytest
import torch

import ch09
from ch01.sampling_params import SamplingParams
from ch09 import cuda_graph, measure_gpu, model_runner
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


def test_graphs_are_made_at_the_first_decode_step(tiny_qwen3_dir, monkeypatch):
    """As on a GPU: no graphs until the first pure decode batch, then one DecodeGraphs whose
    making runs the model (the capture's warm-up, here one eager step of each size) in the
    middle of the engine's step; the tokens stay the plain engine's."""
    made = []

    def make(model, *limits):
        graphs = DecodeGraphs(model, *limits, capture=False)
        for bs in graphs.batch_sizes:
            graphs.step(bs)  # what a capture runs: sets and resets the context
        made.append(graphs)
        return graphs

    monkeypatch.setattr(model_runner, "DecodeGraphs", make)
    llm = ch09.LLM(tiny_qwen3_dir, **CONFIG)
    llm.model_runner.capture_graphs = True  # as with device="cuda"
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in MAX_TOKENS]
    tokens = [out["token_ids"] for out in llm.generate(PROMPTS, params, use_tqdm=False)]
    assert len(made) == 1 and llm.model_runner.graphs is made[0]
    assert tokens == engine_tokens(tiny_qwen3_dir, graphs=False)


def test_new_buffers_store_and_read_nothing(tiny_qwen3_dir):
    """The capture's warm-up runs the model on the buffers as they are, at the first decode step,
    with live sequences in the pool: every row must store nothing and attend to nothing."""
    llm = ch09.LLM(tiny_qwen3_dir, **CONFIG)
    graphs = DecodeGraphs(llm.model_runner.model, 6, 48, 4, capture=False)
    assert (graphs.inputs.slot_mapping == -1).all() and (graphs.inputs.context_lens == 0).all()


def test_the_gpu_measurement_steps_run_on_a_cpu():
    """measure_gpu.py's model and decode steps at a tiny size, so that the GPU run does not find
    their mistakes: finite hidden states, and the padded static-buffer step equal to the eager one."""
    tiny = dict(measure_gpu.QWEN3_0_6B, vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    model = measure_gpu.build([4], device="cpu", dtype=torch.float32, config=tiny)
    graphs = DecodeGraphs(model, 4, measure_gpu.CONTEXT_LEN, measure_gpu.BLOCK_SIZE, capture=False)
    with torch.inference_mode():
        for B in (1, 3):
            input_ids, positions, context = measure_gpu.decode_inputs(B, 300, "cpu")
            eager = measure_gpu.eager_step(model, input_ids, positions, context).clone()
            staged = measure_gpu.graph_step(graphs, input_ids, positions, context)
            assert torch.isfinite(eager).all() and eager.abs().max() > 0
            torch.testing.assert_close(staged, eager, atol=1e-5, rtol=1e-5)


def test_the_gpu_measurement_is_a_numbers_file(monkeypatch, tmp_path):
    """What measure_gpu writes loads through course.measurements (a `numbers` file, one entry per
    batch size and mode), and read() gives back measure()'s rows; before a GPU run, read() is None."""
    from course import measurements

    monkeypatch.setattr(measurements, "FOLDER", tmp_path)
    assert measure_gpu.read() is None, "not yet measured"

    def mode(step_us):
        return {"host_us": 12.5, "step_us": step_us, "kernels": 3, "launch_calls": 3, "gpu_us": 9.0,
                "timeline": {"host": [[0.0, 1.0, 0]], "gpu": [[1.0, 2.0, 1]], "names": ["launch", "kernel"]}}

    made = {"model": "Qwen3-0.6B architecture, random bf16 weights", "context_len": 256, "kvcache_block_size": 16,
            "steps": [{"batch_size": B, "graph_batch_size": B, "eager": mode(100.0 + B), "graph": mode(40.0 + B)} for B in (8, 1)]}
    data = measure_gpu.as_measurement(made, {"gpu": "NVIDIA H100 (80 GiB)"}, {"torch": "2.11", "triton": "3.6"},
                                      "python -m ch09.measure_gpu", "2026-12-07T03:00:00+00:00")
    (tmp_path / f"{measure_gpu.NAME}.json").write_text(json.dumps(data))
    assert measurements.load(measure_gpu.NAME)["kind"] == "numbers" and measurements.table(measure_gpu.NAME).count("\n") == 5
    assert measurements.value(measure_gpu.NAME, "b8_graph.value") == 48.0
    back = measure_gpu.read()
    assert [row["batch_size"] for row in back["steps"]] == [1, 8] and back["context_len"] == 256
    for row in back["steps"]:
        want = next(r for r in made["steps"] if r["batch_size"] == row["batch_size"])
        for m in ("eager", "graph"):
            assert {k: row[m][k] for k in want[m]} == want[m]
    assert back["date"] == "2026-12-07" and back["machine"]["gpu"].startswith("NVIDIA")


def test_enforce_eager_is_an_option():
    assert ch09.Config.__dataclass_fields__["enforce_eager"].default is False
