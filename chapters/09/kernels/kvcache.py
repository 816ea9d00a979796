"""The paged KV store: each new token's key and value go to its slot of the pool.

    slot_mapping[i] = s   token i's K/V go to row s of the pool seen as (num_blocks * block_size, D)
    slot_mapping[i] = -1  token i stores nothing (a padded row of a CUDA graph, see cuda_graph.py)

Grid: (N,), one program per token. A program copies the token's D = n_kv_heads * head_dim key
numbers and as many value numbers: pure data movement, no arithmetic. Its twin,
`store_kvcache_torch`, is chapter 3's indexed write with the -1 rows left out; the engine runs
it on a CPU, and the tests compare the kernel with it.
"""

import torch
import triton

from ch03 import attention
from ch09.solutions import store_kvcache_kernel  # exercise 9.1: the answer key


def store_kvcache_torch(key, value, k_cache, v_cache, slot_mapping) -> None:
    """The twin: chapter 3's indexed write of the rows whose slot is not -1 (in torch, index -1
    is the pool's last slot, so the rows to skip must be taken out first)."""
    keep = slot_mapping >= 0
    attention.store_kvcache(key[keep], value[keep], k_cache, v_cache, slot_mapping[keep])


def launch_store_kvcache(kernel, key, value, k_cache, v_cache, slot_mapping) -> None:
    """Run `kernel` (store_kvcache_kernel, or a learner's) over key, value (N, n_kv_heads, head_dim)."""
    N, n_kv_heads, head_dim = key.shape
    D = n_kv_heads * head_dim
    # A token's heads must sit back to back (a view of a fused projection may skip between tokens).
    assert key.stride(-1) == value.stride(-1) == 1 and key.stride(1) == value.stride(1) == head_dim
    assert k_cache.is_contiguous() and v_cache.is_contiguous() and k_cache.shape[-2:] == (n_kv_heads, head_dim)
    assert slot_mapping.shape == (N,)
    kernel[(N,)](key, value, k_cache, v_cache, slot_mapping, key.stride(0), value.stride(0), D,
                 BLOCK_D=triton.next_power_of_2(D))


def store_kvcache(key: torch.Tensor, value: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                  slot_mapping: torch.Tensor) -> None:
    """Write key, value (N, n_kv_heads, head_dim) to the pool's slots slot_mapping (N,): the
    kernel on a GPU, its twin on a CPU."""
    if key.is_cuda:
        launch_store_kvcache(store_kvcache_kernel, key, value, k_cache, v_cache, slot_mapping)
    else:
        store_kvcache_torch(key, value, k_cache, v_cache, slot_mapping)
