"""The exercise grader: a pytest plugin shared by every chapter.

Each chapter has `chapters/NN/exercises.py` (the learner's stubs) and
`chapters/NN/tests/grading.py` with two dicts keyed by exercise name:

    REFERENCE = {"rms_norm": ch01.layers.rms_norm}         # the chapter's own code
    PLANTED   = {"rms_norm": [rms_norm_without_eps, ...]}  # wrong answers a grader must reject

A grader is a test marked `@pytest.mark.exercise("rms_norm")` that takes the `solution` fixture:
the function to grade. Which function that is depends on `--exercise-source`:

    learner    (default) the function in chapters/NN/exercises.py: `pytest chapters/NN`
    reference  the chapter's own code: `pytest chapters/NN --reference` or NANOVLLM_REFERENCE=1
    stub       the untouched stub (the grader proof expects every grader to fail)
    planted    each planted wrong answer in turn (the proof expects each to be caught)

tests/test_graders.py runs the stub and planted sources and checks that graders can fail.
"""

import ast
import importlib
import inspect
import json
import os
import re
from pathlib import Path

import pytest

SOURCES = ("learner", "reference", "stub", "planted")


def reference_requested() -> bool:
    return os.environ.get("NANOVLLM_REFERENCE", "").lower() in ("1", "true", "yes")


def chapter_of(path) -> str:
    """chapters/05/tests/test_x.py -> 'ch05'."""
    match = re.search(r"chapters[/\\](\d\d)[/\\]", str(path))
    if not match:
        raise ValueError(f"{path} is not inside chapters/NN/; exercise graders live in a chapter's tests/")
    return f"ch{match.group(1)}"


def grading_table(chapter: str):
    return importlib.import_module(f"{chapter}.tests.grading")


def exercise_names(chapter: str) -> list[str]:
    """The public functions of chapters/NN/exercises.py, in file order."""
    module = importlib.import_module(f"{chapter}.exercises")
    names = [n for n, f in vars(module).items() if inspect.isfunction(f) and f.__module__ == module.__name__]
    return [n for n in names if not n.startswith("_")]


def is_untouched_stub(fn) -> bool:
    """True when `fn`'s body is (docstring +) `raise NotImplementedError(...)`, as committed."""
    tree = ast.parse(inspect.getsource(fn).lstrip())
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return (
        len(body) == 1
        and isinstance(body[0], ast.Raise)
        and isinstance(body[0].exc, ast.Call)
        and getattr(body[0].exc.func, "id", None) == "NotImplementedError"
    )


def solution_for(chapter: str, name: str, source: str | None = None):
    """The function a notebook or a test should use for exercise `name` of `chapter`.

    In a notebook: `solution_for("ch01", "rms_norm")` is the learner's function, or the
    reference when NANOVLLM_REFERENCE=1 (as CI runs the notebooks).
    """
    source = source or ("reference" if reference_requested() else "learner")
    if source == "reference":
        table = grading_table(chapter).REFERENCE
        if name not in table:
            raise KeyError(f"{chapter}/tests/grading.py has no REFERENCE entry for exercise {name!r}")
        return table[name]
    module = importlib.import_module(f"{chapter}.exercises")
    fn = getattr(module, name)
    if source == "stub" and not is_untouched_stub(fn):
        pytest.skip(f"{chapter}/exercises.py:{name} has been edited; the stub proof needs the committed stub")
    return fn


def pytest_addoption(parser):
    group = parser.getgroup("exercises")
    group.addoption("--reference", action="store_true", help="grade the chapters' own code instead of exercises.py")
    group.addoption("--exercise-source", choices=SOURCES, default=None, help="which functions the graders check")
    group.addoption("--exercise-report", default=None, help="write each grader's outcome as JSON here")


def _source(config) -> str:
    if config.getoption("--exercise-source"):
        return config.getoption("--exercise-source")
    if config.getoption("--reference") or reference_requested():
        return "reference"
    return "learner"


def pytest_configure(config):
    config._exercise_results = []
    if _source(config) == "reference":
        # Notebooks run under nbmake read the same switch.
        os.environ["NANOVLLM_REFERENCE"] = "1"


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("exercise")
    if marker is None or "solution" not in metafunc.fixturenames:
        return
    if _source(metafunc.config) != "planted":
        return
    chapter = chapter_of(metafunc.definition.path)
    planted = grading_table(chapter).PLANTED.get(marker.args[0], [])
    metafunc.parametrize("solution", planted, ids=[f.__name__ for f in planted], indirect=True)


@pytest.fixture
def solution(request):
    marker = request.node.get_closest_marker("exercise")
    if marker is None:
        raise pytest.UsageError("the `solution` fixture needs @pytest.mark.exercise('<name>') on the test")
    if hasattr(request, "param"):  # planted: the parametrized wrong answer
        return request.param
    return solution_for(chapter_of(request.node.path), marker.args[0], _source(request.config))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    marker = item.get_closest_marker("exercise")
    if marker is not None and (report.when == "call" or report.outcome != "passed"):
        item.config._exercise_results.append(
            dict(
                nodeid=item.nodeid,
                test=item.originalname,
                exercise=marker.args[0],
                chapter=chapter_of(item.path),
                variant=_planted_name(item),
                when=report.when,
                outcome=report.outcome,
                message=str(report.longrepr)[-2000:] if report.failed else "",
            )
        )
    return report


def _planted_name(item):
    """The planted wrong answer this item ran with (None outside the planted source)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    fn = params.get("solution")
    return getattr(fn, "__name__", None)


def pytest_sessionfinish(session):
    path = session.config.getoption("--exercise-report")
    if path:
        Path(path).write_text(json.dumps(session.config._exercise_results, indent=1))
