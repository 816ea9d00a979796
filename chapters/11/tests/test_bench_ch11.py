"""Chapter 11's own code: the workload is nano-vllm's, the runner finds every chapter, the
staircase runs every engine on a small workload and refuses engines that compute other tokens,
the metrics agree with nanovllm_final.bench_serving's, the online runner speaks to a real server,
and every writer writes the one format of measurements/README.md, which the page quotes."""

import statistics

import pytest
import torch

import nanovllm_final
from ch01.config import ModelConfig
from ch05.roofline import H200
from ch11 import gpu, metrics, online, roofline, runner, staircase
from ch11.compare import machine as compare_machine
from ch11.compare import write_result
from ch11.workload import nano_vllm_workload
from course import measurements
from course.paths import REPO_ROOT
from nanovllm_final import bench_serving
from nanovllm_final.bench import QWEN3_0_6B



def as_file(monkeypatch, tmp_path, name: str, data: dict | None = None) -> dict:
    """course.measurements reading tmp_path instead of measurements/ (with `data` written there as
    NAME.json): the file loads, and renders as a table of at least one row."""
    monkeypatch.setattr(measurements, "FOLDER", tmp_path)
    if data is not None:
        write_result(tmp_path / f"{name}.json", data)
    loaded = measurements.load(name)
    assert measurements.table(name).count("\n") >= 2 and measurements.source_line(name)
    return loaded


def test_workload_at_scale_1_is_nano_vllms():
    work = nano_vllm_workload()
    assert len(work.prompts) == 256 and work.num_output_tokens == 133_966 and work.temperature == 0.6
    assert min(map(len, work.prompts)) >= 100 and max(map(len, work.prompts)) <= 1024
    assert all(0 <= t <= 10_000 for p in work.prompts for t in p)
    small = nano_vllm_workload(1 / 32, temperature=0)
    assert len(small.prompts) == 8 and max(map(len, small.prompts)) <= 32 and max(small.output_lens) <= 32
    assert small.prompts == nano_vllm_workload(1 / 32).prompts, "the same requests whatever the temperature"
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="scale"):
            nano_vllm_workload(bad)


def test_engines_are_every_chapter_with_an_llm():
    found = runner.engines()
    chapters = sorted(p.parent.name for p in (REPO_ROOT / "chapters").glob("[0-9][0-9]/llm.py"))
    assert found == [f"ch{c}" for c in chapters] + ["nanovllm_final"]
    assert "ch11" not in found, "chapter 11 measures engines; it is not one"
    assert runner.label("ch02") == "KV cache" and runner.label("ch06") == "the prefix cache"


def test_the_staircase_on_a_tiny_model(tiny_qwen3_dir, monkeypatch, tmp_path):
    """Every engine on the same 4 requests; the same tokens from each (greedy); --out's file is a
    `bench` measurement, one entry per engine."""
    result = staircase.staircase(tiny_qwen3_dir, 1 / 64, repeats=1, log=lambda _: None)
    assert [s["engine"] for s in result["steps"]] == runner.engines()
    assert result["tokens_equal"] and result["steps"][0]["speedup"] == 1.0
    for step in result["steps"]:
        assert step["output_tokens"] == result["workload"]["output_tokens"]
        assert step["tokens_per_s"]["best"] >= step["tokens_per_s"]["median"] > 0
    made = dict(result, command="python -m ch11.staircase --out x.json", date="2026-12-07T02:21:52Z")
    data = as_file(monkeypatch, tmp_path, "staircase", staircase.as_measurement(made))
    assert data["kind"] == "bench" and data["date"] == "2026-12-07" and data["setup"]["tokens_equal"]
    assert list(data["values"]) == runner.engines() and data["machine"]["cpu"] and data["versions"]["torch"]
    for engine, entry in data["values"].items():
        assert entry["median"] == statistics.median(entry["tokens_per_s"]), engine
        assert entry["tokens_per_s"] == [round(entry["output_tokens"] / s, 3) for s in entry["seconds"]]


def test_the_staircase_refuses_other_tokens():
    with pytest.raises(ValueError, match="request 1 differs at output token 2"):
        staircase.check_same_tokens(("ch01", [[1, 2, 3], [4, 5, 6]]), "chX", [[1, 2, 3], [4, 5, 7]])


def test_a_run_that_ignores_max_tokens_is_refused(tiny_qwen3_dir, monkeypatch):
    """An engine that stops early (here: a generate that drops each request's last token) would
    look faster per second of work; the runner refuses its count."""
    real = runner.generate_fn
    monkeypatch.setattr(runner, "generate_fn", lambda llm: lambda p, s: [
        dict(o, token_ids=o["token_ids"][:-1]) for o in real(llm)(p, s)])
    with pytest.raises(ValueError, match="does not honour max_tokens"):
        runner.run_offline("ch04", tiny_qwen3_dir, nano_vllm_workload(1 / 64, temperature=0, max_token_id=250), repeats=1)


def test_metrics_agree_with_bench_serving():
    """The same chunks through nanovllm_final.bench_serving.summarize (numpy) and ch11.metrics."""
    responses = [{"ok": True, "ttft": 0.1 * (i + 1), "itl": [0.01 * (j % 5 + 1) for j in range(i + 3)],
                  "output_tokens": i + 4} for i in range(20)]
    for r in responses:
        r["latency"] = r["ttft"] + sum(r["itl"])
    theirs = bench_serving.summarize(responses, [{"prompt": [1]}] * 20, 1.0, 10.0)
    ours = metrics.latency_summary([(5.0, online.chunk_times(5.0, r)) for r in responses])
    for name in ("ttft", "tpot", "itl", "e2el"):
        for stat, their_stat in (("mean", "mean"), ("p50", "median"), ("p99", "p99")):
            assert ours[f"{name}_ms"][stat] == pytest.approx(theirs[f"{their_stat}_{name}_ms"]), (name, stat)


def test_poisson_arrivals():
    times = online.arrival_times(4000, rate=8.0, seed=1)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert times[0] == 0 and all(g > 0 for g in gaps)
    assert sum(gaps) / len(gaps) == pytest.approx(1 / 8, rel=0.05), "mean gap 1 / rate"
    assert online.arrival_times(3, float("inf")) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="rate"):
        online.arrival_times(3, 0)


def test_online_sweep_against_the_server(tiny_qwen3_dir, monkeypatch, tmp_path):
    """Four requests at 8 per second and all at once, against nanovllm_final's server on 127.0.0.1;
    --out's file is a `serving` measurement, one entry per rate."""
    work = nano_vllm_workload(1 / 64, max_token_id=250)
    requests = [{"prompt": p, "max_tokens": n, "temperature": 0.6, "ignore_eos": True}
                for p, n in zip(work.prompts, work.output_lens)]
    llm = nanovllm_final.LLM(tiny_qwen3_dir, max_num_seqs=4, max_model_len=64)
    with online.serving(llm) as url:
        assert url.startswith("http://127.0.0.1:")
        results = online.sweep(url, requests, [8.0, float("inf")], log=lambda _: None)
    for r in results:
        assert r["completed"] == 4 and r["failed"] == 0 and r["output_tokens"] == work.num_output_tokens
        assert r["ttft_ms"]["p50"] <= r["e2el_ms"]["p50"]
    out = dict(command="python -m ch11.online --out x.json", date="2026-12-07T02:33:23Z", model="tiny",
               workload=work.describe(), machine=compare_machine(), results=results)
    data = as_file(monkeypatch, tmp_path, "online", online.as_measurement(out))
    assert data["kind"] == "serving" and list(data["values"]) == ["8", "inf"]
    for rate, r in zip(data["values"].values(), results):
        assert rate["output_throughput"] == r["output_tokens_per_s"] and rate["request_throughput"] == r["requests_per_s"]


def test_the_bound_is_below_what_the_h200_measured():
    """The roofline bound of nano-vllm's workload on an H200 (datasheet) is above every measured run."""
    work = nano_vllm_workload()
    config = ModelConfig.from_dict(QWEN3_0_6B)
    lens = [len(p) for p in work.prompts]
    measured = measurements.load("bench_h200")["values"]
    bounds = {kv: roofline.workload_bound(config, lens, work.output_lens, H200, kv_dtype=dtype)
              for kv, dtype in (("bf16", torch.bfloat16), ("fp8", torch.float8_e4m3fn))}
    for kv, bound in bounds.items():
        assert max(measured[kv]["tokens_per_s"]) < bound["output_tokens_per_s"], kv
    weights = bounds["fp8"]["decode_steps"] * roofline.weight_bytes(config, torch.bfloat16)
    assert bounds["bf16"]["bytes_read"] - weights == 2 * (bounds["fp8"]["bytes_read"] - weights), "FP8 halves the KV read"


@pytest.mark.parametrize("name, kind", [("ch11_staircase_cpu", "bench"), ("ch11_online_cpu", "serving")])
def test_the_committed_files_are_in_the_common_format(name, kind):
    """course.measurements loads them (title, kind, command, date, machine, versions, values)."""
    data = measurements.load(name)
    assert data["kind"] == kind and data["machine"].get("cpu") and data["versions"].get("torch")
    assert f"--out measurements/{name}.json" in data["command"], "the command that wrote the file"
    assert name not in measurements.results(), "a teaching run on a shared CPU stays out of the README's results"


def test_the_gpu_command_writes_a_bench_file(monkeypatch, tmp_path):
    """python -m ch11.gpu with the runs faked (no GPU here): a `bench` file with nanovllm_final's
    entries and transformers', and --only reruns one part and keeps the others."""
    def fake_runs(repeats):
        rates = [100.0 + i for i in range(repeats)]
        return {kv: dict(tokens_per_s=rates, median=statistics.median(rates), copy_gb_per_s=[4000] * repeats)
                for kv in ("bf16", "fp8")}

    monkeypatch.setattr(gpu, "nanovllm_runs", fake_runs)
    monkeypatch.setattr(gpu, "transformers_run", lambda scale: dict(tokens_per_s=[50], median=50, workload={"scale": scale}))
    out = tmp_path / "ch11_gpu.json"
    gpu.main(["--out", str(out), "--repeats", "3"])
    data = as_file(monkeypatch, tmp_path, "ch11_gpu")
    assert data["kind"] == "bench" and list(data["values"]) == ["bf16", "fp8", gpu.TRANSFORMERS]
    assert set(data["parts"]) == {"nanovllm", "transformers", "roofline"} and "bf16, this GPU, measured copy" in data["roofline"]

    def broken(scale):
        raise AttributeError("no init_continuous_batching")

    monkeypatch.setattr(gpu, "transformers_run", broken)
    gpu.main(["--out", str(out), "--only", "transformers"])
    data = measurements.load("ch11_gpu")
    assert list(data["values"]) == ["bf16", "fp8"] and data["transformers_error"].startswith("AttributeError")
    assert data["parts"]["transformers"]["command"].endswith("--only transformers") and data["roofline"]
    with pytest.raises(SystemExit):
        gpu.main(["--out", str(out), "--only", "nanovlm"])


def test_the_page_quotes_the_measurement_files():
    """The page's measured numbers are markers into measurements/ (none typed), and render as the
    files say; the bounds it types are the roofline's (computed from the datasheet, not measured)."""
    raw = (REPO_ROOT / "docs" / "chapters" / "11.md").read_text(encoding="utf-8")
    page = measurements.render_markers(raw, "docs/chapters/11.md")
    steps = measurements.load("ch11_staircase_cpu")["values"]
    final = steps["nanovllm_final"]
    quoted = [f"{steps['ch02']['speedup']:.1f} times faster", f"{final['speedup']:.1f} times faster",
              f"same {final['output_tokens']} tokens", f"{min(final['seconds']):.1f} to {max(final['seconds']):.1f} seconds",
              f"factor of {max(final['seconds']) / min(final['seconds']):.1f}"]
    h200 = {kv: entry["median"] for kv, entry in measurements.load("bench_h200")["values"].items()}
    work = nano_vllm_workload()
    config = ModelConfig.from_dict(QWEN3_0_6B)
    for kv, dtype in (("bf16", torch.bfloat16), ("fp8", torch.float8_e4m3fn)):
        bound = roofline.workload_bound(config, [len(p) for p in work.prompts], work.output_lens, H200, kv_dtype=dtype)
        quoted += [f"{h200[kv]:,}", f"{bound['output_tokens_per_s']:,.0f}", f"{h200[kv] / bound['output_tokens_per_s']:.0%}"]
        assert f"{h200[kv]:,}" not in raw, "the H200's numbers are quoted with a marker, not typed"
    missing = [q for q in quoted if q not in page]
    assert not missing, f"docs/chapters/11.md should quote these from measurements/ (rerun, then update the page): {missing}"
