"""The user-facing interface: text and token prompts, per-prompt params, EOS and stop strings,
chat through the template, streaming deltas that add up to generate()'s output."""

from nanovllm_final import SamplingParams


def test_text_and_token_prompts_in_order(tiny_qwen3_dir, make_llm):
    llm = make_llm(tiny_qwen3_dir)
    params = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
    text = "The capital of France is"
    ids = llm.tokenizer.encode(text, add_special_tokens=False)
    outs = llm.generate([text, [5, 6], ids], params, use_tqdm=False)
    assert outs[0]["token_ids"] == outs[2]["token_ids"]
    assert outs[0]["text"] == llm.tokenizer.decode(outs[0]["token_ids"], skip_special_tokens=True)
    assert llm.generate(text, params, use_tqdm=False)[0] == outs[0]  # a single prompt, unwrapped


def test_eos_stops_and_ignore_eos_does_not(tiny_qwen3_dir, make_llm, monkeypatch):
    llm = make_llm(tiny_qwen3_dir)
    free = llm.generate([[1, 2, 3]], SamplingParams(temperature=0, max_tokens=8, ignore_eos=True), use_tqdm=False)[0]
    eos = free["token_ids"][2]
    llm.scheduler.eos = {eos}  # pretend the third greedy token ends the sequence
    stopped = llm.generate([[1, 2, 3]], SamplingParams(temperature=0, max_tokens=8), use_tqdm=False)[0]
    first = free["token_ids"].index(eos) + 1
    assert stopped["token_ids"] == free["token_ids"][:first] and stopped["finish_reason"] == "stop"
    kept = llm.generate([[1, 2, 3]], SamplingParams(temperature=0, max_tokens=8, ignore_eos=True), use_tqdm=False)[0]
    assert kept == free and kept["finish_reason"] == "length"


def test_stop_string_cuts_the_text(tiny_qwen3_dir, make_llm, assert_pool_clean):
    llm = make_llm(tiny_qwen3_dir)
    params = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    full = llm.generate([[1, 2, 3]], params, use_tqdm=False)[0]
    stop = full["text"][len(full["text"]) // 2:][:2]
    assert stop.strip(), full["text"]
    params.stop = [stop]
    out = llm.generate([[1, 2, 3]], params, use_tqdm=False)[0]
    assert out["finish_reason"] == "stop" and stop not in out["text"]
    assert full["text"].startswith(out["text"]) and len(out["token_ids"]) < 12
    assert_pool_clean(llm)


def test_generation_ends_at_max_model_len(tiny_qwen3_dir, make_llm):
    llm = make_llm(tiny_qwen3_dir, max_model_len=10)
    out = llm.generate([[1, 2, 3, 4, 5, 6]], SamplingParams(temperature=0, max_tokens=50, ignore_eos=True), use_tqdm=False)[0]
    assert len(out["token_ids"]) == 4 and out["finish_reason"] == "length"


def test_chat_uses_the_template(tiny_qwen3_dir, make_llm):
    llm = make_llm(tiny_qwen3_dir)
    conv = [{"role": "user", "content": "The capital of France is"}]
    params = SamplingParams(temperature=0, max_tokens=5, ignore_eos=True)
    ids = llm.tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=True, return_dict=False)
    [one] = llm.chat(conv, params, use_tqdm=False)
    assert one == llm.generate([list(ids)], params, use_tqdm=False)[0]
    assert len(llm.chat([conv, conv + [{"role": "assistant", "content": "Paris"}]], params, use_tqdm=False)) == 2


def test_stream_deltas_add_up_to_generate(tiny_model_dir, make_llm, random_prompts, assert_pool_clean):
    llm = make_llm(tiny_model_dir)
    prompts = random_prompts(5, seed=9)
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in (3, 9, 1, 6, 12)]
    expected = llm.generate(prompts, params, use_tqdm=False)
    tokens, texts, reasons = [[] for _ in prompts], [""] * len(prompts), [None] * len(prompts)
    for delta in llm.generate(prompts, params, stream=True):
        tokens[delta["index"]] += delta["token_ids"]
        texts[delta["index"]] += delta["text"]
        if delta["finished"]:
            reasons[delta["index"]] = delta["finish_reason"]
    assert tokens == [e["token_ids"] for e in expected]
    assert texts == [e["text"] for e in expected]
    assert reasons == ["length"] * len(prompts)
    assert_pool_clean(llm)


def test_stream_abandoned_early_frees_its_blocks(tiny_qwen3_dir, make_llm, assert_pool_clean):
    llm = make_llm(tiny_qwen3_dir)
    stream = llm.stream([[1, 2, 3], [4, 5]], SamplingParams(temperature=0, max_tokens=20, ignore_eos=True))
    next(stream)
    stream.close()
    assert_pool_clean(llm)
