"""The offline runner: one workload, all requests at once, through any chapter's engine.

Every chapter from 1 on (and nanovllm_final) has the same public face, nano-vllm's:
`LLM(model, **limits).generate(prompts, sampling_params)` returns one dict per prompt with its
`token_ids`. The runner uses nothing else, so a chapter joins by existing: `engines()` lists the
folders chapters/NN/ whose package has an `LLM`, then nanovllm_final. What differs between
chapters is adapted here, not there: chapter 1's LLM takes no limits (it has no cache to size),
chapters 1-3 run fixed batches, chapters 4 on take `use_tqdm`.

What is counted (`timed_generate`): a warm-up request runs first and is not timed (the first
call pays one-time costs: memory first touched, kernels chosen); the clock covers one generate()
of the whole workload; only output tokens count, the ones the engine produced. Noise: each
measurement is repeated and reported as its best (the machine's capability: another process can
only make a run slower) and its median (what a typical run gets).
"""

import importlib
import inspect
import statistics
import time

from ch11.solutions import timed_generate  # exercise 11.3: the answer key
from course.paths import REPO_ROOT

FINAL = "nanovllm_final"


def engines() -> list[str]:
    """Package names of every engine in the repo, in course order: ch01, ch02, ..., nanovllm_final."""
    found = []
    for folder in sorted((REPO_ROOT / "chapters").glob("[0-9][0-9]")):
        if (folder / "__init__.py").is_file() and hasattr(importlib.import_module(f"ch{folder.name}"), "LLM"):
            found.append(f"ch{folder.name}")
    return found + [FINAL]


def label(engine: str) -> str:
    """What the engine adds, from its package docstring: 'Chapter 2 — KV cache: ...' -> 'KV cache'."""
    if engine == FINAL:
        return "the final engine"
    first = (importlib.import_module(engine).__doc__ or engine).strip().splitlines()[0]
    return first.split("—", 1)[-1].split(":", 1)[0].strip().rstrip(".")


def make_llm(engine: str, model, **limits):
    """The engine's LLM on `model`, given the limits its constructor takes (max_num_seqs,
    max_model_len, ...); chapter 1's takes none and runs one prompt at a time."""
    llm_class = importlib.import_module(engine).LLM
    signature = inspect.signature(llm_class.__init__)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    return llm_class(model, **{k: v for k, v in limits.items() if takes_any or k in signature.parameters})


def sampling_params_of(engine: str):
    """The engine's SamplingParams: its package's, or (chapters 8-10 keep chapter 7's) that of the
    package whose LLM it extends."""
    for cls in importlib.import_module(engine).LLM.__mro__:
        package = importlib.import_module(cls.__module__.split(".")[0])
        if hasattr(package, "SamplingParams"):
            return package.SamplingParams
    raise AttributeError(f"{engine} has no SamplingParams, nor does any engine its LLM extends")


def generate_fn(llm):
    """llm.generate(prompts, params) without a progress bar, whichever chapter `llm` comes from."""
    quiet = {"use_tqdm": False} if "use_tqdm" in inspect.signature(llm.generate).parameters else {}
    return lambda prompts, params: llm.generate(prompts, params, **quiet)


def run_offline(engine: str, model, workload, repeats: int = 3, **limits) -> dict:
    """The workload through `engine` `repeats` times (one engine, warmed up once per run).
    -> {"engine", "label", "output_tokens", "seconds": [...], "tokens_per_s": {"best", "median"},
    "token_ids": the last run's outputs}. Raises if the engine produced other than the
    workload's output tokens (with ignore_eos every request runs to its max_tokens)."""
    llm = make_llm(engine, model, **limits)
    sampling_params_class = sampling_params_of(engine)
    params = workload.params(sampling_params_class)
    warmup = ([workload.prompts[0][:8]], [sampling_params_class(temperature=workload.temperature, max_tokens=4, ignore_eos=True)])
    generate, runs = generate_fn(llm), []
    for _ in range(repeats):
        runs.append(timed_generate(generate, workload.prompts, params, warmup))
    if hasattr(llm, "close"):
        llm.close()
    counted = {r["output_tokens"] for r in runs}
    if counted != {workload.num_output_tokens}:
        raise ValueError(f"{engine} produced {sorted(counted)} output tokens, the workload asks for "
                         f"{workload.num_output_tokens}: it does not honour max_tokens with ignore_eos")
    rates = [r["output_tokens"] / r["seconds"] for r in runs]
    return dict(engine=engine, label=label(engine), output_tokens=workload.num_output_tokens,
                seconds=[r["seconds"] for r in runs],
                tokens_per_s=dict(best=max(rates), median=statistics.median(rates)),
                token_ids=[out["token_ids"] for out in runs[-1]["outputs"]])


def stream_timestamps(llm, prompts, params, clock=time.perf_counter) -> list[tuple[float, list[float]]]:
    """All requests sent at once to a nanovllm_final LLM, streamed: (sent, token_times) per
    request, each token stamped when its step hands it out (what a client would see, without
    the network)."""
    times = [[] for _ in prompts]
    sent = clock()
    for delta in llm.stream(prompts, params):
        now = clock()
        times[delta["index"]].extend([now] * len(delta["token_ids"]))
    return [(sent, t) for t in times]
