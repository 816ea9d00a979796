"""python -m ch11.online [--model DIR] [--rates 0.5,2,inf] [--scale 1/32] [--out FILE]: the online benchmark.

Offline, every request is there at time 0 and only throughput means anything. Online, requests
arrive while others run, as users' do: here as a Poisson process, each gap between two sends
drawn from an exponential distribution of mean 1 / rate (rate in requests per second; `inf`
sends them all at once, the offline case). Each request is a streaming /v1/completions call to
`python -m nanovllm_final.serve`, started here on 127.0.0.1 (or --base-url to a running one);
the client stamps each streamed chunk as it arrives (nanovllm_final.bench_serving.send, vLLM's
client) and metrics.py turns the stamps into TTFT, TPOT, ITL and E2EL.

As the rate rises, throughput rises with it until the engine is saturated, and the latencies
climb: requests queue, and steps hold more sequences, so each is longer. --out writes the sweep as
a `serving` measurement (measurements/README.md): one entry per rate.
"""

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import httpx

from ch11.compare import machine, measurement, provenance, write_result
from ch11.metrics import latency_summary
from ch11.workload import nano_vllm_workload
from course.paths import DEFAULT_MODEL_DIR, REPO_ROOT
from nanovllm_final.bench_serving import send


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(model, timeout: float = 300.0, **engine_options):
    """`python -m nanovllm_final.serve model` on a free port of 127.0.0.1 for the duration of the
    block; yields its base URL. engine_options: Config fields (max_num_seqs=8 -> --max-num-seqs 8)."""
    port = free_port()
    flags = [x for k, v in engine_options.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    cmd = [sys.executable, "-m", "nanovllm_final.serve", str(model), "--host", "127.0.0.1", "--port", str(port), *flags]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}:\n{proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not answer /health within {timeout:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serving(llm, name: str = "model"):
    """The server's app for an engine already built in this process (a notebook's, a test's), on a
    free port of 127.0.0.1 in a background thread; yields its base URL. Saves starting a second
    Python that imports torch and loads the model again."""
    import uvicorn

    from nanovllm_final.serve import build_app

    config = uvicorn.Config(build_app(llm, name), host="127.0.0.1", port=free_port(), log_level="warning")
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    while not app_server.started:
        if not thread.is_alive():
            raise RuntimeError("the server thread stopped before it started; see the log above")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        app_server.should_exit = True
        thread.join(timeout=30)


def run_async(coroutine):
    """asyncio.run in a thread of its own: works where an event loop already runs (Jupyter)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def arrival_times(n: int, rate: float, seed: int = 0) -> list[float]:
    """When each of n requests is sent, in seconds from the start: a Poisson process of `rate`
    requests per second (the first at 0); all at 0 for rate = inf."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0 requests per second (inf: all at once), got {rate}")
    rng, now, times = random.Random(seed), 0.0, []
    for _ in range(n):
        times.append(now)
        if rate != float("inf"):
            now += rng.expovariate(rate)
    return times


async def run_at_rate(url: str, model_name: str, requests: list[dict], rate: float, seed: int = 0) -> dict:
    """Send `requests` (completion bodies) at Poisson times; wait for all. -> the rate's result."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as client:
        start = time.perf_counter()

        async def one(body: dict, at: float):
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            sent = time.perf_counter()
            body = {"model": model_name, "stream": True, "stream_options": {"include_usage": True}, **body}
            return sent, await send(client, "/v1/completions", body)

        done = await asyncio.gather(*(one(r, at) for r, at in zip(requests, arrival_times(len(requests), rate, seed))))
        duration = time.perf_counter() - start
    failed = [r["error"] for _, r in done if not r["ok"]]
    stamped = [(sent, chunk_times(sent, r)) for sent, r in done if r["ok"]]
    output_tokens = sum(r["output_tokens"] for _, r in done if r["ok"])
    return dict(rate="inf" if rate == float("inf") else rate, completed=len(stamped), failed=len(failed), errors=failed[:3],
                duration_s=duration, output_tokens=output_tokens, output_tokens_per_s=output_tokens / duration,
                requests_per_s=len(stamped) / duration, **latency_summary(stamped))


def chunk_times(sent: float, response: dict) -> list[float]:
    """The arrival time of each streamed chunk, from send()'s first-chunk wait and gaps."""
    times = [sent + response["ttft"]]
    for gap in response["itl"]:
        times.append(times[-1] + gap)
    return times


def sweep(url: str, requests: list[dict], rates: list[float], log=print) -> list[dict]:
    model_name = httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]
    run_async(run_at_rate(url, model_name, [dict(requests[0], max_tokens=2)], float("inf")))  # warm-up
    results = []
    for rate in rates:
        results.append(run_async(run_at_rate(url, model_name, requests, rate)))
        r = results[-1]
        log(f"rate {r['rate']:>5} req/s: {r['output_tokens_per_s']:7.1f} output tok/s, TTFT p50 {r['ttft_ms']['p50']:7.0f} ms "
            f"p99 {r['ttft_ms']['p99']:7.0f} ms, TPOT p50 {r['tpot_ms']['p50']:6.0f} ms, {r['failed']} failed")
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ch11.online", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--base-url", help="a running server instead of starting one")
    parser.add_argument("--rates", default="0.5,2,inf", help="requests per second, comma-separated")
    parser.add_argument("--scale", default="1/32", help="of nano-vllm's workload (1/32: 8 requests)")
    parser.add_argument("--out", help="write the JSON here")
    args = parser.parse_args(argv)
    work = nano_vllm_workload(float(Fraction(args.scale)))
    requests = [{"prompt": p, "max_tokens": n, "temperature": work.temperature, "ignore_eos": True}
                for p, n in zip(work.prompts, work.output_lens)]
    rates = [float(r) for r in args.rates.split(",")]
    limits = dict(max_num_seqs=len(requests), max_model_len=max(map(len, work.prompts)) + max(work.output_lens))
    if args.base_url:
        results = sweep(args.base_url, requests, rates)
    else:
        with server(args.model, **limits) as url:
            results = sweep(url, requests, rates)
    out = dict(provenance("ch11.online", argv), model=Path(args.model).name, workload=work.describe(), limits=limits,
               machine=machine(), load_average=os.getloadavg(), results=results)
    if args.out:
        write_result(args.out, as_measurement(out))
    return out


def as_measurement(out: dict) -> dict:
    """main()'s result as a `serving` file: one entry per rate ("inf": all at once), with the names
    nanovllm_final.bench_serving uses (output_throughput, request_throughput); model, workload and
    limits under "setup"."""
    values = {}
    for r in out["results"]:
        rate = r["rate"] if r["rate"] == "inf" else f"{r['rate']:g}"
        values[rate] = dict(duration_s=r["duration_s"], request_throughput=r["requests_per_s"],
                            output_throughput=r["output_tokens_per_s"], output_tokens=r["output_tokens"],
                            completed=r["completed"], failed=r["failed"], errors=r["errors"],
                            **{k: r[k] for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms")})
    work = out["workload"]
    title = (f"the online sweep: {work['num_seqs']} streaming requests of nano-vllm's workload at "
             f"{Fraction(work['scale']).limit_denominator(1024)} ({work['output_tokens']} output tokens, temperature "
             f"{work['temperature']}) to nanovllm_final's server, Poisson arrivals, {out['model']}")
    setup = {k: out[k] for k in ("model", "workload", "limits", "load_average") if k in out}
    return measurement(title, "serving", out, out["machine"], values, setup=setup)


if __name__ == "__main__":
    main()
