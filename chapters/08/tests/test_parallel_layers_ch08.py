"""Each parallel layer against the unsplit one, as 1 to 4 ranks (threads, ch08.tests.ranks):
the packed q/k/v and gate/up layers (grouped-query attention with more ranks than K/V heads too),
the LM head's gather, and the errors a size that does not split gives."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ch08 import Config, MergedColumnParallelLinear, ParallelLMHead, QKVParallelLinear, allreduce_bytes_per_token
from ch08.tests.ranks import build_shards, run_ranks
from course.testing import assert_close

D, HEAD_DIM = 12, 4


def qkv_reference(heads: int, kv_heads: int, seed: int):
    """The checkpoint's q, k, v weights and biases, and a batch of 3 tokens."""
    g = torch.Generator().manual_seed(seed)
    weights = {name: torch.randn(n * HEAD_DIM, D, generator=g) for name, n in (("q", heads), ("k", kv_heads), ("v", kv_heads))}
    biases = {name: torch.randn(len(w), generator=g) for name, w in weights.items()}
    return weights, biases, torch.randn(3, D, generator=g)


@pytest.mark.parametrize("heads, kv_heads, size", [(4, 2, 1), (4, 2, 2), (6, 3, 3), (8, 2, 4), (4, 1, 2), (8, 2, 8)])
def test_qkv_parallel_holds_each_rank_s_heads(heads, kv_heads, size):
    """Rank r's q holds query heads r·H/n ..; its k and v hold the K/V head those queries read
    (H/H_kv consecutive query heads share one): with more ranks than K/V heads, each K/V head is
    copied to n/H_kv ranks."""
    weights, biases, x = qkv_reference(heads, kv_heads, seed=size)
    layers = build_shards(size, lambda: QKVParallelLinear(D, HEAD_DIM, heads, kv_heads, bias=True))
    for layer in layers:
        for name in "qkv":
            layer.weight.weight_loader(layer.weight, weights[name], name)
            layer.bias.weight_loader(layer.bias, biases[name], name)
    full = {name: F.linear(x, weights[name], biases[name]).view(3, -1, HEAD_DIM) for name in "qkv"}  # (T, heads, d)
    group = heads // kv_heads  # query heads per K/V head
    for rank, layer in enumerate(layers):
        q, k, v = layer(x).split([layer.num_heads * HEAD_DIM, layer.num_kv_heads * HEAD_DIM, layer.num_kv_heads * HEAD_DIM], -1)
        my_heads = range(rank * heads // size, (rank + 1) * heads // size)
        my_kv = sorted({h // group for h in my_heads})
        assert layer.num_kv_heads == len(my_kv), f"rank {rank} holds {layer.num_kv_heads} K/V heads, its queries read {my_kv}"
        assert_close(q.view(3, -1, HEAD_DIM), full["q"][:, list(my_heads)], f"rank {rank} of {size}: query heads {list(my_heads)}")
        assert_close(k.view(3, -1, HEAD_DIM), full["k"][:, my_kv], f"rank {rank} of {size}: K heads {my_kv}")
        assert_close(v.view(3, -1, HEAD_DIM), full["v"][:, my_kv], f"rank {rank} of {size}: V heads {my_kv}")


def test_qkv_refuses_sizes_that_cut_heads():
    with pytest.raises(ValueError, match="num_attention_heads"):
        build_shards(4, lambda: QKVParallelLinear(D, HEAD_DIM, 6, 3))
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        build_shards(6, lambda: QKVParallelLinear(D, HEAD_DIM, 12, 4))  # 6 ranks cannot share 4 K/V heads evenly


@pytest.mark.parametrize("size", [1, 2, 4])
def test_merged_gate_up_pairs_the_right_features(size):
    """gate_up packed on each rank as [gate_r; up_r]: silu(gate_r) · up_r are features r·F/n .. of the unsplit MLP."""
    g = torch.Generator().manual_seed(size)
    F_, x = 8, torch.randn(3, D, generator=g)
    gate, up = torch.randn(F_, D, generator=g), torch.randn(F_, D, generator=g)
    layers = build_shards(size, lambda: MergedColumnParallelLinear(D, [F_, F_]))
    full = F.silu(x @ gate.T) * (x @ up.T)  # (T, F)
    step = F_ // size
    for rank, layer in enumerate(layers):
        layer.weight.weight_loader(layer.weight, gate, 0)
        layer.weight.weight_loader(layer.weight, up, 1)
        g_r, u_r = layer(x).chunk(2, dim=-1)
        assert_close(F.silu(g_r) * u_r, full[:, rank * step:(rank + 1) * step], f"rank {rank} of {size}: its MLP features")


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_lm_head_gathers_whole_logits_on_rank_0(size):
    """A vocabulary of 10 over n ranks (3 and 4 pad it): rank 0 gets all 10 scores of every row, the others None."""
    torch.manual_seed(size)
    weight, x = torch.randn(10, D), torch.randn(5, D)
    heads = build_shards(size, lambda: ParallelLMHead(D, 10))
    for head in heads:
        head.weight.weight_loader(head.weight, weight)
        assert head.weight.shape == (-(-10 // size), D), "each rank holds ceil(V / n) rows"
    logits = run_ranks(size, lambda rank: heads[rank](x))
    assert_close(logits[0], x @ weight.T, f"rank 0's logits over {size} ranks", axes=("row", "token"))
    assert all(out is None for out in logits[1:])


def test_a_rank_never_holds_more_than_its_shard():
    """Built for rank 1 of 4, a column-parallel layer's weight is a quarter of the checkpoint's."""
    from ch08 import ColumnParallelLinear, RowParallelLinear

    col, row = build_shards(4, lambda: (ColumnParallelLinear(8, 16), RowParallelLinear(16, 8)))[1]
    assert col.weight.shape == (4, 8) and row.weight.shape == (8, 4)
    with pytest.raises(ValueError, match="out_features"):
        build_shards(3, lambda: ColumnParallelLinear(8, 16))


def test_config_names_the_sizes_that_work(tiny_qwen3_dir):
    """The tiny Qwen3 has 4 heads, 2 K/V heads and an MLP of 128: sizes 1 and 2 split it."""
    with pytest.raises(ValueError, match=r"num_key_value_heads=2.*the sizes that work for this model are 1, 2$"):
        Config(tiny_qwen3_dir, tensor_parallel_size=4)
    with pytest.raises(ValueError, match="tensor_parallel_size must be an int >= 1"):
        Config(tiny_qwen3_dir, tensor_parallel_size=0)


def test_allreduce_bytes_of_smollm2():
    """SmolLM2-135M (hidden 576, 30 layers) over 3 ranks in bf16: 61 all-reduces of 1,152 bytes,
    4/3 of each sent: 93,696 bytes per token from each rank."""
    from ch01.config import ModelConfig
    from course.visual_data import CH02_MODELS

    config = ModelConfig.from_dict(CH02_MODELS["SmolLM2-135M"]["config"])
    assert allreduce_bytes_per_token(config, 3) == pytest.approx(93_696)
    assert allreduce_bytes_per_token(config, 1) == 0
