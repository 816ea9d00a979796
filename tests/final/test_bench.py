"""bench.py's profile on CPU, and its per-batch-size summary of a GPU trace."""

from nanovllm_final import SamplingParams, bench


def test_by_batch_size_groups_decode_steps_and_counts_cost_per_context_token():
    trace = [dict(seqs=4, tokens=4, context=4000, gpu_ms=2.0), dict(seqs=6, tokens=6, context=8000, gpu_ms=4.0),
             dict(seqs=200, tokens=200, context=100_000, gpu_ms=5.0),
             dict(seqs=3, tokens=900, context=900, gpu_ms=30.0)]  # a prefill step
    lines = bench.by_batch_size(trace)
    small = next(line for line in lines if line.split()[0] == "1-8")
    assert small.split()[1:] == ["2", "3.000", "6000", "500.0"]  # 2 steps, mean 3 ms, 6000 tokens: 500 ns each
    assert next(line for line in lines if line.split()[0] == "193-224").split()[1] == "1"
    assert lines[-1].strip() == "prefill or mixed steps: 1, 30.0 ms in all"
    assert bench.by_batch_size([]) == []


def test_profile_runs_on_cpu(tiny_qwen3_dir, make_llm):
    llm = make_llm(tiny_qwen3_dir)
    report, trace = bench.profile(llm, [[1, 2, 3, 4], [5, 6, 7]], [SamplingParams(max_tokens=3, ignore_eos=True)] * 2)
    assert report.startswith("3 steps") and "host time per phase" in report and "schedule" in report
    assert trace == []  # GPU time comes from CUDA events only
    assert "operators of steps 2-3 (2 sequences running; totals over 1 steps)" in report  # the run ended in the window
    assert "kernels of steps" not in report and "of steps 300" not in report  # the run ended before the second window
