"""Chapter 8 — tensor parallelism: every weight split over ranks, one process per rank.

Chapter 7's engine ran the model in one process. Here each of `tensor_parallel_size` ranks holds
one shard of every matrix: q/k/v and gate/up split by their outputs (whole heads, whole MLP
features), o and down by their inputs (partial sums added by one all-reduce each), the embedding
and the LM head by the vocabulary. Read linear.py first, then embed_head.py and comm.py (what
the ranks send), config.py, model_runner.py (rank 0 drives, the others follow) and llm.py.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your exercises pass.
"""

from ch08.config import Config
from ch08.embed_head import ParallelLMHead, VocabParallelEmbedding
from ch08.linear import (ColumnParallelLinear, MergedColumnParallelLinear, QKVParallelLinear, RowParallelLinear,
                         tensor_parallel)
from ch08.llm import LLM
from ch08.model_runner import ModelRunner
from ch08.solutions import allreduce_bytes_per_token

__all__ = [
    "LLM", "Config", "ModelRunner", "ColumnParallelLinear", "RowParallelLinear", "QKVParallelLinear",
    "MergedColumnParallelLinear", "VocabParallelEmbedding", "ParallelLMHead", "tensor_parallel",
    "allreduce_bytes_per_token",
]
