"""bench.py's profile on CPU, and its per-batch-size summary of a GPU trace."""

import json

import pytest

from nanovllm_final import SamplingParams, bench


def test_by_batch_size_groups_decode_steps_and_counts_cost_per_context_token():
    trace = [dict(seqs=4, tokens=4, context=4000, gpu_ms=2.0), dict(seqs=6, tokens=6, context=8000, gpu_ms=4.0),
             dict(seqs=200, tokens=200, context=100_000, gpu_ms=5.0),
             dict(seqs=3, tokens=900, context=900, gpu_ms=30.0)]  # a prefill step
    lines = bench.by_batch_size(trace)
    small = next(line for line in lines if line.split()[0] == "1-8")
    assert small.split()[1:] == ["2", "3.000", "6000", "500.0"]  # 2 steps, mean 3 ms, 6000 tokens: 500 ns each
    assert next(line for line in lines if line.split()[0] == "193-224").split()[1] == "1"
    assert "prefill or mixed steps: 1, 30.0 ms in all" in [line.strip() for line in lines]
    assert bench.by_batch_size([]) == []


def test_by_batch_size_fits_a_fixed_cost_and_a_cost_per_context_token():
    # steps on the line 1 ms + 50 ns per context token; 100,000 bytes a token -> 2 TB/s
    trace = [dict(seqs=s, tokens=s, context=c, gpu_ms=1.0 + 50e-6 * c) for s, c in ((4, 4000), (6, 8000), (200, 100_000))]
    trace.append(dict(seqs=3, tokens=900, context=900, gpu_ms=30.0))  # a prefill step: not in the fit
    lines = bench.by_batch_size(trace, kv_bytes_per_token=100_000)
    assert lines[-2].strip() == ("fit over 3 decode steps: 1.000 ms + 50.00 ns per context token "
                                 "(the KV cache at 2.00 TB/s, 100,000 bytes a token)")
    # 3 ms fixed, 5.6 ms reading: 112,000 context tokens at 50 ns
    assert lines[-1].strip() == ("the run's decode steps: 0.01 s, of which reading the KV cache 0.01 s "
                                 "and the fixed part 0.00 s (1.000 ms x 3 steps)")
    same = [dict(seqs=1, tokens=1, context=10, gpu_ms=1.0)] * 2  # one context: no line to fit
    assert not any("fit over" in line for line in bench.by_batch_size(same))


def test_decode_breakdown_groups_kernels_and_counts_the_gaps():
    from types import SimpleNamespace as K

    averages = [K(key="nvjet_sm90_tst_64x8", count=20, device_time_total=1200.0),  # two steps' worth of each
                K(key="decode_split_kernel", count=4, device_time_total=200.0),
                K(key="_rms_norm_kernel", count=6, device_time_total=60.0),
                K(key="_qk_norm_rope_kernel", count=4, device_time_total=40.0),
                K(key="_sample_kernel", count=2, device_time_total=100.0),
                K(key="cudaEventSynchronize", count=9, device_time_total=0.0),  # host calls take no GPU time
                K(key="some_new_kernel", count=2, device_time_total=20.0)]
    window = [dict(step=10, seqs=1, tokens=1, gpu_ms=1.0), dict(step=11, seqs=1, tokens=1, gpu_ms=1.0)]
    lines = bench.decode_breakdown(averages, window, weight_bytes=1_200_000_000, copy_gb_per_s=3000.0)
    assert "1 sequences; steps 10-11" in lines[0] and "1000 µs" in lines[0]
    row = {line[:30].strip(): line[30:].split() for line in lines[2:]}
    assert row["matrix products"][:3] == ["10", "600.0", "60%"]
    assert "1.20 GB of weights at 2.00 TB/s" in next(line for line in lines if "matrix" in line)
    assert row["attention"][:2] == ["2", "100.0"] and row["other"][:2] == ["1", "10.0"]
    assert row["gaps between kernels"] == ["190.0", "19%"]  # 1000 µs less 810 µs of kernels
    assert lines[-1].strip().startswith("the bound: the weights read once at the copy's 3000 GB/s: 400 µs (2.5x")
    assert list(lines[2:]).index(next(line for line in lines if "matrix" in line)) == 0  # the largest first


def test_decode_breakdown_says_when_kernels_overlap():
    """With PDL a kernel starts before the one before it ends: the kernels' times add up to more
    than the step, and the report says why the gaps are below zero."""
    from types import SimpleNamespace as K

    averages = [K(key="_gemv_kernel", count=10, device_time_total=900.0), K(key="decode_reduce_kernel", count=2, device_time_total=300.0)]
    window = [dict(step=5, seqs=1, tokens=1, gpu_ms=1.0)]
    lines = bench.decode_breakdown(averages, window, weight_bytes=1_200_000_000, copy_gb_per_s=None)
    row = {line[:30].strip(): line[30:].split() for line in lines[2:]}
    assert row["gaps between kernels"] == ["-200.0", "-20%"] and row["attention"][:2] == ["2", "300.0"]
    assert "kernels overlap" in lines[-1] and "--pdl off" in lines[-1]
    lines = bench.decode_breakdown(averages[:1], window, weight_bytes=1_200_000_000, copy_gb_per_s=None)
    assert not any("overlap" in line for line in lines)


def test_decode_weight_bytes_counts_a_tied_head_once(tiny_qwen3_dir, make_llm):
    model = make_llm(tiny_qwen3_dir).model_runner.model
    every = sum(p.numel() * p.element_size() for p in model.parameters())
    embed = model.model.embed_tokens.weight
    tied = model.lm_head.weight is embed
    assert bench.decode_weight_bytes(model) == every - (0 if tied else embed.numel() * embed.element_size())


def test_profile_runs_on_cpu(tiny_qwen3_dir, make_llm):
    llm = make_llm(tiny_qwen3_dir)
    report, trace = bench.profile(llm, [[1, 2, 3, 4], [5, 6, 7]], [SamplingParams(max_tokens=3, ignore_eos=True)] * 2)
    assert report.startswith("3 steps") and "host time per phase" in report and "schedule" in report
    assert trace == []  # GPU time comes from CUDA events only
    assert "operators of steps 2-3 (2 sequences running; totals over 1 steps)" in report  # the run ended in the window
    assert "kernels of steps" not in report and "of steps 300" not in report  # the run ended before the second window


def test_out_writes_a_measurement_file_the_site_and_readme_read(tmp_path, monkeypatch):
    from course import measurements

    env = dict(device="NVIDIA H200", gpu_memory_gib=139.8, driver="580.159", copy_gb_per_s=4251.3, torch="2.11.0+cu130",
               triton="3.6.0", cuda="13.0", python="3.12.3", num_seqs=256, output_tokens=133_966)

    def run(kv, speed):
        latency = dict(mean=speed / 1e4, p50=speed / 1e4, p99=speed / 5e3)
        return dict(env, kv_cache=kv, tokens_per_s=speed, ttft_ms=latency, tpot_ms=latency)

    runs = [run("bf16", s) for s in (26132.4, 26154.2, 26141.9)] + [run("fp8", s) for s in (32849.0, 33704.1, 33700.3)]
    command = "python -m nanovllm_final.bench --out measurements/x.json --runs 3 --kv-cache-dtype auto,fp8"
    (tmp_path / "x.json").write_text(json.dumps(bench.measurement(runs, command)))
    monkeypatch.setattr(measurements, "FOLDER", tmp_path)
    data = measurements.load("x")  # the format measurements/README.md describes
    assert data["command"] == command and data["versions"]["torch"] == "2.11.0+cu130"
    assert data["values"]["bf16"] == dict(tokens_per_s=[26132, 26154, 26142], median=26142,
                                          ttft_ms=dict(mean=2.6, p50=2.6, p99=5.2), tpot_ms=dict(mean=2.6, p50=2.6, p99=5.2))
    assert measurements.value("x", "fp8.median") == 33700  # the median run, whose latency is kept
    assert measurements.value("x", "fp8.ttft_ms.mean") == 3.4
    assert "| bf16 | 26,132 / 26,154 / 26,142 | **26,142** |" in measurements.table("x")
    assert "NVIDIA H200 (139.8 GiB)" in measurements.source_line("x")


def test_kv_cache_lists_only_with_out():
    with pytest.raises(SystemExit):
        bench.main(["--kv-cache-dtype", "auto,fp8"])
    with pytest.raises(SystemExit):
        bench.main(["--kv-cache-dtype", "fp4"])
