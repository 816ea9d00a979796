"""nanovllm_final: a small offline LLM inference engine with nano-vllm's design and interface.

    from nanovllm_final import LLM, SamplingParams
    llm = LLM("models/smollm2-135m-instruct")
    print(llm.generate(["The capital of France is"], SamplingParams(temperature=0))[0]["text"])

Read in this order: llm.py (the interface), engine/ (sequence, block_manager, scheduler,
model_runner, llm_engine), models/qwen3.py (the model), layers/ (its pieces), kernels/ (the
attention and norm kernels, Triton on GPU, torch on CPU), utils/ (the batch context, the loader).
serve.py puts the engine behind OpenAI's HTTP API (openai_api.py: the request shapes;
engine/engine_loop.py: the thread that steps it; metrics.py: what /metrics shows); bench.py and
bench_serving.py measure it.

It is the chapters' engine folded into one package, under the chapters' names (Config, Sequence
with `sampling_params` and `is_prefill`, BlockManager with `prefix_hits` and `cache_blocks`,
Scheduler whose `schedule()` returns the step's sequences, ModelRunner with `call`, `loop`,
`exit`, `allocate_kv_cache`, `run`, and LLMEngine whose `step()` calls `model_runner.call("run",
seqs)`). What it adds beyond chapter 10, and where:

| what | where | why |
|---|---|---|
| async scheduling: step n+1 is scheduled while step n runs | engine/llm_engine.py `_step_async`, engine/scheduler.py `advance`, `settle` | the host's work hides behind the GPU's |
| inputs staged in reused pinned buffers | engine/staging.py, ModelRunner `prepare_batch`, `to_device` | no allocation and no wait per copy |
| LM head and sampler inside the decode graphs | engine/cuda_graph.py, kernels/sampling.py | fewer launches per decode step |
| FP8 decode-attention tiles (TMA on Hopper) | kernels/decode_attention.py, kernels/attention_tile.py | bandwidth at long contexts |
| one-row products by a GEMV kernel, SiLU read by the down projection | kernels/gemv.py; layers/linear.py `RowParallelLinear.forward(x, silu_mul)` | one sequence's decode step reads the weights faster than cuBLAS does at one row |
| the RMSNorm inside the next product; q/k norm + RoPE inside decode attention | kernels/gemv.py `norm_linear`, layers/linear.py `ColumnParallelLinear.normed`; `paged_attention_decode(rope=)`, RotaryEmbedding `decode_args` | three kernels fewer per layer of a decode step |
| programmatic dependent launch of the decode step's kernels | kernels/pdl.py | a kernel starts while the one before finishes (Hopper and later) |
| packed projections: `qkv_proj`, `gate_up_proj` | layers/linear.py `QKVParallelLinear`, `MergedColumnParallelLinear`; models/qwen3.py | one GEMM instead of three, and of two (the chapters keep q/k/v and gate/up apart, to read) |
| one model class for the three families | models/qwen3.py `Qwen3ForCausalLM` (nano-vllm's name; the chapters' `CausalLM`) | nano-vllm's file, with Qwen2's bias and Llama's missing QK-norm as switches |
| the pool sized from free GPU memory | ModelRunner `blocks_from_free_gpu_memory`; Config `gpu_memory_utilization`, `cpu_kvcache_gib` | as many blocks as fit |
| random weights for benchmarks | Config `load_format="dummy"`, ModelRunner `init_dummy_weights` | throughput without a checkpoint |
| stop strings, streaming, chat | llm.py `generate(stream=True)`, `stream`, `chat`; LLMEngine `stop_position` | what a server needs (the chapters' `generate` lives in LLMEngine, as nano-vllm's) |
| a prompt waits for an identical prefix being computed | engine/scheduler.py `_shares_prefix_in_flight` | it hits the cache one step later instead of computing it twice |
| the OpenAI-compatible server | serve.py, openai_api.py, engine/engine_loop.py | requests join and leave the running batch |
| benchmarks | bench.py, bench_serving.py, bench_cpu.py | chapter 11's measurements |

Names that differ on purpose: `Scheduler(config)` builds its own BlockManager (the chapters pass
one in, so a test can hand it a small pool); `Scheduler.finish(seq, reason)` ends a sequence for every cause
(the chapters' `postprocess` and `abort`); `prepare_batch` builds what the chapters' `prepare`
does plus the graph's and the sampler's inputs.
"""

from nanovllm_final.llm import LLM
from nanovllm_final.sampling_params import SamplingParams

__all__ = ["LLM", "SamplingParams"]
