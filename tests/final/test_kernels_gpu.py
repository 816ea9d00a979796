"""Each Triton kernel against its torch reference on a CUDA GPU, at the engine's real shapes.

    python -m pytest tests/final/test_kernels_gpu.py -q        # skipped without CUDA

Tolerances: float32 inputs agree to ~1e-6 (tl.dot in IEEE mode); bfloat16 to ~1e-2 relative
(the kernels feed the softmax probabilities to the second matmul in bf16, as flash attention
does). FP8 (e4m3) KV against the same values kept in bf16: ~2-3% relative error on the attention
output (printed by test_fp8_error_against_bf16; asserted < 5%).
"""

import random

import pytest
import torch

from nanovllm_final import kernels
from nanovllm_final.kernels import decode_attention, reference
from tools.bench_kernels import make_paged_kv, rel_err

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

BF16, F32 = torch.bfloat16, torch.float32


def tol(dtype):
    return 1e-5 if dtype == F32 else 2e-2


@pytest.mark.parametrize("fp8", [False, True])
@pytest.mark.parametrize("num_kv_heads,head_dim", [(8, 128), (3, 64)])
def test_store_kvcache(fp8, num_kv_heads, head_dim):
    torch.manual_seed(0)
    N, num_blocks, block_size = 300, 4, 256
    qkv = torch.randn(N, 4 * num_kv_heads * head_dim, dtype=BF16, device="cuda")  # strided views
    key = qkv[:, 2 * num_kv_heads * head_dim:3 * num_kv_heads * head_dim].view(N, num_kv_heads, head_dim)
    value = qkv[:, 3 * num_kv_heads * head_dim:].view(N, num_kv_heads, head_dim)
    slots = torch.randperm(num_blocks * block_size, device="cuda")[:N]
    slots[::5] = -1
    dtype = reference.FP8_DTYPE if fp8 else BF16
    caches = [torch.zeros(num_blocks, block_size, num_kv_heads, head_dim, dtype=dtype, device="cuda") for _ in range(4)]
    scales = [reference.fp8_scales(x[:50]) for x in (key, value)] * 2 if fp8 else [None] * 4  # some saturate
    kernels.store_kvcache(key, value, caches[0], caches[1], slots, scales[0], scales[1])
    reference.store_kvcache(key, value, caches[2], caches[3], slots, scales[2], scales[3])
    for mine, ref in zip(caches[:2], caches[2:]):
        if not fp8:
            assert torch.equal(mine, ref)
            continue
        # the GPU rounds fp32 -> e4m3 to nearest even like torch; its divide may be an ulp off,
        # so a value next to a rounding boundary can land on the neighbouring code (seen: a few
        # of 300 x 8 x 128 at Qwen3's shapes), never further
        diff = (mine.view(torch.uint8).short() - ref.view(torch.uint8).short()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3


def decode_args(batch, num_heads, num_kv_heads, head_dim, block_size, lens, dtype, fp8, seed=0):
    kv = make_paged_kv(lens, num_kv_heads, head_dim, block_size, dtype, "cuda", fp8=fp8, extra_blocks=2, seed=seed)
    q = torch.randn(batch, num_heads, head_dim, dtype=dtype, device="cuda")
    return (q, kv["k_cache"], kv["v_cache"], kv["block_tables"], kv["context_lens"], head_dim ** -0.5,
            kv["k_scale"], kv["v_scale"])


@pytest.mark.parametrize("num_heads", [8, 16, 32])  # groups 1, 2, 4 over 8 KV heads
@pytest.mark.parametrize("dtype,fp8", [(BF16, False), (F32, False), (BF16, True)])
@pytest.mark.parametrize("block_size", [16, 256])
def test_paged_attention_decode(num_heads, dtype, fp8, block_size):
    rng = random.Random(num_heads + block_size)
    lens = [rng.randint(1, 2100) for _ in range(64)]
    args = decode_args(64, num_heads, 8, 128, block_size, lens, dtype, fp8)
    ref = reference.paged_attention_decode(*args)
    for num_splits in (None, 1, 5):
        err = rel_err(decode_attention.paged_attention_decode(*args, num_splits=num_splits), ref)
        assert err < tol(dtype), (num_splits, err)


@pytest.mark.parametrize("tma", [True, False])
def test_paged_attention_decode_fp8_large_batch(tma, monkeypatch):
    """A batch large enough for FP8_LARGE_BLOCK_N (decode_attention.tiles), the benchmark's shape;
    tiles copied by the tensor memory accelerator (Hopper on) or by each thread."""
    monkeypatch.setattr(decode_attention, "has_tma", lambda device: tma)
    rng = random.Random(3)
    lens = [rng.randint(1, 2100) for _ in range(160)]
    args = decode_args(160, 16, 8, 128, 256, lens, BF16, True)
    block_n = decode_attention.tiles(True, 160, 8, 256, args[0].device)[0]
    assert block_n == decode_attention.FP8_LARGE_BLOCK_N and decode_attention.uses_keys_first(*args[:3])
    assert rel_err(decode_attention.paged_attention_decode(*args), reference.paged_attention_decode(*args)) < 2e-2


@pytest.mark.parametrize("fp8", [False, True])
def test_paged_attention_decode_long_context_few_sequences(fp8):
    """fp8, one split: 36 blocks, more than MAX_TABLE_PAD, so the block table is read inside the loop."""
    args = decode_args(2, 9, 3, 64, 256, [9000, 300], BF16, fp8)  # SmolLM2's heads: group 3
    ref = reference.paged_attention_decode(*args)
    for num_splits in (None, 1):
        err = rel_err(decode_attention.paged_attention_decode(*args, num_splits=num_splits), ref)
        assert err < 2e-2, (num_splits, err)


@pytest.mark.parametrize("fp8,tma", [(False, True), (True, True), (True, False)])  # tma: FP8 tiles by TMA
@pytest.mark.parametrize("batch", [16, 188])  # split contexts; one split per sequence, 128-key FP8 tiles
def test_paged_attention_decode_stores_the_new_token(fp8, tma, batch, monkeypatch):
    """new_kv: the kernel stores each sequence's new token (the context's last key) before reading
    it back, and leaves the cache exactly as store_kvcache does. The slots start as the largest
    finite code (FP8, whose last tile is read whole and its stale keys get probability 0) or NaN
    (bf16, whose last tile is masked), so a tile read before the store lands would show."""
    monkeypatch.setattr(decode_attention, "has_tma", lambda device: tma)
    rng = random.Random(batch)
    lens = [rng.randint(1, 2100) for _ in range(batch - 1)] + [0]  # 0: a CUDA graph's padding row
    q, k_cache, v_cache, block_tables, context_lens, scale, k_scale, v_scale = decode_args(
        batch, 16, 8, 128, 256, lens, BF16, fp8)
    qkv = torch.randn(batch, 32, 128, dtype=BF16, device="cuda") * 3  # key and value as views of a projection
    key, value = qkv[:, 16:24], qkv[:, 24:]
    slots = torch.tensor([-1 if n == 0 else block_tables[b, (n - 1) // 256].item() * 256 + (n - 1) % 256
                          for b, n in enumerate(lens)], device="cuda")
    blocks, rows = slots[slots >= 0] // 256, slots[slots >= 0] % 256
    for cache in (k_cache, v_cache):
        cache.view(torch.uint8)[blocks, rows] = 0x7E if fp8 else 0x7F
    copies = [k_cache.clone(), v_cache.clone()]
    out = decode_attention.paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale,
                                                  k_scale, v_scale, new_kv=(key, value, slots))
    kernels.store_kvcache(key, value, *copies, slots, k_scale, v_scale)
    assert torch.equal(k_cache.view(torch.uint8), copies[0].view(torch.uint8))
    assert torch.equal(v_cache.view(torch.uint8), copies[1].view(torch.uint8))
    ref = reference.paged_attention_decode(q, *copies, block_tables, context_lens, scale, k_scale, v_scale)
    assert torch.isfinite(out).all() and rel_err(out, ref) < 2e-2


@pytest.mark.parametrize("fp8,norm", [(False, True), (True, True), (False, False)])
def test_paged_attention_decode_normalizes_and_rotates(fp8, norm):
    """rope: the kernel normalizes (Qwen3) and rotates q and the new key itself, at position
    its position: the same output and cache as qk_norm_rope's kernel first, at Qwen3-0.6B's shapes."""
    from nanovllm_final.layers.rotary_embedding import RotaryEmbedding
    rng = random.Random(7)
    batch = 24
    lens = [rng.randint(1, 3000) for _ in range(batch - 1)] + [0]
    q, k_cache, v_cache, block_tables, context_lens, scale, k_scale, v_scale = decode_args(
        batch, 16, 8, 128, 256, lens, BF16, fp8)
    qkv = torch.randn(batch, 32, 128, dtype=BF16, device="cuda") * 3
    q, key, value = qkv[:, :16], qkv[:, 16:24], qkv[:, 24:]  # views of one projection, as the model has them
    slots = torch.tensor([-1 if n == 0 else block_tables[b, (n - 1) // 256].item() * 256 + (n - 1) % 256
                          for b, n in enumerate(lens)], device="cuda")
    cos_sin = RotaryEmbedding(128, 4096, 1e6).cos_sin_cache.cuda()
    weights = (torch.rand(128, dtype=BF16, device="cuda") + 0.5, torch.rand(128, dtype=BF16, device="cuda") + 0.5) \
        if norm else (None, None)
    copies = [k_cache.clone(), v_cache.clone()]
    args = (block_tables, context_lens, scale, k_scale, v_scale)
    positions = (context_lens.long() - 1).clamp(min=0)  # a decode step's
    out = kernels.paged_attention_decode(q.clone(), k_cache, v_cache, *args, new_kv=(key.clone(), value, slots),
                                         rope=(positions, cos_sin, *weights, 1e-6))  # FP8 (keys first): in place
    q_rot, key_rot = kernels.qk_norm_rope(q.clone(), key.clone(), positions, cos_sin, *weights, 1e-6)
    want = kernels.paged_attention_decode(q_rot, *copies, *args, new_kv=(key_rot, value, slots))
    assert torch.isfinite(out).all() and rel_err(out, want) < 1e-2 and (out[-1] == 0).all()
    assert rel_err(k_cache.float(), copies[0].float()) < 1e-2
    assert torch.equal(v_cache.view(torch.uint8), copies[1].view(torch.uint8))


def test_paged_attention_decode_in_a_cuda_graph():
    """Launch parameters come from shapes only, so a captured graph replays for new lengths."""
    args = list(decode_args(32, 16, 8, 128, 256, [1500] * 32, BF16, False))
    context_lens = args[4]
    out = kernels.paged_attention_decode(*args)  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = kernels.paged_attention_decode(*args)
    # the last set pads the batch with rows of context_len 0, as a graph of a larger batch size does
    for lens in ([1500] * 32, list(range(1, 1500, 47))[:32], [700] * 28 + [0] * 4):
        context_lens.copy_(torch.tensor(lens, dtype=torch.int32))
        graph.replay()
        assert rel_err(out, reference.paged_attention_decode(*args)) < 2e-2
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("num_heads,num_kv_heads,head_dim", [(16, 8, 128), (9, 3, 64), (32, 8, 128)])
@pytest.mark.parametrize("dtype,fp8", [(BF16, False), (F32, False), (BF16, True)])
def test_paged_attention_prefill(num_heads, num_kv_heads, head_dim, dtype, fp8):
    # whole prompts, a chunk after a cached prefix, decodes mixed in, a sequence with no new query
    lens = [700, 1300, 513, 90, 2000, 40, 1]
    q_lens = [700, 300, 1, 1, 257, 0, 1]
    kv = make_paged_kv(lens, num_kv_heads, head_dim, 256, dtype, "cuda", fp8=fp8)
    q = torch.randn(sum(q_lens), num_heads, head_dim, dtype=dtype, device="cuda")
    cu = torch.tensor([0] + q_lens, device="cuda").cumsum(0).to(torch.int32)
    args = (q, kv["k_cache"], kv["v_cache"], cu, kv["context_lens"], kv["block_tables"], head_dim ** -0.5,
            kv["k_scale"], kv["v_scale"])
    assert rel_err(kernels.paged_attention_prefill(*args), reference.paged_attention_prefill(*args)) < tol(dtype)


def test_fp8_error_against_bf16():
    """The price of the FP8 cache: attention over e4m3 K/V vs the same K/V in bf16."""
    rng = random.Random(0)
    lens = [rng.randint(100, 2048) for _ in range(32)]
    bf = make_paged_kv(lens, 8, 128, 256, BF16, "cuda", seed=3)
    ks, vs = reference.fp8_scales(bf["k_cache"]), reference.fp8_scales(bf["v_cache"])
    k8, v8 = reference.quantize_fp8(bf["k_cache"], ks), reference.quantize_fp8(bf["v_cache"], vs)
    q = torch.randn(32, 16, 128, dtype=BF16, device="cuda")
    exact = reference.paged_attention_decode(q, bf["k_cache"], bf["v_cache"], bf["block_tables"], bf["context_lens"], 128 ** -0.5)
    fp8 = kernels.paged_attention_decode(q, k8, v8, bf["block_tables"], bf["context_lens"], 128 ** -0.5, ks, vs)
    err = rel_err(fp8, exact)
    print(f"fp8 KV decode attention: relative error {err:.4f} vs bf16 KV")
    assert err < 0.05


@pytest.mark.parametrize("hidden", [1024, 576])  # Qwen3-0.6B, SmolLM2-135M
@pytest.mark.parametrize("dtype", [BF16, F32])
def test_rms_norm(hidden, dtype):
    x, residual = (torch.randn(300, hidden, dtype=dtype, device="cuda") for _ in range(2))
    weight = torch.randn(hidden, dtype=dtype, device="cuda")
    assert rel_err(kernels.rms_norm(x, weight, 1e-6), reference.rms_norm(x, weight, 1e-6)) < 1e-2
    normed, summed = kernels.fused_add_rms_norm(x, residual, weight, 1e-6)
    ref_normed, ref_summed = reference.fused_add_rms_norm(x, residual, weight, 1e-6)
    assert torch.equal(summed, ref_summed) and rel_err(normed, ref_normed) < 1e-2
    # Qwen3's q/k norm: rows are heads of a (T, H, head_dim) view
    q = torch.randn(300, 16, 128, dtype=dtype, device="cuda")
    w = torch.randn(128, dtype=dtype, device="cuda")
    assert rel_err(kernels.rms_norm(q, w, 1e-6), reference.rms_norm(q, w, 1e-6)) < 1e-2


def test_silu_and_mul():
    """Qwen3-0.6B's MLP at 188 rows, against torch's two kernels: the same two roundings."""
    x = torch.randn(188, 2 * 3072, dtype=BF16, device="cuda") * 3
    out, want = kernels.silu_and_mul(x), reference.silu_and_mul(x)
    assert out.shape == want.shape
    assert (out.float() - want.float()).abs().max() <= 1e-2 * want.float().abs().max()
    assert (out != want).float().mean() < 1e-3  # all but a few equal to the bit (exp's last ulp)


@pytest.mark.parametrize("N,K,bias,silu_mul", [(4096, 1024, True, False), (1024, 2048, False, False),
                                                (6144, 1024, False, False), (1024, 3072, False, True),
                                                (151936, 1024, False, False), (1000, 3000, True, True)])
def test_gemv(N, K, bias, silu_mul):
    """One row through the GEMV kernel at Qwen3-0.6B's products (and odd sizes), against torch in
    float64: within the bf16 rounding of the result; `out=` and two rows (torch's path) agree."""
    torch.manual_seed(4)
    w = torch.randn(N, K, dtype=BF16, device="cuda") * 0.05
    b = torch.randn(N, dtype=BF16, device="cuda") if bias else None
    x = torch.randn(1, 2 * K if silu_mul else K, dtype=BF16, device="cuda")
    h = reference.silu_and_mul(x) if silu_mul else x
    want = h.double() @ w.double().t() + (b.double() if bias else 0)
    got = kernels.linear(x, w, b, silu_mul)
    assert (got.double() - want).abs().max() <= 1e-2 * want.abs().max()
    out = torch.empty(1, N, dtype=BF16, device="cuda")
    assert kernels.linear(x, w, b, silu_mul, out=out) is out and torch.equal(out, got)
    two = kernels.linear(torch.cat([x, x]), w, b, silu_mul)
    assert (two.double() - want).abs().max() <= 1e-2 * want.abs().max()


@pytest.mark.parametrize("N,K,residual", [(4096, 1024, True), (6144, 1024, True), (4096, 1024, False),
                                          (1000, 3000, True)])
def test_norm_linear(N, K, residual):
    """RMSNorm of x + residual inside the GEMV, at Qwen3-0.6B's q/k/v and gate/up (and odd sizes):
    the residual stream bit for bit as fused_add_rms_norm leaves it, the product within the bf16
    rounding of the result of norm-then-product in float64."""
    torch.manual_seed(5)
    w = torch.randn(N, K, dtype=BF16, device="cuda") * 0.05
    g = torch.rand(K, dtype=BF16, device="cuda") + 0.5
    x = torch.randn(1, K, dtype=BF16, device="cuda") * 4
    r = torch.randn(1, K, dtype=BF16, device="cuda") * 4 if residual else None
    normed, want_h = (reference.rms_norm(x, g, 1e-6), x) if r is None else reference.fused_add_rms_norm(x, r, g, 1e-6)
    want = normed.double() @ w.double().t()
    y, h = kernels.norm_linear(x, r, g, 1e-6, w)
    assert torch.equal(h, want_h) and (y.double() - want).abs().max() <= 1e-2 * want.abs().max()
    y2, h2 = kernels.norm_linear(torch.cat([x, x]), None if r is None else torch.cat([r, r]), g, 1e-6, w)
    assert torch.equal(h2[1:], want_h) and (y2[1:].double() - want).abs().max() <= 1e-2 * want.abs().max()


@pytest.mark.parametrize("norm", [True, False])  # Qwen3, and Qwen2/Llama (RoPE alone)
@pytest.mark.parametrize("dtype", [BF16, F32])
def test_qk_norm_rope(norm, dtype):
    from nanovllm_final.layers.rotary_embedding import RotaryEmbedding
    torch.manual_seed(3)
    N, H, Hkv, d = 300, 16, 8, 128  # Qwen3-0.6B
    qkv = torch.randn(N, (H + 2 * Hkv) * d, dtype=dtype, device="cuda")
    q, k = qkv[:, :H * d].view(N, H, d), qkv[:, H * d:(H + Hkv) * d].view(N, Hkv, d)
    cos_sin = RotaryEmbedding(d, 4096, 1e6).cos_sin_cache.cuda()
    positions = torch.randint(0, 4096, (N,), device="cuda")
    weights = (torch.rand(d, dtype=dtype, device="cuda") + 0.5, torch.rand(d, dtype=dtype, device="cuda") + 0.5) \
        if norm else (None, None)
    want_q, want_k = reference.qk_norm_rope(q.clone(), k.clone(), positions, cos_sin, *weights, 1e-6)
    kernels.qk_norm_rope(q, k, positions, cos_sin, *weights, 1e-6)
    assert rel_err(q, want_q) < 1e-2 and rel_err(k, want_k) < 1e-2
    if dtype == F32:
        torch.testing.assert_close(q, want_q, rtol=1e-5, atol=1e-5)


def test_sample_gumbel_on_gpu():
    """The fused sampler at Qwen3's vocabulary: greedy rows are the argmax of the bf16 logits, and
    temperature / min-p rows follow the softmax (frequencies over many rows of one logit vector)."""
    torch.manual_seed(0)
    logits = torch.randn(64, 151936, device="cuda").to(BF16)
    zeros = torch.zeros(64, device="cuda")
    assert torch.equal(kernels.sample_gumbel(logits, zeros, zeros, None, True), logits.argmax(-1))
    n, vocab = 20000, 1000
    row = torch.randn(vocab, device="cuda") * 2
    for temperature, min_p in ((1.0, 0.0), (0.6, 0.0), (1.0, 0.2)):
        out = kernels.sample_gumbel(row.expand(n, -1), torch.full((n,), temperature, device="cuda"),
                                    torch.full((n,), min_p, device="cuda"), None, min_p > 0)
        probs = (row / temperature).softmax(-1)
        keep = probs >= min_p * probs.max()
        expected = torch.where(keep, probs, 0) / probs[keep].sum()
        freq = torch.bincount(out, minlength=vocab).float() / n
        assert (freq - expected).abs().max() <= 4 * (0.25 / n) ** 0.5
        assert (freq[~keep] == 0).all()
