"""LLM: the user's interface (vLLM's and nano-vllm's), on top of LLMEngine.

    llm = LLM("models/smollm2-135m-instruct")
    llm.generate(["The capital of France is"], SamplingParams(temperature=0, max_tokens=16))
    -> [{"text": " Paris...", "token_ids": [...], "finish_reason": "stop"}]
    llm.chat([{"role": "user", "content": "Hi"}], params)        through the chat template
    for delta in llm.stream(prompts, params): ...                 tokens as they come

All requests of one call run together, continuously batched; outputs come back in prompt order.
"""

import time
from numbers import Integral

from tqdm.auto import tqdm

from nanovllm_final.engine.llm_engine import LLMEngine
from nanovllm_final.engine.sequence import Sequence
from nanovllm_final.sampling_params import SamplingParams


class LLM(LLMEngine):
    def _make_sequences(self, prompts, sampling_params) -> list[Sequence]:
        """Check every prompt and parameter before queueing any, so bad input changes nothing."""
        if isinstance(prompts, str) or (isinstance(prompts, (list, tuple)) and prompts and isinstance(prompts[0], Integral)):
            prompts = [prompts]  # one prompt, as text or as token ids
        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError("prompts must be a non-empty list of strings or of token-id lists")
        params = SamplingParams() if sampling_params is None else sampling_params
        params = list(params) if isinstance(params, (list, tuple)) else [params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError(f"got {len(params)} SamplingParams for {len(prompts)} prompts; give one, or one per prompt")
        seqs = [self.make_sequence(p, sp) for p, sp in zip(prompts, params)]
        for seq in seqs:
            self.scheduler.add(seq)
        return seqs

    def _output(self, seq: Sequence) -> dict:
        return {"text": self.output_text(seq), "token_ids": seq.completion_token_ids, "finish_reason": seq.finish_reason}

    def generate(self, prompts, sampling_params=None, use_tqdm: bool = True, stream: bool = False):
        """Generate for every prompt; returns one dict per prompt, in order (an iterator of
        deltas with stream=True, as `stream` gives)."""
        if stream:
            return self.stream(prompts, sampling_params)
        seqs = self._make_sequences(prompts, sampling_params)
        bar = tqdm(total=len(seqs), desc="Generating", dynamic_ncols=True, disable=not use_tqdm)
        try:
            while not all(seq.is_finished for seq in seqs):
                start = time.perf_counter()
                _, num_prefill, num_decode = self.step()
                seconds = time.perf_counter() - start
                bar.set_postfix(prefill=f"{num_prefill / seconds:.0f} tok/s", decode=f"{num_decode / seconds:.0f} tok/s",
                                refresh=False)
                bar.update(sum(seq.is_finished for seq in seqs) - bar.n)
        except BaseException:
            self.abort(seqs)  # free their blocks: the engine stays usable after an error or Ctrl-C
            raise
        finally:
            bar.close()
        return [self._output(seq) for seq in seqs]

    def stream(self, prompts, sampling_params=None):
        """Yield {"index", "text", "token_ids", "finished", "finish_reason"} per request per step,
        with only what is new since the last delta of that request. The deltas of a request add
        up to what generate() returns for it, and the last one has finished=True.

        Each delta is taken from the request's own state, not from what the latest step touched:
        a generate() called while this stream is open advances these requests too, and their
        tokens come out here at the next delta, none lost and none twice."""
        seqs = self._make_sequences(prompts, sampling_params)
        sent_tokens, sent_text, done = [0] * len(seqs), [""] * len(seqs), [False] * len(seqs)
        try:
            while not all(done):
                for i, seq in enumerate(seqs):
                    if done[i] or (seq.num_completion_tokens == sent_tokens[i] and not seq.is_finished):
                        continue
                    # Noted before the yield: the consumer may advance the engine before it resumes us.
                    text, tokens, finished = self.streamable_text(seq), seq.completion_token_ids, seq.is_finished
                    delta = {"index": i, "text": text[len(sent_text[i]):], "token_ids": tokens[sent_tokens[i]:],
                             "finished": finished, "finish_reason": seq.finish_reason}
                    sent_tokens[i], sent_text[i], done[i] = len(tokens), text, finished
                    yield delta
                if not all(done):
                    self.step()
        finally:
            self.abort(seqs)  # a consumer that stops early leaves no blocks behind

    def streamable_text(self, seq: Sequence) -> str:
        """The completion's text that can be sent now: a finished request's final text; a running
        one's without a trailing half character, and without a tail that may be the start of a
        stop string (if the stop string completes, that text is cut from the output)."""
        text = self.output_text(seq)
        if seq.is_finished:
            return text
        if text.endswith("\ufffd"):
            text = text[:-1]  # half a multi-byte character: wait for the rest
        hold = max((k for stop in seq.sampling_params.stop for k in range(1, len(stop)) if text.endswith(stop[:k])),
                   default=0)
        return text[:len(text) - hold]

    def chat_prompt(self, messages: list[dict]) -> list[int]:
        """A conversation [{"role": "user", "content": ...}, ...] -> the prompt's token ids."""
        if self.tokenizer is None:
            raise ValueError(f"chat() needs a tokenizer, and {self.config.model} has no tokenizer files; "
                             "use generate() with token-id prompts or a folder with tokenizer.json")
        if self.tokenizer.chat_template is None:
            raise ValueError(f"the tokenizer of {self.config.model} has no chat template; use generate() with plain prompts")
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        return list(ids)

    def chat(self, conversations, sampling_params=None, use_tqdm: bool = True, stream: bool = False):
        """One conversation (a list of messages) or a list of conversations."""
        if conversations and isinstance(conversations[0], dict):
            conversations = [conversations]
        return self.generate([self.chat_prompt(c) for c in conversations], sampling_params, use_tqdm, stream)
