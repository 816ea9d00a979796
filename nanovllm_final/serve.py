"""python -m nanovllm_final.serve MODEL [--host 127.0.0.1] [--port 8000] [--served-model-name NAME] [engine options]

An OpenAI-compatible HTTP server (FastAPI + uvicorn) on top of the engine:

    POST /v1/completions         prompt as text or token ids
    POST /v1/chat/completions    messages through the tokenizer's chat template
    GET  /v1/models
    GET  /health                 200 while the engine loop runs, 503 once it has died
    GET  /metrics                Prometheus' text format, vLLM's names (metrics.py)

Both POST endpoints stream with `"stream": true` (server-sent events, one `data: {...}` per engine
step, then `data: [DONE]`). Requests run in one engine loop (engine/engine_loop.py): a request
joins the running batch at the next step, and a client that disconnects aborts its request, so
its KV blocks go back at once. Engine options are Config's fields (`--max-num-seqs 64`);
`--dummy-qwen3-0.6b` serves Qwen3-0.6B's architecture with random weights, as the benchmarks do
(token-id prompts only: there is no tokenizer).

Careless and hostile clients: a body over --max-request-bytes gets a 413; parsing, checking and
tokenizing a request run in a worker thread, so a huge prompt does not hold up the event loop
(other clients, /health); wrong types, NaN and deep nesting are 400s (openai_api.py). On SIGINT
or SIGTERM every request ends at once (finish_reason "abort", a stream's last chunk and [DONE])
and the server exits; a second signal exits at once.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import typing
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from nanovllm_final.config import Config
from nanovllm_final.engine.engine_loop import EngineLoop
from nanovllm_final.engine.engine_loop import Request as EngineRequest
from nanovllm_final.llm import LLM
from nanovllm_final.metrics import CONTENT_TYPE, ServerMetrics
from nanovllm_final.openai_api import (APIError, ChatRequest, CompletionRequest, SamplingFields, bad_request,
                                       load_json, new_id, parse, usage)

MAX_REQUEST_BYTES = 4 * 2**20  # a prompt of max_model_len tokens is a few hundred KB of JSON
GRACE_SECONDS = 5  # after a signal, how long a client that stopped reading may hold up the exit


def build_app(llm: LLM, model_name: str, owns_engine: bool = False,
              max_request_bytes: int = MAX_REQUEST_BYTES) -> FastAPI:
    """The app for one engine. Its engine loop starts now and stops when the app shuts down; with
    owns_engine the engine closes then too (uvicorn ends the process by re-raising Ctrl-C or
    SIGTERM right after, so code after uvicorn.run would not run). Serve it with `Server`, whose
    shutdown ends the running requests first."""
    metrics = ServerMetrics(llm)
    engine_loop = EngineLoop(llm, observer=metrics)

    @asynccontextmanager
    async def lifespan(app):
        yield
        engine_loop.close()
        if owns_engine:
            llm.close()

    app = FastAPI(title="nanovllm_final", lifespan=lifespan)
    app.state.engine_loop, app.state.metrics = engine_loop, metrics

    @app.exception_handler(APIError)
    async def api_error(request, err: APIError):
        # A 413 leaves the body unread on the connection: it cannot carry another request.
        headers = {"Connection": "close"} if err.status == 413 else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    @app.exception_handler(Exception)
    async def server_error(request, err: Exception):  # a bug: still OpenAI's shape, and the client is told
        return JSONResponse(APIError(500, f"internal error ({type(err).__name__}); the server's log has the "
                                     "traceback").body(), status_code=500, headers={"Connection": "close"})

    @app.exception_handler(HTTPException)
    async def http_error(request, err: HTTPException):  # an unknown path or method, in the same shape
        return JSONResponse(APIError(err.status_code, f"{request.method} {request.url.path}: {err.detail}").body(),
                            status_code=err.status_code)

    def check_ready(model: str | None) -> None:
        if engine_loop.error is not None:
            raise APIError(503, f"the engine has failed ({engine_loop.error!r}); restart the server", code="engine_failed")
        if not engine_loop.is_alive():
            raise APIError(503, "the engine loop has stopped; restart the server", code="engine_failed")
        if engine_loop.finishing:
            raise APIError(503, "the server is shutting down; send the request to another server", code="shutting_down")
        if model is not None and model != model_name:
            raise APIError(404, f"the model {model!r} does not exist; this server serves {model_name!r}",
                           "model", "model_not_found")

    def make_sequence(prompt, req: SamplingFields, field: str):
        """Check everything before the request reaches the engine: a bad one changes nothing there."""
        try:
            ids = llm.encode(prompt)
        except ValueError as err:
            raise APIError(400, str(err), field) from err
        params = req.sampling_params(len(ids), llm.config.max_model_len)
        try:
            return llm.make_sequence(ids, params)
        except ValueError as err:
            error = bad_request(str(err))
            if error.param is None and "KV blocks" in error.message:  # more than the whole pool
                error.param = "max_tokens"
            raise req.as_sent(error) from err

    def completion_input(body: bytes):
        req = parse(CompletionRequest, load_json(body))
        check_ready(req.model)
        return req, make_sequence(req.single_prompt(), req, "prompt")

    def chat_input(body: bytes):
        req = parse(ChatRequest, load_json(body))
        check_ready(req.model)
        if llm.tokenizer is None:
            raise APIError(400, f"{llm.config.model} has no tokenizer, so no chat template; use /v1/completions "
                           "with token ids", "messages")
        conversation = req.conversation()
        try:
            prompt = llm.chat_prompt(conversation)
        except Exception as err:  # the template itself rejects the conversation (roles, order)
            raise APIError(400, f"the chat template rejected the messages: {err}", "messages") from err
        return req, make_sequence(prompt, req, "messages")

    async def read_body(request: Request) -> bytes:
        """The body, refused with a 413 as soon as it is known to be too large."""
        too_large = APIError(413, f"the request body is larger than {max_request_bytes:,} bytes; shorten the prompt, "
                             "or start the server with a larger --max-request-bytes")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_request_bytes:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():  # also a chunked body, which has no length up front
            size += len(chunk)
            if size > max_request_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def respond(request: Request, req: SamplingFields, seq, chat: bool):
        try:
            handle = engine_loop.submit(seq)
        except RuntimeError as err:  # the engine failed, or the server began to stop, since check_ready
            code = "shutting_down" if engine_loop.finishing else "engine_failed"
            raise APIError(503, str(err), code=code) from err
        rid, created = new_id("chatcmpl" if chat else "cmpl")
        head = {"id": rid, "object": "chat.completion" if chat else "text_completion", "created": created,
                "model": model_name}
        if req.stream:
            include_usage = req.stream_options is not None and req.stream_options.include_usage
            events = event_stream(handle, dict(head, object=head["object"] + (".chunk" if chat else "")), chat,
                                  include_usage)
            return StreamingResponse(events, media_type="text/event-stream")
        deltas = await until_done_or_gone(request, handle)
        if deltas is None:
            return Response(status_code=499)  # nobody is listening; nginx's code for it
        text, reason = "".join(d["text"] for d in deltas), deltas[-1]["finish_reason"]
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                      "finish_reason": reason}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": reason}
        return JSONResponse(dict(head, choices=[choice], usage=usage(seq)))

    async def event_stream(handle: EngineRequest, head: dict, chat: bool, include_usage: bool):
        def event(choices, **extra) -> str:
            if include_usage:  # OpenAI's chunks carry "usage": null until the last one, which has it
                extra.setdefault("usage", None)
            return f"data: {json.dumps(dict(head, choices=choices, **extra))}\n\n"

        try:
            if chat:  # OpenAI's first chunk names the role
                yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                              "finish_reason": None}])
            while True:
                try:
                    delta = await next_delta(handle)
                except APIError as err:
                    yield f"data: {json.dumps(err.body())}\n\n"
                    break
                body = {"delta": {"content": delta["text"]}} if chat else {"text": delta["text"]}
                yield event([{"index": 0, **body, "logprobs": None, "finish_reason": delta["finish_reason"]}])
                if delta["finished"]:
                    if include_usage:
                        yield event([], usage=usage(handle.seq))
                    break
            yield "data: [DONE]\n\n"
        finally:  # also when the client disconnects: the response task is cancelled here
            engine_loop.abort(handle)

    async def next_delta(handle: EngineRequest) -> dict:
        """Wait for the next step's delta; merge any others already queued (a slow reader catches up)."""
        items = [await handle.outputs.get()]
        while not handle.outputs.empty():
            items.append(handle.outputs.get_nowait())
        failed = [item for item in items if isinstance(item, BaseException)]
        if failed:
            raise APIError(503, f"the engine has failed ({failed[0]!r}); restart the server", code="engine_failed")
        return {"text": "".join(item["text"] for item in items), "finished": items[-1]["finished"],
                "finish_reason": items[-1]["finish_reason"]}

    async def until_done_or_gone(request: Request, handle: EngineRequest) -> list[dict] | None:
        """All deltas of a non-streaming request, or None if its client disconnected first."""
        async def collect():
            deltas = [await next_delta(handle)]
            while not deltas[-1]["finished"]:
                deltas.append(await next_delta(handle))
            return deltas

        async def disconnected():
            while (await request.receive())["type"] != "http.disconnect":
                pass

        done_task, gone_task = asyncio.ensure_future(collect()), asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({done_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
            return done_task.result() if done_task.done() else None
        finally:
            gone_task.cancel()
            done_task.cancel()
            engine_loop.abort(handle)

    # JSON, checks and tokenizing run in a worker thread: a 4 MB prompt takes seconds to tokenize,
    # and on the event loop every other client (and /health) would wait for it.
    @app.post("/v1/completions")
    async def completions(request: Request):
        req, seq = await asyncio.to_thread(completion_input, await read_body(request))
        return await respond(request, req, seq, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        req, seq = await asyncio.to_thread(chat_input, await read_body(request))
        return await respond(request, req, seq, chat=True)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "nanovllm_final", "max_model_len": llm.config.max_model_len}]}

    @app.get("/health")
    async def health():
        check_ready(None)
        return {"status": "ok", "engine_loop": "alive"}

    @app.get("/metrics")
    async def prometheus_metrics():
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


class Server(uvicorn.Server):
    """uvicorn's server, serving a build_app app. On its own, uvicorn's shutdown waits for every
    open stream to finish generating; this one first ends every request (EngineLoop.finish_all),
    so streams close at once with a finish_reason and [DONE]. A second SIGINT or SIGTERM exits
    the process at once."""

    async def shutdown(self, sockets=None) -> None:
        self.config.app.state.engine_loop.finish_all()
        await super().shutdown(sockets)

    def handle_exit(self, sig, frame) -> None:
        if self.should_exit:  # the second signal: nothing more is waited for
            os._exit(128 + sig)
        super().handle_exit(sig, frame)


# ---- the command line -----------------------------------------------------------------------
def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """One option per Config field, so the server takes every setting LLM(...) takes."""
    group = parser.add_argument_group("engine options (nanovllm_final.config.Config)")
    for f in dataclasses.fields(Config):
        if not f.init or f.name == "model":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.default is False:
            group.add_argument(flag, action="store_true", default=None)
        else:
            kinds = [t for t in typing.get_args(f.type) or (f.type,) if t is not type(None)]
            group.add_argument(flag, type=kinds[0] if kinds[0] in (int, float) else str, default=None,
                               help=f"default: {f.default}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nanovllm_final.serve", description=__doc__.splitlines()[2])
    parser.add_argument("model", nargs="?", help="a Hugging Face model folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", help="the name clients pass as `model` (default: the folder's name)")
    parser.add_argument("--max-request-bytes", type=int, default=MAX_REQUEST_BYTES,
                        help=f"larger request bodies get a 413 (default: {MAX_REQUEST_BYTES:,})")
    parser.add_argument("--dummy-qwen3-0.6b", action="store_true", dest="dummy",
                        help="Qwen3-0.6B's architecture with random weights (benchmarks; token-id prompts only)")
    add_engine_options(parser)
    args = parser.parse_args(argv)
    if (args.model is None) == (not args.dummy):
        parser.error("give a model folder, or --dummy-qwen3-0.6b")
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
               if f.init and f.name != "model" and getattr(args, f.name) is not None}
    if args.dummy:
        from nanovllm_final.bench import QWEN3_0_6B

        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "config.json").write_text(json.dumps(QWEN3_0_6B))
            llm = LLM(folder, **{"load_format": "dummy", **options})
        name = args.served_model_name or "qwen3-0.6b-dummy"
    else:
        llm = LLM(args.model, **options)
        name = args.served_model_name or Path(args.model).resolve().name
    app = build_app(llm, name, owns_engine=True, max_request_bytes=args.max_request_bytes)
    server = Server(uvicorn.Config(app, host=args.host, port=args.port, timeout_graceful_shutdown=GRACE_SECONDS))
    try:
        server.run()  # as uvicorn.run does: a Ctrl-C re-raised after the shutdown ends quietly
    except KeyboardInterrupt:
        pass
    finally:
        llm.close()  # if uvicorn could not start (the port is taken); harmless after a shutdown
    if not server.started:
        sys.exit(3)  # uvicorn's code for a failed startup


if __name__ == "__main__":
    main()
