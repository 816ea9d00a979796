"""Chapter 6 — the prefix cache: prompts that begin alike share the K/V blocks of their beginning.

Chapter 5 computed every prompt from its first token. Here a full block is named by a chained
hash of its tokens and of everything before it, a new prompt reuses the cached blocks of its
prefix (its prefill starts after them), blocks count their holders, and a freed block stays
cached until the pool needs it (least recently freed first). Read block_manager.py first, then
scheduler.py (one call after each step); llm.py only names the new parts.
Your code goes in exercises.py; solutions.py is the answer key: open it only after your
exercises pass.
"""

from ch01.sampling_params import SamplingParams
from ch06.block_manager import Block, BlockManager, compute_hash
from ch06.llm import LLM
from ch06.scheduler import Scheduler

__all__ = ["LLM", "SamplingParams", "Block", "BlockManager", "Scheduler", "compute_hash"]
