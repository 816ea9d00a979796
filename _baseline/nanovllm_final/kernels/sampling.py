"""Triton kernel: sample one token per row in one pass over the logits (greedy, temperature, min-p).

Spec: `reference.sample_gumbel` (same distribution; the noise comes from another generator).
The Gumbel-max trick: argmax(logits / T + G) with G = -log(-log(U)), U uniform, picks token i
with probability softmax(logits / T)_i, so no softmax, no normalization and no second pass are
needed: each program reads its slice of the bf16 logits once, draws U in registers (Philox,
keyed by the row's seed and the token index, four uniforms per call), and keeps the best
(score, index) it has seen.
A greedy row (T = 0) is the same loop without noise. Min-p keeps tokens whose probability is at
least min_p times the top one's, i.e. logit >= max logit + T * log(min_p): that needs the row's
max first (one torch reduction, only when some row asks for min-p).

Grid: (B, num_splits): the vocabulary (151,936 for Qwen3) is cut into num_splits slices so that
a batch of a few rows still fills the GPU; each program writes its slice's best score and index,
and a (B, num_splits) argmax picks the winner (ties go to the lower index, as torch.argmax's do).

Before: softmax in fp32, a sort-free filter, exponential noise and a division, about 7 passes
over a (B, vocab) fp32 tensor: 0.58 ms at 188 rows on an H200.

Check: `python -m pytest tests/final/test_kernels.py -q` (CPU: Triton's interpreter, in a subprocess)
       `python -m pytest tests/final/test_kernels_gpu.py -q -k sample` (GPU)
"""


import torch
import triton
import triton.language as tl

# The vocabulary is split until the batch has about PROGRAMS_PER_SM programs per SM. H200, 151,936
# tokens, temperature 0.6: 188 rows 112 us (139 us with 4 per SM), 96 rows 66 us, 8 rows 17 us.
BLOCK, NUM_WARPS, PROGRAMS_PER_SM = 2048, 8, 16
SEED_BITS = 62  # Philox takes a 64-bit key; stay clear of the sign bit


@triton.jit
def _pick(base, n0, end, u, inv_t, threshold, greedy, best, best_index, QUARTER: tl.constexpr, MIN_P: tl.constexpr):
    """Tokens n0 .. n0 + QUARTER of one row, with their uniforms u: keep each lane's best so far."""
    offs = n0 + tl.arange(0, QUARTER)
    x = tl.load(base + offs, mask=offs < end, other=float("-inf")).to(tl.float32)
    score = x * inv_t
    if not greedy:  # Gumbel noise -log(-log u), in base 2 (a constant factor: same argmax); u = 0 never wins
        score = score * 1.4426950408889634 - tl.log2(-tl.log2(u))
    if MIN_P:
        score = tl.where(x >= threshold, score, float("-inf"))
    better = score > best  # strictly: the earlier index wins a tie
    return tl.where(better, score, best), tl.where(better, offs, best_index)


@triton.jit(do_not_specialize=["vocab", "split_size"])
def _sample_kernel(logits_ptr, stride_row, temperatures_ptr, min_ps_ptr, row_max_ptr, seeds_ptr,
                   part_score_ptr, part_index_ptr, vocab, split_size, num_splits,
                   QUARTER: tl.constexpr, MIN_P: tl.constexpr):
    row = tl.program_id(0)
    split = tl.program_id(1)
    temperature = tl.load(temperatures_ptr + row)
    greedy = temperature == 0.0
    inv_t = 1.0 / tl.where(greedy, 1.0, temperature)
    seed = tl.load(seeds_ptr + row)
    threshold = float("-inf")
    if MIN_P:  # logit >= max + T * log(min_p) <=> probability >= min_p * top probability
        min_p = tl.load(min_ps_ptr + row)
        threshold = tl.where(greedy | (min_p <= 0.0), float("-inf"),
                             tl.load(row_max_ptr + row).to(tl.float32) + temperature * tl.log(min_p))
    base = logits_ptr + row.to(tl.int64) * stride_row
    best = tl.full([QUARTER], float("-inf"), tl.float32)
    best_index = tl.zeros([QUARTER], tl.int32)
    start = split * split_size
    end = tl.minimum(start + split_size, vocab)
    for n0 in range(start, end, 4 * QUARTER):
        # One Philox call gives four uniforms: the block is read as four quarters, each with one
        # of them, so the generator (most of this kernel's arithmetic) runs once per 4 tokens.
        u0, u1, u2, u3 = tl.rand4x(seed, n0 // 4 + tl.arange(0, QUARTER))
        best, best_index = _pick(base, n0, end, u0, inv_t, threshold, greedy, best, best_index, QUARTER, MIN_P)
        best, best_index = _pick(base, n0 + QUARTER, end, u1, inv_t, threshold, greedy, best, best_index, QUARTER, MIN_P)
        best, best_index = _pick(base, n0 + 2 * QUARTER, end, u2, inv_t, threshold, greedy, best, best_index, QUARTER,
                                 MIN_P)
        best, best_index = _pick(base, n0 + 3 * QUARTER, end, u3, inv_t, threshold, greedy, best, best_index, QUARTER,
                                 MIN_P)
    top = tl.max(best, axis=0)
    index = tl.min(tl.where(best == top, best_index, vocab), axis=0)
    tl.store(part_score_ptr + row * num_splits + split, top)
    tl.store(part_index_ptr + row * num_splits + split, index)


_NUM_SMS = {}


def _num_sms(device) -> int:
    if device.type != "cuda":
        return 2  # the interpreter on CPU: few programs, but still more than one split
    if device not in _NUM_SMS:
        _NUM_SMS[device] = torch.cuda.get_device_properties(device).multi_processor_count
    return _NUM_SMS[device]


def row_seeds(batch, device, generators=None) -> torch.Tensor:
    """(B,) int64 Philox keys: fresh ones from torch's generator, or, for a seeded row, drawn from
    that request's own torch.Generator (so its draws do not depend on the batch around it).
    All on the device: no host sync."""
    seeds = torch.randint(0, 2**SEED_BITS, (batch,), device=device)
    for i, gen in enumerate(generators or []):
        if gen is not None:
            seeds[i] = torch.randint(0, 2**SEED_BITS, (1,), device=device, generator=gen)[0]
    return seeds


def sample_gumbel(logits, temperatures, min_ps, generators=None, need_min_p=True, seeds=None):
    """Same contract as reference.sample_gumbel: logits (B, V) any float dtype; temperatures,
    min_ps (B,) float32 (temperature 0 = greedy); generators: None or B entries, a torch.Generator
    for a seeded row -> (B,) int64 token ids. `seeds` (B,) int64 overrides the drawn keys."""
    B, V = logits.shape
    assert logits.stride(-1) == 1
    if seeds is None:
        seeds = row_seeds(B, logits.device, generators)
    num_splits = max(1, min(triton.cdiv(V, BLOCK), triton.cdiv(PROGRAMS_PER_SM * _num_sms(logits.device), max(B, 1))))
    split_size = triton.cdiv(triton.cdiv(V, num_splits), BLOCK) * BLOCK
    num_splits = triton.cdiv(V, split_size)
    part_score = torch.empty(B, num_splits, dtype=torch.float32, device=logits.device)
    part_index = torch.empty(B, num_splits, dtype=torch.int32, device=logits.device)
    row_max = logits.amax(dim=-1) if need_min_p else part_score  # (unused pointer without min-p)
    _sample_kernel[(B, num_splits)](
        logits, logits.stride(0), temperatures, min_ps, row_max, seeds, part_score, part_index,
        V, split_size, num_splits, QUARTER=BLOCK // 4, MIN_P=need_min_p, num_warps=NUM_WARPS)
    if num_splits == 1:
        return part_index[:, 0].long()
    return part_index.gather(1, part_score.argmax(dim=1, keepdim=True)).squeeze(1).long()


__all__ = ["sample_gumbel", "row_seeds"]
