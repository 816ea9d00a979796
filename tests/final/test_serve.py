"""The OpenAI-compatible server, through the official `openai` client and raw HTTP, against a real
uvicorn server on 127.0.0.1: the same greedy text as LLM.generate offline, streaming and not;
concurrent clients batched together; a client that leaves frees its blocks; bad requests get
OpenAI-shaped errors and change nothing; the online benchmark runs against it."""

import asyncio
import json
import signal
import time

import httpx
import openai
import pytest

from nanovllm_final import LLM, SamplingParams

ENGINE = dict(num_kvcache_blocks=256, kvcache_block_size=16, device="cpu")
GREEDY = dict(temperature=0, max_tokens=8)


@pytest.fixture(scope="module")
def served(tiny_qwen3_dir, running_server):
    """(base_url, engine_loop, llm) of one server for the whole module."""
    llm = LLM(tiny_qwen3_dir, **ENGINE)
    with running_server(llm) as (url, app):
        yield url, app.state.engine_loop, llm
    llm.close()


@pytest.fixture(scope="module")
def offline(tiny_qwen3_dir):
    """An engine of its own, to say what the server should answer."""
    llm = LLM(tiny_qwen3_dir, **ENGINE)
    yield llm
    llm.close()


@pytest.fixture
def client(served):
    return openai.OpenAI(base_url=served[0] + "/v1", api_key="none", max_retries=0)


def wait_idle(loop, llm, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not (loop.is_idle() and llm.scheduler.is_finished()):
        assert time.monotonic() < deadline, "the engine loop still holds requests"
        time.sleep(0.01)


def test_completions_match_offline(client, offline):
    text, ids = "The capital of France is", [5, 17, 33, 2, 90]
    expected = offline.generate([text, ids], SamplingParams(**GREEDY), use_tqdm=False)
    for prompt, want in zip([text, ids], expected):
        got = client.completions.create(model="tiny", prompt=prompt, **GREEDY)
        assert got.choices[0].text == want["text"] and got.choices[0].finish_reason == want["finish_reason"]
        assert got.usage.completion_tokens == len(want["token_ids"])
        chunks = list(client.completions.create(model="tiny", prompt=prompt, stream=True,
                                                stream_options={"include_usage": True}, **GREEDY))
        assert "".join(c.choices[0].text for c in chunks if c.choices) == want["text"]
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == want["finish_reason"]
        assert chunks[-1].usage.completion_tokens == len(want["token_ids"])


def test_chat_matches_offline(client, offline):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a capital."}]
    [want] = offline.chat(messages, SamplingParams(**GREEDY), use_tqdm=False)
    got = client.chat.completions.create(model="tiny", messages=messages, **GREEDY)
    assert got.choices[0].message.content == want["text"] and got.choices[0].message.role == "assistant"
    assert got.usage.prompt_tokens == len(offline.chat_prompt(messages))
    stream = client.chat.completions.create(model="tiny", messages=messages, stream=True, **GREEDY)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == want["text"]


def test_stop_ignore_eos_and_sampling_options(client, offline):
    prompt = [1, 2, 3]
    full = offline.generate([prompt], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True), use_tqdm=False)[0]
    stop = full["text"][len(full["text"]) // 2:][:2]
    want = offline.generate([prompt], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True, stop=stop),
                            use_tqdm=False)[0]
    extra = {"ignore_eos": True}
    for stream in (False, True):
        got = client.completions.create(model="tiny", prompt=prompt, temperature=0, max_tokens=12, stop=stop,
                                        stream=stream, extra_body=extra)
        chunks = list(got) if stream else [got]
        assert "".join(c.choices[0].text for c in chunks) == want["text"]
        assert chunks[-1].choices[0].finish_reason == "stop"
    seeded = dict(prompt=prompt, temperature=1.0, top_p=0.9, seed=7, max_tokens=8,
                  extra_body={"top_k": 50, "min_p": 0.05, "ignore_eos": True})
    one, two = (client.completions.create(model="tiny", **seeded).choices[0].text for _ in range(2))
    assert one == two  # a seed is a private generator: the same tokens whatever else runs


def test_concurrent_streams_share_batches_and_bad_ones_fail_alone(served, offline, random_prompts):
    url, loop, _ = served
    prompts = random_prompts(32, max_len=40, seed=3)
    params = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    expected = [out["text"] for out in offline.generate(prompts, params, use_tqdm=False)]
    loop.max_batch = 0

    async def one(client, prompt):
        stream = await client.completions.create(model="tiny", prompt=prompt, temperature=0, max_tokens=12,
                                                 stream=True, extra_body={"ignore_eos": True})
        return "".join([chunk.choices[0].text async for chunk in stream])

    async def bad(client, **wrong):  # sent among the good ones: each fails alone
        with pytest.raises((openai.BadRequestError, openai.NotFoundError)):
            await client.completions.create(**{"model": "tiny", "prompt": [1, 2], "stream": True, **wrong})

    async def all_of_them():
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0) as client:
            wrongs = [dict(n=2), dict(temperature=-1), dict(prompt=[1] * 2000), dict(model="nope")]
            outs = await asyncio.gather(*(one(client, p) for p in prompts), *(bad(client, **w) for w in wrongs))
            return outs[:len(prompts)]

    assert asyncio.run(all_of_them()) == expected
    assert loop.max_batch > 1, "the requests never ran in one batch"


def test_disconnect_aborts_and_frees_blocks(served, assert_pool_clean):
    url, loop, llm = served
    body = {"prompt": [1, 2, 3], "max_tokens": 900, "ignore_eos": True, "temperature": 0}
    aborted = loop.num_aborted
    with httpx.Client(base_url=url, timeout=30) as http:
        with http.stream("POST", "/v1/completions", json=dict(body, stream=True)) as response:
            events = (line for line in response.iter_lines() if line.startswith("data: "))
            assert json.loads(next(events)[6:])["choices"][0]["finish_reason"] is None
            assert json.loads(next(events)[6:])["choices"][0]["finish_reason"] is None
        # The client leaves mid-stream (the response closes here).
        wait_idle(loop, llm)
        assert loop.num_aborted == aborted + 1
        assert_pool_clean(llm)
        with pytest.raises(httpx.ReadTimeout):  # a non-streaming client that gives up waiting
            http.post("/v1/completions", json=body, timeout=0.3)
        wait_idle(loop, llm)
        assert loop.num_aborted == aborted + 2
        assert_pool_clean(llm)


BAD = [  # (endpoint, body, status, param, words of the message)
    ("completions", {"prompt": "x", "n": 2}, 400, "n", "n=2 is not supported"),
    ("completions", {"prompt": "x", "logprobs": 3}, 400, "logprobs", "not supported"),
    ("chat/completions", {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
     400, "tools", "not supported"),
    ("completions", {"prompt": "x", "temperature": -1}, 400, "temperature", "temperature must be >= 0"),
    ("completions", {"prompt": "x", "top_p": 0}, 400, "top_p", "top_p must be in (0, 1]"),
    ("completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens", "max_tokens must be"),
    ("completions", {"prompt": "x", "max_tokens": "many"}, 400, "max_tokens", "max_tokens"),
    ("completions", {"prompt": "x", "stop": [""]}, 400, "stop", "stop must be"),
    ("completions", {"prompt": "x", "frobnicate": 1}, 400, "frobnicate", "unrecognized request argument"),
    ("completions", {"max_tokens": 3}, 400, "prompt", "prompt is required"),
    ("completions", {"prompt": 5}, 400, "prompt", "a string or a list of token ids"),
    ("completions", {"prompt": []}, 400, "prompt", "prompt is empty"),
    ("completions", {"prompt": [1, 10**6]}, 400, "prompt", "outside the vocabulary"),
    ("completions", {"prompt": ["a", "b"]}, 400, "prompt", "one prompt per request"),
    ("completions", {"prompt": list(range(1, 100)) * 11}, 400, "prompt", "max_model_len is 1,024"),
    ("chat/completions", {"messages": []}, 400, "messages", "messages is empty"),
    ("chat/completions", {"messages": [{"content": "x"}]}, 400, "messages", "messages.0.role is required"),
    ("completions", {"prompt": "x", "model": "gpt-4"}, 404, "model", "does not exist"),
    ("completions", "[1, 2", 400, None, "not valid JSON"),
    ("completions", [1, 2], 400, None, "must be a JSON object"),
]


@pytest.mark.parametrize("endpoint, body, status, param, words", BAD, ids=[f"{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_requests_get_openai_errors(served, endpoint, body, status, param, words, assert_pool_clean):
    url, loop, llm = served
    with httpx.Client(base_url=url, timeout=60) as http:
        content = body if isinstance(body, str) else json.dumps(body)
        response = http.post(f"/v1/{endpoint}", content=content, headers={"content-type": "application/json"})
        assert response.status_code == status, response.text
        if status != 200:
            error = response.json()["error"]
            assert words in error["message"] and error["param"] == param
            assert set(error) == {"message", "type", "param", "code"}
        ok = http.post("/v1/completions", json={"prompt": [1, 2], "max_tokens": 2})
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] >= 1
    wait_idle(loop, llm)
    assert_pool_clean(llm)


def test_models_health_and_the_openai_client_errors(served, client):
    assert [m.id for m in client.models.list()] == ["tiny"]
    assert httpx.get(served[0] + "/health").status_code == 200
    lost = httpx.get(served[0] + "/v1/nothing")
    assert lost.status_code == 404 and lost.json()["error"]["message"] == "GET /v1/nothing: Not Found"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="nope", prompt="x")
    with pytest.raises(openai.BadRequestError, match="n=3 is not supported"):
        client.completions.create(model="tiny", prompt="x", n=3)


def test_a_failed_engine_answers_503(tiny_qwen3_dir, running_server):
    llm = LLM(tiny_qwen3_dir, **ENGINE)

    def broken_step():
        raise RuntimeError("out of memory (pretend)")

    llm.step = broken_step
    with running_server(llm) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        first = http.post("/v1/completions", json={"prompt": [1, 2], "max_tokens": 4})
        assert first.status_code == 503 and "out of memory" in first.json()["error"]["message"]
        assert http.get("/health").status_code == 503
        later = http.post("/v1/completions", json={"prompt": [1, 2], "max_tokens": 4, "stream": True})
        assert later.status_code == 503 and later.json()["error"]["code"] == "engine_failed"
    llm.close()


def test_bench_serving_reports_vllm_metrics(served, tmp_path):
    from nanovllm_final import bench_serving

    out = tmp_path / "online.json"
    results = bench_serving.main(["--base-url", served[0], "--request-rate", "50,inf", "--num-prompts", "6",
                                  "--input-len", "4,30", "--output-len", "3,10", "--max-token-id", "300",
                                  "--result-file", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == results and [r["request_rate"] for r in results] == [50.0, "inf"]
    for r in results:
        assert r["completed"] == 6 and r["failed"] == 0
        assert r["total_output_tokens"] == sum(p.max_tokens for p in bench_serving.workload(6, (4, 30), (3, 10), 300)[1])
        assert 0 < r["median_ttft_ms"] <= r["p99_ttft_ms"] and r["mean_tpot_ms"] > 0 and r["mean_itl_ms"] > 0


@pytest.mark.slow
def test_the_command_line_serves(tiny_qwen3_dir, cli_server):
    with cli_server(tiny_qwen3_dir, "--served-model-name", "cli", "--num-kvcache-blocks", "32") as (process, url):
        answer = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                            json={"model": "cli", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3})
        assert answer.status_code == 200 and answer.json()["model"] == "cli"
        process.terminate()
        # uvicorn shuts down cleanly (and the engine with it), then ends by re-raising SIGTERM.
        assert process.wait(timeout=30) == -signal.SIGTERM
        assert "Application shutdown complete" in process.stdout.read()
