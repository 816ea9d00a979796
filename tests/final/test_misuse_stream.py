"""Streaming under misuse: a stop string spanning several tokens never leaks into the deltas, and
a generate() run while a stream is open neither loses nor duplicates the stream's tokens."""

from nanovllm_final import SamplingParams


def _collect(deltas, n):
    tokens, texts, finished = [[] for _ in range(n)], [""] * n, [[] for _ in range(n)]
    for delta in deltas:
        i = delta["index"]
        tokens[i] += delta["token_ids"]
        texts[i] += delta["text"]
        finished[i].append(delta["finish_reason"] if delta["finished"] else None)
    return tokens, texts, finished


def test_stop_string_over_several_tokens_is_held_back(tiny_qwen3_dir, make_llm, assert_pool_clean):
    llm = make_llm(tiny_qwen3_dir)
    prompt, free = [1, 2, 3], SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
    ids = llm.generate([prompt], free, use_tqdm=False)[0]["token_ids"]
    decode = llm.tokenizer.decode
    # A stop string made of three whole tokens from the middle, whose first occurrence is there.
    start = next(k for k in range(4, 18) if decode(ids[:k]).find(decode(ids[k:k + 3])) == -1
                 and decode(ids).find(decode(ids[k:k + 3])) == len(decode(ids[:k])) and decode(ids[k:k + 3]).strip())
    stop = decode(ids[start:start + 3])
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True, stop=[stop])
    expected = llm.generate([prompt], params, use_tqdm=False)[0]
    assert expected["finish_reason"] == "stop" and stop not in expected["text"]
    sent = ""
    for delta in llm.stream([prompt], params):
        sent += delta["text"]
        assert expected["text"].startswith(sent), f"streamed {sent!r}, but the output is {expected['text']!r}"
    assert sent == expected["text"]
    assert_pool_clean(llm)


def test_generate_inside_an_open_stream(tiny_qwen3_dir, make_llm, assert_pool_clean):
    llm = make_llm(tiny_qwen3_dir)
    prompts = [[1, 2, 3], [7, 8]]
    params = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
    long = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    expected = llm.generate(prompts, params, use_tqdm=False)
    expected_other = llm.generate([[4, 5, 6]], long, use_tqdm=False)
    stream = llm.stream(prompts, params)
    deltas = [next(stream)]
    other = llm.generate([[4, 5, 6]], long, use_tqdm=False)  # runs every step to its end
    deltas += list(stream)
    tokens, texts, finished = _collect(deltas, 2)
    assert other == expected_other
    assert tokens == [e["token_ids"] for e in expected]
    assert texts == [e["text"] for e in expected]
    assert [f[-1] for f in finished] == ["length", "length"]  # each request's last delta says so
    assert all(f.count("length") == 1 for f in finished)
    assert_pool_clean(llm)


def test_two_streams_interleaved(tiny_qwen3_dir, make_llm, assert_pool_clean):
    llm = make_llm(tiny_qwen3_dir)
    a_params, b_params = (SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in (5, 9))
    expected_a = llm.generate([[1, 2]], a_params, use_tqdm=False)
    expected_b = llm.generate([[3, 4]], b_params, use_tqdm=False)
    a, b = llm.stream([[1, 2]], a_params), llm.stream([[3, 4]], b_params)
    deltas_a, deltas_b = [], []
    for x, y in zip(a, b):
        deltas_a.append(x)
        deltas_b.append(y)
    deltas_a += list(a)
    deltas_b += list(b)
    assert _collect(deltas_a, 1)[0] == [expected_a[0]["token_ids"]]
    assert _collect(deltas_b, 1)[0] == [expected_b[0]["token_ids"]]
    assert_pool_clean(llm)
