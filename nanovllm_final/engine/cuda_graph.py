"""CUDA graphs of the decode step, one per batch size (nano-vllm's capture_cudagraph).

A decode step of a small model launches a few hundred small kernels; launching them from
Python costs more than running them. A CUDA graph records the launches once and replays them
with one call. A graph replays on fixed buffers, so the step's inputs are copied into static
tensors (`graph_vars`) sized for the largest batch, and a batch of n runs the graph of the
smallest captured size >= n, its extra rows padded (slot -1: nothing stored; context of one
token in block 0: a harmless read).

Captured sizes: 1, 2, 4, 8, then every 16 up to max_num_seqs (at most 512). Prefill steps vary
in shape too much to capture and run eagerly.
"""

import torch

from nanovllm_final.config import Config
from nanovllm_final.utils.context import Context, reset_context, set_context


class DecodeGraphs:
    @torch.inference_mode()
    def __init__(self, model, config: Config, device: torch.device):
        max_bs = min(config.max_num_seqs, 512)
        max_blocks = -(-config.max_model_len // config.kvcache_block_size)
        self.graph_vars = g = dict(
            input_ids=torch.zeros(max_bs, dtype=torch.long, device=device),
            positions=torch.zeros(max_bs, dtype=torch.long, device=device),
            slot_mapping=torch.full((max_bs,), -1, dtype=torch.long, device=device),
            context_lens=torch.ones(max_bs, dtype=torch.int32, device=device),
            block_tables=torch.zeros(max_bs, max_blocks, dtype=torch.int32, device=device),
            outputs=torch.zeros(max_bs, config.hf_config.hidden_size, dtype=config.dtype, device=device),
        )
        self.batch_sizes = sorted({b for b in (1, 2, 4, 8) if b < max_bs} | set(range(16, max_bs, 16)) | {max_bs})
        self.graphs, pool = {}, None
        for bs in reversed(self.batch_sizes):  # the largest first, so the smaller ones reuse its memory pool
            graph = torch.cuda.CUDAGraph()
            set_context(False, slot_mapping=g["slot_mapping"][:bs], context_lens=g["context_lens"][:bs],
                        block_tables=g["block_tables"][:bs])
            g["outputs"][:bs] = model(g["input_ids"][:bs], g["positions"][:bs])  # warm-up: compile the kernels
            with torch.cuda.graph(graph, pool):
                g["outputs"][:bs] = model(g["input_ids"][:bs], g["positions"][:bs])
            pool = pool or graph.pool()
            self.graphs[bs] = graph
            torch.cuda.synchronize()
            reset_context()

    def fits(self, n: int) -> bool:
        return n <= self.batch_sizes[-1]

    def replay(self, input_ids: torch.Tensor, positions: torch.Tensor, ctx: Context) -> torch.Tensor:
        """One decode step of n sequences -> (n, D) hidden states (a view into the graph's output)."""
        n, g = input_ids.shape[0], self.graph_vars
        bs = next(b for b in self.batch_sizes if b >= n)
        g["input_ids"][:n] = input_ids
        g["positions"][:n] = positions
        g["slot_mapping"].fill_(-1)
        g["slot_mapping"][:n] = ctx.slot_mapping
        g["context_lens"].fill_(1)
        g["context_lens"][:n] = ctx.context_lens
        g["block_tables"].fill_(0)
        g["block_tables"][:n, :ctx.block_tables.shape[1]] = ctx.block_tables
        self.graphs[bs].replay()
        return g["outputs"][:n]
