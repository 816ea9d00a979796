"""The OpenAI request and response shapes the server speaks, and how a request becomes engine input.

    CompletionRequest, ChatRequest   the JSON bodies of /v1/completions and /v1/chat/completions
    parse(cls, body)                 body -> request, or an APIError(400) naming the bad field
    APIError                         an error in OpenAI's shape: {"error": {message, type, param, code}}

Fields follow OpenAI's API, plus vLLM's extras (top_k, min_p, ignore_eos). Fields OpenAI has but
this engine does not implement (n > 1, logprobs, tools...) are accepted only at the value that
turns them off, so a client that sends `n: 1` works and one that asks for `n: 2` hears why not.
"""

import time
import uuid

from pydantic import BaseModel, ConfigDict, ValidationError

from nanovllm_final.sampling_params import SamplingParams


class APIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "service_unavailable" if self.status == 503 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class SamplingFields(BaseModel):
    """What both endpoints share: the model, the sampling parameters, streaming."""
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    max_tokens: int | None = None  # None: up to max_model_len
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    ignore_eos: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None  # only a label for the caller's logs
    # Accepted only at these values (what turns them off): see UNSUPPORTED below.
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: dict | None = None
    logprobs: bool | int | None = None

    def sampling_params(self, num_prompt_tokens: int, max_model_len: int) -> SamplingParams:
        max_tokens = self.max_tokens if self.max_tokens is not None else max_model_len - num_prompt_tokens
        try:
            return SamplingParams(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, min_p=self.min_p,
                                  max_tokens=max_tokens, ignore_eos=self.ignore_eos, stop=self.stop, seed=self.seed)
        except ValueError as err:  # SamplingParams' messages start with the field's name
            raise bad_request(str(err)) from err


class CompletionRequest(SamplingFields):
    prompt: str | list[int] | list[str] | list[list[int]]
    echo: bool = False
    best_of: int | None = None
    suffix: str | None = None

    def single_prompt(self) -> str | list[int]:
        prompt = self.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
            if len(prompt) > 1:
                raise APIError(400, f"prompt holds {len(prompt)} prompts; send one prompt per request "
                               "(they run batched on the server all the same)", "prompt")
            prompt = prompt[0]
        return prompt


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict] | None = None


class ChatRequest(SamplingFields):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = None  # the newer name of max_tokens
    top_logprobs: int | None = None
    tools: list | None = None
    tool_choice: str | dict | None = None
    response_format: dict | None = None

    def conversation(self) -> list[dict]:
        """Messages as the chat template takes them; text parts of a content list are joined."""
        if not self.messages:
            raise APIError(400, "messages is empty; give at least one message", "messages")
        out = []
        for i, m in enumerate(self.messages):
            content = m.content or ""
            if isinstance(content, list):
                if any(part.get("type") != "text" for part in content):
                    raise APIError(400, f"messages[{i}].content: only text parts are supported", "messages")
                content = "".join(part.get("text", "") for part in content)
            out.append({"role": m.role, "content": content})
        return out


# field -> the values that mean "off"; anything else gets a 400 that names the field
UNSUPPORTED = {
    "n": (1,), "presence_penalty": (0,), "frequency_penalty": (0,), "repetition_penalty": (1,),
    "logit_bias": (None, {}), "logprobs": (None, False, 0), "top_logprobs": (None, 0), "echo": (False,),
    "best_of": (None, 1), "suffix": (None,), "tools": (None, []), "tool_choice": (None, "none"),
    "response_format": (None, {"type": "text"}),
}


def bad_request(message: str) -> APIError:
    """A 400 whose param is the field the message starts with ("temperature must be >= 0")."""
    first = message.split()[0].split("=")[0] if message else None
    fields = CompletionRequest.model_fields.keys() | ChatRequest.model_fields.keys()
    return APIError(400, message, first if first in fields else None)


def parse(cls: type[SamplingFields], body) -> SamplingFields:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    try:
        request = cls.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])  # messages.0.role
        param = str(first["loc"][0]) if first["loc"] else None
        if first["type"] == "extra_forbidden":
            raise APIError(400, f"unrecognized request argument supplied: {where}", param) from None
        if param == "prompt" and first["type"] != "missing":  # a union: each member's error says little
            raise APIError(400, "prompt must be a string or a list of token ids", param) from None
        if first["type"] == "missing":
            raise APIError(400, f"{where} is required", param) from None
        raise APIError(400, f"{where}: {first['msg']} (got {str(first.get('input'))[:80]})", param) from None
    for name in request.model_fields_set & UNSUPPORTED.keys():
        value = getattr(request, name)
        if value not in UNSUPPORTED[name]:
            raise APIError(400, f"{name}={value!r} is not supported by this server", name)
    if isinstance(request, ChatRequest) and request.max_completion_tokens is not None:
        request.max_tokens = request.max_completion_tokens
    return request


# ---- responses ------------------------------------------------------------------------------
def usage(seq) -> dict:
    return {"prompt_tokens": seq.num_prompt_tokens, "completion_tokens": seq.num_completion_tokens,
            "total_tokens": seq.num_tokens}


def new_id(prefix: str) -> tuple[str, int]:
    return f"{prefix}-{uuid.uuid4().hex}", int(time.time())
