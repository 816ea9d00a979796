"""Load a model folder's *.safetensors into a model whose layers may be packed and sharded.

A checkpoint name like `model.layers.0.self_attn.k_proj.weight` either names a parameter as is,
or, through the model's `packed_modules_mapping`, a slice of a packed one
(`...qkv_proj.weight`, shard "k"). Each parameter's `weight_loader` copies the tensor in, keeping
only this tensor-parallel rank's share. Only safetensors: pickled .bin files can run code.

Every tensor in the checkpoint is either loaded or refused: a tensor the model has no place for
(a bias config.json does not enable, quantization scales, another architecture's layers) means
the folder describes a different computation than the one this model would run, so loading
stops with a ValueError that names the tensors rather than generating from part of the weights.
Two kinds are skipped on purpose: `lm_head.weight` of a tied model (the embedding is the head)
and precomputed rotary tables (`rotary_emb.inv_freq`), which RotaryEmbedding computes itself.
"""

from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn


def default_weight_loader(param: nn.Parameter, loaded: torch.Tensor) -> None:
    if param.shape != loaded.shape:
        raise ValueError(f"weight of shape {tuple(loaded.shape)} does not fit a parameter of shape {tuple(param.shape)}")
    param.data.copy_(loaded)


def load_model(model: nn.Module, path) -> None:
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors file in {path}; the engine loads safetensors weights only")
    packed = getattr(model, "packed_modules_mapping", {})
    params = dict(model.named_parameters())
    loaded, unused = set(), []
    tied = getattr(getattr(model, "config", None), "tie_word_embeddings", False)
    for file in files:
        try:
            handle = safe_open(file, framework="pt", device="cpu")
        except Exception as err:  # safetensors raises its own error types for a damaged header
            raise ValueError(f"{file} is not a readable safetensors file ({err}); fetch the model folder again") from err
        with handle:
            for name in handle.keys():
                target, shard_id = name, None
                for ckpt_name, (packed_name, shard) in packed.items():
                    if f".{ckpt_name}." in name:
                        target, shard_id = name.replace(ckpt_name, packed_name), shard
                        break
                param = params.get(target)
                if param is None:
                    if not (name.endswith("rotary_emb.inv_freq") or (tied and name == "lm_head.weight")):
                        unused.append(name)
                    continue
                try:
                    tensor = handle.get_tensor(name)
                except Exception as err:
                    raise ValueError(f"{file} is damaged: reading {name} failed ({err}); fetch the model folder again") from err
                if not tensor.is_floating_point() or tensor.element_size() < 2:
                    raise ValueError(f"{name} in {file} is stored as {tensor.dtype}: quantized checkpoints are not "
                                     "supported; use the model's unquantized (bf16/fp16/fp32) folder")
                loader = getattr(param, "weight_loader", default_weight_loader)
                loader(param, tensor) if shard_id is None else loader(param, tensor, shard_id)
                loaded.add((target, shard_id))
    if unused:
        quantized = [n for n in unused if n.endswith(("weight_scale_inv", "weight_scale", "input_scale", "qweight"))]
        if quantized:
            raise ValueError(f"{path} holds quantization scales ({quantized[:3]}): quantized checkpoints are not "
                             "supported; use the model's unquantized (bf16/fp16/fp32) folder")
        raise ValueError(
            f"{path} holds {len(unused)} tensors this model has no place for, e.g. {unused[:3]}; config.json does "
            "not describe these weights (a bias it does not enable, or another architecture): fix config.json "
            "or use a folder whose config matches its weights"
        )
    expected = {(n, None) for n in params}
    for ckpt_name, (packed_name, shard) in packed.items():
        for n in params:
            if f".{packed_name}." in n:
                expected.discard((n, None))
                expected.add((n, shard))
    missing = sorted(f"{n}" + ("" if s is None else f"[{s}]") for n, s in expected - loaded)
    if missing:
        raise ValueError(f"{path} lacks weights for {len(missing)} parameters, e.g. {missing[:3]}; is the folder complete?")
