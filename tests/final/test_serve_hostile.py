"""The server under careless and hostile clients, against a real server on 127.0.0.1: deep JSON,
huge bodies, slow tokenizing, lax types, nulls, unknown roles, the field an error names, usage
in streamed chunks, what /metrics and /health show, and shutdown on SIGINT. Raw HTTP where the
openai client would not send the request as it stands."""

import http.client
import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import openai
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nanovllm_final import LLM
from nanovllm_final.openai_api import MAX_JSON_DEPTH

ENGINE = dict(num_kvcache_blocks=48, kvcache_block_size=16, device="cpu")  # 768 tokens: less than max_model_len
LIMIT = 64 * 1024  # this server's --max-request-bytes
USER = [{"role": "user", "content": "Name a capital."}]


@pytest.fixture(scope="module")
def served(tiny_qwen3_dir, running_server):
    """(base_url, app, llm) of one server for the whole module."""
    llm = LLM(tiny_qwen3_dir, **ENGINE)
    with running_server(llm, max_request_bytes=LIMIT) as (url, app):
        yield url, app, llm
    llm.close()


def post_on_one_connection(url: str, requests: list[tuple[str, str]]) -> list[tuple[int, str | None, dict]]:
    """POST each (endpoint, body) in turn on one kept-alive connection (http.client opens a new
    one only when a response said `Connection: close`, which the test checks it did not)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    answers, sockets = [], []
    try:
        for endpoint, body in requests:
            connection.request("POST", f"/v1/{endpoint}", body=body.encode(),
                               headers={"Content-Type": "application/json"})
            sockets.append(connection.sock)
            response = connection.getresponse()
            answers.append((response.status, response.getheader("connection"), json.loads(response.read())))
    finally:
        connection.close()
    assert all(s is sockets[0] for s in sockets), "the server closed the kept-alive connection"
    return answers


def assert_openai_error(answer: dict, param: str | None, *words: str) -> None:
    error = answer["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param, error
    assert all(w in error["message"] for w in words), error["message"]


NESTED = "[" * 1000 + "]" * 1000  # deeper than Python's JSON parser can recurse
DEEP = {
    "body": ("completions", NESTED),
    "prompt": ("completions", '{"prompt": %s, "max_tokens": 1}' % NESTED),
    "messages": ("chat/completions", '{"messages": [{"role": "user", "content": %s}]}' % NESTED),
    # parses, but a field this deep would still recurse in whatever reads it next
    "logit_bias": ("completions", '{"prompt": "x", "logit_bias": {"1": %s}}' % ("[" * 40 + "]" * 40)),
}


@pytest.mark.parametrize("where", DEEP)
def test_deep_nesting_is_a_400_and_the_connection_stays_open(served, where):
    valid = ("completions", json.dumps({"prompt": [1, 2], "max_tokens": 2}))
    (status, connection, answer), (status_after, _, after) = post_on_one_connection(served[0], [DEEP[where], valid])
    assert status == 400 and connection is None
    assert_openai_error(answer, None, f"more than {MAX_JSON_DEPTH} levels deep")
    assert status_after == 200 and after["usage"]["completion_tokens"] >= 1


def test_a_body_over_the_limit_is_a_413(served):
    url = served[0]
    body = json.dumps({"prompt": "a" * LIMIT, "max_tokens": 1}).encode()
    with httpx.Client(base_url=url, timeout=60) as http:
        sized = http.post("/v1/completions", content=body, headers={"content-type": "application/json"})
        chunked = http.post("/v1/completions", content=iter([body[:LIMIT // 2], body[LIMIT // 2:]]),
                            headers={"content-type": "application/json"})  # no Content-Length
        for response in (sized, chunked):
            assert response.status_code == 413 and response.headers["connection"] == "close"
            assert_openai_error(response.json(), None, f"larger than {LIMIT:,} bytes", "--max-request-bytes")
        assert http.post("/v1/completions", json={"prompt": [1, 2], "max_tokens": 2}).status_code == 200


def test_a_slow_prompt_does_not_hold_up_other_clients(served, monkeypatch):
    """Tokenizing 10 MB takes 10 s and more; here one prompt takes 3 s (a real one that slow would
    cost the suite that much CPU), and /health and another request answer meanwhile."""
    url, _, llm = served
    encode, started = llm.encode, threading.Event()

    def slow_encode(prompt):
        if prompt == "slow":
            started.set()
            time.sleep(3)
        return encode(prompt)

    monkeypatch.setattr(llm, "encode", slow_encode)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.post, url + "/v1/completions", json={"prompt": "slow", "max_tokens": 2}, timeout=30)
        assert started.wait(timeout=10)
        begin = time.monotonic()
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        other = httpx.post(url + "/v1/chat/completions", json={"messages": USER, "max_tokens": 2}, timeout=10)
        assert other.status_code == 200 and time.monotonic() - begin < 2
        assert not slow.done(), "the slow prompt should still be tokenizing"
        assert slow.result().status_code == 200


LAX = [  # (endpoint, body, param, words): values that lax parsing would have turned into something else
    ("completions", {"prompt": [True, False]}, "prompt", "a list of token ids"),
    ("completions", {"prompt": "x", "max_tokens": True}, "max_tokens", "valid integer (got true)"),
    ("completions", {"prompt": "x", "max_tokens": "3"}, "max_tokens", 'valid integer (got "3")'),
    ("completions", {"prompt": "x", "max_tokens": 3.0}, "max_tokens", "valid integer"),
    ("completions", {"prompt": "x", "stream": "yes"}, "stream", "valid boolean"),
    ("completions", {"prompt": "x", "ignore_eos": "yes"}, "ignore_eos", "valid boolean"),
    ("completions", {"prompt": "x", "temperature": "0.5"}, "temperature", "valid number"),
    ("completions", {"prompt": "x", "stream_options": {"include_usage": 1}}, "stream_options", "valid boolean"),
    ("completions", {"prompt": "x", "seed": True}, "seed", "valid integer"),
    ("completions", {"prompt": None}, "prompt", "a string or a list of token ids"),
    ("chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, "messages",
     "'system', 'developer', 'user' or 'assistant' (got \"wizard\")"),
    ("chat/completions", {"messages": [{"role": "user", "content": 5}]}, "messages", "messages.0.content"),
    ("chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages",
     "only text parts"),
    ("chat/completions", {"messages": USER, "max_completion_tokens": 0}, "max_completion_tokens",
     "max_completion_tokens must be an integer >= 1"),
    ("chat/completions", {"messages": USER, "max_completion_tokens": 2000}, "max_completion_tokens",
     "max_completion_tokens=2000 needs"),
    ("chat/completions", {"messages": USER, "max_completion_tokens": 5, "max_tokens": 6}, "max_completion_tokens",
     "disagree"),
]


@pytest.mark.parametrize("endpoint, body, param, words", LAX, ids=[f"{b[2]}-{i}" for i, b in enumerate(LAX)])
def test_strict_types_and_the_field_that_was_sent(served, endpoint, body, param, words):
    response = httpx.post(f"{served[0]}/v1/{endpoint}", json=body, timeout=60)
    assert response.status_code == 400, response.text
    assert_openai_error(response.json(), param, words)
    if param == "max_completion_tokens" and "disagree" not in words:  # no word of the field not sent
        assert "max_tokens" not in response.json()["error"]["message"].replace("max_completion_tokens", "")


def test_nan_is_not_json(served):
    response = httpx.post(f"{served[0]}/v1/completions", content=b'{"prompt": "x", "temperature": NaN}', timeout=60)
    assert response.status_code == 400
    assert_openai_error(response.json(), None, "not valid JSON", "NaN")


NULLS = dict(temperature=None, top_p=None, n=None, presence_penalty=None, frequency_penalty=None, stream=None,
             stop=None, stream_options=None, logprobs=None, user=None)


def test_null_means_the_default(served):
    url = served[0]
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    want = client.completions.create(model="tiny", prompt=[1, 2, 3], max_tokens=6, seed=3).choices[0].text
    got = client.completions.create(model="tiny", prompt=[1, 2, 3], max_tokens=6, seed=3, echo=None, **NULLS)
    assert got.choices[0].text == want  # sent as null by the client: the defaults, temperature 1.0 included
    chat = client.chat.completions.create(model="tiny", messages=USER, max_tokens=3, max_completion_tokens=None,
                                          **NULLS)
    assert chat.choices[0].finish_reason in ("stop", "length")


def test_developer_is_a_system_message(served):
    client = openai.OpenAI(base_url=served[0] + "/v1", api_key="none", max_retries=0)
    answers = [client.chat.completions.create(model="tiny", messages=[{"role": role, "content": "Be brief."}, *USER],
                                              max_tokens=6, temperature=0).choices[0].message.content
               for role in ("system", "developer")]
    assert answers[0] == answers[1]


@pytest.mark.parametrize("endpoint, body", [("completions", {"prompt": [1, 2, 3]}),
                                            ("chat/completions", {"messages": USER})])
def test_chunks_carry_usage_null_until_the_usage_chunk(served, endpoint, body):
    body = dict(body, max_tokens=4, ignore_eos=True, stream=True)
    for include_usage in (True, False):
        with httpx.stream("POST", f"{served[0]}/v1/{endpoint}", timeout=60,
                          json=dict(body, stream_options={"include_usage": include_usage})) as response:
            lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "[DONE]"
        chunks = [json.loads(line) for line in lines[:-1]]
        if include_usage:
            assert all("usage" in c and c["usage"] is None for c in chunks[:-1]) and chunks[-1]["choices"] == []
            assert chunks[-1]["usage"]["completion_tokens"] == 4
        else:
            assert not any("usage" in c for c in chunks)


def scrape(url: str) -> dict[str, float]:
    """/metrics as {name: value} (labelled samples as name{label="value"})."""
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return values


def wait_for_metrics(url: str, **want: float) -> dict[str, float]:
    deadline = time.monotonic() + 10
    while True:
        values = scrape(url)
        if all(values[f"nanovllm:{k}"] == v for k, v in want.items()):
            return values
        assert time.monotonic() < deadline, {k: values[f"nanovllm:{k}"] for k in want}
        time.sleep(0.05)


def test_metrics_show_the_engine_and_disconnects_free_every_block(served):
    url, app, llm = served
    total = len(llm.scheduler.block_manager.blocks)
    before = wait_for_metrics(url, num_requests_running=0, num_requests_waiting=0, kv_blocks_used=0)
    assert before["nanovllm:kv_blocks_free"] == total
    prompts = [[5 + i] * 20 for i in range(4)]
    body = {"max_tokens": 600, "ignore_eos": True, "temperature": 0, "stream": True}
    with httpx.Client(base_url=url, timeout=60) as http:
        streams = [http.stream("POST", "/v1/completions", json=dict(body, prompt=p)) for p in prompts]
        readers = [stream.__enter__().iter_lines() for stream in streams]  # kept: a reader let go closes its stream
        for lines in readers:  # each has its first chunks: it runs, and holds blocks
            next(lines), next(lines)
        during = scrape(url)
        assert during["nanovllm:num_requests_running"] + during["nanovllm:num_requests_waiting"] == 4
        assert during["nanovllm:kv_blocks_used"] >= 4 * 2  # 20 prompt tokens and more: 2 blocks of 16 each
        for stream in streams:  # the clients leave
            stream.__exit__(None, None, None)
        with pytest.raises(httpx.ReadTimeout):  # and one that gives up waiting for its answer
            http.post("/v1/completions", json=dict(body, prompt=[9] * 20, stream=False), timeout=0.5)
    after = wait_for_metrics(url, num_requests_running=0, num_requests_waiting=0, kv_blocks_used=0)
    assert after["nanovllm:kv_blocks_free"] == total and after["nanovllm:kv_cache_usage_perc"] == 0
    assert after["nanovllm:prompt_tokens_total"] - before["nanovllm:prompt_tokens_total"] == 5 * 20
    assert after["nanovllm:generation_tokens_total"] - before["nanovllm:generation_tokens_total"] >= 4 * 2
    grew = {name: after[f"nanovllm:{name}"] - before[f"nanovllm:{name}"]
            for name in ("time_to_first_token_seconds_count", "time_per_output_token_seconds_count")}
    assert grew["time_to_first_token_seconds_count"] == 5 and grew["time_per_output_token_seconds_count"] > 0


def test_metrics_count_prefix_hits_and_finished_requests(served):
    url = served[0]
    before = scrape(url)
    prompt = list(range(10, 50))  # 40 tokens: two full blocks of 16 the second request finds
    for _ in range(2):
        assert httpx.post(url + "/v1/completions", json={"prompt": prompt, "max_tokens": 2, "ignore_eos": True},
                          timeout=60).status_code == 200
    after = scrape(url)
    assert after["nanovllm:prefix_cache_queries_total"] - before["nanovllm:prefix_cache_queries_total"] == 80
    assert after["nanovllm:prefix_cache_hits_total"] - before["nanovllm:prefix_cache_hits_total"] == 32
    assert 0 < after["nanovllm:prefix_cache_hit_rate"] <= 1
    finished = 'nanovllm:request_success_total{finished_reason="length"}'
    assert after[finished] - before.get(finished, 0) == 2
    e2e = "nanovllm:e2e_request_latency_seconds_count"
    assert after[e2e] - before[e2e] == 2
    # each server has its own registry: a second one in this process would not collide
    assert "nanovllm:prompt_tokens" not in prometheus_client.REGISTRY._names_to_collectors


def test_health_says_the_engine_loop_is_alive(served):
    response = httpx.get(served[0] + "/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "engine_loop": "alive"}
    # a dead loop: 503 (test_serve.py's test_a_failed_engine_answers_503)


def test_a_bug_is_a_500_in_openai_shape_that_closes_the_connection(served, monkeypatch):
    def broken(prompt):
        raise TypeError("a bug")

    monkeypatch.setattr(served[2], "encode", broken)
    response = httpx.post(served[0] + "/v1/completions", json={"prompt": "x"}, timeout=60)
    assert response.status_code == 500 and response.headers["connection"] == "close"
    assert_openai_error(response.json(), None, "internal error (TypeError)")


def read_stream(url: str, started: threading.Event) -> tuple[list[str | None], bool]:
    """A streamed completion of 150 tokens: (each chunk's finish_reason, whether [DONE] came)."""
    reasons, done = [], False
    body = {"prompt": [1, 2, 3], "max_tokens": 150, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                reasons.append(json.loads(line[6:])["choices"][0]["finish_reason"])
                started.set()
    return reasons, done


def test_sigint_ends_every_stream_and_the_process(tiny_qwen3_dir, cli_server):
    """Three streams of 150 tokens at 0.1 s a step (15 s at least): SIGINT ends each at once with
    a finish_reason and [DONE], and the process exits cleanly. (Its exit is not timed closely:
    unloading torch alone takes seconds on a busy machine.)"""
    with cli_server(tiny_qwen3_dir, delay=0.1) as (process, url), ThreadPoolExecutor(3) as pool:
        started = [threading.Event() for _ in range(3)]
        streams = [pool.submit(read_stream, url, s) for s in started]
        assert all(s.wait(timeout=30) for s in started)
        begin = time.monotonic()
        process.send_signal(signal.SIGINT)
        for stream in streams:
            reasons, done = stream.result(timeout=10)
            assert done and reasons[-1] == "abort" and len(reasons) < 150
        assert time.monotonic() - begin < 3
        assert process.wait(timeout=60) == 0  # as uvicorn.run: Ctrl-C is a clean exit
        assert "Application shutdown complete" in process.stdout.read()


@pytest.mark.slow  # a second server process: its start costs about 8 s of CPU
def test_a_second_signal_exits_at_once(tiny_qwen3_dir, cli_server):
    """A client that stops sending its body holds up the graceful shutdown (for GRACE_SECONDS);
    a second signal does not wait for it."""
    with cli_server(tiny_qwen3_dir) as (process, url):
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port)) as slow_client:
            slow_client.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 100\r\n\r\n{\"prompt\"")
            time.sleep(0.3)
            process.send_signal(signal.SIGINT)
            time.sleep(1)
            assert process.poll() is None, "the first signal should wait for the request in progress"
            begin = time.monotonic()
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=5) == 128 + signal.SIGINT
            assert time.monotonic() - begin < 1

