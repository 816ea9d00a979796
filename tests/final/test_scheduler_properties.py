"""Property tests (hypothesis) for the block manager and the scheduler, with no model: a fake
"model" whose next token is a hash of the whole sequence, and a fake KV cache that records, for
every slot, which prefix wrote it. Random arrivals, prompt lengths, shared prefixes, pool sizes
and token budgets; every step checks the invariants, and at the end every block is free."""

from collections import Counter
from types import SimpleNamespace

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nanovllm_final.engine.block_manager import BlockManager
from nanovllm_final.engine.scheduler import Scheduler
from nanovllm_final.engine.sequence import Sequence, SequenceStatus
from nanovllm_final.sampling_params import SamplingParams

VOCAB = 50
EOS = 0


def fake_next_token(tokens) -> int:
    return hash(tuple(tokens)) % VOCAB  # depends on the whole prefix, like a real model


def expected_output(prompt, max_tokens, max_model_len, ignore_eos):
    tokens, out = list(prompt), []
    while len(out) < max_tokens and len(tokens) < max_model_len:
        t = fake_next_token(tokens)
        tokens.append(t)
        out.append(t)
        if t == EOS and not ignore_eos:
            break
    return out


def check_invariants(sched: Scheduler, scheduled, config, decoding: set[int]):
    bm = sched.block_manager
    assert sum(s.num_scheduled_tokens for s in scheduled) <= config.max_num_batched_tokens
    assert len(sched.running) <= config.max_num_seqs
    refs = Counter(b for s in sched.running for b in s.block_table)
    for block in bm.blocks:
        assert block.ref_count == refs.get(block.block_id, 0)
        assert (block.block_id in bm.free_block_ids) == (block.ref_count == 0)
    for block_id in bm.hash_to_block_id.values():
        assert bm.blocks[block_id].hash != -1
    for s in sched.waiting:
        assert s.status == SequenceStatus.WAITING and not s.block_table
    for s in scheduled:
        assert s.status == SequenceStatus.RUNNING and s.num_scheduled_tokens >= 1
        assert len(s.block_table) * bm.block_size >= s.num_cached_tokens + s.num_scheduled_tokens
    # decodes (running sequences with one token to compute) first, the longest context first:
    # decode attention starts its programs in batch order
    decodes = [s for s in scheduled if s.seq_id in decoding]
    assert scheduled[:len(decodes)] == decodes
    assert [s.num_tokens for s in decodes] == sorted((s.num_tokens for s in decodes), reverse=True)


def run_engine(config, requests, arrivals):
    """Drive the scheduler like LLMEngine.step does; requests arrive at the given steps."""
    sched = Scheduler(config)
    preempted = set()  # this step's: a decode preempted to free blocks may be re-admitted as a prefill
    preempt = sched.preempt
    sched.preempt = lambda seq: (preempted.add(seq.seq_id), preempt(seq))[1]
    kv = {}  # slot -> the prefix (as a tuple) whose last token's K/V sits there
    seqs, pending, step = [], sorted(zip(arrivals, range(len(requests)))), 0
    while pending or not sched.is_finished():
        while pending and pending[0][0] <= step:
            _, i = pending.pop(0)
            prompt, params = requests[i]
            seq = Sequence(prompt, params)
            sched.add(seq)
            seqs.append((i, seq))
        decoding = {s.seq_id for s in sched.running if not s.is_prefill}
        preempted.clear()
        scheduled = sched.schedule()
        check_invariants(sched, scheduled, config, decoding - preempted)
        bs = config.kvcache_block_size
        token_ids = []
        for s in scheduled:
            start, end = s.num_cached_tokens, s.num_cached_tokens + s.num_scheduled_tokens
            for pos in range(start, end):  # "store": this step's tokens
                kv[s.block_table[pos // bs] * bs + pos % bs] = tuple(s.token_ids[:pos + 1])
            for pos in range(end):  # "attend": every position must hold this sequence's own prefix
                assert kv.get(s.block_table[pos // bs] * bs + pos % bs) == tuple(s.token_ids[:pos + 1])
            token_ids.append(fake_next_token(s.token_ids) if end == s.num_tokens else None)
        sched.postprocess(scheduled, token_ids)
        step += 1
        assert step < 5000, "the scheduler made no progress"
    return sched, dict(seqs)


@st.composite
def workloads(draw):
    block_size = draw(st.sampled_from([1, 2, 4, 8]))
    num_blocks = draw(st.integers(4, 40))
    max_model_len = draw(st.integers(8, 64))
    prefixes = draw(st.lists(st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=24), min_size=1, max_size=3))
    requests = []
    for _ in range(draw(st.integers(1, 10))):
        prompt = draw(st.sampled_from(prefixes)) + draw(st.lists(st.integers(0, VOCAB - 1), max_size=8))
        prompt = prompt[:max_model_len - 1]
        params = SamplingParams(max_tokens=draw(st.integers(1, 12)), ignore_eos=draw(st.booleans()))
        if -(-min(len(prompt) + params.max_tokens, max_model_len) // block_size) <= num_blocks:
            requests.append((prompt, params))  # the engine rejects the others at add time
    arrivals = [draw(st.integers(0, 6)) for _ in requests]
    config = SimpleNamespace(
        max_num_seqs=draw(st.integers(1, 6)), max_num_batched_tokens=draw(st.integers(1, 32)),
        max_model_len=max_model_len, eos=(EOS,), num_kvcache_blocks=num_blocks, kvcache_block_size=block_size,
    )
    return config, requests, arrivals


# A decode preempted to free blocks and re-admitted in the same step, as a prefill after the decodes
PREEMPTED_AND_READMITTED = (
    SimpleNamespace(max_num_seqs=4, max_num_batched_tokens=8, max_model_len=8, eos=(EOS,), num_kvcache_blocks=9,
                    kvcache_block_size=1),
    [([0, 0, 0], SamplingParams(max_tokens=2)), ([0], SamplingParams(max_tokens=1)),
     ([0], SamplingParams(max_tokens=2)), ([0, 0, 0, 0], SamplingParams(max_tokens=1)),
     ([0], SamplingParams(max_tokens=1)), ([0], SamplingParams(max_tokens=1))],
    [0] * 6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
@example(PREEMPTED_AND_READMITTED)
def test_scheduler_serves_everyone_correctly_and_frees_everything(workload):
    config, requests, arrivals = workload
    sched, seqs = run_engine(config, requests, arrivals)
    for i, seq in seqs.items():
        prompt, params = requests[i]
        assert seq.is_finished
        assert seq.completion_token_ids == expected_output(prompt, params.max_tokens, config.max_model_len, params.ignore_eos)
    bm = sched.block_manager
    assert bm.num_free_blocks == len(bm.blocks) and all(b.ref_count == 0 for b in bm.blocks)


@settings(max_examples=150, deadline=None)
@given(
    block_size=st.sampled_from([1, 2, 4]),
    num_blocks=st.integers(8, 30),
    ops=st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 3), min_size=1, max_size=20)), max_size=25),
)
def test_block_manager_shares_only_identical_prefixes(block_size, num_blocks, ops):
    """Allocate (True) or free the oldest (False); tokens from a tiny alphabet make hits common."""
    bm, live = BlockManager(num_blocks, block_size), []
    for allocate, tokens in ops:
        if allocate and bm.can_allocate(seq := Sequence(tokens)):
            bm.allocate(seq)
            assert seq.num_cached_tokens < seq.num_tokens  # never a hit on the last token
            for i, block_id in enumerate(seq.block_table[:seq.num_cached_tokens // block_size]):
                assert bm.blocks[block_id].token_ids == bm.block_tokens(seq, i)
            seq.num_cached_tokens = seq.num_tokens  # as if computed
            bm.cache_blocks(seq)
            live.append(seq)
        elif live:
            bm.deallocate(live.pop(0))
        refs = Counter(b for s in live for b in s.block_table)
        assert all(b.ref_count == refs.get(b.block_id, 0) for b in bm.blocks)
        assert bm.num_free_blocks == num_blocks - len(refs)
    for seq in live:
        bm.deallocate(seq)
    assert bm.num_free_blocks == num_blocks and all(b.ref_count == 0 for b in bm.blocks)
