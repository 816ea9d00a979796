"""CUDA graphs of the decode step, one per batch size (nano-vllm's capture_cudagraph).

A decode step of a small model launches a few hundred small kernels; launching them from
Python costs more than running them. A CUDA graph records the launches once and replays them
with one call. A graph replays on fixed buffers, so a step's inputs are copied into static
tensors sized for the largest batch, and a batch of n runs the graph of the smallest captured
size bs >= n, its extra rows padded (slot -1: nothing stored; a context of one token in the
row's first block, a harmless read).

Captured sizes: 1, 2, 4, 8, then every 16 up to max_num_seqs (at most 512). Prefill steps vary
in shape too much to capture and run eagerly.

What the graph of size bs reads, and how a step gets it there with few operations:

    ints[0:4bs]      int64: token ids | positions | slots | rows (below), bs of each
    ints32[0:bs]     int32: context lengths
    block_tables     (max_bs, max_blocks) int32
    prev_tokens      int64: the tokens sampled by the step before, still on the GPU

The host packs the first two in pinned memory, already padded, and sends each in one copy
(`stage`); the block tables travel packed (n rows of the step's width) behind the context
lengths and are spread into their rows by one copy on the GPU. With async scheduling a
sequence's newest token may still be on the GPU: its row gives where it lies in prev_tokens,
and the graph itself takes it from there (row -1: the token id as sent). With one rank the LM
head runs inside the graph too, into a (max_bs, vocab) logits buffer, and the common samplers
have small graphs of their own (`SAMPLERS`: greedy, and the one-pass Gumbel-max draw with and
without min-p) that read it, with each row's temperature and min-p in static buffers, and write
the tokens to a static (max_bs,) buffer; the draw's random keys come from torch's generator,
which CUDA graphs advance at every replay. A decode step then launches two graphs and nothing
else. Rows with top-k or top-p, or a seed of their own, sample eagerly from the logits.

`capture=False` records nothing and runs the same step eagerly at replay: the tests check the
staging on a CPU that way.
"""

import torch

from nanovllm_final.config import Config
from nanovllm_final.engine.staging import PinnedRing
from nanovllm_final.kernels import sample_gumbel
from nanovllm_final.utils.context import reset_context, set_context

SAMPLERS = ("greedy", "gumbel", "gumbel_min_p")  # layers/sampler.py's paths that need no sort and no seed


class DecodeGraphs:
    @torch.inference_mode()
    def __init__(self, model, config: Config, device: torch.device, capture: bool = True, lm_head: bool | None = None):
        self.max_bs = max_bs = min(config.max_num_seqs, 512)
        self.max_blocks = max_blocks = -(-config.max_model_len // config.kvcache_block_size)
        # The logits in the graph, with one rank (with more, rank 0 gathers them after it).
        self.lm_head = config.tensor_parallel_size == 1 if lm_head is None else lm_head
        hf = config.hf_config
        self.ints = torch.zeros(4 * max_bs, dtype=torch.long, device=device)
        self.ints32 = torch.zeros(max_bs + max_bs * max_blocks, dtype=torch.int32, device=device)
        self.block_tables = torch.zeros(max_bs, max_blocks, dtype=torch.int32, device=device)
        self.prev_tokens = torch.zeros(config.max_num_seqs, dtype=torch.long, device=device)
        width = hf.vocab_size if self.lm_head else hf.hidden_size
        self.outputs = torch.zeros(max_bs, width, dtype=config.dtype, device=device)
        self.temperature = torch.ones(max_bs, dtype=torch.float32, device=device)  # the sampler graphs' rows
        self.min_p = torch.zeros(max_bs, dtype=torch.float32, device=device)
        self.tokens = torch.zeros(max_bs, dtype=torch.long, device=device)
        self.sampling_args = None  # the prepare_sample result whose rows are in temperature and min_p
        self.batch_sizes = sorted({b for b in (1, 2, 4, 8) if b < max_bs} | set(range(16, max_bs, 16)) | {max_bs})
        self.graphs, pool = {}, None
        self.staged = 0  # the batch size of the graph whose inputs stage() has sent, 0 if none
        self.ring = PinnedRing(pinned=capture)
        self.model = None if capture else model
        # The largest first, so that the smaller ones reuse its memory pool.
        for bs in reversed(self.batch_sizes if capture else []):
            graph = torch.cuda.CUDAGraph()
            self.ints[2 * bs:4 * bs] = -1  # no slots, no rows from prev_tokens
            self.ints32[:bs] = 1
            self.step(model, bs)  # warm-up: compile the kernels
            with torch.cuda.graph(graph, pool):
                self.step(model, bs)
            pool = pool or graph.pool()
            self.graphs[bs] = graph
            for kind in SAMPLERS if self.lm_head else ():
                self.sample_step(bs, kind)
                self.graphs[bs, kind] = graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool):
                    self.sample_step(bs, kind)
            torch.cuda.synchronize()

    def step(self, model, bs: int) -> None:
        """What the graph of size bs records."""
        ids, positions, slots, rows = self.ints[:4 * bs].view(4, bs)
        set_context(False, slot_mapping=slots, context_lens=self.ints32[:bs], block_tables=self.block_tables[:bs])
        ids = torch.where(rows >= 0, self.prev_tokens[rows.clamp(min=0)], ids)
        hidden = model(ids, positions)
        if self.lm_head:
            model.compute_logits(hidden, out=self.outputs[:bs])
        else:
            self.outputs[:bs] = hidden
        reset_context()

    def sample_step(self, bs: int, kind: str) -> None:
        """What the sampler graph (bs, kind) records: layers/sampler.py's path for that kind."""
        logits = self.outputs[:bs]
        if kind == "greedy":
            self.tokens[:bs] = logits.argmax(dim=-1)
        else:
            self.tokens[:bs] = sample_gumbel(logits, self.temperature[:bs], self.min_p[:bs], None,
                                             kind == "gumbel_min_p")

    @staticmethod
    def sampler_kind(args) -> str | None:
        """Which sampler graph takes a batch (ModelRunner.prepare_sample's result), None: none."""
        *_, generators, flags = args
        if flags["all_greedy"]:
            return "greedy"
        if flags["need_sort"] or any(g is not None for g in generators):
            return None
        return "gumbel_min_p" if flags["need_min_p"] else "gumbel"

    @torch.inference_mode()
    def sample(self, n: int, kind: str, args) -> torch.Tensor:
        """Sample the logits of the step just replayed (n rows) with the sampler graph `kind`;
        args: ModelRunner.prepare_sample's result, sent to the static rows when it is new.
        -> (n,) token ids, a view of the graph's output: the next sample overwrites it."""
        if args is not self.sampling_args:
            temperature, _, _, min_p, _, _ = args
            self.temperature[:n] = temperature
            self.min_p[:n] = min_p
            self.sampling_args = args
        bs = next(b for b in self.batch_sizes if b >= n)
        if self.model is not None:
            with torch.inference_mode():
                self.sample_step(bs, kind)
        else:
            self.graphs[bs, kind].replay()
        return self.tokens[:n]

    def fits(self, n: int) -> bool:
        return n <= self.batch_sizes[-1]

    @torch.inference_mode()
    def stage(self, input_ids: list[int], positions: list[int], slots: list[int], rows: list[int] | None,
              context_lens: list[int], block_tables: list[int], width: int,
              prev_tokens: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Send a decode step of n = len(input_ids) sequences to the graph's buffers: rows[i] is
        where sequence i's newest token lies in prev_tokens (-1 or rows None: it is input_ids[i]);
        block_tables holds n rows of `width` entries. -> views of the graph's token ids and
        positions (before the graph fills in the rows' tokens)."""
        n = len(input_ids)
        bs = next(b for b in self.batch_sizes if b >= n)
        pad = bs - n
        host = self.ring.host(4 * bs, torch.long)
        view = host.numpy()
        view[0:n], view[n:bs] = input_ids, 0
        view[bs:bs + n], view[bs + n:2 * bs] = positions, 0
        view[2 * bs:3 * bs - pad], view[3 * bs - pad:3 * bs] = slots, -1
        view[3 * bs:4 * bs - pad] = rows if rows is not None else -1
        view[4 * bs - pad:] = -1
        self.ints[:4 * bs].copy_(host, non_blocking=True)
        self.ring.sent()
        # The context lengths (padded to bs with 1; rows bs..max_bs unused), then the block tables.
        start = self.max_bs
        host = self.ring.host(start + n * width, torch.int32)
        view = host.numpy()
        view[0:n], view[n:bs] = context_lens, 1
        view[start:] = block_tables
        self.ints32[:start + n * width].copy_(host, non_blocking=True)
        self.ring.sent()
        self.block_tables[:n, :width] = self.ints32[start:start + n * width].view(n, width)
        if prev_tokens is not None:
            self.prev_tokens[:prev_tokens.shape[0]] = prev_tokens
        self.staged = bs
        return self.ints[:n], self.ints[bs:bs + n]

    def replay(self, n: int) -> torch.Tensor:
        """Run the staged step of n sequences -> (n, vocab) logits, or (n, D) hidden states with
        more than one rank (views into the graph's output)."""
        bs, self.staged = self.staged, 0
        assert bs >= n, "replay() needs a step sent by stage()"
        if self.model is not None:
            with torch.inference_mode():
                self.step(self.model, bs)
        else:
            self.graphs[bs].replay()
        return self.outputs[:n]
