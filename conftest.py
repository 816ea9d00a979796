"""Fixtures for every test in the repo: tiny random model folders, and the exercise grader."""

from course.learner import limit_threads

# One torch/OpenMP thread per process, however pytest is started (`make test`, `pytest chapters/NN`
# from any folder): set before anything imports torch, so OpenMP reads it too. Threads of two
# processes on two cores spin against each other and turn a 0.5 ms matmul into 30 ms.
# OMP_NUM_THREADS=4 pytest ... gives 4.
limit_threads(1)

import pytest  # noqa: E402

from course.tiny import FAMILIES, make_tiny_model  # noqa: E402

pytest_plugins = ["course.grading", "pytester"]  # pytester: pytest runs inside a test (tests/test_graders.py)


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
