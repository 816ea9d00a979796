"""Load a model folder: config.json + *.safetensors -> a CausalLM with the weights in place.

Each parameter may carry a `weight_loader(param, tensor)`; by default the tensor is copied in
whole. Chapter 8 gives tensor-parallel layers a loader that keeps only this rank's shard.
"""

from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ch01.config import ModelConfig
from ch01.model import CausalLM, Parts


def default_weight_loader(param: torch.nn.Parameter, loaded: torch.Tensor) -> None:
    if param.shape != loaded.shape:
        raise ValueError(f"weight of shape {tuple(loaded.shape)} does not fit a parameter of shape {tuple(param.shape)}")
    param.data.copy_(loaded)


def load_weights(model: torch.nn.Module, model_path) -> None:
    """Copy every tensor of the folder's safetensors files into the parameter of the same name."""
    files = sorted(Path(model_path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors file in {model_path}; the engine loads safetensors weights only")
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = set()
    for file in files:
        try:
            handle = safe_open(file, framework="pt", device="cpu")
        except Exception as err:  # safetensors raises its own error types for a damaged header
            raise ValueError(f"{file} is not a readable safetensors file ({err}); fetch the model folder again") from err
        with handle:
            for name in handle.keys():
                if name not in params:
                    continue  # e.g. rotary caches some checkpoints store; we compute them
                param = params[name]
                loader = getattr(param, "weight_loader", default_weight_loader)
                loader(param, handle.get_tensor(name))
                loaded.add(name)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    missing = sorted(set(params) - loaded - tied)
    if missing:
        raise ValueError(f"{model_path} lacks weights for {len(missing)} parameters, e.g. {missing[:3]}; is the folder complete?")


@contextmanager
def without_random_init():
    """Build layers without drawing their random initial weights. nn.Linear and nn.Embedding fill
    their weights with random numbers when built (their reset_parameters), for training from
    scratch; load_weights then overwrites every one of them. Skipping the draw leaves the memory
    unfilled until then, and saves about a second per load of SmolLM2-135M on a CPU."""
    saved = nn.Linear.reset_parameters, nn.Embedding.reset_parameters
    nn.Linear.reset_parameters = nn.Embedding.reset_parameters = lambda self: None
    try:
        yield
    finally:
        nn.Linear.reset_parameters, nn.Embedding.reset_parameters = saved


def load_model(model_path, dtype=torch.float32, device="cpu", parts: Parts = Parts()) -> CausalLM:
    """Build the model from config.json and fill it from the safetensors files."""
    config = ModelConfig.from_pretrained(model_path)
    with torch.device(device), without_random_init():
        model = CausalLM(config, parts).to(dtype)
    load_weights(model, model_path)
    return model.eval()
