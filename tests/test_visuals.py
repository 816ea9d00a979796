"""The data of the site's interactive visuals comes from the chapters' code, and the JavaScript
that replays a chapter's rules agrees with the Python. (tests/test_site.py drives the drawn
visuals in headless Chromium.)"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from course import visual_data

REPO_ROOT = Path(__file__).resolve().parents[1]
VISUALS_JS = REPO_ROOT / "docs" / "javascripts" / "visuals"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def committed(name: str) -> dict:
    return json.loads((visual_data.OUT_DIR / f"{name}.json").read_text(encoding="utf-8"))


def fresh_and_committed(name: str) -> tuple[dict, dict]:
    """A new run of the script that needs the SmolLM2 folder, and the committed file."""
    if not (visual_data.SMOLLM2 / "config.json").is_file():
        pytest.skip("the SmolLM2 folder is missing; run `make model`")
    return visual_data.BUILDERS[name](), committed(name)


def run_node(script: str):
    proc = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", ["ch02", "ch03", "ch04", "ch05", "ch08", "ch09", "ch11"])
def test_committed_data_is_what_the_script_writes(name):
    fresh = visual_data.dumps(visual_data.BUILDERS[name]())
    assert (visual_data.OUT_DIR / f"{name}.json").read_text(encoding="utf-8") == fresh, (
        f"docs/assets/visuals/{name}.json is stale; run `python -m course.visual_data {name}`")


def test_every_visual_has_data_and_a_script():
    for name in visual_data.BUILDERS:
        assert (visual_data.OUT_DIR / f"{name}.json").is_file(), name
        assert (VISUALS_JS / f"{name}.js").is_file(), name


@pytest.mark.slow
@pytest.mark.model
def test_chapter_1_data_is_a_fresh_generation():
    """Greedy tokens are exact; probabilities may move in the last digit between CPUs."""
    fresh, old = fresh_and_committed("ch01")
    assert [s["chosen"] for s in fresh["steps"]] == [s["chosen"] for s in old["steps"]]
    assert [s["positions"] for s in old["steps"]] == list(range(5, 25))  # one pass over the whole sequence per token
    for new_step, old_step in zip(fresh["steps"], old["steps"]):
        assert [t for t, _ in new_step["top"][:3]] == [t for t, _ in old_step["top"][:3]]
        for (_, p), (_, q) in zip(new_step["top"], old_step["top"]):
            assert p == pytest.approx(q, abs=2e-3)
    assert {k: v for k, v in fresh.items() if k != "steps"} == {k: v for k, v in old.items() if k != "steps"}
    assert old["steps"][0]["top"][0] == [" Paris", pytest.approx(0.773, abs=2e-3)]  # the page's table


@pytest.mark.model
def test_chapter_2_smollm2_numbers_are_the_model_folders():
    path = visual_data.SMOLLM2 / "config.json"
    if not path.is_file():
        pytest.skip("the SmolLM2 folder is missing; run `make model`")
    folder = json.loads(path.read_text(encoding="utf-8"))
    stated = visual_data.CH02_MODELS["SmolLM2-135M"]["config"]
    assert {k: folder[k] for k in stated} == stated


def test_chapter_2_numbers_are_the_chapters():
    models = {m["name"]: m for m in committed("ch02")["models"]}
    assert models["Qwen3-0.6B"]["kv_bytes_per_token"] == 112 * 1024  # the page's 112 KiB
    assert models["SmolLM2-135M"]["kv_bytes_per_token"] == 23_040
    assert models["Llama-3.1-8B"]["kv_bytes_per_token"] == 128 * 1024
    assert models["SmolLM2-135M"]["flops_per_position"] == 2 * 30 * 3_538_944  # chapter 1's count
    assert 8.0e9 < models["Llama-3.1-8B"]["parameters"] < 8.1e9


@pytest.mark.slow
def test_chapter_2_step_rule_is_what_the_engines_run(tiny_qwen3_dir):
    """The visual says a step at length T runs T positions without the cache and 1 with it:
    count what ch01's and ch02's engines actually run."""
    import ch01
    import ch02
    from ch01 import SamplingParams

    def passes(llm):
        seen, forward = [], llm.model.forward
        llm.model.forward = lambda ids, pos: seen.append(len(ids)) or forward(ids, pos)
        llm.generate(list(range(3, 10)), SamplingParams(temperature=0, max_tokens=6, ignore_eos=True))
        return seen

    assert passes(ch01.LLM(tiny_qwen3_dir)) == [7, 8, 9, 10, 11, 12]
    assert passes(ch02.LLM(tiny_qwen3_dir, max_num_seqs=1, max_model_len=64)) == [7, 1, 1, 1, 1, 1]


@needs_node
def test_chapter_2_step_flops_in_js():
    m = committed("ch02")["models"][0]
    out = run_node(f"const {{stepFlops}} = require({json.dumps(str(VISUALS_JS / 'ch02.js'))});"
                   f"const m = {json.dumps(m)}; console.log(JSON.stringify([stepFlops(m, 512, false), stepFlops(m, 512, true)]));")
    assert out == [512 * m["flops_per_position"] + m["flops_lm_head"] + m["flops_attention_per_pair"] * 512 * 512,
                   m["flops_per_position"] + m["flops_lm_head"] + m["flops_attention_per_pair"] * 512]


@needs_node
@pytest.mark.parametrize(("num_blocks", "block_size", "seed"), [(16, 4, 0), (16, 4, 1), (7, 3, 2), (5, 16, 3), (40, 1, 4)])
def test_chapter_3_js_pool_follows_block_manager(num_blocks, block_size, seed):
    """The same random adds, grows and finishes through ch03.BlockManager and through ch03.js:
    the free list (in order), every block table and token count agree after each operation,
    refusals included."""
    ops = visual_data.random_block_ops(150, seed, num_blocks, block_size, max_prompt=3 * block_size)
    python = visual_data.run_block_ops(ops, num_blocks, block_size)
    assert any(not s["ok"] for s in python) or num_blocks >= 40, "the script should fill the pool at least once"
    js = run_node(f"const {{runOps}} = require({json.dumps(str(VISUALS_JS / 'ch03.js'))});"
                  f"console.log(JSON.stringify(runOps({json.dumps(ops)}, {num_blocks}, {block_size})));")
    for i, (p, j) in enumerate(zip(python, js, strict=True)):
        assert p == j, f"after operation {i} {ops[i]}: Python {p}, JS {j}"


@needs_node
def test_chapter_3_example_is_block_managers():
    data = committed("ch03")
    assert data["example_states"] == visual_data.run_block_ops(data["example"], data["num_blocks"], data["block_size"])
    js = run_node(f"const {{runOps}} = require({json.dumps(str(VISUALS_JS / 'ch03.js'))});"
                  f"console.log(JSON.stringify(runOps({json.dumps(data['example'])}, {data['num_blocks']}, {data['block_size']})));")
    assert js == data["example_states"]


def js_schedule(requests, static: bool, engine: dict):
    return run_node(f"const {{simulate}} = require({json.dumps(str(VISUALS_JS / 'ch04.js'))});"
                    f"console.log(JSON.stringify(simulate({json.dumps(requests)}, {json.dumps(static)}, {json.dumps(engine)})));")


@needs_node
@pytest.mark.parametrize("static", [False, True], ids=["continuous", "static"])
@pytest.mark.parametrize(("seed", "rate", "spread", "blocks"), [(0, 0.5, 0.8, 40), (1, 4.0, 1.0, 40), (2, 0.1, 0.0, 40),
                                                                (3, 2.0, 1.0, 10), (4, 100.0, 0.5, 12)])
def test_chapter_4_js_schedule_follows_the_scheduler(static, seed, rate, spread, blocks):
    """The same requests through ch04's Scheduler / StaticScheduler and through ch04.js: the same
    kind of step, batch, running and waiting queues at every step (small pools force preemptions)."""
    engine = dict(visual_data.CH04_ENGINE, num_kvcache_blocks=blocks)
    requests = visual_data.random_requests(12, seed, rate, 12, spread)
    python = visual_data.run_schedule(requests, static, **engine)
    js = js_schedule(requests, static, engine)
    assert len(js) == len(python), (len(js), len(python))
    for t, (p, j) in enumerate(zip(python, js)):
        assert p == j, f"step {t}: Python {p}, JS {j}"


def test_chapter_4_small_pools_preempt():
    """The cases above include preemption: a sequence goes back to waiting after it ran."""
    engine = dict(visual_data.CH04_ENGINE, num_kvcache_blocks=10)
    steps = visual_data.run_schedule(visual_data.random_requests(12, 3, 2.0, 12, 1.0), False, **engine)
    ran = set()
    preempted = False
    for step in steps:
        ran |= set(step["batch"])
        preempted |= bool(ran & set(step["waiting"]))
    assert preempted


@needs_node
def test_chapter_4_static_batching_uses_fewer_rows():
    """What the visual shows, on the example: continuous batching ends sooner, its batches fuller."""
    data = committed("ch04")
    out = run_node(f"const v = require({json.dumps(str(VISUALS_JS / 'ch04.js'))}); const d = {json.dumps(data)};"
                   "console.log(JSON.stringify([true, false].map(st => v.summary(d.example, v.simulate(d.example, st, d.engine), d.engine.max_num_seqs))));")
    static, continuous = out
    assert continuous["steps"] < static["steps"]
    assert continuous["utilisation"] > static["utilisation"]
    assert continuous["latency"] < static["latency"]
    steps = {"p": "prefill", "d": "decode", "i": "idle"}
    for key, st in (("example_static", True), ("example_continuous", False)):
        js = js_schedule(data["example"], st, data["engine"])
        assert [[steps[k], b] for k, b in data[key]] == [[s["kind"], s["batch"]] for s in js]


CH07_CASES = [(1.0, 0, 1.0, 0.0), (0.7, 0, 1.0, 0.0), (1.5, 0, 1.0, 0.0), (1.5, 0, 0.9, 0.0), (1.5, 20, 1.0, 0.0),
              (1.0, 0, 0.9, 0.0), (1.0, 0, 0.5, 0.0), (1.0, 0, 1.0, 0.1), (0.8, 40, 0.95, 0.05), (2.0, 5, 0.3, 0.3),
              (0.3, 0, 0.99, 0.0), (1.0, 1, 1.0, 0.0), (2.0, 0, 0.95, 0.0)]


def ch07_sampler_probs(logits: list[float], t: float, k: int, p: float, m: float):
    """ch07's sampler on one row of logits (float64, so that no boundary token flips): (V,) probabilities."""
    import torch

    from ch07 import sampler

    x = torch.tensor([logits], dtype=torch.float64) / t
    return sampler.filtered_probs(x, torch.tensor([k if k else -1]), torch.tensor([p], dtype=torch.float64),
                                  torch.tensor([m], dtype=torch.float64))[0]


def entropy_bits(probs) -> float:
    import torch

    q = probs[probs > 0]
    return float(-(q * torch.log2(q)).sum())


def require(name: str) -> str:
    return f"const m = require({json.dumps(str(VISUALS_JS / f'{name}.js'))});"


@needs_node
def test_chapter_7_js_filters_are_the_chapters_sampler():
    """temperature, top-k, top-p and min-p in ch07.js give ch07's filtered_probs on the whole
    vocabulary (the named tokens and the tail): the same probabilities token for token, so the same
    entropy and the same number of tokens kept; and 20,000 of the visual's draws land in the tail
    as often as the tail's probability says."""
    import torch

    data = committed("ch07")
    script = require("ch07") + "const data = " + json.dumps(data) + ";"
    for n, entry in enumerate(data["prompts"]):
        logits = visual_data.ch07_logits(entry)
        assert len(logits) == data["vocab_size"], "the named tokens and the tail should cover the vocabulary"
        dists = run_node(script + f"const g = m.groupsOf(data.prompts[{n}]); console.log(JSON.stringify({json.dumps(CH07_CASES)}"
                         ".map(([t, k, p, mp]) => { const d = m.filtered(g, {temperature: t, topK: k, topP: p, minP: mp});"
                         " return [d, m.entropyBits(d), m.keptTokens(d)]; })));")
        for (t, k, p, m), (dist, entropy, kept) in zip(CH07_CASES, dists):
            want = ch07_sampler_probs(logits, t, k, p, m)
            got = torch.tensor([q for q, c in dist for _ in range(c)] + [0.0] * (len(logits) - sum(c for _, c in dist)),
                               dtype=torch.float64)
            case = f"{entry['prompt']!r} at T={t}, top_k={k}, top_p={p}, min_p={m}"
            assert kept == int((want > 0).sum()), f"{case}: the visual keeps {kept} tokens, the sampler {int((want > 0).sum())}"
            assert entropy == pytest.approx(entropy_bits(want), rel=1e-6), case
            assert got.sort().values.tolist() == pytest.approx(want.sort().values.tolist(), abs=1e-9), case
        tail = float(ch07_sampler_probs(logits, 1.5, 0, 1.0, 0.0)[data["named"]:].sum())
        counts = run_node(script + "let s = 1; const r = () => (s = (s * 48271) % 2147483647) / 2147483647;"
                          f"const d = m.filtered(m.groupsOf(data.prompts[{n}]), {{temperature: 1.5, topK: 0, topP: 1, minP: 0}});"
                          "console.log(JSON.stringify(m.drawCounts(d, r, 20000)));")
        drawn = sum(counts[data["named"]:]) / 20000
        assert drawn == pytest.approx(tail, abs=0.015), f"{entry['prompt']!r}: {drawn:.3f} of draws in the tail, whose probability is {tail:.3f}"
    greedy = run_node(script + "console.log(JSON.stringify(m.filtered(m.groupsOf(data.prompts[0]), "
                      "{temperature: 0, topK: 0, topP: 1, minP: 0})));")
    assert greedy[0] == [1, 1] and all(c == 0 for _, c in greedy[1:])  # temperature 0 is the argmax


@pytest.mark.slow
@pytest.mark.model
def test_chapter_7_data_is_the_models_whole_distribution():
    """The committed named tokens and tail against a fresh run of the model: the entropy and the
    tokens top-p keeps, within 1% of the model's full logits (the tail's rounding is all that differs)."""
    if not (visual_data.SMOLLM2 / "config.json").is_file():
        pytest.skip("the SmolLM2 folder is missing; run `make model`")
    _, fresh = visual_data.ch07_model_logits()
    data = committed("ch07")
    for entry in data["prompts"]:
        model = fresh[entry["prompt"]].double().sort(descending=True).values.tolist()
        ours = visual_data.ch07_logits(entry)
        assert len(ours) == len(model) == data["vocab_size"]
        for t, p in ((1.0, 1.0), (1.5, 1.0), (1.5, 0.9), (1.0, 0.9), (0.5, 1.0)):
            want, got = ch07_sampler_probs(model, t, 0, p, 0.0), ch07_sampler_probs(ours, t, 0, p, 0.0)
            what = f"{entry['prompt']!r} at T={t}, top_p={p}"
            assert entropy_bits(got) == pytest.approx(entropy_bits(want), rel=0.01), what
            assert int((got > 0).sum()) == pytest.approx(int((want > 0).sum()), rel=0.01), what


def test_chapter_5_step_costs_are_the_chapters():
    """The visual's per-token and per-step terms give ch05.roofline.step_flops_and_bytes."""
    import torch

    from ch01.config import ModelConfig
    from ch05 import roofline

    data = committed("ch05")
    config = ModelConfig.from_dict(visual_data.CH02_MODELS[data["model"]]["config"])
    for m in (1, 7, 256, 8192):
        assert roofline.step_flops_and_bytes(config, m, torch.bfloat16) == (
            m * data["flops_per_token"], m * data["bytes_per_token"] + data["weight_bytes"])
    assert data["hardware"]["peak_flops"] == roofline.H200.peak_flops
    assert data["hardware"]["bandwidth"] == roofline.H200.bandwidth


@needs_node
@pytest.mark.parametrize(("prompt", "decoding", "budget"), [(200, 4, 64), (100, 3, 16), (37, 2, 40), (64, 6, 16)])
def test_chapter_5_chunks_are_the_schedulers(prompt, decoding, budget):
    """A long prompt arrives while `decoding` sequences decode: chapter 5's Scheduler cuts it into
    as many steps as the visual's chunks() says (decodes first, the rest of the budget to it)."""
    from ch05.scheduler import Scheduler

    requests = [[0, 1, 100]] * decoding + [[2, prompt, 1]]  # the prompt's one output token ends it
    engine = dict(max_num_seqs=decoding + 1, max_num_batched_tokens=budget, kvcache_block_size=4, num_kvcache_blocks=200)
    steps = visual_data.run_schedule(requests, False, scheduler_class=Scheduler, **engine)
    prompt_steps = [s for s in steps if decoding in s["batch"]]
    assert all(set(range(decoding)) <= set(s["batch"]) for s in prompt_steps)  # the decodes never skip a step
    js = run_node(f"const {{chunks}} = require({json.dumps(str(VISUALS_JS / 'ch05.js'))});"
                  f"console.log(JSON.stringify(chunks({prompt}, {decoding}, {budget})));")
    assert sum(js) == prompt and len(js) == len(prompt_steps)


@needs_node
def test_chapter_10_js_rounds_like_torch_float8_e4m3fn():
    """Every code's value, the midpoints between neighbours (ties go to the even mantissa), values
    past 448 (saturate), subnormals and random values of every size: the same code as torch."""
    import random

    import torch

    grid = torch.arange(127, dtype=torch.uint8).view(torch.float8_e4m3fn).double()  # codes 0..126
    mids = ((grid[1:] + grid[:-1]) / 2).tolist()
    rng = random.Random(0)
    randoms = [rng.choice([-1, 1]) * 10 ** rng.uniform(-5, 3) for _ in range(2000)]
    values = grid.tolist() + mids + [-v for v in mids] + [448.5, 464.0, 480.0, 1e6, -1e6, 1e-9, -1e-9, 0.0] + randoms
    want = torch.tensor(values, dtype=torch.float64).to(torch.float8_e4m3fn)
    js = run_node(f"const {{toE4m3}} = require({json.dumps(str(VISUALS_JS / 'ch10.js'))});"
                  f"console.log(JSON.stringify({json.dumps(values)}.map(x => toE4m3(x).code)));")
    codes = want.view(torch.uint8).tolist()
    bad = [(v, c, j) for v, c, j in zip(values, codes, js) if c != j]
    assert not bad, f"{len(bad)} values differ, e.g. (value, torch code, JS code) {bad[:5]}"


def test_chapter_10_data_is_chapter_10s_arithmetic():
    """The capacity is what chapter 10's engine allocates: half the bytes per token, twice the
    blocks, and one float32 scale per layer, KV head and tensor for the whole pool."""
    data = committed("ch10")
    qwen = next(m for m in data["models"] if m["name"] == "Qwen3-0.6B")
    assert qwen["fp8_bytes"] * 2 == qwen["bf16_bytes"] == 112 * 1024  # one byte a number instead of two
    assert qwen["scale_bytes"] == 2 * 28 * 8 * 4  # K and V, each layer and KV head: one float32 scale
    for m in data["models"]:
        assert m["bf16_blocks"] == data["budget_bytes"] // (data["block_size"] * m["bf16_bytes"]), m["name"]
        assert m["fp8_blocks"] == data["budget_bytes"] // (data["block_size"] * m["fp8_bytes"]), m["name"]
        assert m["fp8_blocks"] in (2 * m["bf16_blocks"], 2 * m["bf16_blocks"] + 1), m["name"]
    assert data["fp8_max"] == torch_fp8_max()


def test_chapter_10_grid_is_torchs_every_code():
    import torch

    data = committed("ch10")
    codes = torch.arange(127, dtype=torch.uint8).view(torch.float8_e4m3fn).double().tolist()
    assert data["grid"] == codes  # chapter 10's decode_e4m3, value by value


@needs_node
def test_chapter_10_js_grid_is_the_datas():
    js = run_node(f"const {{GRID}} = require({json.dumps(str(VISUALS_JS / 'ch10.js'))});"
                  "console.log(JSON.stringify(GRID));")
    assert js == committed("ch10")["grid"]


def test_chapter_10_key_round_trip_is_the_engines():
    """The dots of the visual are chapter 10's quantize then dequantize of the key, at its scale:
    within half a step of the grid, as |x| / scale <= 448 / headroom (28: steps of 2 at most)."""
    import torch

    from ch10.fp8 import dequantize_fp8
    from ch10.solutions import quantize_fp8

    data = committed("ch10")
    key, scale = torch.tensor(data["key"])[None, None], torch.tensor([data["scale"]])  # (1, 1, head_dim), (1,)
    back = dequantize_fp8(quantize_fp8(key, scale), scale)[0, 0]
    # the committed key is rounded to 4 decimals, which can move a value across a midpoint: one step
    moved = [abs(b - f) for b, f in zip(back.tolist(), data["key_fp8"]) if abs(b - f) > 1e-3]
    assert len(moved) <= 2 and all(d <= 2 * data["scale"] + 1e-3 for d in moved), moved
    # the scale came from the whole prompt's keys of this head: this token's largest lands at most at 28
    assert max(abs(x) for x in data["key"]) / data["scale"] <= data["fp8_max"] / data["headroom"] * 1.001
    assert (back - key[0, 0]).abs().max().item() <= data["scale"] * 1.0 + 1e-4  # half a step of 2


def torch_fp8_max() -> float:
    import torch

    return float(torch.finfo(torch.float8_e4m3fn).max)


@pytest.mark.slow
@pytest.mark.model
def test_chapter_10_data_is_the_models_key():
    fresh, old = fresh_and_committed("ch10")
    for name in ("key", "key_fp8"):
        assert fresh[name] == pytest.approx(old[name], abs=2e-3), name
    assert fresh["scale"] == pytest.approx(old["scale"], rel=1e-3)
    measured = ("key", "key_fp8", "scale")
    assert {k: v for k, v in fresh.items() if k not in measured} == {k: v for k, v in old.items() if k not in measured}


@pytest.mark.model
def test_chapter_6_data_is_the_final_block_managers():
    fresh, old = fresh_and_committed("ch06")
    assert fresh == old
    hits = {e["name"]: e["hit"] for e in old["events"] if "hit" in e}
    assert hits["A"] == 0 and hits["D"] == 0  # the first request, and another system prompt
    assert hits["C"] > hits["B"] > 0  # C repeats A's question: A's freed blocks were still cached


@needs_node
def test_chapter_11_js_bound_is_the_workload_bound():
    """The visual's bound at any bandwidth is ch11.roofline.workload_bound's on nano-vllm's workload."""
    import torch

    from ch01.config import ModelConfig
    from ch05.roofline import H200, Roofline
    from ch11.roofline import workload_bound
    from ch11.workload import nano_vllm_workload
    from nanovllm_final.bench import QWEN3_0_6B

    data, work = committed("ch11"), nano_vllm_workload()
    config = ModelConfig.from_dict(QWEN3_0_6B)
    for bandwidth in (2.0e12, 4.8e12, 8.0e12):
        machine = Roofline("test", H200.peak_flops, bandwidth, "test")
        js = run_node(f"const {{boundTokensPerS}} = require({json.dumps(str(VISUALS_JS / 'ch11.js'))}); const d = {json.dumps(data)};"
                      f"console.log(JSON.stringify(['bf16', 'fp8'].map(k => boundTokensPerS(d.bound[k], d.output_tokens, {bandwidth}))));")
        for got, kv_dtype in zip(js, (torch.bfloat16, torch.float8_e4m3fn)):
            want = workload_bound(config, [len(p) for p in work.prompts], work.output_lens, machine, kv_dtype=kv_dtype)
            assert got == pytest.approx(want["output_tokens_per_s"], rel=1e-9), (bandwidth, kv_dtype)
