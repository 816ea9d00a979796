"""Each Triton kernel against its torch reference, on CPU, through Triton's interpreter.

Needs the interpreter on before the kernels are imported, so it runs only as a subprocess of
tests/final/test_kernels.py, or by hand:

    TRITON_INTERPRET=1 NANOVLLM_TRITON_INTERPRET=1 python -m pytest tests/final/test_kernels_interpret.py -q

Shapes are tiny (the interpreter runs each program in numpy) but chosen to hit every edge: -1
slots and padded block tables, contexts that cross block boundaries, GQA groups 1/2/3/4, several
splits in decode, several query tiles per sequence in prefill, FP8 with scales. float32 and
float16 only: Triton 3.6's interpreter rounds bfloat16 wrongly (truncates) and cannot tl.dot it;
bfloat16 is covered on the GPU in test_kernels_gpu.py.
"""

import os

import pytest
import torch

from course.testing import assert_seeded_row_ignores_its_batch

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1" and os.environ.get("NANOVLLM_TRITON_INTERPRET") == "1"
pytestmark = pytest.mark.skipif(
    not INTERPRETING,
    reason="runs in a subprocess of test_kernels.py with TRITON_INTERPRET=1 NANOVLLM_TRITON_INTERPRET=1")

if INTERPRETING:
    import triton
    import triton.language as tl

    from nanovllm_final import kernels
    from nanovllm_final.kernels import (activation, decode_attention, gemv, kvcache, prefill_attention, reference,
                                       rmsnorm, rotary, sampling)
    from tools.bench_kernels import make_paged_kv

    @triton.jit
    def _cast_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < n)
        tl.store(out_ptr + offs, x.to(out_ptr.dtype.element_ty), mask=offs < n)

    def interpreter_cast(x, dtype):
        """x.to(dtype) done by the interpreter itself."""
        out = torch.empty(x.shape, dtype=dtype)
        _cast_kernel[(1,)](x.contiguous(), out, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
        return out


F32, F16 = torch.float32, torch.float16


def assert_close(out, ref, tol):
    err = (out.double() - ref.double()).abs().max().item()
    assert torch.isfinite(out).all() and err <= tol, f"max abs error {err:.3g} > {tol}\nout {out}\nref {ref}"


def test_dispatch_uses_triton_under_the_interpreter():
    assert kernels.use_triton(torch.zeros(1))


@pytest.mark.parametrize("num_kv_heads,head_dim,dtype", [(1, 16, F32), (3, 16, F16), (2, 32, F32)])
def test_store_kvcache(num_kv_heads, head_dim, dtype):
    torch.manual_seed(0)
    N, num_blocks, block_size = 7, 5, 4
    # key/value as strided views of one fused projection, the way the model hands them over
    qkv = torch.randn(N, (2 + 2) * num_kv_heads * head_dim, dtype=dtype)
    key = qkv[:, 2 * num_kv_heads * head_dim:3 * num_kv_heads * head_dim].view(N, num_kv_heads, head_dim)
    value = qkv[:, 3 * num_kv_heads * head_dim:].view(N, num_kv_heads, head_dim)
    slots = torch.tensor([3, -1, 4, 19, 0, -1, 8])  # -1: skip; 3 -> 4 crosses a block boundary
    caches = [torch.full((num_blocks, block_size, num_kv_heads, head_dim), -5.0, dtype=dtype) for _ in range(4)]
    kvcache.store_kvcache(key, value, caches[0], caches[1], slots)
    reference.store_kvcache(key, value, caches[2], caches[3], slots)
    assert torch.equal(caches[0], caches[2]) and torch.equal(caches[1], caches[3])


@pytest.mark.parametrize("v_key_major", [False, True])  # True: the engine's layout, K head-major too
def test_store_kvcache_fp8(v_key_major):
    torch.manual_seed(1)
    N, num_blocks, block_size, Hkv, d = 9, 4, 4, 2, 16
    key = torch.randn(N, Hkv, d) * torch.logspace(-2, 2, N)[:, None, None]
    value = torch.randn(N, Hkv, d)
    scales = [reference.fp8_scales(key[:4]), reference.fp8_scales(value)]  # later keys are larger: saturate
    slots = torch.tensor([0, 5, 6, -1, 15, 9, -1, 2, 12])
    caches = [torch.zeros(num_blocks, block_size, Hkv, d, dtype=reference.FP8_DTYPE) for _ in range(2)]
    if v_key_major:  # as the engine keeps an FP8 cache: K stored (blocks, Hkv, block_size, d),
        # V stored (blocks, Hkv, d, block_size)
        caches = [reference.head_major(caches[0]), reference.key_major(caches[1])]
    kvcache.store_kvcache(key, value, caches[0], caches[1], slots, scales[0], scales[1])
    keep = slots >= 0
    blocks, rows = slots[keep] // block_size, slots[keep] % block_size
    for x, cache, scale in [(key, caches[0], scales[0]), (value, caches[1], scales[1])]:
        # Expected codes: x / scale cast by the interpreter's own fp32 -> e4m3 conversion, which
        # (Triton 3.6, CPU only) drops the carry when rounding up to a power of two (124.2 -> 64,
        # not 128). The GPU's conversion is exact; test_kernels_gpu.py checks it against torch.
        clamped = (x[keep] / scale[:, None]).clamp(-reference.FP8_MAX, reference.FP8_MAX)
        want = interpreter_cast(clamped, reference.FP8_DTYPE)
        assert torch.equal(cache[blocks, rows].view(torch.uint8), want.view(torch.uint8))
    untouched = torch.ones(num_blocks, block_size, dtype=torch.bool)
    untouched[blocks, rows] = False
    for cache in caches:
        assert (cache[untouched].float() == 0).all()


@pytest.mark.parametrize("fp8", [False, True])
def test_store_kvcache_key_major_v_of_a_prefill(fp8, monkeypatch):
    """A prefill's tokens hold consecutive slots, across blocks that are not neighbours, with
    cached tokens (-1) among them; V key-major goes through its own kernel, 8 tokens a program
    here (kvcache.V_TOKENS), the last program part full. Byte for byte what the per-token kernel
    writes into a V laid out as K."""
    monkeypatch.setattr(kvcache, "V_TOKENS", 8)
    torch.manual_seed(4)
    N, num_blocks, block_size, Hkv, d = 29, 6, 8, 2, 16
    dtype = reference.FP8_DTYPE if fp8 else F16
    key, value = torch.randn(2, N, Hkv, d, dtype=F16)
    scales = [reference.fp8_scales(key), reference.fp8_scales(value)] if fp8 else [None, None]
    slots = torch.cat([torch.arange(2 * 8 + 3, 3 * 8), torch.arange(5 * 8, 6 * 8), torch.arange(0, 8),
                       torch.arange(4 * 8, 4 * 8 + 8)])[:N]  # blocks 2 (from row 3), 5, 0, 4
    slots[[4, 11, 12]] = -1
    caches = [torch.zeros(num_blocks, block_size, Hkv, d, dtype=dtype) for _ in range(4)]
    caches[3] = reference.key_major(caches[3])
    kvcache.store_kvcache(key, value, caches[0], caches[1], slots, *scales)  # V laid out as K
    kvcache.store_kvcache(key, value, caches[2], caches[3], slots, *scales)  # V key-major
    assert torch.equal(caches[0].view(torch.uint8), caches[2].view(torch.uint8))
    assert torch.equal(caches[1].view(torch.uint8), caches[3].contiguous().view(torch.uint8))


def decode_inputs(batch, group, num_kv_heads, head_dim, block_size, lens, dtype, fp8, seed=0):
    torch.manual_seed(seed)
    kv = make_paged_kv(lens, num_kv_heads, head_dim, block_size, dtype, "cpu", fp8=fp8, extra_blocks=2, seed=seed)
    q = torch.randn(batch, group * num_kv_heads, head_dim, dtype=dtype)
    return q, kv


@pytest.mark.parametrize("group,num_kv_heads,num_splits,dtype,fp8", [
    (1, 2, None, F32, False), (2, 2, 3, F32, False), (3, 1, 3, F16, False), (4, 1, 1, F16, False),
    (1, 2, 3, F16, False), (2, 2, 3, F16, True), (4, 1, None, F32, True)])
def test_paged_attention_decode(group, num_kv_heads, num_splits, dtype, fp8, monkeypatch):
    lens = [1, 5, 16, 37]  # one token, inside a block, a full block, several blocks and a part
    q, kv = decode_inputs(4, group, num_kv_heads, 16, 4, lens, dtype, fp8, seed=group)
    args = (q, kv["k_cache"], kv["v_cache"], kv["block_tables"], kv["context_lens"], 0.25, kv["k_scale"], kv["v_scale"])
    monkeypatch.setattr(decode_attention, "BLOCK_N", 16)  # small tiles: several per split, several splits per sequence
    monkeypatch.setattr(decode_attention, "FP8_BLOCK_N", 16)
    out = decode_attention.paged_attention_decode(*args, num_splits=num_splits)
    assert_close(out, reference.paged_attention_decode(*args), 1e-5 if dtype == torch.float32 else 2e-3)


def test_paged_attention_decode_fp8_takes_k_in_either_layout(monkeypatch):
    """The engine keeps an FP8 K head-major (reference.head_major); the kernel takes K by its
    strides, so the same keys stored token-major (as a bf16 cache keeps them) give the very same
    output. A kernel that assumed either layout would read the other one's keys wrongly."""
    q, kv = decode_inputs(3, 2, 2, 16, 16, [20, 37, 5], F16, True, seed=5)
    k = kv["k_cache"]
    assert k.stride(1) == 16 and not k.is_contiguous()  # head-major: a head's keys 16 bytes apart
    monkeypatch.setattr(decode_attention, "FP8_BLOCK_N", 16)
    outs = [decode_attention.paged_attention_decode(q, cache, kv["v_cache"], kv["block_tables"], kv["context_lens"],
                                                    0.25, kv["k_scale"], kv["v_scale"])
            for cache in (k, k.contiguous())]
    assert decode_attention.uses_keys_first(q, k, kv["v_cache"])
    assert torch.equal(outs[0], outs[1])
    args = (q, k, kv["v_cache"], kv["block_tables"], kv["context_lens"], 0.25, kv["k_scale"], kv["v_scale"])
    assert_close(outs[0], reference.paged_attention_decode(*args), 2e-3)


def test_decode_split_length_follows_the_batch_not_the_table(monkeypatch):
    """A CUDA graph's block table is as wide as max_model_len allows: splits are cut from the
    batch's size, so that they fall inside real contexts, and a batch that fills the GPU is not cut."""
    monkeypatch.setattr(decode_attention, "_num_sms", lambda device: 132)
    cpu = torch.device("cpu")
    lengths = [decode_attention.choose_split_tokens(b, 8, cpu) for b in (1, 8, 16, 32)]
    assert lengths[0] == decode_attention.MIN_SPLIT_TOKENS and lengths[1] < lengths[2] < lengths[3] < 2048
    assert decode_attention.choose_split_tokens(33, 8, cpu) is None  # 264 programs: 2 per SM


@pytest.mark.parametrize("fp8", [False, True])
def test_paged_attention_decode_auto_splits_of_a_wide_table(fp8, monkeypatch):
    """Automatic splits (here 32 keys) over a table far wider than any context, as in a CUDA graph."""
    monkeypatch.setattr(decode_attention, "_num_sms", lambda device: 128)
    monkeypatch.setattr(decode_attention, "MIN_SPLIT_TOKENS", 16)
    monkeypatch.setattr(decode_attention, "BLOCK_N", 16)
    monkeypatch.setattr(decode_attention, "FP8_BLOCK_N", 16)
    lens = [1, 5, 16, 37, 48, 53]
    torch.manual_seed(fp8)
    kv = make_paged_kv(lens, 2, 16, 16, F16, "cpu", fp8=fp8, extra_blocks=12, seed=3)
    q = torch.randn(6, 4, 16, dtype=F16)
    args = (q, kv["k_cache"], kv["v_cache"], kv["block_tables"], kv["context_lens"], 0.25, kv["k_scale"], kv["v_scale"])
    assert decode_attention.choose_split_tokens(6, 2, q.device) == 30  # 320 * 12 programs // 128 SMs
    split_kernel, launches = decode_attention.decode_split_kernel, []

    class Recorded:  # records each launch's split length, then launches
        def __getitem__(self, grid):
            def launch(*a, **kw):
                launches.append(a[split_kernel.arg_names.index("split_size")])
                return split_kernel[grid](*a, **kw)
            return launch

    monkeypatch.setattr(decode_attention, "decode_split_kernel", Recorded())
    out = decode_attention.paged_attention_decode(*args)
    # 32 keys (30 rounded up to a 16-key tile), against the table's 16 * 16 = 256: 53 keys in 2 pieces
    assert launches == [32] and kv["block_tables"].shape[1] * 16 >= 256
    assert_close(out, reference.paged_attention_decode(*args), 2e-3)


@pytest.mark.parametrize("group,num_splits,dtype,large,table", [
    (2, None, F16, False, True), (2, 3, F16, False, True), (4, 1, F16, False, True), (1, 2, F32, False, True),
    (2, None, F16, True, True), (4, 1, F16, False, False), (2, None, F16, True, False)])
@pytest.mark.parametrize("tma", [True, False])
def test_paged_attention_decode_fp8_keys_first(group, num_splits, dtype, large, table, tma, monkeypatch):
    """The engine's FP8 layout (V key-major) with tiles that fit the blocks, every tile read whole:
    the keys past each context (here 5, 37 and 53 keys end inside a tile) get probability 0. large: a batch big
    enough for FP8_LARGE_BLOCK_N (decode_attention.tiles). table: a split's block-table entries
    read before its loop (MAX_TABLE_PAD), or, for splits longer than that, one per tile. tma: tiles
    copied through tensor descriptors (Hopper's TMA, emulated here) or by each thread (GPUs before
    Hopper)."""
    monkeypatch.setattr(decode_attention, "has_tma", lambda device: tma)
    monkeypatch.setattr(decode_attention, "MAX_TABLE_PAD", 32 if table else 0)
    monkeypatch.setattr(decode_attention, "FP8_BLOCK_N", 16)
    monkeypatch.setattr(decode_attention, "FP8_LARGE_BLOCK_N", 32)
    monkeypatch.setattr(decode_attention, "FP8_LARGE_MIN_PROGRAMS", 1 if large else 1000)
    lens, block_size = [1, 5, 16, 37, 48, 53], 32
    q, kv = decode_inputs(6, group, 2, 16, block_size, lens, dtype, True, seed=group + 20)
    args = (q, kv["k_cache"], kv["v_cache"], kv["block_tables"], kv["context_lens"], 0.25, kv["k_scale"], kv["v_scale"])
    assert decode_attention.uses_keys_first(q, kv["k_cache"], kv["v_cache"]) == (dtype != F32)
    assert decode_attention.tiles(True, 6, 2, block_size, q.device)[0] == (32 if large else 16)
    want = reference.paged_attention_decode(*args)
    # Rows past each context now hold the largest code (0x7E: 448 in e4m3). The kernel reads a
    # context's last tile whole (the engine's cache holds finite codes there: it starts zeroed and
    # every write is clamped), so those keys must get probability 0: attended, they would dominate.
    for b, n in enumerate(lens):
        block = kv["block_tables"][b, n // block_size]
        for cache in (kv["k_cache"], kv["v_cache"]):
            cache.view(torch.uint8)[block, n % block_size:] = 0x7E
    out = decode_attention.paged_attention_decode(*args, num_splits=num_splits)
    assert_close(out, want, 1e-5 if dtype == F32 else 2e-3)


@pytest.mark.parametrize("dtype,fp8,num_splits,keys_first,tma", [
    (F32, False, None, False, True), (F16, False, 3, False, True), (F16, True, 3, True, True),
    (F16, True, 1, True, True), (F16, True, 3, True, False), (F16, True, 1, True, False), (F32, True, 2, False, True)])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the padding row's unused splits: -inf - -inf
def test_paged_attention_decode_stores_the_new_token(dtype, fp8, num_splits, keys_first, tma, monkeypatch):
    """new_kv: the program that holds a sequence's last key attends to this step's token from
    registers and then stores it. The cache ends up byte for byte as store_kvcache leaves it, and
    the output is attention over that cache. The slots start out holding garbage (the largest
    finite code for FP8, NaN otherwise): the kernel must not attend to it (nor to the new token twice)."""
    monkeypatch.setattr(decode_attention, "has_tma", lambda device: tma)  # keys first: TMA copies or per-thread ones
    monkeypatch.setattr(decode_attention, "BLOCK_N", 16)
    monkeypatch.setattr(decode_attention, "FP8_BLOCK_N", 16 if keys_first else 32)  # 32: not keys first
    lens, block_size, Hkv, d = [1, 5, 16, 37, 0, 53], 16, 2, 16  # 0: a CUDA graph's padding row
    q, kv = decode_inputs(6, 2, Hkv, d, block_size, lens, dtype, fp8, seed=7)
    caches = (kv["k_cache"], kv["v_cache"])
    assert decode_attention.uses_keys_first(q, *caches) == keys_first
    key, value = torch.randn(2, 6, Hkv, d, dtype=dtype) * 2
    slots = torch.tensor([-1 if n == 0 else kv["block_tables"][b, (n - 1) // block_size].item() * block_size
                          + (n - 1) % block_size for b, n in enumerate(lens)])
    slots[2] = -1  # a token already in the cache: its program reads it there, like any other key
    blocks, rows = slots[slots >= 0] // block_size, slots[slots >= 0] % block_size
    for cache in caches:
        # FP8: the largest finite code (an FP8 cache's tiles are read whole: the slot's old code
        # is read, and must get probability 0); fp16/fp32: NaN, which their masked tiles never read
        cache.view(torch.uint8)[blocks, rows] = 0x7E if fp8 else 0x7F
    copies = [c.clone() for c in caches]
    scales = (kv["k_scale"], kv["v_scale"])
    args = (q, *caches, kv["block_tables"], kv["context_lens"], 0.25, *scales)
    out = decode_attention.paged_attention_decode(*args, new_kv=(key, value, slots), num_splits=num_splits)
    kvcache.store_kvcache(key, value, *copies, slots, *scales)
    for cache, copy in zip(caches, copies):
        assert torch.equal(cache.view(torch.uint8), copy.view(torch.uint8))
    want = decode_attention.paged_attention_decode(q, *copies, *args[3:], num_splits=num_splits)
    assert_close(out, want, 1e-6 if dtype == F32 else 1e-3)
    assert_close(out, reference.paged_attention_decode(*args), 1e-5 if dtype == F32 else 2e-3)


@pytest.mark.parametrize("dtype,fp8,num_splits,keys_first,norm,head_dim", [
    (F32, False, 3, False, True, 16), (F16, False, 1, False, False, 24), (F16, True, 3, True, True, 16)])
def test_paged_attention_decode_normalizes_and_rotates(dtype, fp8, num_splits, keys_first, norm, head_dim, monkeypatch):
    """rope: q and the new keys come unrotated, at position context_len - 1 of each sequence; the
    kernel normalizes (Qwen3) and rotates them itself. The same as qk_norm_rope first and the
    plain kernel after: the output, and the key it stores in the cache. A head_dim of 24: the
    pairs of a head that does not fill its tile."""
    monkeypatch.setattr(decode_attention, "BLOCK_N", 16)
    monkeypatch.setattr(decode_attention, "FP8_BLOCK_N", 16)
    lens, block_size, Hkv = [1, 5, 16, 37, 0, 53], 16, 2  # 0: a CUDA graph's padding row
    q, kv = decode_inputs(6, 2, Hkv, head_dim, block_size, lens, dtype, fp8, seed=9)
    q = q * 3
    caches = (kv["k_cache"], kv["v_cache"])
    assert decode_attention.uses_keys_first(q, *caches) == keys_first
    key, value = torch.randn(2, 6, Hkv, head_dim, dtype=dtype) * 3
    slots = torch.tensor([-1 if n == 0 else kv["block_tables"][b, (n - 1) // block_size].item() * block_size
                          + (n - 1) % block_size for b, n in enumerate(lens)])
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    freqs = torch.arange(64).float()[:, None] * inv_freq[None, :]
    cos_sin = torch.cat([freqs.cos(), freqs.sin()], dim=-1)[:, None, :]  # (64, 1, d) as RotaryEmbedding builds it
    weights = (torch.rand(head_dim, dtype=dtype) + 0.5, torch.rand(head_dim, dtype=dtype) + 0.5) if norm else (None, None)
    copies = [c.clone() for c in caches]
    scales = (kv["k_scale"], kv["v_scale"])
    args = (kv["block_tables"], kv["context_lens"], 0.25, *scales)
    positions = (kv["context_lens"].long() - 1).clamp(min=0)  # a decode step's
    out = decode_attention.paged_attention_decode(q.clone(), *caches, *args, new_kv=(key.clone(), value, slots),
                                                  rope=(positions, cos_sin, *weights, 1e-6),
                                                  num_splits=num_splits)  # keys first: rotated in place
    q_rot, key_rot = rotary.qk_norm_rope(q.clone(), key.clone(), positions, cos_sin, *weights, 1e-6)
    want = decode_attention.paged_attention_decode(q_rot, *copies, *args, new_kv=(key_rot, value, slots),
                                                   num_splits=num_splits)
    tol = 1e-5 if dtype == F32 else 2e-3
    assert_close(out, want, tol)
    assert_close(caches[0].float(), copies[0].float(), tol * 3 if not fp8 else 0.6)  # an FP8 code may round the other way
    assert torch.equal(caches[1].view(torch.uint8), copies[1].view(torch.uint8))  # values are not rotated
    assert (out[4] == 0).all()
    # the reference's queries over the cache the kernel left (the interpreter rounds to FP8 its own way)
    ref_q, _ = reference.qk_norm_rope(q, key, positions, cos_sin, *weights, 1e-6)
    assert_close(out, reference.paged_attention_decode(ref_q, *caches, *args), 1e-5 if dtype == F32 else 4e-3)


@pytest.mark.parametrize("group,num_kv_heads,block_m,dtype,fp8", [
    (1, 2, 16, F32, False), (2, 1, 64, F16, False), (3, 2, 16, F32, False), (4, 1, 16, F16, False),
    (4, 1, 64, F32, False), (2, 1, 16, F16, True), (3, 1, 64, F32, True)])
def test_paged_attention_prefill(group, num_kv_heads, block_m, dtype, fp8, monkeypatch):
    # whole prompt, a chunk after a cached prefix, decodes mixed in, one sequence with no new query
    lens, q_lens = [21, 40, 9, 13, 6], [21, 17, 1, 0, 1]
    _, kv = decode_inputs(0, group, num_kv_heads, 16, 8, lens, dtype, fp8, seed=group + 10)
    q = torch.randn(sum(q_lens), group * num_kv_heads, 16, dtype=dtype)
    cu = torch.tensor([0] + q_lens).cumsum(0).to(torch.int32)
    args = (q, kv["k_cache"], kv["v_cache"], cu, kv["context_lens"], kv["block_tables"], 0.25, kv["k_scale"], kv["v_scale"])
    monkeypatch.setattr(prefill_attention, "BLOCK_M", block_m)  # 16: several query tiles per sequence
    monkeypatch.setattr(prefill_attention, "BLOCK_N", 16)
    out = prefill_attention.paged_attention_prefill(*args)
    assert_close(out, reference.paged_attention_prefill(*args), 1e-5 if dtype == torch.float32 else 2e-3)


@pytest.mark.parametrize("dtype,hidden", [(F32, 48), (F16, 64)])
def test_rms_norm(dtype, hidden):
    torch.manual_seed(hidden)
    x, residual = torch.randn(2, 3, hidden, dtype=dtype), torch.randn(2, 3, hidden, dtype=dtype)
    weight = torch.randn(hidden, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 4e-3  # one fp16 ulp, from the order of the sum
    assert_close(rmsnorm.rms_norm(x, weight, 1e-6), reference.rms_norm(x, weight, 1e-6), tol)
    normed, summed = rmsnorm.fused_add_rms_norm(x, residual, weight, 1e-6)
    ref_normed, ref_summed = reference.fused_add_rms_norm(x, residual, weight, 1e-6)
    assert torch.equal(summed, ref_summed)
    assert_close(normed, ref_normed, tol)


@pytest.mark.parametrize("dtype,rows,F", [(F32, 3, 48), (F16, 5, 1536 + 40)])  # 1576: two blocks, the last partial
def test_silu_and_mul(dtype, rows, F):
    torch.manual_seed(F)
    x = torch.randn(rows, 2 * F, dtype=dtype) * 4
    out = activation.silu_and_mul(x)
    want = reference.silu_and_mul(x)
    assert out.shape == (rows, F) and out.dtype == dtype
    assert_close(out, want, 1e-5 if dtype == F32 else 2e-3)
    # a strided view, as a slice of a wider tensor would be
    wide = torch.randn(rows, 2 * F + 8, dtype=dtype)
    assert_close(activation.silu_and_mul(wide[:, :2 * F]), reference.silu_and_mul(wide[:, :2 * F]),
                 1e-5 if dtype == F32 else 2e-3)


def qk_views(N, num_heads, num_kv_heads, head_dim, dtype):
    """q and k as strided views of one fused projection, the way the model hands them over."""
    qkv = torch.randn(N, (num_heads + 2 * num_kv_heads) * head_dim, dtype=dtype) * 3
    q = qkv[:, :num_heads * head_dim].view(N, num_heads, head_dim)
    k = qkv[:, num_heads * head_dim:(num_heads + num_kv_heads) * head_dim].view(N, num_kv_heads, head_dim)
    return qkv, q, k


@pytest.mark.parametrize("num_heads,num_kv_heads,head_dim,dtype,norm", [
    (4, 2, 16, F32, True), (3, 1, 32, F16, True), (6, 3, 16, F32, False), (2, 2, 8, F16, False)])
def test_qk_norm_rope(num_heads, num_kv_heads, head_dim, dtype, norm):
    torch.manual_seed(head_dim + num_heads)
    qkv, q, k = qk_views(5, num_heads, num_kv_heads, head_dim, dtype)
    v_before = qkv[:, (num_heads + num_kv_heads) * head_dim:].clone()
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    freqs = torch.arange(64).float()[:, None] * inv_freq[None, :]
    cos_sin = torch.cat([freqs.cos(), freqs.sin()], dim=-1)[:, None, :]  # (64, 1, d) as RotaryEmbedding builds it
    positions = torch.tensor([0, 1, 7, 63, 30])
    weights = (torch.rand(head_dim, dtype=dtype) + 0.5, torch.rand(head_dim, dtype=dtype) + 0.5) if norm else (None, None)
    want_q, want_k = reference.qk_norm_rope(q.clone(), k.clone(), positions, cos_sin, *weights, 1e-6)
    out_q, out_k = rotary.qk_norm_rope(q, k, positions, cos_sin, *weights, 1e-6)
    assert out_q.data_ptr() == q.data_ptr() and out_k.data_ptr() == k.data_ptr()  # in place
    tol = 1e-5 if dtype == F32 else 4e-3
    assert_close(q, want_q, tol)
    assert_close(k, want_k, tol)
    assert torch.equal(qkv[:, (num_heads + num_kv_heads) * head_dim:], v_before)  # v untouched


@pytest.mark.parametrize("num_splits", [1, 3])
def test_decode_padding_rows_give_zeros(num_splits):
    """A CUDA-graph batch is padded with rows of context_len 0 and an all -1 block table."""
    q, kv = decode_inputs(3, 2, 2, 16, 4, [9, 1, 5], torch.float32, False)
    kv["context_lens"][1] = 0
    kv["block_tables"][1] = -1
    args = (q, kv["k_cache"], kv["v_cache"], kv["block_tables"], kv["context_lens"], 0.5)
    out = decode_attention.paged_attention_decode(*args, num_splits=num_splits)
    assert (out[1] == 0).all()
    assert_close(out, reference.paged_attention_decode(*args), 1e-5)


def test_public_names_run_the_kernels():
    q, kv = decode_inputs(2, 2, 2, 16, 4, [3, 9], torch.float32, False)
    args = (q, kv["k_cache"], kv["v_cache"], kv["block_tables"], kv["context_lens"], 0.5)
    assert_close(kernels.paged_attention_decode(*args), reference.paged_attention_decode(*args), 1e-5)
    x, w = torch.randn(4, 32), torch.randn(32)
    assert_close(kernels.fused_add_rms_norm(x, x, w, 1e-6)[0], reference.rms_norm(2 * x, w, 1e-6), 1e-5)


SAMPLE_LOGITS = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -1.0, -3.0])  # as in test_sampler.py


@pytest.mark.parametrize("dtype", [F32, F16])
def test_sample_gumbel_greedy_rows_are_argmax(dtype, monkeypatch):
    """Temperature 0 is the argmax, with min-p on or off, whatever the slice a token falls in."""
    monkeypatch.setattr(sampling, "BLOCK", 128)  # 1500 tokens: a slice per 128, the last one partial
    torch.manual_seed(0)
    logits = torch.randn(3, 1500).to(dtype)
    logits[1, 1499] = 10.0  # the max in the last, partial block
    logits[2, 7] = logits[2, 1200] = 10.0  # a tie across slices: the lower index wins, as in torch.argmax
    zeros = torch.zeros(3)
    for need_min_p in (False, True):
        out = sampling.sample_gumbel(logits, zeros, zeros + 0.5, None, need_min_p)
        assert out.tolist() == [int(logits[0].float().argmax()), 1499, 7]


def test_sample_gumbel_draws(monkeypatch):
    """Sampled rows stay inside min-p's set and vary; the same keys give the same tokens; a seeded
    row's key comes from its own generator. (The interpreter is too slow for a distribution
    test: test_sampler.py checks the torch twin's, test_kernels_gpu.py this kernel's.)"""
    monkeypatch.setattr(sampling, "BLOCK", 16)  # 7 tokens: the interpreter's cost is per element
    n = 48
    seeds = torch.randint(0, 2**62, (n,), generator=torch.Generator().manual_seed(1))
    args = (SAMPLE_LOGITS.expand(n, -1), torch.full((n,), 1.0), torch.full((n,), 0.3), None, True)
    out = sampling.sample_gumbel(*args, seeds=seeds)
    assert set(out.tolist()) == {0, 1, 2}  # p >= 0.3 * p_max: tokens 0-2, each drawn at least once in 48
    assert torch.equal(out, sampling.sample_gumbel(*args, seeds=seeds))
    a = sampling.row_seeds(2, "cpu", [None, torch.Generator().manual_seed(7)])[1]
    assert a == sampling.row_seeds(5, "cpu", [None, torch.Generator().manual_seed(7)])[1]


def test_a_seeded_row_ignores_its_neighbours_parameters():
    """Alone, the seeded row takes this kernel's path; beside top-k and top-p rows, the batch
    takes the sorting path and the row is drawn again alone (layers/sampler.py)."""
    assert_seeded_row_ignores_its_batch("cpu")


@pytest.mark.parametrize("dtype,bias,silu_mul", [(F32, False, False), (F16, True, False), (F32, True, True)])
def test_gemv_one_row(dtype, bias, silu_mul, monkeypatch):
    """One row through the GEMV kernel: N not a multiple of its rows per program, K not one of its
    tile (masks at both edges), the bias, and silu(gate) * up read on the way in."""
    from nanovllm_final.kernels import gemv

    monkeypatch.setattr(gemv, "tile", lambda N, K: (4, 64, 4, 2))  # two K tiles, the second partial
    torch.manual_seed(5)
    N, K = 37, 96
    w = torch.randn(N, K, dtype=dtype)
    b = torch.randn(N, dtype=dtype) if bias else None
    x = torch.randn(1, 2 * K if silu_mul else K, dtype=dtype)
    want = reference.linear(x, w, b, silu_mul).double()
    got = kernels.linear(x, w, b, silu_mul)
    assert got.shape == (1, N) and got.dtype == dtype
    tol = 1e-4 if dtype == F32 else 2e-2
    assert torch.allclose(got.double(), want, atol=tol, rtol=tol), (got.double() - want).abs().max()
    out = torch.empty(1, N, dtype=dtype)
    assert kernels.linear(x, w, b, silu_mul, out=out) is out and torch.equal(out, got)
    two_rows = torch.cat([x, x])  # two rows: torch's product, the same numbers
    assert torch.allclose(kernels.linear(two_rows, w, b, silu_mul).double(), want.expand(2, -1), atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype,residual,bias", [(F32, True, False), (F16, True, True), (F32, False, True)])
def test_norm_linear_one_row(dtype, residual, bias, monkeypatch):
    """RMSNorm of x + residual read by the GEMV as it loads x: the sum of squares over two K tiles
    (the second partial), the new residual stream written once (by the first of ten programs) and
    equal to x + residual, and without a residual (the first layer) x itself handed back."""
    from nanovllm_final.kernels import gemv

    monkeypatch.setattr(gemv, "tile", lambda N, K: (4, 64, 4, 2))
    torch.manual_seed(6)
    N, K = 37, 96
    w, g = torch.randn(N, K, dtype=dtype), torch.rand(K, dtype=dtype) + 0.5
    b = torch.randn(N, dtype=dtype) if bias else None
    x = torch.randn(1, K, dtype=dtype) * 3
    r = torch.randn(1, K, dtype=dtype) * 3 if residual else None
    want_y, want_h = reference.norm_linear(x, r, g, 1e-6, w, b)
    y, h = kernels.norm_linear(x, r, g, 1e-6, w, b)
    assert y.shape == (1, N) and y.dtype == dtype and h.shape == x.shape
    assert torch.equal(h, want_h) and (residual or h is x)
    tol = 1e-4 if dtype == F32 else 3e-2
    assert torch.allclose(y.double(), want_y.double(), atol=tol, rtol=tol), (y.double() - want_y.double()).abs().max()
    rows = torch.cat([x, -x]), torch.cat([r, r]) if residual else None  # two rows: the norm's kernel, then torch
    y2, h2 = kernels.norm_linear(*rows, g, 1e-6, w, b)
    assert torch.allclose(y2[:1].double(), want_y.double(), atol=tol, rtol=tol) and torch.equal(h2[:1], want_h)
