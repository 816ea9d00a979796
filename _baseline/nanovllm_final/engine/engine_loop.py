"""EngineLoop: one thread that owns an LLMEngine and steps it while requests are pending.

The HTTP server (serve.py) handles many requests at once on an asyncio event loop, but the
engine is single-threaded: the scheduler's queues and the block pool are touched by this thread
only. Other threads talk to it through an inbox:

    request = loop.submit(seq)    queue a checked Sequence; its outputs arrive on request.outputs
    loop.abort(request)           the client left: finish the sequence, its KV blocks go back

Each step, the new requests join the running batch (continuous batching) and every request that
got a token receives one delta {"text", "token_ids", "finished", "finish_reason"} on its
asyncio.Queue, handed over with call_soon_threadsafe. The text is decoded incrementally while a
request runs and in full once it finishes, so the streamed text adds up to LLM.generate's. If a step raises, the engine is broken:
every pending request gets the error, and later ones are refused (`error` is set).
"""

import asyncio
import queue
import threading
from dataclasses import dataclass, field

from nanovllm_final.engine.llm_engine import LLMEngine
from nanovllm_final.engine.sequence import Sequence


@dataclass(eq=False)
class Request:
    seq: Sequence
    event_loop: asyncio.AbstractEventLoop  # the loop whose coroutine reads `outputs`
    outputs: asyncio.Queue = field(default_factory=asyncio.Queue)
    sent_text: str = ""
    sent_tokens: int = 0
    # Incremental detokenization (vLLM's): the completion's text decoded so far, and the token
    # window [prefix_offset, read_offset) that the next decode starts from.
    decoded: str = ""
    prefix_offset: int = 0
    read_offset: int = 0

    def put(self, item) -> None:
        """From the engine thread: hand a delta (or an exception) to the request's coroutine."""
        try:
            self.event_loop.call_soon_threadsafe(self.outputs.put_nowait, item)
        except RuntimeError:
            pass  # the event loop is closed: the server is shutting down and nobody reads it


class EngineLoop:
    def __init__(self, engine: LLMEngine):
        self.engine = engine
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()  # ("add" | "abort", Request)
        self.wakeup = threading.Event()
        self.requests: dict[int, Request] = {}  # seq_id -> Request, engine thread only
        self.error: BaseException | None = None
        self.stopping = False
        self.max_batch = 0  # the most sequences that got a token in one step (tests look at it)
        self.num_aborted = 0
        self.thread = threading.Thread(target=self._run, name="engine-loop", daemon=True)
        self.thread.start()

    # ---- called from any thread ---------------------------------------------------------------
    def submit(self, seq: Sequence) -> Request:
        """Queue a sequence made by engine.make_sequence (which checked it). Call from a coroutine."""
        request = Request(seq, asyncio.get_running_loop())
        self.inbox.put(("add", request))
        self.wakeup.set()
        if self.error is not None:  # checked after the put: a failure that raced it may not see it
            raise RuntimeError(f"the engine has failed ({self.error!r}); restart the server")
        return request

    def abort(self, request: Request) -> None:
        """Finish the request now if it is still running; harmless if it has finished."""
        if not request.seq.is_finished:
            self.inbox.put(("abort", request))
            self.wakeup.set()

    def is_idle(self) -> bool:
        return self.inbox.empty() and not self.requests

    def close(self) -> None:
        self.stopping = True
        self.wakeup.set()
        self.thread.join(timeout=30)

    # ---- the engine thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self.stopping:
                self._drain_inbox()
                if not self.requests:
                    self.wakeup.wait()
                    self.wakeup.clear()  # anything submitted after wait() returned is in the inbox
                    continue
                stepped, _, _ = self.engine.step()
                self.max_batch = max(self.max_batch, len(stepped))
                for seq in stepped:
                    request = self.requests.get(seq.seq_id)
                    if request is not None:
                        self._send_delta(request)
        except BaseException as err:  # noqa: BLE001 -- every waiting client must hear of it
            self._fail(err)
            return
        self._fail(RuntimeError("the server is shutting down"))

    def _drain_inbox(self) -> None:
        while True:
            try:
                kind, request = self.inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "add":
                self.engine.scheduler.add(request.seq)
                self.requests[request.seq.seq_id] = request
            elif self.requests.pop(request.seq.seq_id, None) is not None:
                self.engine.abort([request.seq])  # frees its blocks at once
                self.num_aborted += 1

    def _send_delta(self, request: Request) -> None:
        seq = request.seq
        if seq.is_finished or self.engine.tokenizer is None:
            text = self.engine.output_text(seq)  # exactly LLM.generate's text, cut at a stop string
        else:
            self._decode_new_tokens(request)
            # Hold back the start of a stop string whose end has not come yet: the finished text
            # is cut before it.
            hold = max((len(s) for s in seq.sampling_params.stop), default=1) - 1
            text = request.decoded[:max(0, len(request.decoded) - hold)]
        new_text = text[len(request.sent_text):] if text.startswith(request.sent_text) else ""
        request.put({
            "text": new_text,
            "token_ids": seq.token_ids[seq.num_prompt_tokens + request.sent_tokens:],
            "finished": seq.is_finished,
            "finish_reason": seq.finish_reason,
        })
        request.sent_text += new_text
        request.sent_tokens = seq.num_completion_tokens
        if seq.is_finished:
            del self.requests[seq.seq_id]

    def _decode_new_tokens(self, request: Request) -> None:
        """Decoding the whole completion every step costs time in proportion to its length, per
        request and per step; decode only the newest tokens, with the few before them for context
        (a tokenizer may render a token differently after another, a leading space say), and keep
        the new text once it ends in a whole character (a byte token may be half of one)."""
        seq, tokenizer = request.seq, self.engine.tokenizer
        start = seq.num_prompt_tokens + request.prefix_offset
        before = tokenizer.decode(seq.token_ids[start:seq.num_prompt_tokens + request.read_offset],
                                  skip_special_tokens=True)
        now = tokenizer.decode(seq.token_ids[start:], skip_special_tokens=True)
        if len(now) > len(before) and not now.endswith("\ufffd"):
            request.decoded += now[len(before):]
            request.prefix_offset, request.read_offset = request.read_offset, seq.num_completion_tokens

    def _fail(self, err: BaseException) -> None:
        """The engine is not to be trusted any more: tell every request, queued or running."""
        self.error = err
        waiting = list(self.requests.values())
        self.requests.clear()
        while not self.inbox.empty():
            kind, request = self.inbox.get_nowait()
            if kind == "add":
                waiting.append(request)
        for request in waiting:
            request.put(err)
