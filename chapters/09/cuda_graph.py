"""CUDA graphs of decode steps: launch a step's few hundred kernels with one call.

A decode step of a small model is hundreds of small kernels (per layer: norms, projections,
rotary, store, attention, MLP), each a few microseconds of GPU work, and the host spends about
as long launching each one from Python. A CUDA graph records the launches of one step once
(capture) and sends them all again with one call (replay): the host's cost per step drops, and
the GPU runs the same kernels on the same data as before; nothing gets computed faster.

A graph replays exactly what it recorded, pointers and shapes included. So:

    - its inputs live in static buffers (GraphInputs); a step copies its own into them
    - one graph per batch size in `batch_sizes` (1, 2, 4, 8, then every 16, nano-vllm's);
      a step of n sequences runs the graph of the smallest size bs >= n, padded
    - the bs - n padding rows must do no harm: they store no K/V and read none

Only decode steps are captured: one query per sequence, so bs sequences are bs tokens. A prefill
has a shape per prompt length and runs eagerly. `capture=False` records nothing and runs the same
padded step on the same buffers eagerly: the tests check the staging on a CPU that way.
"""

from dataclasses import dataclass

import torch

from ch03.context import Context, reset_context, set_context
from ch09.solutions import stage_decode_inputs  # exercise 9.4: the answer key


def graph_batch_sizes(max_num_seqs: int) -> list[int]:
    """The batch sizes that get a graph: 1, 2, 4, 8, 16, 32, 48, ... up to max_num_seqs (included)."""
    sizes = {b for b in (1, 2, 4, 8) if b < max_num_seqs} | set(range(16, max_num_seqs, 16)) | {max_num_seqs}
    return sorted(sizes)


@dataclass
class GraphInputs:
    """The static buffers every graph reads; the graph of size bs reads their first bs rows."""

    input_ids: torch.Tensor  # (max_bs,) int64
    positions: torch.Tensor  # (max_bs,) int64
    slot_mapping: torch.Tensor  # (max_bs,) int64, -1: store nothing
    context_lens: torch.Tensor  # (max_bs,) int32, 0: attend to nothing
    block_tables: torch.Tensor  # (max_bs, max_blocks) int32

    @classmethod
    def allocate(cls, max_bs: int, max_blocks: int, device) -> "GraphInputs":
        ints = lambda dtype, *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
        return cls(ints(torch.int64, max_bs), ints(torch.int64, max_bs), ints(torch.int64, max_bs),
                   ints(torch.int32, max_bs), ints(torch.int32, max_bs, max_blocks))


class DecodeGraphs:
    """One CUDA graph of the decode step per batch size, sharing one memory pool and one set of buffers."""

    @torch.inference_mode()
    def __init__(self, model, max_num_seqs: int, max_model_len: int, block_size: int, capture: bool = True):
        param = next(model.parameters())
        self.model = model
        self.batch_sizes = graph_batch_sizes(max_num_seqs)
        max_bs = self.batch_sizes[-1]
        self.inputs = GraphInputs.allocate(max_bs, -(-max_model_len // block_size), param.device)
        self.hidden = torch.zeros(max_bs, model.config.hidden_size, dtype=param.dtype, device=param.device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        # The warm-up below runs the model for real, while sequences' K/V are in the pool: its
        # rows must store nothing and read nothing.
        self.inputs.slot_mapping.fill_(-1)
        pool = None
        for bs in reversed(self.batch_sizes if capture else []):  # the largest first: the others fit in its pool
            self.step(bs)  # warm up: compile the kernels, outside the recording
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool):
                self.step(bs)
            pool = graph.pool()
            self.graphs[bs] = graph
        if capture:
            torch.cuda.synchronize()

    def step(self, bs: int) -> None:
        """What the graph of size bs records: the model over the buffers' first bs rows."""
        inputs = self.inputs
        set_context(Context(slot_mapping=inputs.slot_mapping[:bs], context_lens=inputs.context_lens[:bs],
                            block_tables=inputs.block_tables[:bs]))
        self.hidden[:bs] = self.model(inputs.input_ids[:bs], inputs.positions[:bs])  # (bs, D)
        reset_context()

    def fits(self, n: int) -> bool:
        return n <= self.batch_sizes[-1]

    def run(self, input_ids: torch.Tensor, positions: torch.Tensor, context: Context) -> torch.Tensor:
        """A decode step of n sequences (one token each) -> their hidden states (n, D), a view of
        the graphs' output that the next step overwrites."""
        bs = stage_decode_inputs(self.inputs, input_ids, positions, context.slot_mapping, context.context_lens,
                                 context.block_tables, self.batch_sizes)
        if self.graphs:
            self.graphs[bs].replay()
        else:
            self.step(bs)
        return self.hidden[:len(input_ids)]
