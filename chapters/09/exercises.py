"""Chapter 9 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/09

The first three are Triton kernels, written as plain Python functions: the grader compiles
yours with triton.jit and runs it on a CPU through Triton's interpreter (a few seconds), against
the kernel's torch twin, at shapes that reach every mask. On a GPU the same function compiles
to a real kernel. The last one is the host side of a CUDA graph, graded inside the engine. The
notebook notebooks/09_triton_cuda_graphs.ipynb walks through each, with hints;
chapters/09/solutions.py is the answer key, so try before you peek.
"""

import torch
import triton.language as tl

from ch09.cuda_graph import GraphInputs


def store_kvcache_kernel(key_ptr, value_ptr, k_cache_ptr, v_cache_ptr, slot_mapping_ptr,
                         key_stride, value_stride, D, BLOCK_D: tl.constexpr):
    """One program per token (grid (N,)). Program i copies token i's D = n_kv_heads * head_dim
    key numbers, which start at key_ptr + i * key_stride, to slot slot_mapping[i] of k_cache
    (the pool as rows of D numbers, one row per slot), and its value numbers likewise to v_cache.
    A slot of -1 stores nothing. BLOCK_D is D rounded up to a power of two."""
    raise NotImplementedError(
        "Exercise 9.1: the store kernel — read this program's slot, skip -1, and copy the token's row "
        "of keys and of values to that slot of the pool under a mask; see notebooks/09_triton_cuda_graphs.ipynb, "
        "section 'A first kernel: the KV store'"
    )


def online_softmax_update(m, l, acc, scores, v):
    """Fold one block of keys into the running softmax of GROUP query heads (a Triton function,
    called by the decode kernel once per block). m, l: (GROUP,) the largest score so far and the
    sum of exp(score - m) so far; acc: (GROUP, head_dim) the sum of exp(score - m) * value so
    far; scores: (GROUP, BLOCK), -inf where there is no key; v: (BLOCK, head_dim). At the first
    block m is -inf and l, acc are 0. Return the new (m, l, acc)."""
    raise NotImplementedError(
        "Exercise 9.2: the online-softmax step — a new running max, the old sums rescaled to it, and "
        "this block's terms added; see notebooks/09_triton_cuda_graphs.ipynb, section 'Paged decode attention'"
    )


def fused_add_rms_norm_kernel(x_ptr, residual_ptr, weight_ptr, out_ptr, residual_out_ptr, hidden, eps,
                              BLOCK: tl.constexpr):
    """One program per token row (grid (T,)), rows of `hidden` numbers back to back. Write
    h = x + residual to residual_out in the inputs' dtype, and rms_norm(h) * weight to out, the
    way chapter 1's rms_norm rounds it (float32 math, the normalized row rounded to the output
    dtype before the weight multiplies it). BLOCK is hidden rounded up to a power of two."""
    raise NotImplementedError(
        "Exercise 9.3: the residual add and RMSNorm in one pass — load a row of x and of residual once, store "
        "their sum, then normalize it; see notebooks/09_triton_cuda_graphs.ipynb, section 'Fusing the add into the norm'"
    )


def stage_decode_inputs(buffers: GraphInputs, input_ids: torch.Tensor, positions: torch.Tensor,
                        slot_mapping: torch.Tensor, context_lens: torch.Tensor, block_tables: torch.Tensor,
                        batch_sizes: list[int]) -> int:
    """A decode step of n sequences: input_ids, positions, slot_mapping, context_lens (n,) and
    block_tables (n, width). Copy them into the first rows of the static buffers (each sized for
    the largest graph) so that the graph for the batch size picked from batch_sizes (sorted) can
    run them, make its extra rows harmless (a padding row stores nothing: slot -1; and attends to
nothing: context length 0), and return that batch size."""
    raise NotImplementedError(
        "Exercise 9.4: the graph's batch size and its padding — pick the graph that fits n, fill its rows, "
        "and make the rows past n store and read nothing; see notebooks/09_triton_cuda_graphs.ipynb, "
        "section 'CUDA graphs: static buffers and padding'"
    )
