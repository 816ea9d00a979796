"""Graders for chapter 11's exercises. `pytest chapters/11` checks chapters/11/exercises.py;
`pytest chapters/11 --reference` checks the chapter's own code. Each exercise is checked on
hand-made numbers, then inside the benchmark code it serves: the latencies of a real streamed run
of nanovllm_final, the runner on chapter 7's engine, the roofline bound of nano-vllm's workload,
and the staircase."""

import time

import numpy as np
import pytest
import torch

import ch07
import nanovllm_final
from ch01.config import ModelConfig
from ch01.loader import load_model
from ch11 import metrics, roofline, staircase
from ch11.runner import generate_fn, stream_timestamps
from ch11.workload import nano_vllm_workload
from nanovllm_final.bench import QWEN3_0_6B
from course.testing import PROMPTS

QWEN3 = ModelConfig.from_dict(QWEN3_0_6B)


def streamed_run(model_dir, clock_offset: float = 1000.0):
    """Four requests streamed from nanovllm_final at once: (sent, token_times) each. The clock
    starts far from 0, as a real one does."""
    llm = nanovllm_final.LLM(model_dir, max_num_seqs=4, max_model_len=64)
    params = [nanovllm_final.SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in (6, 1, 9, 4)]
    try:
        return stream_timestamps(llm, PROMPTS, params, clock=lambda: time.perf_counter() + clock_offset)
    finally:
        llm.close()


# --- 11.1 latencies of one request ----------------------------------------------------------------
@pytest.mark.exercise("request_latencies")
def test_latencies_by_hand(solution):
    # sent at 10.0 s; tokens at 10.5, 10.7, 11.0, 11.6:
    #   TTFT 0.5 (10.0 -> 10.5), gaps 0.2, 0.3, 0.6, TPOT (11.6 - 10.5) / 3 gaps = 0.3667, E2EL 1.6
    got = solution(10.0, [10.5, 10.7, 11.0, 11.6])
    assert got["ttft"] == pytest.approx(0.5), f"TTFT: expected 0.5 (first token 10.5 - sent 10.0), got {got['ttft']}"
    assert got["itl"] == pytest.approx([0.2, 0.3, 0.6]), f"ITL: expected the gaps [0.2, 0.3, 0.6], got {got['itl']}"
    assert got["tpot"] == pytest.approx(1.1 / 3), f"TPOT: expected 1.1 s over 3 gaps = 0.3667, got {got['tpot']}"
    assert got["e2el"] == pytest.approx(1.6), f"E2EL: expected 1.6 (last token 11.6 - sent 10.0), got {got['e2el']}"
    one = solution(2.0, [2.25])
    assert one["ttft"] == pytest.approx(0.25) and one["tpot"] is None and list(one["itl"]) == [], (
        f"a one-token request: TTFT 0.25, TPOT None, no gaps; got {one}")
    with pytest.raises(ValueError):
        solution(1.0, [])


@pytest.mark.exercise("request_latencies")
def test_latencies_of_a_streamed_run(solution, monkeypatch, tiny_qwen3_dir):
    """nanovllm_final streams four requests sent together; each one's numbers must add up."""
    monkeypatch.setattr(metrics, "request_latencies", solution)
    requests = streamed_run(tiny_qwen3_dir)
    for i, (sent, times) in enumerate(requests):
        got = solution(sent, times)
        assert got["ttft"] == pytest.approx(times[0] - sent), f"request {i}: TTFT is from the send to the first token"
        assert got["e2el"] == pytest.approx(times[-1] - sent), f"request {i}: E2EL is from the send to the last token"
        assert len(got["itl"]) == len(times) - 1, f"request {i}: {len(times)} tokens have {len(times) - 1} gaps"
        assert sum(got["itl"]) == pytest.approx(got["e2el"] - got["ttft"]), f"request {i}: the gaps add up to E2EL - TTFT"
        if len(times) > 1:
            assert got["tpot"] * (len(times) - 1) == pytest.approx(times[-1] - times[0]), f"request {i}: TPOT x gaps"
    report = metrics.latency_summary(requests)
    assert report["itl_ms"]["mean"] * sum(len(t) - 1 for _, t in requests) == pytest.approx(
        sum(1e3 * (t[-1] - t[0]) for _, t in requests)), "latency_summary's ITL, through your function"


# --- 11.2 percentile -------------------------------------------------------------------------------
@pytest.mark.exercise("percentile")
def test_percentile_by_hand(solution):
    # [4, 1, 3, 2] sorted is [1, 2, 3, 4] at ranks 0..3; q lands on rank 3 * q / 100:
    #   p0 -> 1, p25 -> rank 0.75 -> 1.75, p50 -> rank 1.5 -> 2.5, p99 -> rank 2.97 -> 3.97, p100 -> 4
    values = [4.0, 1.0, 3.0, 2.0]
    for q, want in ((0, 1.0), (25, 1.75), (50, 2.5), (99, 3.97), (100, 4.0)):
        got = solution(values, q)
        assert got == pytest.approx(want), f"percentile({values}, {q}): expected {want}, got {got}"
    assert solution([7.0], 99) == 7.0, "one value is every percentile of itself"
    for bad in (([], 50), ([1.0], 101), ([1.0], -1)):
        with pytest.raises(ValueError):
            solution(*bad)


@pytest.mark.exercise("percentile")
def test_percentile_matches_numpy_on_a_real_run(solution, monkeypatch, tiny_qwen3_dir):
    """Random samples of every shape against numpy, then the p50 and p99 of a streamed run."""
    rng = np.random.default_rng(0)
    samples = [rng.exponential(1.0, n).tolist() for n in (2, 3, 10, 101, 1000)] + [[5.0, 5.0, 1.0, 5.0], [3.0, -1.0]]
    for values in samples:
        for q in (0, 1, 25, 50, 90, 99, 99.9, 100):
            assert solution(values, q) == pytest.approx(np.percentile(values, q)), (
                f"percentile of {len(values)} values at q={q}: expected numpy's {np.percentile(values, q):.6g}")
    monkeypatch.setattr(metrics, "percentile", solution)
    requests = streamed_run(tiny_qwen3_dir)
    gaps = [1e3 * (b - a) for _, t in requests for a, b in zip(t, t[1:])]
    report = metrics.latency_summary(requests)["itl_ms"]
    assert report["p50"] == pytest.approx(np.percentile(gaps, 50)) and report["p99"] == pytest.approx(np.percentile(gaps, 99))


# --- 11.3 what is timed and counted --------------------------------------------------------------
class FakeEngine:
    """A warm-up costs 5 s of the fake clock, the workload 2 s; a request stops at EOS after
    half its max_tokens (so counting max_tokens is wrong)."""

    def __init__(self):
        self.now, self.calls = 100.0, []

    def clock(self):
        return self.now

    def generate(self, prompts, params):
        self.calls.append(len(prompts))
        self.now += 5.0 if len(self.calls) == 1 else 2.0
        return [{"token_ids": list(range(p.max_tokens // 2 + 1))} for p in params]


@pytest.mark.exercise("timed_generate")
def test_timed_generate_with_a_fake_clock(solution):
    engine = FakeEngine()
    prompts = [[1] * 50, [2] * 30, [3] * 5]
    params = [ch07.SamplingParams(max_tokens=n) for n in (10, 4, 7)]  # EOS after 6, 3 and 4 tokens
    warmup = ([[9, 9]], [ch07.SamplingParams(max_tokens=2)])
    got = solution(engine.generate, prompts, params, warmup, clock=engine.clock)
    assert engine.calls == [1, 3], f"expected the warm-up (1 prompt) and then the workload (3 prompts); generate got {engine.calls}"
    assert got["seconds"] == pytest.approx(2.0), f"the workload took 2 s (the warm-up 5 s before it is not timed); got {got['seconds']}"
    assert got["output_tokens"] == 13, (f"the engine generated 6 + 3 + 4 = 13 tokens (prompt tokens and unused "
                                        f"max_tokens do not count); got {got['output_tokens']}")
    assert len(got["outputs"]) == 3


@pytest.mark.exercise("timed_generate")
def test_timed_generate_on_chapter_7(solution, tiny_qwen3_dir):
    """The workload, scaled down, through chapter 7's engine: the warm-up before the clock starts,
    every output token counted once."""
    work = nano_vllm_workload(1 / 64, temperature=0, max_token_id=250)
    llm = ch07.LLM(tiny_qwen3_dir, max_num_seqs=len(work.prompts), max_model_len=64)
    calls, stamps = [], []
    generate = generate_fn(llm)

    def counting(prompts, params):
        calls.append(len(prompts))
        return generate(prompts, params)

    def clock():
        stamps.append(len(calls))
        return time.perf_counter()

    warmup = ([[1, 2, 3]], [ch07.SamplingParams(temperature=0, max_tokens=2, ignore_eos=True)])
    got = solution(counting, work.prompts, work.params(ch07.SamplingParams), warmup, clock=clock)
    assert calls == [1, len(work.prompts)], f"warm-up then workload expected; generate got batches of {calls}"
    assert stamps and stamps[0] == 1, "the clock should start after the warm-up has run"
    assert got["output_tokens"] == work.num_output_tokens == sum(len(o["token_ids"]) for o in got["outputs"])
    assert got["seconds"] > 0


# --- 11.4 bytes of a decode step -------------------------------------------------------------------
@pytest.mark.exercise("decode_step_bytes")
def test_decode_step_bytes_of_qwen3_by_hand(solution):
    # Qwen3-0.6B: 28 layers x (q 1024x2048, k and v 1024x1024, o 2048x1024, gate and up 1024x3072,
    # down 3072x1024) + the LM head 1024x151936 = 595,984,384 weights, 2 bytes each in bf16;
    # K and V: 2 x 28 layers x 8 KV heads x 128 = 57,344 numbers a token (112 KiB in bf16).
    weights = 595_984_384 * 2
    got = solution(QWEN3, [100, 1000], torch.bfloat16, torch.bfloat16)
    assert got == weights + 1100 * 114_688, f"2 sequences of 100 and 1,000 tokens: expected {weights + 1100 * 114_688:,}, got {got:,}"
    got = solution(QWEN3, [100, 1000] * 128, torch.bfloat16, torch.float8_e4m3fn)
    want = weights + 128 * 1100 * 57_344
    assert got == want, f"256 sequences, an FP8 cache (1 byte a number): expected {want:,}, got {got:,}"
    assert solution(QWEN3, [], torch.bfloat16, torch.bfloat16) == weights, "no sequence: the weights alone"


@pytest.mark.exercise("decode_step_bytes")
def test_decode_step_bytes_are_the_engines_tensors(solution, monkeypatch, tiny_model_factory):
    """A tiny model whose 8 query heads share 2 KV heads: the weights are its loaded linear layers,
    a token's KV what nanovllm_final's cache holds per slot; then nano-vllm's whole workload."""
    path = tiny_model_factory("qwen2", num_attention_heads=8, num_key_value_heads=2)
    config = ModelConfig.from_pretrained(path)
    model = load_model(path)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert solution(config, [], torch.float32, torch.float32) == 4 * linear, "the weights: every linear layer, 4 bytes each"
    llm = nanovllm_final.LLM(path, max_num_seqs=2, max_model_len=64, num_kvcache_blocks=4)
    cache = llm.model_runner.kv_cache
    per_slot = cache.nbytes // (llm.config.num_kvcache_blocks * llm.config.kvcache_block_size)
    llm.close()
    got = solution(config, [3, 10], torch.float32, cache.dtype) - solution(config, [], torch.float32, torch.float32)
    assert got == 13 * per_slot, f"13 context tokens: the engine's cache holds {13 * per_slot:,} bytes for them, got {got:,}"
    monkeypatch.setattr(roofline, "decode_step_bytes", solution)
    work = nano_vllm_workload()
    lens = [len(p) for p in work.prompts]
    bound = roofline.workload_bound(QWEN3, lens, work.output_lens, roofline.Roofline("test", 1e15, 4e12, "test"))
    # Decode step t reads every weight and p + t tokens of each request still running (t < n).
    context = sum(p * (n - 1) + n * (n - 1) // 2 for p, n in zip(lens, work.output_lens))
    assert bound["bytes_read"] == bound["decode_steps"] * 595_984_384 * 2 + context * 114_688


# --- 11.5 a fair comparison ------------------------------------------------------------------------
def result(median, best, output_tokens=1000, device="cpu A", temperature=0.0):
    return dict(workload={"scale": 0.5, "temperature": temperature}, output_tokens=output_tokens,
                machine={"device": device, "torch": "2.x"}, tokens_per_s={"median": median, "best": best})


@pytest.mark.exercise("speedup")
def test_speedup_by_hand(solution):
    base, fast = result(100.0, 120.0), result(250.0, 400.0)
    got = solution(base, fast)
    assert got == pytest.approx(2.5), f"median 250 tok/s against median 100: expected 2.5, got {got}"
    assert solution(fast, base) == pytest.approx(0.4), "the slower candidate: below 1"
    for other, what in ((result(250.0, 400.0, output_tokens=900), "other output-token totals"),
                        (result(250.0, 400.0, device="cpu B"), "other machines"),
                        (result(250.0, 400.0, temperature=0.6), "other sampling (another workload)")):
        with pytest.raises(ValueError):
            solution(base, other)
            pytest.fail(f"compared runs with {what}")


@pytest.mark.exercise("speedup")
def test_speedup_in_the_staircase(solution, monkeypatch, tiny_qwen3_dir):
    monkeypatch.setattr(staircase, "speedup", solution)
    steps = staircase.staircase(tiny_qwen3_dir, 1 / 64, repeats=1, only=["ch04", "nanovllm_final"], log=lambda _: None)["steps"]
    assert steps[1]["speedup"] == pytest.approx(steps[1]["tokens_per_s"]["median"] / steps[0]["tokens_per_s"]["median"])
