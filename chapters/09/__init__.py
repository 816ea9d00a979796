"""Chapter 9 — Triton kernels and CUDA graphs: the same tokens, with fewer trips to memory and
fewer launches.

Chapter 8's engine, with three of its steps written as GPU kernels, each beside the torch twin
that runs on a CPU: the paged KV store, decode attention that reads the pool in place, and the
residual add fused into RMSNorm. On a GPU, decode steps replay CUDA graphs. Start with the
notebook: it leads to each exercise (9.1-9.4) before the file that calls it (kernels/kvcache.py,
kernels/attention.py, kernels/rmsnorm.py, cuda_graph.py). attention.py, model.py and
model_runner.py then put the kernels and the graphs in the engine.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your exercises pass.
"""

from ch09.attention import Attention
from ch09.config import Config
from ch09.cuda_graph import DecodeGraphs, GraphInputs, graph_batch_sizes
from ch09.llm import LLM
from ch09.model import DecoderLayer
from ch09.model_runner import ModelRunner

__all__ = ["Attention", "Config", "DecodeGraphs", "DecoderLayer", "GraphInputs", "LLM", "ModelRunner",
           "graph_batch_sizes"]
