"""Chapter 2's answer key and the wrong answers its graders must reject (see course/grading.py)."""

import torch

from ch02 import attention, llm, model_runner
from ch02.context import get_context

REFERENCE = {
    "cached_attention": attention.cached_attention,
    "attention_forward": attention.Attention.forward,
    "prepare_inputs": model_runner.prepare_inputs,
    "postprocess": llm.LLM.postprocess,
}


# --- 2.1 attention over the cache ---------------------------------------------------------------
def _attend(q, k, v, scale, diagonal, grouped=True):
    group = q.shape[1] // k.shape[1]
    expand = (lambda t: t.repeat_interleave(group, 1)) if grouped else (lambda t: t.repeat(1, group, 1))
    k, v = expand(k), expand(v)
    scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * scale
    mask = torch.ones(q.shape[0], k.shape[0], dtype=torch.bool).triu(diagonal)
    probs = scores.masked_fill(mask, float("-inf")).softmax(-1).nan_to_num()
    return torch.einsum("hqk,khd->qhd", probs, v.float()).to(q.dtype)


def cached_attention_mask_without_offset(q, k_cache, v_cache, context_len, scale):
    # chapter 1's mask, as if the new queries sat at positions 0 .. n-1: decode sees only token 0
    return _attend(q, k_cache[:context_len], v_cache[:context_len], scale, diagonal=1)


def cached_attention_decode_reads_the_whole_row(q, k_cache, v_cache, context_len, scale):
    # "one query has no future, so no mask": but the slots after context_len are not its past
    n = q.shape[0]
    if n == 1:
        return _attend(q, k_cache, v_cache, scale, diagonal=k_cache.shape[0])
    return _attend(q, k_cache[:context_len], v_cache[:context_len], scale, diagonal=context_len - n + 1)


def cached_attention_misses_the_newest_token(q, k_cache, v_cache, context_len, scale):
    # off by one: context_len - 1 keys, as if the new token were not stored yet
    n = q.shape[0]
    return _attend(q, k_cache[:context_len - 1], v_cache[:context_len - 1], scale, diagonal=context_len - n)


def cached_attention_heads_taken_in_turn(q, k_cache, v_cache, context_len, scale):
    # K/V heads repeated as a block (0, 1, 0, 1) instead of each in place (0, 0, 1, 1): query head h
    # reads K/V head h % n_kv_heads, not h // group
    n = q.shape[0]
    return _attend(q, k_cache[:context_len], v_cache[:context_len], scale, diagonal=context_len - n + 1, grouped=False)


# --- 2.2 store, then attend ---------------------------------------------------------------------
def _forward(self, q, k, v, *, store_first=True, start_of=lambda context_len, n: context_len - n, row_of=lambda row: row):
    ctx = get_context()
    cu = ctx.cu_seqlens_q.tolist()
    out = torch.empty_like(q)
    for i, (row, context_len) in enumerate(zip(ctx.cache_rows.tolist(), ctx.context_lens.tolist())):
        s, e = cu[i], cu[i + 1]
        row, start = row_of(row), start_of(context_len, e - s)

        def store():
            self.k_cache[row, start:start + e - s] = k[s:e]
            self.v_cache[row, start:start + e - s] = v[s:e]

        if store_first:
            store()
        out[s:e] = attention.cached_attention(q[s:e], self.k_cache[row], self.v_cache[row], context_len, self.scale)
        if not store_first:
            store()
    return out


def forward_attends_before_storing(self, q, k, v):
    return _forward(self, q, k, v, store_first=False)


def forward_stores_from_slot_zero(self, q, k, v):
    # every step overwrites the start of the row: decode tokens replace the prompt's K/V
    return _forward(self, q, k, v, start_of=lambda context_len, n: 0)


def forward_stores_one_slot_late(self, q, k, v):
    return _forward(self, q, k, v, start_of=lambda context_len, n: context_len - n + 1)


def forward_everyone_in_row_zero(self, q, k, v):
    # the sequences of a batch write over each other
    return _forward(self, q, k, v, row_of=lambda row: 0)


# --- 2.3 prepare the step's inputs -------------------------------------------------------------
def _prepare(seqs, *, positions_from_zero=False, whole_sequence=False, last_token_only=False, cached_context=False):
    input_ids, positions, cu, context_lens = [], [], [0], []
    for seq in seqs:
        start, end = seq.num_cached_tokens, seq.num_tokens
        if whole_sequence:
            start = 0
        if last_token_only:
            start = end - 1
        input_ids += seq.token_ids[start:end]
        positions += range(end - start) if positions_from_zero else range(start, end)
        cu.append(cu[-1] + end - start)
        context_lens.append(seq.num_cached_tokens if cached_context else end)
    return torch.tensor(input_ids), torch.tensor(positions), torch.tensor(cu), torch.tensor(context_lens)


def prepare_positions_from_zero(seqs):
    # a decode token at position 0: RoPE rotates it as if it were the first token
    return _prepare(seqs, positions_from_zero=True)


def prepare_whole_sequence_every_step(seqs):
    # right tokens in the end, but every step recomputes everything: the cache saves nothing
    return _prepare(seqs, whole_sequence=True)


def prepare_last_token_only(seqs):
    # the prompt is never prefilled: only its last token gets into the cache
    return _prepare(seqs, last_token_only=True)


def prepare_context_lens_before_the_step(seqs):
    return _prepare(seqs, cached_context=True)


# --- 2.4 after the step ---------------------------------------------------------------------------
def _postprocess(self, seqs, token_ids, *, cache_new_token=False, update_cache=True, stop_at_eos=True, length_check=lambda n, m: n == m,
                 length_first=False):
    eos = self.config.eos_token_ids
    for seq, token_id in zip(seqs, token_ids):
        if update_cache and not cache_new_token:
            seq.num_cached_tokens = seq.num_tokens
        seq.append_token(token_id)
        if cache_new_token:
            seq.num_cached_tokens = seq.num_tokens
        if length_first and length_check(seq.num_completion_tokens, seq.max_tokens):
            seq.finish_reason = "length"
        elif stop_at_eos and token_id in eos and not seq.ignore_eos:
            seq.finish_reason = "stop"
        elif length_check(seq.num_completion_tokens, seq.max_tokens):
            seq.finish_reason = "length"


def postprocess_counts_the_new_token_as_cached(self, seqs, token_ids):
    # its K/V are computed next step; counting them now means no step ever computes them
    return _postprocess(self, seqs, token_ids, cache_new_token=True)


def postprocess_never_marks_anything_cached(self, seqs, token_ids):
    return _postprocess(self, seqs, token_ids, update_cache=False)


def postprocess_never_stops_at_eos(self, seqs, token_ids):
    return _postprocess(self, seqs, token_ids, stop_at_eos=False)


def postprocess_one_token_too_many(self, seqs, token_ids):
    return _postprocess(self, seqs, token_ids, length_check=lambda n, m: n == m + 1)


def postprocess_checks_the_length_before_eos(self, seqs, token_ids):
    # an EOS that is also the last allowed token is reported as "length": the answer looks cut off
    return _postprocess(self, seqs, token_ids, length_first=True)


PLANTED = {
    "cached_attention": [
        cached_attention_mask_without_offset,
        cached_attention_decode_reads_the_whole_row,
        cached_attention_misses_the_newest_token,
        cached_attention_heads_taken_in_turn,
    ],
    "attention_forward": [
        forward_attends_before_storing,
        forward_stores_from_slot_zero,
        forward_stores_one_slot_late,
        forward_everyone_in_row_zero,
    ],
    "prepare_inputs": [
        prepare_positions_from_zero,
        prepare_whole_sequence_every_step,
        prepare_last_token_only,
        prepare_context_lens_before_the_step,
    ],
    "postprocess": [
        postprocess_counts_the_new_token_as_cached,
        postprocess_never_marks_anything_cached,
        postprocess_never_stops_at_eos,
        postprocess_one_token_too_many,
        postprocess_checks_the_length_before_eos,
    ],
}
