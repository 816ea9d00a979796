"""python -m nanovllm_final.serve MODEL [--host 127.0.0.1] [--port 8000] [--served-model-name NAME] [engine options]

An OpenAI-compatible HTTP server (FastAPI + uvicorn) on top of the engine:

    POST /v1/completions         prompt as text or token ids
    POST /v1/chat/completions    messages through the tokenizer's chat template
    GET  /v1/models, GET /health

Both POST endpoints stream with `"stream": true` (server-sent events, one `data: {...}` per engine
step, then `data: [DONE]`). Requests run in one engine loop (engine/engine_loop.py): a request
joins the running batch at the next step, and a client that disconnects aborts its request, so
its KV blocks go back at once. Engine options are Config's fields (`--max-num-seqs 64`);
`--dummy-qwen3-0.6b` serves Qwen3-0.6B's architecture with random weights, as the benchmarks do
(token-id prompts only: there is no tokenizer).
"""

import argparse
import asyncio
import dataclasses
import json
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
from nanovllm_final.openai_api import (APIError, ChatRequest, CompletionRequest, SamplingFields, bad_request, new_id,
                                       parse, usage)


def build_app(llm: LLM, model_name: str, owns_engine: bool = False) -> FastAPI:
    """The app for one engine. Its engine loop starts now and stops when the app shuts down; with
    owns_engine the engine closes then too (uvicorn ends the process by re-raising Ctrl-C or
    SIGTERM right after, so code after uvicorn.run would not run)."""
    engine_loop = EngineLoop(llm)

    @asynccontextmanager
    async def lifespan(app):
        yield
        engine_loop.close()
        if owns_engine:
            llm.close()

    app = FastAPI(title="nanovllm_final", lifespan=lifespan)
    app.state.engine_loop = engine_loop

    @app.exception_handler(APIError)
    async def api_error(request, err: APIError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, err: HTTPException):  # an unknown path or method, in the same shape
        return JSONResponse(APIError(err.status_code, f"{request.method} {request.url.path}: {err.detail}").body(),
                            status_code=err.status_code)

    def check_ready(model: str | None) -> None:
        if engine_loop.error is not None:
            raise APIError(503, f"the engine has failed ({engine_loop.error!r}); restart the server", code="engine_failed")
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
            raise error from err

    async def respond(request: Request, req: SamplingFields, seq, chat: bool):
        try:
            handle = engine_loop.submit(seq)
        except RuntimeError as err:  # the engine failed between check_ready and now
            raise APIError(503, str(err), code="engine_failed") from err
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

    @app.post("/v1/completions")
    async def completions(request: Request):
        req = parse(CompletionRequest, await read_json(request))
        check_ready(req.model)
        seq = make_sequence(req.single_prompt(), req, "prompt")
        return await respond(request, req, seq, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        req = parse(ChatRequest, await read_json(request))
        check_ready(req.model)
        if llm.tokenizer is None:
            raise APIError(400, f"{llm.config.model} has no tokenizer, so no chat template; use /v1/completions "
                           "with token ids", "messages")
        conversation = req.conversation()
        try:
            prompt = llm.chat_prompt(conversation)
        except Exception as err:  # the template itself rejects the conversation (roles, order)
            raise APIError(400, f"the chat template rejected the messages: {err}", "messages") from err
        seq = make_sequence(prompt, req, "messages")
        return await respond(request, req, seq, chat=True)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "nanovllm_final", "max_model_len": llm.config.max_model_len}]}

    @app.get("/health")
    async def health():
        check_ready(None)
        return {}

    return app


async def read_json(request: Request):
    try:
        return json.loads(await request.body())
    except ValueError as err:
        raise APIError(400, f"the request body is not valid JSON ({err})") from None


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
    try:
        uvicorn.run(build_app(llm, name, owns_engine=True), host=args.host, port=args.port)
    finally:
        llm.close()  # if uvicorn could not start (the port is taken); harmless after a shutdown


if __name__ == "__main__":
    main()
