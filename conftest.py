"""Fixtures for every test in the repo: tiny random model folders, and the exercise grader."""

import os

import pytest
import torch

from course.tiny import FAMILIES, make_tiny_model

pytest_plugins = ["course.grading"]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one process per core; more OpenMP threads than cores spin against each
    # other and turn a 0.5 ms matmul into 30 ms.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """make(family, **overrides) -> path of a saved tiny model folder, built once per session."""
    cache = {}

    def make(family="qwen3", seed=0, **overrides):
        key = (family, seed, tuple(sorted(overrides.items())))
        if key not in cache:
            name = "-".join([family, str(seed)] + [f"{k}={v}" for k, v in sorted(overrides.items())])
            cache[key] = make_tiny_model(tmp_path_factory.mktemp(name), family, seed=seed, **overrides)
        return cache[key]

    return make


@pytest.fixture(scope="session", params=sorted(FAMILIES))
def tiny_model_dir(request, tiny_model_factory):
    """One tiny model folder per family (llama tied, qwen2 untied with QKV bias, qwen3 tied with QK-norm)."""
    return tiny_model_factory(request.param)


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tiny_model_factory):
    return tiny_model_factory("qwen3")
