"""ModelRunner: owns the model, the KV cache and (on GPU) the CUDA graphs of one rank.

Each step it turns the scheduled sequences into one flat batch (nano-vllm's prepare step):

    input_ids, positions   (N,)   the tokens computed this step, all sequences back to back
    slot_mapping           (N,)   where each token's K/V goes in the paged cache
    cu_seqlens_q           (B+1,) where each sequence's tokens start and end in the batch
    context_lens           (B,)   each sequence's length in the cache after this step
    block_tables           (B, max_blocks)

runs the model (on the GPU a decode step replays a CUDA graph, cuda_graph.py, which computes
the logits too), computes logits only for sequences that reached their last token (a prefill
chunk that stops mid-prompt needs none), and samples on rank 0. On a GPU the numbers travel
through reused pinned buffers (staging.py), so a step's copies neither allocate nor wait.

With tensor parallelism, rank 0 lives in the engine's process and sends each call to the other
ranks through shared memory; they run the same step and take part in the all-reduces
(`loop`).
"""

import os
import pickle
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import parent_process
from multiprocessing.shared_memory import SharedMemory

import torch
import torch.distributed as dist

from nanovllm_final.config import Config
from nanovllm_final.engine.cuda_graph import DecodeGraphs
from nanovllm_final.engine.sequence import Sequence
from nanovllm_final.engine.staging import PinnedRing, pack
from nanovllm_final.layers.linear import set_tp
from nanovllm_final.layers.sampler import Sampler
from nanovllm_final.models import MODEL_CLASSES
from nanovllm_final.utils.context import reset_context, set_context
from nanovllm_final.utils.loader import load_model

FP8 = torch.float8_e4m3fn


@dataclass
class Batch:
    """One step as prepare_batch hands it to run_model and launch: the model's inputs (what
    attention reads besides is in the context, utils/context.py), the rows whose logits the step
    samples, and `graph`: the batch size of the CUDA graph whose buffers hold the step (0: the
    model runs eagerly)."""
    input_ids: torch.Tensor  # (N,)
    positions: torch.Tensor  # (N,)
    logits_indices: list[int]
    graph: int = 0


def position_seed(seed: int, position: int) -> int:
    """The generator seed for a seeded request's token at `position` in its output: a 64-bit
    mix (splitmix64's) of the two, so nearby seeds and positions give unrelated streams."""
    z = (seed * 0x9E3779B97F4A7C15 + position) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


class ModelRunner:
    def __init__(self, config: Config, rank: int, events=None):
        self.config, self.rank, self.events = config, rank, events
        self.world_size = config.tensor_parallel_size
        self.block_size = config.kvcache_block_size
        self.enforce_eager = config.enforce_eager or config.device != "cuda"
        if config.device == "cuda":
            torch.cuda.set_device(rank)
            self.device = torch.device("cuda", rank)
        else:
            self.device = torch.device("cpu")
        self.num_threads = torch.get_num_threads()
        self.shm, self.broken = None, None
        self.graphs = None
        self.uploads, self.downloads = PinnedRing(), PinnedRing(4)  # staging.py; used on a GPU only
        self.sample_cache = None  # (seq ids, prepare_sample's result) of the last step
        if rank > 0:  # Ctrl-C reaches every process of the terminal: rank 0 alone decides (call())
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if self.world_size > 1:
            if config.device == "cpu":  # ranks share the cores instead of each taking them all
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.world_size))
            backend = "nccl" if config.device == "cuda" else "gloo"
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{config.dist_port}",
                                    world_size=self.world_size, rank=rank)
        try:
            self.build(config, rank)
        except BaseException:
            if rank == 0:
                self.release()  # no process group or shared memory outlives a failed start
            raise
        if rank > 0:
            self.loop()

    def build(self, config: Config, rank: int) -> None:
        """The model, its weights, the KV cache, the CUDA graphs and the channel to the workers."""
        hf = config.hf_config
        torch.manual_seed(config.seed)
        set_tp(rank, self.world_size)
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(config.dtype)
        try:
            with torch.device(self.device):
                self.model = MODEL_CLASSES[hf.architecture](hf)
            if config.load_format == "dummy":
                self.init_dummy_weights()
            else:
                load_model(self.model, config.model)
        finally:
            torch.set_default_dtype(default_dtype)
            set_tp(0, 1)
        self.sampler = Sampler()
        self.allocate_kv_cache()
        if self.device.type == "cuda":
            self.warmup()
        self.calibrate_fp8()  # after the warm-up, which stores nothing
        self.graphs = None if self.enforce_eager else DecodeGraphs(self.model, config, self.device)
        if self.world_size > 1:
            self.shm_name = f"nanovllm-{config.dist_port}"
            # Room for the largest step's pickled sequences: their new tokens and block tables.
            max_blocks = config.max_model_len // self.block_size + 1
            self.shm_size = (1 << 20) + 24 * config.max_num_batched_tokens + config.max_num_seqs * (8 * max_blocks + 256)
            dist.barrier()
            if rank == 0:
                self.shm = SharedMemory(name=self.shm_name, create=True, size=self.shm_size)
                dist.barrier()
            else:
                dist.barrier()
                self.shm = SharedMemory(name=self.shm_name)

    @torch.no_grad()
    def init_dummy_weights(self) -> None:
        """Random weights for benchmarks: throughput does not depend on the values."""
        for name, p in self.model.named_parameters():
            p.fill_(1.0) if "norm" in name else p.normal_(0.0, 0.02)

    # ---- tensor parallel plumbing -------------------------------------------------------------
    def loop(self) -> None:
        """Ranks > 0: wait for rank 0's next call; leave when told to, or when the engine is gone."""
        parent = parent_process()
        while True:
            while not self.events.wait(timeout=1.0):
                if parent is not None and not parent.is_alive():  # the engine died without exit()
                    self.shm.close()
                    return
            n = int.from_bytes(self.shm.buf[0:4], "little")
            method, *args = pickle.loads(self.shm.buf[4:n + 4])
            self.events.clear()
            getattr(self, method)(*args)
            if method == "exit":
                return

    def call(self, method: str, *args):
        """On rank 0: run `method` here and on every other rank.

        The ranks must run the same collectives in the same order. A step cut short on rank 0
        alone (an exception, a second Ctrl-C) leaves the workers waiting inside it, and any later
        step would pair their collectives wrongly: the runner is marked broken and refuses to go
        on. A first Ctrl-C during a step waits for the step to end, so the ranks stay in step."""
        if self.world_size == 1 or self.rank != 0:
            return getattr(self, method)(*args)
        if self.broken:
            raise RuntimeError(f"the tensor-parallel ranks may be out of step after an error during a step "
                               f"({self.broken}); close() this LLM and create a new one")
        data = pickle.dumps([method, *args])
        if len(data) + 4 > self.shm_size:
            raise RuntimeError(f"step of {len(data)} bytes does not fit the {self.shm_size}-byte channel")
        self.shm.buf[0:4] = len(data).to_bytes(4, "little")
        self.shm.buf[4:len(data) + 4] = data
        interrupted = []
        with sigint_deferred(interrupted):
            for event in self.events:
                event.set()
            try:
                result = getattr(self, method)(*args)
            except BaseException as err:
                self.broken = f"{type(err).__name__}: {err}"
                raise
        if interrupted:
            raise KeyboardInterrupt
        return result

    def exit(self) -> None:
        """Every rank leaves together: called through call("exit")."""
        # The CUDA graphs go first: with NCCL they hold collectives of the process group.
        self.graphs = None
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        if self.world_size > 1:
            self.shm.close()
            dist.barrier()  # every rank has closed its view before the name goes away
            if self.rank == 0:
                self.shm.unlink()
            self.shm = None
            dist.destroy_process_group()
            torch.set_num_threads(self.num_threads)

    def release(self) -> None:
        """Rank 0, once its workers are gone (reaped, not asked): free what exit() would have
        freed, without collectives. Safe to call more than once."""
        self.graphs = None
        if self.shm is not None:
            shm, self.shm = self.shm, None
            try:
                shm.close()
            except BufferError:  # a view of it is still alive; the name is freed all the same
                pass
            try:
                shm.unlink()
            except FileNotFoundError:
                pass
        if self.world_size > 1 and dist.is_initialized():
            if self.device.type == "cuda":
                # NCCL's destroy may wait for peers that are gone or stuck in a cut-short step.
                dist.distributed_c10d._abort_process_group()
            else:
                dist.destroy_process_group()
            torch.set_num_threads(self.num_threads)

    # ---- KV cache -----------------------------------------------------------------------------
    def allocate_kv_cache(self) -> None:
        config, hf = self.config, self.config.hf_config
        num_kv_heads = hf.num_key_value_heads // self.world_size
        fp8 = config.kv_cache_dtype == "fp8"
        kv_dtype = FP8 if fp8 else config.dtype
        L, bs, d = hf.num_hidden_layers, self.block_size, hf.head_dim
        # K and V, every layer (an FP8 cache adds one float32 scale per KV head and layer for each).
        block_bytes = 2 * L * bs * num_kv_heads * d * kv_dtype.itemsize
        if config.num_kvcache_blocks <= 0:
            if self.device.type == "cuda":
                num_blocks = self.blocks_from_free_gpu_memory(block_bytes)
            else:
                wanted = config.max_num_seqs * -(-config.max_model_len // bs)
                num_blocks = min(int(config.cpu_kvcache_gib * 2**30) // block_bytes, wanted)
            if self.world_size > 1:  # every rank must agree on the pool size
                t = torch.tensor([num_blocks], device=self.device)
                dist.all_reduce(t, op=dist.ReduceOp.MIN)
                num_blocks = int(t)
            config.num_kvcache_blocks = num_blocks
        if config.num_kvcache_blocks < 1 and self.device.type == "cpu":
            raise ValueError(f"cpu_kvcache_gib={config.cpu_kvcache_gib} holds no KV block of {block_bytes:,} bytes; "
                             "raise cpu_kvcache_gib, lower kvcache_block_size, or set num_kvcache_blocks")
        if config.num_kvcache_blocks < 1:
            raise ValueError("no memory left for the KV cache; lower max_num_batched_tokens or raise gpu_memory_utilization")
        nb = config.num_kvcache_blocks
        # Zeros, not empty: attention reads whole blocks, and garbage NaNs would leak through 0 * NaN.
        self.kv_cache = torch.zeros(2, L, nb, bs * num_kv_heads * d, dtype=kv_dtype, device=self.device)
        if fp8:  # K head-major and V key-major inside each block, both seen as (nb, bs, Hkv, d):
            # see kernels/decode_split_fp8.py
            k_cache = self.kv_cache[0].view(L, nb, num_kv_heads, bs, d).permute(0, 1, 3, 2, 4)
            v_cache = self.kv_cache[1].view(L, nb, num_kv_heads, d, bs).permute(0, 1, 4, 2, 3)
        else:
            k_cache = self.kv_cache[0].view(L, nb, bs, num_kv_heads, d)
            v_cache = self.kv_cache[1].view(L, nb, bs, num_kv_heads, d)
        self.kv_scale = torch.ones(2, L, num_kv_heads, dtype=torch.float32, device=self.device) if fp8 else None
        attns = [m for m in self.model.modules() if hasattr(m, "k_cache")]
        for i, attn in enumerate(attns):
            attn.k_cache, attn.v_cache = k_cache[i], v_cache[i]
            if fp8:
                attn.k_scale, attn.v_scale = self.kv_scale[0, i], self.kv_scale[1, i]

    def calibrate_fp8(self) -> None:
        """The first prefill from here on sets the FP8 cache's per-head scales (layers/attention.py)."""
        if self.kv_scale is not None:
            for m in self.model.modules():
                if hasattr(m, "calibrate_fp8"):
                    m.calibrate_fp8()

    def blocks_from_free_gpu_memory(self, block_bytes: int) -> int:
        """Run the largest batch once without a cache to measure the activations' peak, then give
        what `gpu_memory_utilization` leaves to the KV cache."""
        config = self.config
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        n = min(config.max_num_batched_tokens, config.max_model_len)
        num_seqs = max(1, min(config.max_num_batched_tokens // n, config.max_num_seqs))
        input_ids = torch.zeros(num_seqs * n, dtype=torch.long, device=self.device)
        positions = torch.arange(n, device=self.device).repeat(num_seqs)
        cu = torch.arange(0, (num_seqs + 1) * n, n, dtype=torch.int32, device=self.device)
        set_context(True, cu_seqlens_q=cu, max_seqlen_q=n)
        with torch.inference_mode():
            self.model.compute_logits(self.model(input_ids, positions)[cu[1:] - 1])
        reset_context()
        torch.cuda.synchronize()
        free, total = torch.cuda.mem_get_info()
        stats = torch.cuda.memory_stats()
        peak, current = stats["allocated_bytes.all.peak"], stats["allocated_bytes.all.current"]
        budget = total * config.gpu_memory_utilization - (total - free) - (peak - current)
        if not self.enforce_eager and self.world_size == 1:  # the decode graphs' logits (cuda_graph.py)
            budget -= min(config.max_num_seqs, 512) * config.hf_config.vocab_size * config.dtype.itemsize
        return int(budget) // block_bytes

    @torch.inference_mode()
    def warmup(self) -> None:
        """Compile the Triton kernels once, before any request: a step that met an uncompiled
        kernel would stall for a second. A prefill chunk that reads the cache, then a decode step;
        slot -1 stores nothing, so the cache is untouched."""
        ids, positions, slots, one = self.to_device([[0, 0, 0], [0, 1, 0], [-1, -1, -1], [0]], torch.long)
        cu_seqlens_q, context_lens, block_tables, ctx1, table1 = self.to_device(
            [[0, 2, 3], [2, 1], [0, 0], [1], [0]], torch.int32)
        set_context(True, cu_seqlens_q=cu_seqlens_q, max_seqlen_q=2, slot_mapping=slots, context_lens=context_lens,
                    block_tables=block_tables.view(2, 1))
        self.model(ids, positions)
        set_context(False, slot_mapping=one - 1, context_lens=ctx1, block_tables=table1.view(1, 1))
        self.model(one, one)
        reset_context()
        torch.cuda.synchronize()

    # ---- one step -----------------------------------------------------------------------------
    def prepare_batch(self, seqs: list[Sequence], pending: tuple[dict, torch.Tensor] | None = None) -> Batch:
        """-> the step's Batch, the rest in the context. Async scheduling:
        `pending` = ({seq_id: row}, tokens) of the step still on the GPU; a sequence whose newest
        token is that step's placeholder takes it from tokens[row], on the device. A decode step
        that a CUDA graph runs goes straight into the graph's buffers (DecodeGraphs.stage)."""
        bs = self.block_size
        input_ids, positions, slot_mapping, cu_seqlens_q, context_lens, logits_indices = [], [], [], [0], [], []
        rows = pending[0] if pending else {}
        hole_positions, hole_rows = [], []
        for seq in seqs:
            start, n = seq.num_cached_tokens, seq.num_scheduled_tokens
            end = start + n
            if n == 1:  # a decode step, the common case: one token, one slot
                input_ids.append(seq.scheduled_token_ids()[0])
                positions.append(start)
                slot_mapping.append(seq.block_table[start // bs] * bs + start % bs)
            else:
                input_ids.extend(seq.scheduled_token_ids())
                positions.extend(range(start, end))
                for b in range(start // bs, (end - 1) // bs + 1):  # slots block by block, not token by token
                    offset = seq.block_table[b] * bs - b * bs
                    slot_mapping.extend(range(offset + max(start, b * bs), offset + min(end, (b + 1) * bs)))
            cu_seqlens_q.append(cu_seqlens_q[-1] + n)
            context_lens.append(end)
            if end == seq.num_tokens:  # this sequence's newest token was computed: sample after it
                logits_indices.append(cu_seqlens_q[-1] - 1)
                if seq.seq_id in rows:
                    hole_positions.append(cu_seqlens_q[-1] - 1)
                    hole_rows.append(rows[seq.seq_id])
        width = max(len(seq.block_table) for seq in seqs)
        block_tables = []
        for seq in seqs:
            block_tables += seq.block_table
            if len(seq.block_table) < width:
                block_tables += [-1] * (width - len(seq.block_table))
        is_prefill = len(input_ids) > len(seqs)  # some sequence computes more than one token
        if not is_prefill and self.graphs is not None and self.graphs.fits(len(seqs)):
            if hole_rows:  # position i is sequence i: each one's row, or -1
                src = [-1] * len(seqs)
                for i, row in zip(hole_positions, hole_rows):
                    src[i] = row
            input_ids, positions = self.graphs.stage(input_ids, positions, slot_mapping, src if hole_rows else None,
                                                     context_lens, block_tables, width,
                                                     pending[1] if hole_rows else None)
            set_context(False)
            return Batch(input_ids, positions, logits_indices, graph=len(seqs))
        # Two host-to-device copies per step, not six: the int64 columns in one tensor, the int32 in another.
        input_ids, positions, slot_mapping, hole_positions, hole_rows = self.to_device(
            [input_ids, positions, slot_mapping, hole_positions, hole_rows], torch.long)
        if len(hole_rows):
            input_ids[hole_positions] = pending[1][hole_rows]
        cu_seqlens_q, context_lens, block_tables = self.to_device([cu_seqlens_q, context_lens, block_tables], torch.int32)
        set_context(
            is_prefill,
            cu_seqlens_q=cu_seqlens_q,
            max_seqlen_q=max(seq.num_scheduled_tokens for seq in seqs),
            slot_mapping=slot_mapping,
            context_lens=context_lens,
            block_tables=block_tables.view(len(seqs), width),
            no_cache_reads=all(seq.num_cached_tokens == 0 for seq in seqs),
        )
        return Batch(input_ids, positions, logits_indices)

    def to_device(self, columns: list[list], dtype: torch.dtype) -> list[torch.Tensor]:
        """Lists of numbers as tensors on this runner's device, in one copy (on a GPU from a reused
        pinned buffer, so the copy does not wait for the GPU: staging.py). Each tensor starts
        16-byte aligned: Triton compiles a separate kernel for a pointer that is not."""
        if self.device.type == "cpu":
            t, spans = pack(columns, dtype)
        else:
            host, spans = pack(columns, dtype, out=lambda n: self.uploads.host(n, dtype))
            t = host.to(self.device, non_blocking=True)
            self.uploads.sent()
        return [t[start:start + n] for start, n in spans]

    def prepare_sample(self, seqs: list[Sequence]):
        """The sampler's arguments for these sequences. Most steps sample for the same sequences
        as the step before (the batch changes only when one joins or leaves): those reuse its
        tensors. A seeded request's generator is reseeded every step from its seed and the
        position of the token it draws, so its tokens depend on nothing else (layers/sampler.py)."""
        ids = [seq.seq_id for seq in seqs]
        if self.sample_cache is None or self.sample_cache[0] != ids:
            self.sample_cache = (ids, self._prepare_sample(seqs))
        result = self.sample_cache[1]
        for row, _ in result[-1]["seeded"]:
            seq = seqs[row]
            seq.generator.manual_seed(position_seed(seq.sampling_params.seed, seq.num_completion_tokens))
        return result

    def _prepare_sample(self, seqs: list[Sequence]):
        params = [seq.sampling_params for seq in seqs]
        for seq in seqs:
            if seq.sampling_params.seed is not None and seq.generator is None:
                seq.generator = torch.Generator(self.device)
        # One copy for the four columns; top_k travels as a float (exact far beyond any vocabulary).
        temperature, top_k, top_p, min_p = self.to_device(
            [[getattr(p, name) for p in params] for name in ("temperature", "top_k", "top_p", "min_p")], torch.float32)
        vocab = self.config.hf_config.vocab_size

        def flags(params) -> dict:
            return dict(all_greedy=all(p.temperature == 0 for p in params),
                        need_sort=any(0 < p.top_k < vocab or p.top_p < 1 for p in params),
                        need_min_p=any(p.min_p > 0 for p in params))

        seeded = [(row, flags([p])) for row, p in enumerate(params) if p.seed is not None and p.temperature > 0]
        return temperature, top_k.long(), top_p, min_p, [seq.generator for seq in seqs], dict(flags(params), seeded=seeded)

    @torch.inference_mode()
    def run_model(self, batch: Batch) -> torch.Tensor:
        """-> (N, D) hidden states; for a decode step that prepare_batch staged in a CUDA graph, the
        graph's output: (N, vocab) logits with one rank (cuda_graph.py)."""
        if batch.graph:
            return self.graphs.replay(batch.graph)
        return self.model(batch.input_ids, batch.positions)

    @torch.inference_mode()
    def run(self, seqs: list[Sequence]) -> list[int | None]:
        """One step: forward the scheduled tokens; return each sequence's new token, or None."""
        sampled, done = self.launch(seqs)
        if sampled is None:
            return [None] * len(seqs) if self.rank == 0 else []
        token_ids = iter(sampled.tolist())  # waits for the GPU
        return [next(token_ids) if d else None for d in done]

    @torch.inference_mode()
    def launch(self, seqs: list[Sequence], pending: tuple[dict, torch.Tensor] | None = None):
        """Start one step and return without waiting for the GPU: -> (the sampled token ids, on
        the device, one per sequence that reached its end; None if none did or on ranks > 0,
        which only take part) and which sequences those are, as a list of bools. `copy_to_host`
        then gives a handle that reads them without waiting for later steps."""
        batch = self.prepare_batch(seqs, pending)
        graph_logits = batch.graph > 0 and self.graphs.lm_head
        out = self.run_model(batch)
        reset_context()
        if not batch.logits_indices:
            return None, [False] * len(seqs)
        every_row = len(batch.logits_indices) == out.shape[0]  # indices rise strictly: as many as rows is all
        if not every_row:
            out = out[self.to_device([batch.logits_indices], torch.long)[0]]  # through pinned memory: no wait
        logits = out if graph_logits else self.model.compute_logits(out)  # (B', vocab) on rank 0
        if self.rank != 0:
            return None, []
        done = [seq.num_cached_tokens + seq.num_scheduled_tokens == seq.num_tokens for seq in seqs]
        args = self.prepare_sample([s for s, d in zip(seqs, done) if d])
        return self.sample(logits, args, graph_logits and every_row), done

    def sample(self, logits: torch.Tensor, args, graphed: bool = False) -> torch.Tensor:
        """(B, vocab) logits -> (B,) token ids; args: prepare_sample's. `graphed`: the logits are
        the decode graph's whole output, and a sampler graph can take them (cuda_graph.py)."""
        kind = graphed and self.graphs.sampler_kind(args)
        if kind:
            return self.graphs.sample(logits.shape[0], kind, args)
        return self.sampler(logits, *args)

    def copy_to_host(self, tokens: torch.Tensor):
        """Start copying a step's tokens to pinned host memory, right behind its sampler on the
        stream: -> a function that returns them as a list once that copy is done. (tokens.tolist()
        later would queue its copy behind every step launched since, and wait for those too.)"""
        if self.device.type == "cpu":  # computed already; read now (a sampler graph's buffer is reused)
            token_ids = tokens.tolist()
            return lambda: token_ids
        ring = self.downloads
        host = ring.host(tokens.numel(), tokens.dtype)
        host.copy_(tokens, non_blocking=True)
        ring.sent()
        copied, ticket = ring.events[ring.slot], ring.handed_out

        def read() -> list[int]:
            # The engine reads a step's tokens one step later; the buffer comes round again only
            # after len(ring.buffers) more steps.
            assert ring.handed_out - ticket < len(ring.buffers), "a step's tokens were read too late"
            copied.synchronize()
            return host.tolist()
        return read


@contextmanager
def sigint_deferred(interrupted: list):
    """Ctrl-C inside the block is noted in `interrupted` rather than raised; a second one raises
    at once (a hung step can still be left). Signals reach only the main thread, so elsewhere
    there is nothing to defer."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum, frame):
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
