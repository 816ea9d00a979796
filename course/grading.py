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

import json
import os
from pathlib import Path

import pytest

from course import learner
from course.learner import chapter_of, exercise_names, grading_table, is_untouched_stub, reference_requested

__all__ = ["chapter_of", "exercise_names", "grading_table", "is_untouched_stub", "reference_requested", "solution_for"]

SOURCES = ("learner", "reference", "stub", "planted")


def solution_for(chapter: str, name: str, source: str | None = None):
    """course.learner.solution_for, with an edited stub skipped rather than raised."""
    try:
        return learner.solution_for(chapter, name, source)
    except learner.EditedStub as err:
        pytest.skip(str(err))


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
