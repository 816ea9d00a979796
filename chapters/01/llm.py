"""LLM: a model folder in, text out. The interface every chapter keeps (vLLM's and nano-vllm's):

    llm = LLM("models/smollm2-135m-instruct")
    llm.generate(["The capital of France is"], SamplingParams(temperature=0, max_tokens=16))
    -> [{"text": " Paris...", "token_ids": [...], "finish_reason": "stop"}]

Here each prompt runs on its own through the naive loop of naive_generate.py.
"""

import torch

from ch01 import naive_generate
from ch01.loader import load_model
from ch01.model import Parts
from ch01.sampling_params import SamplingParams


class LLM:
    parts = Parts()  # the model's swappable pieces; a later chapter's LLM names its own

    def __init__(self, model_path, dtype=torch.float32, device="cpu"):
        self.model = load_model(model_path, dtype=dtype, device=device, parts=self.parts)
        self.config = self.model.config
        from transformers import AutoTokenizer  # imported when needed: importing transformers takes seconds

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.max_model_len = self.config.max_position_embeddings

    def encode_prompt(self, prompt) -> list[int]:
        """A prompt is a string or a list of token ids; check it before any work starts."""
        ids = self.tokenizer.encode(prompt, add_special_tokens=False) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise ValueError("prompt is empty; give at least one token")
        bad = [t for t in ids if not isinstance(t, int) or not 0 <= t < self.config.vocab_size]
        if bad:
            raise ValueError(f"token ids {bad[:5]} are outside the vocabulary [0, {self.config.vocab_size})")
        return ids

    def check_length(self, prompt_ids: list[int], params: SamplingParams) -> None:
        if len(prompt_ids) + params.max_tokens > self.max_model_len:
            raise ValueError(
                f"prompt has {len(prompt_ids):,} tokens and max_tokens is {params.max_tokens:,}, but "
                f"max_model_len is {self.max_model_len:,}; shorten the prompt or lower max_tokens"
            )

    def requests(self, prompts, sampling_params=None) -> list[tuple[list[int], SamplingParams]]:
        """Check every prompt before any work starts: (token ids, SamplingParams) per prompt."""
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]  # one prompt, as text or as token ids
        params = sampling_params or SamplingParams()
        params = params if isinstance(params, list) else [params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError(f"got {len(params)} SamplingParams for {len(prompts)} prompts; give one, or one per prompt")
        encoded = [self.encode_prompt(p) for p in prompts]
        for ids, p in zip(encoded, params):
            self.check_length(ids, p)
        return list(zip(encoded, params))

    def make_output(self, token_ids: list[int], finish_reason: str) -> dict:
        return {
            "text": self.tokenizer.decode(token_ids, skip_special_tokens=True),
            "token_ids": token_ids,
            "finish_reason": finish_reason,  # "stop" (EOS) or "length" (max_tokens)
        }

    def generate(self, prompts, sampling_params: SamplingParams | list[SamplingParams] | None = None) -> list[dict]:
        outputs = []
        for ids, p in self.requests(prompts, sampling_params):
            new = naive_generate.generate(self.model, ids, p, self.config.eos_token_ids)
            stopped = bool(new) and new[-1] in self.config.eos_token_ids and not p.ignore_eos
            outputs.append(self.make_output(new, "stop" if stopped else "length"))
        return outputs

    def chat_prompt(self, messages: list[dict]) -> list[int]:
        """A conversation [{"role": "user", "content": ...}, ...] -> the prompt's token ids."""
        return list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))

    def chat(self, conversations, sampling_params=None) -> list[dict]:
        """One conversation (a list of messages) or a list of conversations."""
        if conversations and isinstance(conversations[0], dict):
            conversations = [conversations]
        return self.generate([self.chat_prompt(c) for c in conversations], sampling_params)
