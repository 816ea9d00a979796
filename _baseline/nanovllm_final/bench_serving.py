"""python -m nanovllm_final.bench_serving [--base-url URL] [--request-rate 4,16,64,inf] [--num-prompts N]: online benchmark.

Sends streaming /v1/completions requests to a running server (python -m nanovllm_final.serve) as
a Poisson process: the gaps between sends are exponential with mean 1/rate, so requests arrive
independently, as users' do; `inf` sends them all at once. Prompts are the offline benchmark's
(bench.workload: random token ids, each with its own max_tokens and ignore_eos) or a JSONL file
of {"prompt": text or token ids, "max_tokens": N}. The metrics are vLLM's `bench serve`:

    TTFT   time to first token: from sending a request to its first streamed token
    TPOT   time per output token, per request: (latency - TTFT) / (output tokens - 1)
    ITL    inter-token latency: every gap between two consecutive chunks of a request
    E2EL   end-to-end latency: from sending to the last chunk
    request and output-token throughput: completed requests and generated tokens / duration

each as mean, median and p99 in milliseconds. Output tokens are counted from the server's usage
report. Prints a table per rate and a summary, and writes all of it as JSON (--result-file).
"""

import argparse
import asyncio
import json
import random
import time
from pathlib import Path

import httpx
import numpy as np

from nanovllm_final.bench import workload


async def send(client: httpx.AsyncClient, url: str, body: dict) -> dict:
    """One streaming request; the times of its chunks, as vLLM's client takes them."""
    start = last = time.perf_counter()
    ttft, itl, tokens = None, [], 0
    async with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            return {"ok": False, "error": (await response.aread()).decode()[:500]}
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                break
            event = json.loads(line[6:])
            if "error" in event:
                return {"ok": False, "error": event["error"]["message"]}
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            if event["choices"]:
                now = time.perf_counter()
                if ttft is None:
                    ttft = now - start
                else:
                    itl.append(now - last)
                last = now
    return {"ok": True, "ttft": ttft, "itl": itl, "latency": last - start, "output_tokens": tokens}


async def run_rate(base_url: str, model: str, requests: list[dict], rate: float, seed: int) -> dict:
    """Send every request at Poisson arrival times; wait for all of them."""
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base_url, timeout=None, limits=limits) as client:
        tasks = []
        start = time.perf_counter()
        for request in requests:
            body = {"model": model, "stream": True, "stream_options": {"include_usage": True}, **request}
            tasks.append(asyncio.create_task(send(client, "/v1/completions", body)))
            if rate != float("inf"):
                await asyncio.sleep(rng.expovariate(rate))
        results = await asyncio.gather(*tasks)
        duration = time.perf_counter() - start
    return summarize(results, requests, rate, duration)


def summarize(results: list[dict], requests: list[dict], rate: float, duration: float) -> dict:
    done = [(r, q) for r, q in zip(results, requests) if r["ok"]]
    input_tokens = sum(len(q["prompt"]) if isinstance(q["prompt"], list) else 0 for _, q in done)
    output_tokens = sum(r["output_tokens"] for r, _ in done)
    ms = {
        "ttft": [r["ttft"] * 1e3 for r, _ in done if r["ttft"] is not None],
        "tpot": [(r["latency"] - r["ttft"]) / (r["output_tokens"] - 1) * 1e3 for r, _ in done if r["output_tokens"] > 1],
        "itl": [gap * 1e3 for r, _ in done for gap in r["itl"]],
        "e2el": [r["latency"] * 1e3 for r, _ in done],
    }
    out = {
        "request_rate": rate if rate != float("inf") else "inf",
        "completed": len(done),
        "failed": len(results) - len(done),
        "errors": sorted({r["error"] for r in results if not r["ok"]})[:5],
        "duration_s": duration,
        "total_input_tokens": input_tokens,  # token-id prompts only: a text prompt's length is the server's
        "total_output_tokens": output_tokens,
        "request_throughput": len(done) / duration,
        "output_throughput": output_tokens / duration,
        "total_token_throughput": (input_tokens + output_tokens) / duration,
    }
    for name, values in ms.items():
        values = np.array(values) if values else np.zeros(1)
        out.update({f"mean_{name}_ms": float(values.mean()), f"median_{name}_ms": float(np.median(values)),
                    f"p99_{name}_ms": float(np.percentile(values, 99))})
    return out


def report(r: dict) -> str:
    lines = [f"{' Serving benchmark, request rate ' + str(r['request_rate']) + ' ':=^60}",
             f"{'Successful requests:':<40}{r['completed']:>20}",
             f"{'Failed requests:':<40}{r['failed']:>20}",
             f"{'Benchmark duration (s):':<40}{r['duration_s']:>20.2f}",
             f"{'Total input tokens:':<40}{r['total_input_tokens']:>20}",
             f"{'Total generated tokens:':<40}{r['total_output_tokens']:>20}",
             f"{'Request throughput (req/s):':<40}{r['request_throughput']:>20.2f}",
             f"{'Output token throughput (tok/s):':<40}{r['output_throughput']:>20.2f}",
             f"{'Total token throughput (tok/s):':<40}{r['total_token_throughput']:>20.2f}"]
    for name, title in (("ttft", "Time to First Token"), ("tpot", "Time per Output Token (excl. 1st token)"),
                        ("itl", "Inter-token Latency"), ("e2el", "End-to-end Latency")):
        lines.append(f"{' ' + title + ' ':-^60}")
        for stat in ("mean", "median", "p99"):
            lines.append(f"{f'{stat.capitalize()} {name.upper()} (ms):':<40}{r[f'{stat}_{name}_ms']:>20.2f}")
    for error in r["errors"]:
        lines.append(f"error: {error}")
    return "\n".join(lines)


def summary_table(results: list[dict]) -> str:
    rows = ["| rate (req/s) | requests | duration (s) | req/s | output tok/s | TTFT mean / p50 / p99 (ms) | "
            "TPOT mean / p50 / p99 (ms) | ITL mean / p50 / p99 (ms) |", "|---" * 8 + "|"]
    for r in results:
        stats = [" / ".join(f"{r[f'{s}_{m}_ms']:.1f}" for s in ("mean", "median", "p99")) for m in ("ttft", "tpot", "itl")]
        rows.append(f"| {r['request_rate']} | {r['completed']} | {r['duration_s']:.1f} | {r['request_throughput']:.2f} | "
                    f"{r['output_throughput']:.0f} | " + " | ".join(stats) + " |")
    return "\n".join(rows)


def load_requests(args) -> list[dict]:
    if args.dataset_path:
        lines = [json.loads(line) for line in Path(args.dataset_path).read_text().splitlines() if line.strip()]
        if not lines or any("prompt" not in line for line in lines):
            raise ValueError(f"{args.dataset_path}: each line must be a JSON object with a 'prompt'")
        return [{"prompt": line["prompt"], "max_tokens": line.get("max_tokens", args.output_len[1]),
                 "temperature": args.temperature, "ignore_eos": True} for line in lines[:args.num_prompts]]
    prompts, params = workload(args.num_prompts, args.input_len, args.output_len, args.max_token_id)
    return [{"prompt": p, "max_tokens": sp.max_tokens, "temperature": args.temperature, "ignore_eos": True}
            for p, sp in zip(prompts, params)]


def int_pair(text: str) -> tuple[int, int]:
    low, _, high = text.partition(",")
    return int(low), int(high or low)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m nanovllm_final.bench_serving", description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", help="the served model's name (default: the server's only model)")
    parser.add_argument("--request-rate", default="inf", help="requests per second, comma-separated; inf sends all at once")
    parser.add_argument("--num-prompts", type=int, default=256)
    parser.add_argument("--input-len", type=int_pair, default=(100, 1024), help="MIN,MAX prompt tokens (bench.py's)")
    parser.add_argument("--output-len", type=int_pair, default=(100, 1024), help="MIN,MAX output tokens (bench.py's)")
    parser.add_argument("--max-token-id", type=int, default=10000, help="prompt ids are drawn from [0, this]")
    parser.add_argument("--temperature", type=float, default=0.6, help="bench.py's; 0 is greedy")
    parser.add_argument("--dataset-path", help="a JSONL file of {\"prompt\": ..., \"max_tokens\": N} instead")
    parser.add_argument("--seed", type=int, default=0, help="of the arrival times")
    parser.add_argument("--result-file", default="bench_serving.json")
    args = parser.parse_args(argv)
    model = args.model or httpx.get(f"{args.base_url}/v1/models", timeout=30).json()["data"][0]["id"]
    requests = load_requests(args)
    warmup = dict(requests[0], max_tokens=4)
    asyncio.run(run_rate(args.base_url, model, [warmup], float("inf"), args.seed))
    config = vars(args) | {"model": model}
    results = []
    for rate in (float(r) for r in args.request_rate.split(",")):
        results.append(asyncio.run(run_rate(args.base_url, model, requests, rate, args.seed)))
        print(report(results[-1]), flush=True)
        # After each rate, so a run cut short keeps what it measured.
        Path(args.result_file).write_text(json.dumps({"config": config, "results": results}, indent=2))
    print(summary_table(results))
    print(f"wrote {args.result_file}")
    return results


if __name__ == "__main__":
    main()
