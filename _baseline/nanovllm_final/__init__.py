"""nanovllm_final: a small offline LLM inference engine with nano-vllm's design and interface.

    from nanovllm_final import LLM, SamplingParams
    llm = LLM("models/smollm2-135m-instruct")
    print(llm.generate(["The capital of France is"], SamplingParams(temperature=0))[0]["text"])

Read in this order: llm.py (the interface), engine/ (sequence, block_manager, scheduler,
model_runner, llm_engine), models/qwen3.py (the model), layers/ (its pieces), kernels/ (the
attention and norm kernels, Triton on GPU, torch on CPU), utils/ (the batch context, the loader).
serve.py puts the engine behind OpenAI's HTTP API (openai_api.py: the request shapes;
engine/engine_loop.py: the thread that steps it); bench.py and bench_serving.py measure it.
"""

from nanovllm_final.llm import LLM
from nanovllm_final.sampling_params import SamplingParams

__all__ = ["LLM", "SamplingParams"]
