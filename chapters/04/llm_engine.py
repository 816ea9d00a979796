"""LLMEngine: requests in, finished sequences out, one scheduler step at a time.

    add_request(prompt, params)  check it, make a Sequence, queue it in the scheduler
    step()                       scheduler.schedule -> model_runner.call("run", seqs) -> scheduler.postprocess
    generate(prompts, params)    add them all, step until every one has finished

The engine names its parts once, below; a later chapter swaps one by naming its own class. The
model runner is started by `start_model_runner`, and the engine reaches it only through
`model_runner.call(method, *args)`: one process here, so a call is a plain method call; with
tensor parallelism (chapter 8) there is one runner per GPU, and the call reaches all of them.
"""

import time
from dataclasses import fields

from tqdm.auto import tqdm

from ch01.sampling_params import SamplingParams
from ch03.block_manager import BlockManager
from ch04 import solutions
from ch04.config import Config
from ch04.model_runner import ModelRunner
from ch04.scheduler import Scheduler
from ch04.sequence import Sequence


class LLMEngine:
    config_class = Config
    sequence_class = Sequence
    block_manager_class = BlockManager
    scheduler_class = Scheduler
    model_runner_class = ModelRunner
    sampling_params_class = SamplingParams

    def __init__(self, model, **kwargs):
        options = [f.name for f in fields(self.config_class) if f.init and f.name != "model"]
        unknown = sorted(set(kwargs) - set(options))
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; the options are {options}")
        self.config = config = self.config_class(model, **kwargs)
        from transformers import AutoTokenizer  # here, not at the top: chapter 8's rank processes never load one

        self.tokenizer = AutoTokenizer.from_pretrained(config.model)
        self.model_runner = self.start_model_runner(config)
        block_manager = self.block_manager_class(config.num_kvcache_blocks, config.kvcache_block_size)
        self.scheduler = self.scheduler_class(config, block_manager)

    def start_model_runner(self, config: Config) -> ModelRunner:
        """The model runner this process calls. One process holds the whole model here."""
        return self.model_runner_class(config)

    def make_sequence(self, prompt, sampling_params: SamplingParams) -> Sequence:
        """Check a request against the model and the pool; a bad one changes nothing."""
        config = self.config
        if not isinstance(sampling_params, self.sampling_params_class):
            # an earlier chapter's SamplingParams: the fields it lacks take their defaults
            sampling_params = self.sampling_params_class(**vars(sampling_params))
        ids = self.tokenizer.encode(prompt, add_special_tokens=False) if isinstance(prompt, str) else list(prompt)
        vocab = config.hf_config.vocab_size
        if not ids or not all(isinstance(t, int) and 0 <= t < vocab for t in ids):
            raise ValueError(f"a prompt is a non-empty string or list of token ids in [0, {vocab}), got {prompt!r:.80}")
        longest = len(ids) + sampling_params.max_tokens
        if longest > config.max_model_len:
            raise ValueError(
                f"prompt has {len(ids):,} tokens and max_tokens is {sampling_params.max_tokens:,}, but max_model_len "
                f"is {config.max_model_len:,}; shorten the prompt, lower max_tokens or raise max_model_len"
            )
        # At its longest a sequence holds longest - 1 tokens' K/V (the last token is never stored).
        # Alone in the pool it must fit, or no amount of preemption lets it finish.
        needed = -(-(longest - 1) // config.kvcache_block_size)
        if needed > config.num_kvcache_blocks:
            raise ValueError(
                f"a prompt of {len(ids):,} tokens with max_tokens={sampling_params.max_tokens:,} needs {needed:,} KV "
                f"blocks of {config.kvcache_block_size} tokens, but the pool has {config.num_kvcache_blocks:,}; "
                "raise num_kvcache_blocks, lower max_tokens or shorten the prompt"
            )
        return self.sequence_class(ids, sampling_params)

    def add_request(self, prompt, sampling_params: SamplingParams | None = None) -> Sequence:
        seq = self.make_sequence(prompt, sampling_params or self.sampling_params_class())
        self.scheduler.add(seq)
        return seq

    # The reference of the chapter's exercises is in solutions.py, its answer key (read it after them).
    step = solutions.step  # exercise 4.5 (solutions.py)

    def is_finished(self) -> bool:
        return self.scheduler.is_finished()

    def generate(self, prompts, sampling_params=None, use_tqdm: bool = True) -> list[dict]:
        """Every prompt (a string or a list of token ids) with its SamplingParams (one for all, or
        one each); returns {"text", "token_ids", "finish_reason"} per prompt, in order."""
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        one = not isinstance(sampling_params, (list, tuple))
        params = [sampling_params or self.sampling_params_class()] * len(prompts) if one else list(sampling_params)
        if len(params) != len(prompts):
            raise ValueError(f"got {len(params)} SamplingParams for {len(prompts)} prompts; give one, or one per prompt")
        seqs = [self.make_sequence(prompt, p) for prompt, p in zip(prompts, params)]  # all checked before any runs
        for seq in seqs:
            self.scheduler.add(seq)
        with tqdm(total=len(seqs), desc="Generating", dynamic_ncols=True, disable=not use_tqdm) as bar:
            try:
                while not self.is_finished():
                    start = time.perf_counter()
                    _, num_prefill, num_decode = self.step()
                    seconds = time.perf_counter() - start
                    bar.set_postfix(prefill=f"{num_prefill / seconds:.0f} tok/s", decode=f"{num_decode / seconds:.0f} tok/s")
                    bar.update(sum(seq.is_finished for seq in seqs) - bar.n)
            except BaseException:
                self.scheduler.abort(seqs)
                raise
        return [
            {"text": self.tokenizer.decode(seq.completion_token_ids, skip_special_tokens=True),
             "token_ids": seq.completion_token_ids, "finish_reason": seq.finish_reason}
            for seq in seqs
        ]
