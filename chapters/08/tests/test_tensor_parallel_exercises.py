"""Graders for chapter 8's exercises. `pytest chapters/08` checks chapters/08/exercises.py;
`pytest chapters/08 --reference` checks the chapter's own code. Each layer exercise is checked as
2, 3 and 4 ranks (threads, ch08.tests.ranks) against the unsplit layer, then inside the whole
tiny model split over ranks, against transformers' logits."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ch08 import solutions
from ch08.embed_head import VocabParallelEmbedding
from ch08.linear import ColumnParallelLinear, RowParallelLinear
from ch08.tests.ranks import build_shards, run_ranks, split_model_logits
from course.testing import PROMPTS, assert_close, hf_logits

SIZES = (2, 3, 4)


def unsplit_linear(in_features: int, out_features: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    full = nn.Linear(in_features, out_features, bias=True)
    nn.init.normal_(full.bias)
    return full.requires_grad_(False)


def loaded_shards(cls, size: int, full: nn.Linear) -> list:
    """`size` ranks of `cls` built like `full`, each loaded through its weight_loader."""
    layers = build_shards(size, lambda: cls(full.in_features, full.out_features, bias=True))
    for layer in layers:
        layer.weight.weight_loader(layer.weight, full.weight)
        layer.bias.weight_loader(layer.bias, full.bias)
    return layers


@pytest.fixture
def split_model(request, tiny_model_dir, tiny_model_factory):
    """tiny_model_dir's family with hidden size 96, 6 heads and 3 K/V heads: it splits 2 and 3 ways."""
    family = request.node.callspec.params["tiny_model_dir"]
    return tiny_model_factory(family, hidden_size=96, num_attention_heads=6, num_key_value_heads=3,
                              intermediate_size=192)


def check_split_model(path, size: int, what: str):
    """The whole model split over `size` ranks gives transformers' logits on rank 0."""
    prompt = PROMPTS[0]
    logits = split_model_logits(path, size, prompt)
    assert all(rank_logits is None for rank_logits in logits[1:]), "only rank 0 should get logits from the LM head"
    assert_close(logits[0], hf_logits(path, prompt), f"{what}: the tiny model split over {size} ranks, its logits against "
                 "transformers'", axes=("position", "token"), rtol=1e-4, atol=1e-4)


# --- 8.1 the column-parallel loader -----------------------------------------------------------------
@pytest.mark.exercise("column_parallel_weight_loader")
def test_column_parallel_layer_against_unsplit(solution, monkeypatch):
    """out_features 12 split 2, 3 and 4 ways: rank r computes outputs r·12/n .. (r+1)·12/n - 1,
    so the ranks' outputs side by side are the unsplit layer's."""
    monkeypatch.setattr(ColumnParallelLinear, "weight_loader", solution)
    full, x = unsplit_linear(10, 12, seed=1), torch.randn(5, 10)
    for size in SIZES:
        layers = loaded_shards(ColumnParallelLinear, size, full)
        step = 12 // size
        for rank, layer in enumerate(layers):
            assert_close(layer(x), full(x)[:, rank * step:(rank + 1) * step],
                         f"rank {rank} of {size}: its column-parallel output against outputs {rank * step}..{(rank + 1) * step - 1} "
                         "of the unsplit layer", axes=("token", "output"))


@pytest.mark.exercise("column_parallel_weight_loader")
def test_column_parallel_loader_in_the_model(solution, monkeypatch, tiny_model_dir, split_model):
    monkeypatch.setattr(ColumnParallelLinear, "weight_loader", solution)
    check_split_model(split_model, 3, "your column-parallel loader in q, k, v, gate and up")


# --- 8.2 the row-parallel loader --------------------------------------------------------------------
@pytest.mark.exercise("row_parallel_weight_loader")
def test_row_parallel_layer_against_unsplit(solution, monkeypatch):
    """in_features 12 split 2, 3 and 4 ways, the checkpoint's bias kept: the ranks' partial sums,
    all-reduced, are the unsplit layer's output, on every rank."""
    monkeypatch.setattr(RowParallelLinear, "weight_loader", solution)
    full, x = unsplit_linear(12, 10, seed=2), torch.randn(5, 12)
    for size in SIZES:
        layers = loaded_shards(RowParallelLinear, size, full)
        step = 12 // size
        outs = run_ranks(size, lambda rank: layers[rank](x[:, rank * step:(rank + 1) * step]))
        for rank, out in enumerate(outs):
            assert_close(out, full(x), f"rank {rank} of {size}: the row-parallel output (inputs "
                         f"{rank * step}..{(rank + 1) * step - 1} on this rank) against the unsplit layer", axes=("token", "output"))


@pytest.mark.exercise("row_parallel_weight_loader")
def test_row_parallel_loader_in_the_model(solution, monkeypatch, tiny_model_dir, split_model):
    monkeypatch.setattr(RowParallelLinear, "weight_loader", solution)
    check_split_model(split_model, 3, "your row-parallel loader in o_proj and down_proj")


# --- 8.3 the row-parallel forward -------------------------------------------------------------------
@pytest.mark.exercise("row_parallel_forward")
def test_row_parallel_forward_against_unsplit(solution, monkeypatch):
    """1, 2, 3 and 4 ranks, with a bias: every rank gets the unsplit layer's whole output."""
    monkeypatch.setattr(RowParallelLinear, "forward", solution)
    full, x = unsplit_linear(12, 10, seed=3), torch.randn(5, 12)
    for size in (1,) + SIZES:
        layers = loaded_shards(RowParallelLinear, size, full)
        step = 12 // size
        outs = run_ranks(size, lambda rank: layers[rank](x[:, rank * step:(rank + 1) * step]))
        for rank, out in enumerate(outs):
            assert_close(out, full(x), f"rank {rank} of {size}: RowParallelLinear.forward against the unsplit layer "
                         "(y = x·Wᵀ + b)", axes=("token", "output"))


@pytest.mark.exercise("row_parallel_forward")
def test_row_parallel_forward_in_the_model(solution, monkeypatch, tiny_model_dir, split_model):
    monkeypatch.setattr(RowParallelLinear, "forward", solution)
    for size in (1, 3):
        check_split_model(split_model, size, "your RowParallelLinear.forward in o_proj and down_proj")


# --- 8.4 the vocab-parallel embedding ---------------------------------------------------------------
@pytest.mark.exercise("vocab_parallel_embedding_forward")
def test_vocab_parallel_embedding_against_unsplit(solution, monkeypatch):
    """A vocabulary of 10 over 2, 3 and 4 ranks (3 and 4 pad it to 12), every id looked up, some
    twice: each rank gets every token's row of the unsplit matrix."""
    monkeypatch.setattr(VocabParallelEmbedding, "forward", solution)
    torch.manual_seed(4)
    full, ids = torch.randn(10, 6), torch.tensor([9, 0, 3, 4, 5, 9, 2, 1, 6, 7, 8, 0])
    for size in (1,) + SIZES:
        layers = build_shards(size, lambda: VocabParallelEmbedding(10, 6))
        for layer in layers:
            layer.weight.weight_loader(layer.weight, full)
        outs = run_ranks(size, lambda rank: layers[rank](ids))
        for rank, out in enumerate(outs):
            assert_close(out, full[ids], f"rank {rank} of {size} (it holds ids {layers[rank].vocab_start_idx}.."
                         f"{layers[rank].vocab_end_idx - 1}): the embeddings of ids {ids.tolist()}", axes=("token", "dim"))


@pytest.mark.exercise("vocab_parallel_embedding_forward")
def test_vocab_parallel_embedding_in_the_model(solution, monkeypatch, tiny_model_dir, split_model):
    monkeypatch.setattr(VocabParallelEmbedding, "forward", solution)
    check_split_model(split_model, 3, "your VocabParallelEmbedding.forward (a vocabulary of 320 over 3 ranks of 107)")


# --- 8.5 all-reduce bytes per token -----------------------------------------------------------------
def model_config(hidden_size: int, num_hidden_layers: int):
    return SimpleNamespace(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, num_attention_heads=8,
                           num_key_value_heads=2, intermediate_size=4 * hidden_size, vocab_size=1000)


@pytest.mark.exercise("allreduce_bytes_per_token")
def test_allreduce_bytes_by_hand(solution):
    """A model of hidden size 1,000 and 10 layers, in 2-byte numbers: 21 all-reduces per token
    (two per layer and the embedding's) of 2,000 bytes. A ring over n ranks sends 2·(n-1)/n of
    each message from every rank: 21 × 2,000 × 1 = 42,000 bytes at n = 2, × 1.5 = 63,000 at n = 4."""
    config = model_config(1000, 10)
    for size, expected in ((1, 0), (2, 42_000), (4, 63_000)):
        got = solution(config, size, 2)
        assert got == pytest.approx(expected), f"hidden 1,000, 10 layers, bf16, {size} ranks: {got} bytes per token, expected {expected:,}"
    got = solution(config, 4, 4)
    assert got == pytest.approx(126_000), f"the same at 4 ranks in float32 (4 bytes): {got} bytes, expected 126,000"


@pytest.mark.exercise("allreduce_bytes_per_token")
def test_allreduce_bytes_of_real_models(solution):
    """SmolLM2-135M over 3 ranks and an 8B model over 8 (hidden 4,096, 32 layers), against the chapter's own count."""
    for hidden, layers, size in ((576, 30, 3), (4096, 32, 8), (1024, 28, 2)):
        config = model_config(hidden, layers)
        expected = solutions.allreduce_bytes_per_token(config, size)
        got = solution(config, size)
        assert got == pytest.approx(expected), f"hidden {hidden}, {layers} layers, {size} ranks, bf16: {got} bytes per token, expected {expected:,.0f}"
