"""Load a model folder's *.safetensors into a model whose layers may be packed and sharded.

A checkpoint name like `model.layers.0.self_attn.k_proj.weight` either names a parameter as is,
or, through the model's `packed_modules_mapping`, a slice of a packed one
(`...qkv_proj.weight`, shard "k"). Each parameter's `weight_loader` copies the tensor in, keeping
only this tensor-parallel rank's share. Only safetensors: pickled .bin files can run code.
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
    loaded = set()
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
                    continue  # e.g. lm_head.weight of a tied model, or rotary tables we compute
                try:
                    tensor = handle.get_tensor(name)
                except Exception as err:
                    raise ValueError(f"{file} is damaged: reading {name} failed ({err}); fetch the model folder again") from err
                loader = getattr(param, "weight_loader", default_weight_loader)
                loader(param, tensor) if shard_id is None else loader(param, tensor, shard_id)
                loaded.add((target, shard_id))
    expected = {(n, None) for n in params}
    for ckpt_name, (packed_name, shard) in packed.items():
        for n in params:
            if f".{packed_name}." in n:
                expected.discard((n, None))
                expected.add((n, shard))
    missing = sorted(f"{n}" + ("" if s is None else f"[{s}]") for n, s in expected - loaded)
    if missing:
        raise ValueError(f"{path} lacks weights for {len(missing)} parameters, e.g. {missing[:3]}; is the folder complete?")
