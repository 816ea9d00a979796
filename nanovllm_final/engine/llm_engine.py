"""LLMEngine: requests in, finished sequences out, one scheduler step at a time.

    add_request(prompt, params)  check the request, make a Sequence, queue it
    step()                       schedule -> model runner (every rank) -> postprocess

Async scheduling (config.async_scheduling, the default on a GPU with one rank): the host runs one
step ahead of the GPU. A step launches step N, whose decode inputs are step N-1's sampled tokens
still on the GPU, and only then reads step N-1's tokens and finishes its postprocess, while the
GPU computes step N; so the host's scheduling and preparation hide behind the GPU's work. The
sequences carry a placeholder token between the two halves (Scheduler.advance / settle), never
when step() returns: callers see every token, one step later. A sequence ended by end-of-sequence
or a stop string may already be in the launched step; its extra token is dropped.

With tensor_parallel_size > 1 the engine starts one worker process per extra rank
(torch.multiprocessing, spawn); rank 0's model runner lives here and drives them. `close()`
(also run by a `with` block, when the engine is garbage collected, and at interpreter exit)
tells the workers to leave and reaps them; a worker whose engine died leaves on its own
(model_runner.loop).
"""

import dataclasses
import json
import socket
import warnings
import weakref
from numbers import Integral
from pathlib import Path

import torch.multiprocessing as mp

from nanovllm_final.config import Config
from nanovllm_final.engine.model_runner import ModelRunner
from nanovllm_final.engine.scheduler import PLACEHOLDER, Scheduler
from nanovllm_final.engine.sequence import Sequence
from nanovllm_final.sampling_params import SamplingParams


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_tokenizer(folder: Path):
    """The folder's tokenizer, or None when it has no tokenizer files; a damaged file is named."""
    files = [folder / f for f in ("tokenizer.json", "tokenizer_config.json") if (folder / f).is_file()]
    if not files:
        return None
    for file in files:  # a JSON error is the common damage, and the file can be named exactly
        try:
            json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{file} is not valid JSON ({err}); fetch the model folder again") from err
    try:
        from transformers import AutoTokenizer  # here, not at the top: a rank process never loads one

        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:  # tokenizers raises its own exception types
        names = ", ".join(f.name for f in files)
        raise ValueError(f"the tokenizer in {folder} ({names}) could not be loaded ({err}); fetch the model "
                         "folder again") from err


class LLMEngine:
    def __init__(self, model, **kwargs):
        names = {f.name for f in dataclasses.fields(Config) if f.init}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; the options are {sorted(names - {'model'})}")
        config = Config(model, **kwargs)
        folder = Path(config.model)
        if config.load_format == "auto" and not list(folder.glob("*.safetensors")):
            raise FileNotFoundError(f"no *.safetensors file in {config.model}; the engine loads safetensors weights only")
        self.config = config
        # A benchmark folder (config.json only) has no tokenizer: token-id prompts still work.
        self.tokenizer = load_tokenizer(folder)
        config.dist_port = free_port()
        self.ps, self.events, self.closed = [], [], False
        ctx = mp.get_context("spawn")
        for rank in range(1, config.tensor_parallel_size):
            event = ctx.Event()
            process = ctx.Process(target=ModelRunner, args=(config, rank, event), daemon=True)
            process.start()
            self.ps.append(process)
            self.events.append(event)
        try:
            self.model_runner = ModelRunner(config, 0, self.events)
        except BaseException:
            stop_workers(self.ps, wait=0)  # they may be stuck waiting for rank 0 to join them
            raise
        self.scheduler = Scheduler(config)
        # async scheduling: (sequences, which of them sample, their tokens on the GPU, a reader of those)
        self.in_flight = None
        # Not atexit.register(self.close): that would hold the engine, and its KV pool, until exit.
        self._finalizer = weakref.finalize(self, shutdown, self.model_runner, self.ps)

    # ---- requests -----------------------------------------------------------------------------
    def encode(self, prompt) -> list[int]:
        """A prompt is a string or a list of token ids; check it before any work starts."""
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError(f"{self.config.model} has no tokenizer files; pass prompts as lists of token ids")
            ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        elif isinstance(prompt, (list, tuple)):
            ids = list(prompt)
        else:
            raise ValueError(f"a prompt is a string or a list of token ids, got {type(prompt).__name__}")
        if not ids:
            raise ValueError("prompt is empty; give at least one token")
        vocab = self.config.hf_config.vocab_size
        # Plain ints in range, the common case, checked at C speed (a tenth of the time the loops
        # below take, which is a few percent of the benchmark's run); otherwise numpy integers are
        # token ids too, and bools and floats are not.
        plain = set(map(type, ids)) == {int} and min(ids) >= 0 and max(ids) < vocab
        if not plain:
            ids = [int(t) if isinstance(t, Integral) and not isinstance(t, bool) else t for t in ids]
        bad = [] if plain else [t for t in ids if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab]
        if bad:
            raise ValueError(f"token ids {bad[:5]} are outside the vocabulary [0, {vocab}); check the tokenizer matches the model")
        if len(ids) >= self.config.max_model_len:
            raise ValueError(
                f"prompt has {len(ids):,} tokens but max_model_len is {self.config.max_model_len:,} (prompt plus "
                "at least one new token); shorten the prompt or raise max_model_len"
            )
        return ids

    def make_sequence(self, prompt, sampling_params: SamplingParams) -> Sequence:
        if not isinstance(sampling_params, SamplingParams):
            raise ValueError(f"sampling_params must be a SamplingParams, got {type(sampling_params).__name__}")
        sampling_params.validate()  # a field may have been changed since the object was made
        if sampling_params.stop and self.tokenizer is None:
            raise ValueError(f"stop strings need a tokenizer, and {self.config.model} has no tokenizer files; "
                             "drop stop or use a folder with tokenizer.json")
        seq = Sequence(self.encode(prompt), sampling_params)
        needed, pool = self.scheduler.blocks_at_longest(seq), self.config.num_kvcache_blocks
        if needed > pool:
            raise ValueError(
                f"a request of {seq.num_prompt_tokens} prompt tokens and max_tokens={seq.max_tokens} needs "
                f"{needed} KV blocks of {self.config.kvcache_block_size} tokens, but the pool has {pool}; "
                "lower max_tokens, shorten the prompt, or raise num_kvcache_blocks"
            )
        return seq

    def add_request(self, prompt, sampling_params: SamplingParams) -> Sequence:
        seq = self.make_sequence(prompt, sampling_params)
        self.scheduler.add(seq)
        return seq

    def abort(self, seqs: list[Sequence]) -> None:
        for seq in seqs:
            if not seq.is_finished:
                self.scheduler.finish(seq, "abort")

    # ---- the loop -----------------------------------------------------------------------------
    def step(self) -> tuple[list[Sequence], int, int]:
        """One forward pass. Returns (sequences that got a token, prefill tokens, decode tokens).
        With async scheduling the tokens are those of the step launched by the previous call."""
        if self.closed:
            raise RuntimeError("this LLM has been closed; create a new one")
        dead = [p for p in self.ps if not p.is_alive()]
        if dead:  # its rank's collectives would fail (gloo) or wait forever (NCCL)
            raise RuntimeError(f"tensor-parallel worker {dead[0].pid} exited (exit code {dead[0].exitcode}); "
                               "close() this LLM and create a new one")
        if self.config.async_scheduling:
            return self._step_async()
        seqs = self.scheduler.schedule()
        if not seqs:
            return [], 0, 0
        num_prefill, num_decode = self._count(seqs)
        token_ids = self.model_runner.call("run", seqs)
        self.scheduler.postprocess(seqs, token_ids)
        stepped = [seq for seq, t in zip(seqs, token_ids) if t is not None]
        self._check_stop_strings(stepped)
        return stepped, num_prefill, num_decode

    def _step_async(self) -> tuple[list[Sequence], int, int]:
        previous, self.in_flight = self.in_flight, None
        placed = []
        try:
            if previous is not None:  # its tokens are still on the GPU: move on with placeholders
                placed = self.scheduler.advance(previous[0], previous[1])
            seqs = self.scheduler.schedule()
            num_prefill = num_decode = 0
            if seqs:
                num_prefill, num_decode = self._count(seqs)
                pending = ({seq.seq_id: row for seq, row in placed}, previous[2]) if placed else None
                tokens, done = self.model_runner.launch(seqs, pending)
                read = tokens is not None and self.model_runner.copy_to_host(tokens)
                self.in_flight = (seqs, done, tokens, read)  # tokens None: no sequence reached its end
            # The GPU now runs the new step; reading the previous one's tokens waits for that one only.
            token_ids = previous[3]() if placed else []
            for seq, row in placed:
                self.scheduler.settle(seq, token_ids[row])
        except BaseException:
            for seq, _ in placed:  # no placeholder may outlive the call: those requests end here
                if seq.token_ids[-1] == PLACEHOLDER:
                    seq.token_ids.pop()
                    seq.num_tokens -= 1
                    self.abort([seq])
            raise
        stepped = [seq for seq, _ in placed]
        self._check_stop_strings(stepped)
        return stepped, num_prefill, num_decode

    @staticmethod
    def _count(seqs: list[Sequence]) -> tuple[int, int]:
        num_decode = sum(1 for seq in seqs if seq.num_tokens - seq.num_cached_tokens == 1)
        return sum(seq.num_scheduled_tokens for seq in seqs) - num_decode, num_decode

    def _check_stop_strings(self, stepped: list[Sequence]) -> None:
        for seq in stepped:
            if seq.sampling_params.stop and self.tokenizer and self.stop_position(seq) is not None:
                if seq.is_finished:
                    seq.finish_reason = "stop"
                else:
                    self.scheduler.finish(seq, "stop")

    def is_finished(self) -> bool:
        return self.scheduler.is_finished() and self.in_flight is None

    def stop_position(self, seq: Sequence, text: str | None = None) -> int | None:
        """Where the first stop string starts in the completion's text, or None. Only the tail
        is decoded while running: a new stop string must end in the newest tokens."""
        stops = seq.sampling_params.stop
        if text is None:
            tail = 4 * max(len(s) for s in stops) + 4  # a character spans at most 4 byte tokens
            text = self.tokenizer.decode(seq.completion_token_ids[-tail:], skip_special_tokens=True)
        found = [i for i in (text.find(s) for s in stops) if i >= 0]
        return min(found) if found else None

    def output_text(self, seq: Sequence) -> str:
        if self.tokenizer is None:
            return ""
        text = self.tokenizer.decode(seq.completion_token_ids, skip_special_tokens=True)
        if seq.finish_reason == "stop" and seq.sampling_params.stop:
            cut = self.stop_position(seq, text)
            text = text if cut is None else text[:cut]
        return text

    # ---- shutdown -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers and free the KV cache; also run when the engine is garbage collected
        or the interpreter exits. Always reaps the workers, even after an error left them stuck."""
        if self.closed:
            return
        self.closed = True
        self._finalizer()
        del self.model_runner

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def shutdown(runner: ModelRunner, processes: list) -> None:
    """Free one engine's ranks: together through exit() while they are in step and alive; else
    the workers are terminated and rank 0 frees its side alone. Holds no reference to the engine."""
    clean = not runner.broken and all(p.is_alive() for p in processes)
    try:
        if clean:
            runner.call("exit")
    finally:
        stop_workers(processes, wait=10 if clean else 0)
        runner.release()


def stop_workers(processes: list, wait: float) -> None:
    """Wait up to `wait` seconds for each worker to leave, then terminate it; always reap it
    (join), so no zombie process is left behind."""
    for p in processes:
        p.join(timeout=wait)
        if p.is_alive():
            p.terminate()
            p.join(timeout=10)
        if p.is_alive():
            p.kill()
            p.join(timeout=10)
        if p.is_alive():
            warnings.warn(f"tensor-parallel worker {p.pid} did not exit after SIGKILL", RuntimeWarning, stacklevel=2)
    processes.clear()
