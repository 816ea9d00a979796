"""Arithmetic intensity and the roofline: why prefill is compute-bound and decode memory-bound.

A step of the engine is mostly matrix multiplies (GEMMs) of the step's M tokens, (M, K), against
a layer's weight, (K, N). The GEMM does 2·M·K·N floating-point operations (a multiply and an add
per term) and must at least read the input and the weight and write the output once. Its
**arithmetic intensity** is the ratio, FLOPs per byte moved. A machine that does at most P FLOP/s
and moves at most B bytes/s runs a kernel of intensity I at best at

    min(P, I · B)       FLOP/s          (the roofline; the ridge point is I = P / B)

A decode step has M = the number of running sequences (one token each): the weight dominates the
bytes and the intensity is about M / bytes-per-element, far left of the ridge. A prefill of
hundreds of prompt tokens reads the same weight once for all of them and sits right of the ridge.

This module counts (gemm_flops, gemm_bytes, model_gemm_shapes), measures this machine
(measure_matmul_flops, measure_copy_bandwidth: best of several runs, so that a busy machine
shows its capability rather than its load), and carries the H200's published numbers.
"""

import time
from dataclasses import dataclass

import torch

from course import measurements


def element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def gemm_flops(m: int, k: int, n: int) -> int:
    """FLOPs of (m, k) @ (k, n): m·n outputs, each a sum of k products (k multiplies, k adds)."""
    return 2 * m * k * n


def gemm_bytes(m: int, k: int, n: int, dtype: torch.dtype) -> int:
    """The least memory traffic of (m, k) @ (k, n): read both operands once, write the result once."""
    return (m * k + k * n + m * n) * element_size(dtype)


def arithmetic_intensity(m: int, k: int, n: int, dtype: torch.dtype) -> float:
    """FLOPs per byte moved of a GEMM of m tokens (m, k) against a (k, n) weight, all in `dtype`."""
    return gemm_flops(m, k, n) / gemm_bytes(m, k, n, dtype)


def model_gemm_shapes(config) -> list[tuple[int, int]]:
    """(K, N) of every weight a token meets in one forward: each layer's q, k, v, o, gate, up and
    down projections, then the LM head. `config` is a ch01.ModelConfig."""
    d, f = config.hidden_size, config.intermediate_size
    q_out = config.num_attention_heads * config.head_dim
    kv_out = config.num_key_value_heads * config.head_dim
    layer = [(d, q_out), (d, kv_out), (d, kv_out), (q_out, d), (d, f), (d, f), (f, d)]
    return layer * config.num_hidden_layers + [(d, config.vocab_size)]


def step_flops_and_bytes(config, num_tokens: int, dtype: torch.dtype) -> tuple[int, int]:
    """FLOPs and least bytes of the GEMMs of one forward over `num_tokens` tokens (attention's
    own products left out: small next to the GEMMs at the lengths used here)."""
    shapes = model_gemm_shapes(config)
    flops = sum(gemm_flops(num_tokens, k, n) for k, n in shapes)
    moved = sum(gemm_bytes(num_tokens, k, n, dtype) for k, n in shapes)
    return flops, moved


def best_time(fn, repeats: int = 5) -> float:
    """The fastest of `repeats` runs of fn(), in seconds: the machine's capability, not its load."""
    fn()  # warm-up: first-touch page faults, allocator, kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_matmul_flops(n: int = 512, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of an (n, n) @ (n, n) matmul on this CPU with the current torch thread count.

    n = 512 keeps all three matrices (3 MiB in float32) in cache, so the number is compute."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return gemm_flops(n, n, n) / best_time(lambda: a @ b, repeats)


def measure_copy_bandwidth(mib: int = 512, repeats: int = 5) -> float:
    """Bytes/s of copying a `mib` MiB tensor into another, counting the read and the write.

    The tensor must be larger than the last-level cache, or this measures the cache."""
    src = torch.ones(mib * 2**20 // 4)  # float32
    dst = torch.empty_like(src)
    return 2 * src.nbytes / best_time(lambda: dst.copy_(src), repeats)


@dataclass(frozen=True)
class Roofline:
    name: str
    peak_flops: float  # FLOP/s
    bandwidth: float  # bytes/s
    source: str

    @property
    def ridge(self) -> float:
        """The intensity (FLOP/byte) where the two roofs meet: below it memory bounds the speed."""
        return self.peak_flops / self.bandwidth

    def attainable(self, intensity: float) -> float:
        """The best FLOP/s a kernel of this intensity can reach here."""
        return min(self.peak_flops, intensity * self.bandwidth)


H200 = Roofline(
    "NVIDIA H200 SXM",
    peak_flops=989e12,
    bandwidth=4.8e12,
    source="NVIDIA H200 Tensor Core GPU datasheet: 989 TFLOP/s dense BF16 (1,979 with sparsity), 4.8 TB/s HBM3e",
)
# A device-to-device copy (read + write counted) measured on the H200 this course's engine was
# benchmarked on: what a kernel that streams memory can really reach. Measured numbers live in
# measurements/*.json (course/measurements.py), never typed here.
H200_MEASURED_COPY = measurements.value("kernels_h200", "copy_tb_per_s.value") * 1e12


def measure_cpu_roofline(repeats: int = 10) -> Roofline:
    threads = torch.get_num_threads()
    return Roofline(
        f"this CPU, {threads} thread{'s' if threads > 1 else ''}",
        peak_flops=measure_matmul_flops(repeats=repeats),
        bandwidth=measure_copy_bandwidth(repeats=max(3, repeats // 2)),
        source="measured: float32 512x512 matmul and a 512 MiB copy, best of several runs",
    )


def time_model_gemms(model: torch.nn.Module, num_tokens: int, repeats: int = 5) -> float:
    """Seconds to run every linear layer of `model` once on `num_tokens` rows, the model's own
    weights in their own order: the GEMM part of one forward step, without attention."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    param = linears[0].weight
    inputs = {m.in_features: torch.randn(num_tokens, m.in_features, dtype=param.dtype, device=param.device) for m in linears}

    @torch.inference_mode()
    def run():
        for m in linears:
            m(inputs[m.in_features])

    return best_time(run, repeats)
