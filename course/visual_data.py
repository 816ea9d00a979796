"""The numbers behind the course site's interactive visuals: docs/assets/visuals/chNN.json.

Each chapter page draws one visual (docs/javascripts/visuals/chNN.js). What it shows is computed
here from the chapter's own code, never typed in by hand:

    ch01  a real greedy generation of SmolLM2 through ch01.LLM: each step's top-10 next tokens
          and the tokens each forward pass processed (needs models/smollm2-135m-instruct)
    ch02  three models' numbers read by ch01.ModelConfig from their config.json values, and
          their weight counts from ch01's CausalLM built on the meta device (no weights loaded)
    ch03  a pool size and an example run of ch03.BlockManager (the JS replays the same rules;
          tests/test_visuals.py checks that it matches this Python, operation by operation)
    ch04  the engine's limits and an example run of ch04's Scheduler and StaticScheduler (the JS
          replays the same rules; tests/test_visuals.py compares them step by step)
    ch05  Qwen3-0.6B's GEMM FLOPs and bytes per step, as ch05.roofline counts them, and the H200's
          roofline from the same module
    ch06  chat prompts sharing a system prompt (SmolLM2's tokenizer) through nanovllm_final's
          prefix-caching BlockManager, the pool after each request (needs the model folder)
    ch07  SmolLM2's whole next-token distribution for two prompts: the likeliest 400 tokens by
          name, the rest of the vocabulary counted by logit (needs the model folder); the JS
          filters them as ch07's sampler does
    ch08  what each rank holds of Qwen3-0.6B split by chapter 8's layers at 1, 2, 4 and 8 ranks
          (ch01's model with ch08's parallel Parts, built on the meta device) and the all-reduce
          bytes per token from ch08.allreduce_bytes_per_token
    ch09  the bytes of residual add + RMSNorm, torch's ops against the fused kernel (ch09.traffic,
          Qwen3-0.6B's rows in bf16), and the GPU measurement of decode steps, eager against CUDA
          graphs, from measurements/ch09_decode_graphs.json (`python -m ch09.measure_gpu`
          on a GPU writes it; "measured": null until then)
    ch10  chapter 10's e4m3 values (ch10.e4m3), a real key vector of SmolLM2 with its head's scale
          and its FP8 round trip (ch10.fp8; needs the model folder), and the KV blocks of three
          models in a 40 GiB budget, bf16 against FP8 (ch10.solutions.num_blocks_in_budget); the JS
          rounds to e4m3 as torch.float8_e4m3fn does
    ch11  the committed measurements (measurements/: the CPU staircase, the online sweep, the
          H200 runs, the GPU run once it exists) and the roofline bound of nano-vllm's workload
          from ch11.roofline: the bound's prefill time and the bytes its decode steps read

    python -m course.visual_data              # write every file
    python -m course.visual_data ch02 ch03    # only these
    python -m course.visual_data --check      # exit 1 if a committed file differs from a fresh one
"""

import argparse
import json
import random
import sys
from pathlib import Path

from course.paths import DEFAULT_MODEL_DIR, REPO_ROOT

OUT_DIR = REPO_ROOT / "docs" / "assets" / "visuals"
SMOLLM2 = DEFAULT_MODEL_DIR


# --- chapter 1: one real generation, step by step ------------------------------------------------

CH01_PROMPT = "The capital of France is"  # the page's "Why it matters" run: 5 prompt tokens, 20 new
CH01_MAX_TOKENS = 20
CH01_TOP_K = 10


def layer_weights(config) -> dict:
    """Weight counts of ch01's CausalLM for `config`, built on the meta device (shapes only)."""
    import torch

    from ch01.model import CausalLM

    with torch.device("meta"):
        model = CausalLM(config)
    per_position = sum(p.numel() for n, p in model.named_parameters() if ".layers." in n and p.dim() == 2)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),  # a tied LM head counts once
        "layer_matmul_weights": per_position,  # each costs 2 FLOPs (multiply, add) per token position
        "lm_head_weights": model.lm_head.weight.numel(),  # run once per pass, on the last position
    }


def ch01_data(model_path: Path = SMOLLM2) -> dict:
    import torch

    from ch01 import LLM, SamplingParams

    if not (model_path / "config.json").is_file():
        raise FileNotFoundError(f"{model_path} has no config.json; run `make model` first")
    torch.manual_seed(0)
    llm = LLM(model_path)
    passes, step_logits = [], []  # tokens processed by each forward pass; the logits each pass picked from
    forward, compute_logits = llm.model.forward, llm.model.compute_logits

    def counting_forward(input_ids, positions):
        passes.append(len(input_ids))
        return forward(input_ids, positions)

    def recording_logits(hidden):
        logits = compute_logits(hidden)
        step_logits.append(logits[-1].float())
        return logits

    llm.model.forward, llm.model.compute_logits = counting_forward, recording_logits
    params = SamplingParams(temperature=0, max_tokens=CH01_MAX_TOKENS, ignore_eos=True)
    out = llm.generate(CH01_PROMPT, params)[0]
    decode = lambda i: llm.tokenizer.decode([i])  # noqa: E731
    steps = []
    for positions, logits, chosen in zip(passes, step_logits, out["token_ids"], strict=True):
        probs = torch.softmax(logits, dim=-1)
        top = torch.topk(probs, CH01_TOP_K)
        steps.append({
            "positions": positions,
            "chosen": decode(chosen),
            "top": [[decode(i), round(p, 4)] for p, i in zip(top.values.tolist(), top.indices.tolist())],
        })
    weights = layer_weights(llm.config)
    c = llm.config
    return {
        "model": "SmolLM2-135M-Instruct",
        "prompt": CH01_PROMPT,
        "prompt_tokens": [decode(i) for i in llm.encode_prompt(CH01_PROMPT)],
        "sampling": "greedy (temperature 0), 20 new tokens, ignore_eos",
        "steps": steps,
        # FLOPs of one pass over T positions: T * 2 * layer weights + 2 * LM head weights
        # + attention's scores and weighted sum, 4 * layers * heads * head_dim per (query, key) pair.
        "flops_per_position": 2 * weights["layer_matmul_weights"],
        "flops_lm_head": 2 * weights["lm_head_weights"],
        "flops_attention_per_pair": 4 * c.num_hidden_layers * c.num_attention_heads * c.head_dim,
    }


# --- chapter 2: what the cache costs and saves, for three models ----------------------------------

# The fields of each model's config.json that the numbers need, copied from the files published
# with the weights. SmolLM2's is the course's own model folder (checked against it by a test).
# Llama 3.1's rope_scaling ("llama3", factor 8) is left out: ch01 does not implement it, and it
# changes no size.
CH02_MODELS = {
    "SmolLM2-135M": {
        "source": "HuggingFaceTB/SmolLM2-135M-Instruct, config.json (models/smollm2-135m-instruct)",
        "config": {
            "architectures": ["LlamaForCausalLM"], "vocab_size": 49152, "hidden_size": 576,
            "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "head_dim": 64, "max_position_embeddings": 8192,
            "tie_word_embeddings": True, "eos_token_id": 2,
        },
    },
    "Qwen3-0.6B": {
        "source": "Qwen/Qwen3-0.6B, config.json",
        "config": {
            "architectures": ["Qwen3ForCausalLM"], "vocab_size": 151936, "hidden_size": 1024,
            "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
            "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
            "tie_word_embeddings": True, "eos_token_id": 151645,
        },
    },
    "Llama-3.1-8B": {
        "source": "meta-llama/Llama-3.1-8B-Instruct, config.json (head_dim = hidden_size / heads)",
        "config": {
            "architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 4096,
            "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "max_position_embeddings": 131072,
            "tie_word_embeddings": False, "eos_token_id": [128001, 128008, 128009],
        },
    },
}


def ch02_data() -> dict:
    from ch01.config import ModelConfig

    models = []
    for name, entry in CH02_MODELS.items():
        c = ModelConfig.from_dict(entry["config"])
        weights = layer_weights(c)
        models.append({
            "name": name,
            "source": entry["source"],
            "layers": c.num_hidden_layers,
            "heads": c.num_attention_heads,
            "kv_heads": c.num_key_value_heads,
            "head_dim": c.head_dim,
            "max_len": c.max_position_embeddings,
            "kv_bytes_per_token": c.kv_bytes_per_token,  # bf16, ch01.ModelConfig's own formula
            "weight_bytes": 2 * weights["parameters"],  # bf16
            "parameters": weights["parameters"],
            "flops_per_position": 2 * weights["layer_matmul_weights"],
            "flops_lm_head": 2 * weights["lm_head_weights"],
            "flops_attention_per_pair": 4 * c.num_hidden_layers * c.num_attention_heads * c.head_dim,
        })
    return {"dtype": "bf16", "models": models}


# --- chapter 3: the block pool ---------------------------------------------------------------------

CH03_NUM_BLOCKS, CH03_BLOCK_SIZE = 16, 4  # small enough to draw every slot


def run_block_ops(ops: list, num_blocks: int, block_size: int) -> list[dict]:
    """Run operations through ch03.BlockManager, as ch03.LLM uses it, and record the pool after each:

        ["add", prompt_len]  a new sequence; its prefill allocates (refused when can_allocate is False)
        ["grow", i]          sequence i gets one more token, then may_append (refused when can_append is False)
        ["finish", i]        sequence i is done: deallocate

    i counts the adds in order, a refused one included. The JS (docs/javascripts/visuals/ch03.js)
    applies the same operations to the same rules; tests/test_visuals.py compares the two."""
    from ch03.block_manager import BlockManager
    from ch03.sequence import Sequence

    bm = BlockManager(num_blocks, block_size)
    seqs, live, states = [], set(), []
    for op in ops:
        ok = True
        if op[0] == "add":
            seq = Sequence([0] * op[1])
            seqs.append(seq)  # numbered even when refused, so that i means the same in every run
            ok = bm.can_allocate(seq)
            if ok:
                bm.allocate(seq)
                live.add(len(seqs) - 1)
        elif op[0] == "grow":
            if op[1] not in live:
                raise ValueError(f"{op}: sequence {op[1]} is not live")
            seq = seqs[op[1]]
            seq.append_token(0)
            ok = bm.can_append(seq)
            if ok:
                bm.may_append(seq)
            else:
                seq.token_ids.pop()  # refused: the token is not kept (the engine would wait or preempt)
                seq.num_tokens -= 1
        elif op[0] == "finish":
            if op[1] not in live:
                raise ValueError(f"{op}: sequence {op[1]} is not live")
            bm.deallocate(seqs[op[1]])
            live.discard(op[1])
        else:
            raise ValueError(f"unknown operation {op!r}; use add, grow or finish")
        states.append({
            "ok": ok,
            "free": list(bm.free_block_ids),
            "tables": {str(i): list(seqs[i].block_table) for i in sorted(live)},
            "tokens": {str(i): seqs[i].num_tokens for i in sorted(live)},
        })
    return states


def random_block_ops(n: int, seed: int, num_blocks: int, block_size: int, max_prompt: int = 10) -> list:
    """A random script of n operations that only grows and finishes sequences still live."""
    rng = random.Random(seed)
    ops, live = [], []
    for _ in range(n):
        kind = rng.choices(["add", "grow", "finish"], weights=[2, 6, 1])[0] if live else "add"
        ops.append(["add", rng.randint(1, max_prompt)] if kind == "add" else [kind, rng.choice(live)])
        live = [int(i) for i in run_block_ops(ops, num_blocks, block_size)[-1]["tables"]]
    return ops


# The example the visual opens on. A grows into a third block that is not next to its first two;
# B finishes and its block goes to the far end of the free list; D takes the next free blocks.
CH03_EXAMPLE = [["add", 6], ["add", 3], ["add", 9], ["grow", 0], ["grow", 0], ["grow", 0],
                ["grow", 1], ["finish", 1], ["add", 5], ["grow", 2]]
CH03_EXAMPLE_NOTE = ("An example: A grew into block 6, away from its blocks 0 and 1; B finished and its "
                     "block 2 went to the end of the free list; D then took blocks 7 and 8.")


def ch03_data() -> dict:
    return {
        "num_blocks": CH03_NUM_BLOCKS,
        "block_size": CH03_BLOCK_SIZE,
        "example": CH03_EXAMPLE,
        "example_note": CH03_EXAMPLE_NOTE,
        "example_states": run_block_ops(CH03_EXAMPLE, CH03_NUM_BLOCKS, CH03_BLOCK_SIZE),
    }


# --- chapter 4: static against continuous batching ------------------------------------------------

# The engine the visual simulates: small enough to draw every step of every request.
CH04_ENGINE = {"max_num_seqs": 4, "max_num_batched_tokens": 64, "kvcache_block_size": 4, "num_kvcache_blocks": 40}
CH04_WORKLOAD = {"num_requests": 12, "prompt_min": 4, "prompt_max": 12, "output_mean": 12}


def run_schedule(requests: list, static: bool, max_num_seqs: int, max_num_batched_tokens: int,
                 kvcache_block_size: int, num_kvcache_blocks: int, max_steps: int = 5000,
                 scheduler_class=None) -> list[dict]:
    """Run chapter 4's Scheduler (or StaticScheduler) with no model: requests are
    [arrival step, prompt length, output length]; each step, the arrived ones are added, the
    scheduler picks a batch, and every sequence of it gets a token (never EOS). Returns one record
    per step: "prefill", "decode" or "idle", the batch, and the running and waiting queues after it,
    all as request indices. docs/javascripts/visuals/ch04.js replays the same rules. Another
    chapter's scheduler (same interface) may stand in with scheduler_class."""
    from types import SimpleNamespace

    from ch01.sampling_params import SamplingParams
    from ch03.block_manager import BlockManager
    from ch04.scheduler import Scheduler, StaticScheduler
    from ch04.sequence import Sequence

    config = SimpleNamespace(max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens, eos=())
    scheduler_class = scheduler_class or (StaticScheduler if static else Scheduler)
    scheduler = scheduler_class(config, BlockManager(num_kvcache_blocks, kvcache_block_size))
    seqs = [Sequence([0] * prompt, SamplingParams(max_tokens=output, ignore_eos=True)) for _, prompt, output in requests]
    index = {id(seq): i for i, seq in enumerate(seqs)}
    ids = lambda queue: [index[id(seq)] for seq in queue]  # noqa: E731
    arrivals = sorted(range(len(requests)), key=lambda i: (requests[i][0], i))
    steps = []
    while arrivals or not scheduler.is_finished():
        while arrivals and requests[arrivals[0]][0] <= len(steps):
            scheduler.add(seqs[arrivals.pop(0)])
        batch = scheduler.schedule() if not scheduler.is_finished() else []
        kind = ("prefill" if any(seq.is_prefill for seq in batch) else "decode") if batch else "idle"
        if batch:
            scheduler.postprocess(batch, [0] * len(batch))
        steps.append({"kind": kind, "batch": ids(batch),
                      "running": ids(scheduler.running), "waiting": ids(scheduler.waiting)})
        if len(steps) > max_steps:
            raise RuntimeError(f"no end after {max_steps} steps; does every request fit in the pool alone?")
    return steps


def random_requests(n: int, seed: int, rate: float, output_mean: int, spread: float, prompt_min: int = 4,
                    prompt_max: int = 12) -> list:
    """n requests arriving at `rate` per step (Poisson), outputs of output_mean * (1 +- spread)."""
    rng = random.Random(seed)
    t, requests = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        low, high = max(1, round(output_mean * (1 - spread))), round(output_mean * (1 + spread))
        requests.append([int(t), rng.randint(prompt_min, prompt_max), rng.randint(low, max(low, high))])
    return requests


# The example the visual's test replays: a burst of requests with very different output lengths.
CH04_EXAMPLE = [[0, 6, 3], [0, 9, 20], [1, 5, 8], [2, 12, 2], [3, 7, 14], [5, 4, 5], [6, 10, 18], [9, 8, 4]]


def ch04_data() -> dict:
    compact = lambda steps: [[s["kind"][0], s["batch"]] for s in steps]  # noqa: E731
    return {
        "engine": CH04_ENGINE,
        "workload": CH04_WORKLOAD,
        "example": CH04_EXAMPLE,
        "example_static": compact(run_schedule(CH04_EXAMPLE, True, **CH04_ENGINE)),
        "example_continuous": compact(run_schedule(CH04_EXAMPLE, False, **CH04_ENGINE)),
    }


# --- chapter 5: the roofline, and what a chunk budget does to TTFT and TPOT -------------------------

CH05_MODEL = "Qwen3-0.6B"  # nano-vllm's model, its numbers as in CH02_MODELS
CH05_PROMPT = 8192  # the long prompt that arrives while the batch decodes


def ch05_data() -> dict:
    import torch

    from ch01.config import ModelConfig
    from ch05 import roofline

    config = ModelConfig.from_dict(CH02_MODELS[CH05_MODEL]["config"])
    shapes = roofline.model_gemm_shapes(config)
    size = roofline.element_size(torch.bfloat16)
    # step_flops_and_bytes(config, M) is linear in M: M * per-token terms + the weights read once.
    return {
        "model": CH05_MODEL,
        "dtype": "bf16",
        "flops_per_token": sum(roofline.gemm_flops(1, k, n) for k, n in shapes),
        "bytes_per_token": sum((k + n) * size for k, n in shapes),  # a token's input and output rows
        "weight_bytes": sum(k * n * size for k, n in shapes),
        "hardware": {"name": roofline.H200.name, "peak_flops": roofline.H200.peak_flops,
                     "bandwidth": roofline.H200.bandwidth, "source": roofline.H200.source},
        "prompt_tokens": CH05_PROMPT,
    }


# --- chapter 6: the prefix cache ---------------------------------------------------------------

CH06_SYSTEM = "You are a friendly geography teacher. Answer in one short sentence."
CH06_EVENTS = [  # ("send", name, system prompt or None for CH06_SYSTEM, question) or ("finish", name)
    ("send", "A", None, "What is the capital of France?"),
    ("send", "B", None, "What is the capital of Italy?"),
    ("finish", "A"),
    ("send", "C", None, "What is the capital of France?"),
    ("send", "D", "You are a pirate. Answer in one short sentence.", "What is the capital of France?"),
    ("finish", "B"),
    ("send", "E", None, "Which river runs through Paris?"),
]
CH06_POOL, CH06_BLOCK_SIZE = 24, 16


def ch06_data(model_path: Path = SMOLLM2) -> dict:
    """Chat prompts that share a system prompt through nanovllm_final's BlockManager: each request
    is allocated (hits counted), its prefill marked computed and its full blocks registered
    (cache_blocks), and a finished one deallocated; the pool is recorded after each event."""
    from transformers import AutoTokenizer

    from nanovllm_final.engine.block_manager import BlockManager
    from nanovllm_final.engine.sequence import Sequence

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    bm = BlockManager(CH06_POOL, CH06_BLOCK_SIZE)
    seqs, states = {}, []
    for event in CH06_EVENTS:
        if event[0] == "send":
            _, name, system, question = event
            messages = [{"role": "system", "content": system or CH06_SYSTEM}, {"role": "user", "content": question}]
            ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))
            seq = seqs[name] = Sequence(ids)
            before = bm.num_hit_tokens
            bm.allocate(seq)
            hit = bm.num_hit_tokens - before
            seq.num_cached_tokens = seq.num_tokens  # its prefill ran: every prompt token's K/V is stored
            bm.cache_blocks(seq)
            text = f"{name} sends “{question}”" + ("" if system is None else " with another system prompt")
            step = {"text": text, "name": name, "tokens": seq.num_tokens, "hit": hit}
        else:
            bm.deallocate(seqs[event[1]])
            del seqs[event[1]]
            step = {"text": f"{event[1]} finishes: its blocks' ref counts drop; unused ones keep their hash", "name": event[1]}
        step["tables"] = {n: list(q.block_table) for n, q in seqs.items()}
        step["blocks"] = [[b.ref_count, f"{b.hash:016x}"[:6] if b.hash != -1 and bm.hash_to_block_id.get(b.hash) == b.block_id else ""]
                          for b in bm.blocks]
        step["free"] = list(bm.free_block_ids)
        states.append(step)
    return {"block_size": CH06_BLOCK_SIZE, "system": CH06_SYSTEM, "events": states}


# --- chapter 7: sampling filters on real logits ----------------------------------------------------

CH07_PROMPTS = ["The capital of France is", "Once upon a time, there was a"]  # one sure, one open
CH07_NAMED = 400  # the most likely tokens, each with its text and logit
CH07_TAIL_STEP = 0.01  # every other token of the vocabulary, counted by its logit rounded to this


def ch07_model_logits(model_path: Path = SMOLLM2) -> tuple:
    """(the tokenizer, {prompt: its next-token logits over the whole vocabulary, float32 (vocab,)})."""
    import torch

    from ch01 import LLM

    if not (model_path / "config.json").is_file():
        raise FileNotFoundError(f"{model_path} has no config.json; run `make model` first")
    llm = LLM(model_path)
    logits = {}
    with torch.inference_mode():
        for prompt in CH07_PROMPTS:
            ids = llm.encode_prompt(prompt)
            hidden = llm.model(torch.tensor(ids), torch.arange(len(ids)))  # (T, D)
            logits[prompt] = llm.model.compute_logits(hidden[-1:])[0].float()  # (vocab,)
    return llm.tokenizer, logits


def ch07_data(model_path: Path = SMOLLM2) -> dict:
    """The whole next-token distribution of each prompt: the CH07_NAMED likeliest tokens one by one,
    and every other token of the vocabulary in `tail`, as [logit, how many tokens have it] with the
    logit rounded to CH07_TAIL_STEP. Nothing is left out: entropies, top-p counts and draws over
    the tail are the model's (to the rounding), which is where temperature and top-p act most."""
    import torch

    tokenizer, all_logits = ch07_model_logits(model_path)
    prompts = []
    for prompt, logits in all_logits.items():
        ranked = logits.sort(descending=True)
        head, rest = ranked.indices[:CH07_NAMED], ranked.values[CH07_NAMED:]
        steps = torch.round(rest.double() / CH07_TAIL_STEP).long()  # (vocab - CH07_NAMED,)
        values, counts = steps.unique(sorted=True, return_counts=True)
        prompts.append({
            "prompt": prompt,
            "tokens": [tokenizer.decode([i]) for i in head.tolist()],
            "logits": [round(x, 3) for x in ranked.values[:CH07_NAMED].tolist()],
            "tail": [[round(v * CH07_TAIL_STEP, 2), c] for v, c in zip(values.flip(0).tolist(), counts.flip(0).tolist())],
        })
    return {"model": "SmolLM2-135M-Instruct", "vocab_size": int(logits.shape[-1]), "named": CH07_NAMED, "prompts": prompts}


def ch07_logits(entry: dict) -> list[float]:
    """Every logit of one ch07 prompt, most likely first: the named ones, then the tail expanded."""
    return entry["logits"] + [value for value, count in entry["tail"] for _ in range(count)]


# --- chapter 8: tensor parallelism ---------------------------------------------------------------

CH08_MODEL = "Qwen3-0.6B"
CH08_RANKS = (1, 2, 4, 8)


def ch08_data() -> dict:
    """What rank 0 holds at each tensor-parallel size: chapter 1's model with chapter 8's parallel
    layers, built on the meta device as rank 0 of n (shapes only, no weights), and what each rank
    sends per token, counted by chapter 8's own function."""
    import torch

    from ch01.config import ModelConfig
    from ch01.model import CausalLM, Parts
    from ch08 import RowParallelLinear, allreduce_bytes_per_token, tensor_parallel
    from ch08.model_runner import PARALLEL_LAYERS

    config = ModelConfig.from_dict(CH02_MODELS[CH08_MODEL]["config"])
    sizes = []
    for tp in CH08_RANKS:
        with tensor_parallel(0, tp), torch.device("meta"):
            model = CausalLM(config, Parts(**PARALLEL_LAYERS))
        layer = model.model.layers[0]
        row_parallel = sum(isinstance(m, RowParallelLinear) for m in layer.modules())
        weights = {"embed_tokens / lm_head": model.model.embed_tokens.weight}
        weights.update({name.removesuffix(".weight"): p for name, p in layer.named_parameters() if p.dim() == 2})
        sizes.append({
            "tp": tp,
            "parameters_per_rank": sum(p.numel() for p in model.parameters()),
            "heads_per_rank": layer.self_attn.attn.num_heads,
            "kv_heads_per_rank": layer.self_attn.attn.num_kv_heads,
            "allreduce_bytes_per_token": allreduce_bytes_per_token(config, tp, dtype_bytes=2),
            "shards": {name: list(p.shape) for name, p in weights.items()},
        })
    return {
        "model": CH08_MODEL,
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "dtype_bytes": 2,
        # A row-parallel layer (o_proj, down_proj) all-reduces its output: one hidden vector per token.
        "all_reduces_per_layer": row_parallel,
        "ranks": sizes,
    }


# --- chapter 9: fused kernels and CUDA graphs -----------------------------------------------------

CH09_TOKENS = [1, 8, 64, 256]  # decode batch sizes: one token each


def ch09_data() -> dict:
    import torch

    from ch09 import measure_gpu
    from ch09.traffic import add_rms_norm_traffic

    measured = measure_gpu.read()  # measurements/ch09_decode_graphs.json, one row per batch size; None until measured
    return {
        "traffic": [add_rms_norm_traffic(n, 1024, torch.bfloat16) for n in CH09_TOKENS],  # Qwen3-0.6B's hidden size
        "measurement_file": str(measure_gpu.OUT.relative_to(REPO_ROOT)),
        "measure_command": "python -m ch09.measure_gpu",
        "measured": measured and {key: measured[key] for key in
                                  ("model", "context_len", "steps", "machine", "versions", "date", "command")},
    }


# --- chapter 10: FP8 (e4m3) for the KV cache -------------------------------------------------------

CH10_LAYER, CH10_HEAD = 15, 0  # whose key vector the visual quantizes: a middle layer, first KV head
CH10_BUDGET = 40 * 2**30  # the KV pool's bytes in the capacity table
CH10_BLOCK_SIZE = 16  # tokens per block, chapter 4's default


def ch10_data(model_path: Path = SMOLLM2) -> dict:
    """Chapter 10's own numbers: every e4m3 value (ch10.solutions.decode_e4m3), a real key vector of
    SmolLM2 as the cache stores it (after RoPE, caught at chapter 1's attention call) with its
    head's scale set from the prompt's keys and its value after the round trip (ch10.fp8), and the
    blocks that fit a budget in bf16 and in FP8 (ch10.solutions.num_blocks_in_budget)."""
    from types import SimpleNamespace

    import torch

    from ch01 import LLM
    from ch01.config import ModelConfig
    from ch10.e4m3 import E4M3_MAX
    from ch10.fp8 import FP8_DTYPE, FP8_HEADROOM, dequantize_fp8, fp8_scales
    from ch10.solutions import decode_e4m3, num_blocks_in_budget, quantize_fp8

    if not (model_path / "config.json").is_file():
        raise FileNotFoundError(f"{model_path} has no config.json; run `make model` first")
    llm = LLM(model_path)
    seen = {}
    attention = llm.model.model.layers[CH10_LAYER].self_attn.attn
    hook = attention.register_forward_pre_hook(lambda module, args: seen.update(k=args[1]))  # None: args unchanged
    with torch.inference_mode():
        ids = llm.encode_prompt(CH01_PROMPT)
        llm.model(torch.tensor(ids), torch.arange(len(ids)))
    hook.remove()
    keys = seen["k"].reshape(len(ids), -1, llm.config.head_dim).float()  # (T, n_kv_heads, head_dim)
    scale = fp8_scales(keys)  # (n_kv_heads,): set from the first stored tokens, as the engine does
    back = dequantize_fp8(quantize_fp8(keys, scale), scale)  # (T, n_kv_heads, head_dim)
    models = []
    for name in ("SmolLM2-135M", "Qwen3-0.6B", "Llama-3.1-8B"):
        c = ModelConfig.from_dict(CH02_MODELS[name]["config"])
        shape = SimpleNamespace(num_hidden_layers=c.num_hidden_layers, num_key_value_heads=c.num_key_value_heads,
                                head_dim=c.head_dim)
        blocks = {dtype: num_blocks_in_budget(CH10_BUDGET, shape, CH10_BLOCK_SIZE, dtype)
                  for dtype in (torch.bfloat16, FP8_DTYPE)}
        models.append({"name": name, "bf16_bytes": c.kv_bytes_per_token, "fp8_bytes": c.kv_bytes_per_token // 2,
                       "scale_bytes": 2 * c.num_hidden_layers * c.num_key_value_heads * 4,  # the whole pool's, not per token
                       "bf16_blocks": blocks[torch.bfloat16], "fp8_blocks": blocks[FP8_DTYPE]})
    return {
        "model": "SmolLM2-135M-Instruct",
        "vector": f"the key of the last token of \"{CH01_PROMPT}\", layer {CH10_LAYER}, KV head {CH10_HEAD}",
        "key": [round(x, 4) for x in keys[-1, CH10_HEAD].tolist()],
        "key_fp8": [round(x, 4) for x in back[-1, CH10_HEAD].tolist()],
        "scale": round(scale[CH10_HEAD].item(), 8),
        "headroom": FP8_HEADROOM,
        "fp8_max": E4M3_MAX,
        "grid": [decode_e4m3(code) for code in range(127)],  # the non-negative finite values; 127 is NaN
        "budget_bytes": CH10_BUDGET,
        "block_size": CH10_BLOCK_SIZE,
        "models": models,
    }


# --- chapter 11: benchmarks ------------------------------------------------------------------------

CH11_FILES = {"staircase": "ch11_staircase_cpu", "online": "ch11_online_cpu", "h200": "bench_h200", "gpu": "ch11_gpu"}


def ch11_data() -> dict:
    """The measurement files (measurements/NAME.json, as course.measurements loads them; None where a
    run has not been made yet), and the bound:
    on an H200 every decode step of the workload is memory-bound (checked), so the bound at a
    bandwidth B is prefill_seconds + decode_bytes / B, which the JS recomputes as B moves."""
    import torch

    from ch01.config import ModelConfig
    from ch05.roofline import H200
    from ch11.roofline import workload_bound
    from ch11.workload import nano_vllm_workload
    from nanovllm_final.bench import QWEN3_0_6B

    from course import measurements

    files = {k: measurements.load(name) if name in measurements.names() else None for k, name in CH11_FILES.items()}
    work = nano_vllm_workload()
    config = ModelConfig.from_dict(QWEN3_0_6B)
    bounds = {}
    for name, kv_dtype in (("bf16", torch.bfloat16), ("fp8", torch.float8_e4m3fn)):
        b = workload_bound(config, [len(p) for p in work.prompts], work.output_lens, H200, kv_dtype=kv_dtype)
        assert abs(b["decode_seconds"] - b["bytes_read"] / H200.bandwidth) < 1e-9 * b["seconds"], "a compute-bound decode step"
        bounds[name] = dict(prefill_seconds=b["prefill_seconds"], decode_bytes=b["bytes_read"], tokens_per_s=b["output_tokens_per_s"])
    # The slider starts where the bars were measured: the copy bandwidth chapter 11's GPU run measured
    # (the engine's bars are that run's), else the H200's datasheet (the bars are bench_h200's).
    gpu = files["gpu"]
    copies = [c for kv in ("bf16", "fp8") for c in (gpu["values"].get(kv, {}).get("copy_gb_per_s", []) if gpu else [])]
    start = (max(copies) * 1e9, f"the copy bandwidth {gpu['machine']['gpu']} measured ({max(copies):,} GB/s)") if copies \
        else (H200.bandwidth, f"{H200.name}'s datasheet bandwidth")
    return dict(files={k: f"{CH11_FILES[k]}.json" for k in files}, **files, output_tokens=work.num_output_tokens,
                bound=dict(model="Qwen3-0.6B", hardware=H200.name, bandwidth=H200.bandwidth, source=H200.source,
                           start_bandwidth=start[0], start_source=start[1], **bounds))


# --- writing ---------------------------------------------------------------------------------------

BUILDERS = {"ch01": ch01_data, "ch02": ch02_data, "ch03": ch03_data, "ch04": ch04_data, "ch05": ch05_data, "ch06": ch06_data, "ch07": ch07_data, "ch08": ch08_data, "ch09": ch09_data, "ch10": ch10_data, "ch11": ch11_data}


def dumps(data: dict) -> str:
    """One canonical text per data, so that a regenerated file compares equal byte for byte."""
    return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"which visuals (default: all of {', '.join(BUILDERS)})")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BUILDERS]
    if unknown:
        parser.error(f"unknown visual {unknown}; choose from {', '.join(BUILDERS)}")
    stale = []
    for name in args.names or BUILDERS:
        text = dumps(BUILDERS[name]())
        path = OUT_DIR / f"{name}.json"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO_ROOT)} ({len(text):,} bytes)")
    for path in stale:
        print(f"{path.relative_to(REPO_ROOT)} differs from a fresh run; run `python -m course.visual_data`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
