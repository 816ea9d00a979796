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
    proof      both in one run: the stub (while untouched), then each planted wrong answer

Exercises are numbered N.M in the order of chapters/NN/exercises.py (1.1 is rms_norm). Run one
with `pytest chapters/03 --exercise 3.4` (also `--exercise compute_slot_mapping`), or with -k:
`-k 3.4` and `-k compute_slot_mapping` match its graders.

Learner mode is written for someone reading the output to fix their code:
- only the exercise graders run (the chapter's own tests run with --reference), and the graders
  that build a model use one model family (qwen3) instead of all three;
- the graders of an exercise run in file order, hand-made checks first; after the first failure
  the rest of that exercise is skipped, so each exercise reports at most one failure;
- a failure prints the grader's message first (what was expected and what came), then only the
  frames of the test and of exercises.py; `--tb=long` (or any --tb) gives pytest's own report.

tests/test_graders.py runs the proof source, every chapter in one process, and checks that graders
can fail: each grader's report names its variant ("stub" or the planted function's name). Like the
learner, the stub, planted and proof sources run the graders that build a model on qwen3 only;
--reference runs them on all three families.
"""

import functools
import json
import os
from pathlib import Path

import pytest

from course import learner
from course.learner import chapter_of, exercise_names, grading_table, is_untouched_stub, reference_requested

__all__ = ["chapter_of", "exercise_names", "grading_table", "is_untouched_stub", "reference_requested", "solution_for"]

SOURCES = ("learner", "reference", "stub", "planted", "proof")
STUB = "stub"  # the variant name of the untouched stub in a proof run
LEARNER_FAMILY = "qwen3"  # the family nano-vllm targets; QK-norm makes it the strictest of the three
MAX_MESSAGE_LINES = 14


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
    group.addoption("--exercise", action="append", default=[], metavar="N.M",
                    help="run only this exercise's graders: 3.4, or its function name (compute_slot_mapping); repeatable")


def _source(config) -> str:
    if config.getoption("--exercise-source"):
        return config.getoption("--exercise-source")
    if config.getoption("--reference") or reference_requested():
        return "reference"
    return "learner"


def pytest_configure(config):
    config._exercise_results = []
    config._exercise_failed = set()  # (chapter, exercise) with a failure in this run, learner mode
    if _source(config) == "reference":
        # Notebooks run under nbmake read the same switch.
        os.environ["NANOVLLM_REFERENCE"] = "1"


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("exercise")
    if marker is None or "solution" not in metafunc.fixturenames:
        return
    source = _source(metafunc.config)
    if source not in ("planted", "proof"):
        return
    chapter, name = chapter_of(metafunc.definition.path), marker.args[0]
    variants = [pytest.param(f, id=f.__name__) for f in grading_table(chapter).PLANTED.get(name, [])]
    if source == "proof":
        stub = learner.solution_for(chapter, name, "learner")
        if is_untouched_stub(stub):  # an edited exercises.py proves nothing about the stub
            variants.insert(0, pytest.param(stub, id=STUB))
    metafunc.parametrize("solution", variants, indirect=True)


@pytest.fixture
def solution(request):
    marker = request.node.get_closest_marker("exercise")
    if marker is None:
        raise pytest.UsageError("the `solution` fixture needs @pytest.mark.exercise('<name>') on the test")
    if hasattr(request, "param"):  # planted or proof: the parametrized variant
        return request.param
    return solution_for(chapter_of(request.node.path), marker.args[0], _source(request.config))


# ---------------------------------------------------------------------------------------------
# Exercise numbers, selection and order


@functools.lru_cache(maxsize=None)  # asked for every grader, several times; exercises.py does not change in a run
def exercise_number(chapter: str, name: str) -> str:
    """('ch03', 'compute_slot_mapping') -> '3.4': the chapter, then the place in exercises.py."""
    names = exercise_names(chapter)
    if name not in names:
        raise ValueError(f"{chapter}/exercises.py has no exercise {name!r} (it has {', '.join(names)})")
    return f"{int(chapter[2:])}.{names.index(name) + 1}"


def _exercise_of(item):
    """(chapter, name, number) of an exercise grader, else None."""
    marker = item.get_closest_marker("exercise")
    if marker is None:
        return None
    chapter, name = chapter_of(item.path), marker.args[0]
    return chapter, name, exercise_number(chapter, name)


def pytest_itemcollected(item):
    # -k 3.4 and -k compute_slot_mapping select an exercise's graders, whatever the tests are called.
    found = _exercise_of(item)
    if found:
        item.extra_keyword_matches.update({found[1], found[2]})


def _has_exercises(item) -> bool:
    """Inside chapters/NN/ of a chapter that has an exercises.py."""
    for parent in Path(str(item.path)).resolve().parents:
        if parent.parent.name == "chapters":
            return (parent / "exercises.py").is_file()
    return False


def _family(item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("tiny_model_dir")


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture, and after -k / -m
def pytest_collection_modifyitems(session, config, items):
    wanted = config.getoption("--exercise")
    learner_mode = _source(config) == "learner"
    keep, drop, own_tests = [], [], 0
    for item in items:
        found = _exercise_of(item)
        if wanted and (found is None or not any(_matches(w, found) for w in wanted)):
            drop.append(item)
        elif learner_mode and found is None and _has_exercises(item):
            drop.append(item)  # the chapter's own tests: they grade nothing of the learner's
            own_tests += 1
        elif found and _source(config) != "reference" and _family(item) not in (None, LEARNER_FAMILY):
            drop.append(item)  # the learner's family; the proof runs what the learner runs
        else:
            keep.append(item)
    if wanted and not any(_exercise_of(i) for i in keep):
        known = sorted({f"{n} {name}" for i in items if (f := _exercise_of(i)) for _, name, n in [f]})
        raise pytest.UsageError(
            f"--exercise {' '.join(wanted)} matches no exercise grader here; "
            f"the exercises collected: {', '.join(known) or 'none (name a chapter: pytest chapters/03 --exercise 3.4)'}"
        )
    if learner_mode:
        # Each exercise's graders together, in exercises.py's order, each in file order: the
        # hand-made checks come before the end-to-end ones, so the first failure is the clearest.
        position = {id(item): i for i, item in enumerate(keep)}

        def order(item):
            found = _exercise_of(item)
            if found is None:
                return (1, "", (), position[id(item)])
            chapter, _, number = found
            return (0, chapter, _number_key(number), _file_order(item), position[id(item)])

        keep.sort(key=order)
    config._exercise_own_tests = own_tests
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def _number_key(number: str) -> tuple:
    """'1.10' after '1.9'."""
    return tuple(int(part) for part in number.split("."))


def _file_order(item) -> tuple:
    return (str(item.path), item.reportinfo()[1] or 0)


def _matches(wanted: str, found) -> bool:
    chapter, name, number = found
    wanted = wanted.strip()
    return wanted in (name, number) or wanted == number.split(".")[1] or wanted == f"{chapter}.{name}"


def pytest_collection_finish(session):
    if _source(session.config) != "learner" or session.config.getoption("collectonly"):
        return
    graded = sorted({f for i in session.items if (f := _exercise_of(i))}, key=lambda f: (f[0], _number_key(f[2])))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if graded and reporter is not None:
        listing = ", ".join(f"{number} {name}" for _, name, number in graded)
        reporter.write_line(f"grading your exercises.py: {listing}")
        own = getattr(session.config, "_exercise_own_tests", 0)
        skipped = f"; {own} tests of the chapter's own code are left out, --reference runs them" if own else ""
        reporter.write_line(f"(one exercise: --exercise N.M{skipped})")


@pytest.hookimpl(tryfirst=True)  # before the fixtures are set up: a skipped grader builds no model
def pytest_runtest_setup(item):
    found = _exercise_of(item)
    if found and _source(item.config) == "learner" and found[:2] in item.config._exercise_failed:
        pytest.skip(f"Exercise {found[2]}: skipped until the failure above is fixed")


# ---------------------------------------------------------------------------------------------
# Reports


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    found = _exercise_of(item)
    if found is None:
        return report
    if report.failed and _source(item.config) == "learner":
        item.config._exercise_failed.add(found[:2])
        if call.excinfo is not None and item.config.getoption("tbstyle") == "auto":
            report.longrepr = learner_report(item, call.excinfo, found)
            # Model-building progress bars and library log lines are noise here; what the
            # learner's own code printed (stdout) stays.
            report.sections = [(title, text) for title, text in report.sections if "stdout" in title]
    if report.when == "call" or report.outcome != "passed":
        item.config._exercise_results.append(
            dict(
                nodeid=item.nodeid,
                test=item.originalname,
                exercise=found[1],
                chapter=found[0],
                variant=_planted_name(item),
                when=report.when,
                outcome=report.outcome,
                message=str(report.longrepr)[-2000:] if report.failed else "",
            )
        )
    return report


def learner_report(item, excinfo, found) -> str:
    """A failure as a learner wants it: the message first, then where (the test's line and the
    learner's own lines), no library internals."""
    chapter, name, number = found
    error = excinfo.value
    message = str(error).strip()
    if isinstance(error, NotImplementedError) and message.startswith("Exercise"):
        lines = [message, f"(chapters/{chapter[2:]}/exercises.py: {name} still raises NotImplementedError; "
                          "replace the raise with your code)"]
    else:
        kind = "wrong answer" if isinstance(error, AssertionError) else f"{type(error).__name__} raised"
        body = message.splitlines() or [type(error).__name__]
        if len(body) > MAX_MESSAGE_LINES:
            body = body[:MAX_MESSAGE_LINES] + [f"... ({len(body) - MAX_MESSAGE_LINES} more lines: --tb=long shows them)"]
        lines = [f"Exercise {number} ({name}): {kind} in {item.name}"] + ["  " + line for line in body]
        where = _where(item, excinfo)
        if where:
            lines += ["where:"] + where
    lines.append(f"run this exercise alone: pytest chapters/{chapter[2:]} --exercise {number}   (--tb=long: the full traceback)")
    return "\n".join(lines)


def _where(item, excinfo) -> list[str]:
    """The traceback entries in the test file and in exercises.py, then the line that raised."""
    test_file = Path(str(item.path)).resolve()
    picked = []
    entries = list(excinfo.traceback)
    for i, entry in enumerate(entries):
        path = Path(str(entry.path)).resolve() if entry.path else None
        mine = path is not None and (path == test_file or path.name == "exercises.py")
        # Where a crash happened (a shape error deep in the model) helps; where an assertion
        # helper raised does not.
        crash = i == len(entries) - 1 and picked and not isinstance(excinfo.value, AssertionError)
        if mine or crash:
            picked.append(entry)
    out = []
    for entry in picked[-6:]:
        try:
            source = str(entry.statement).strip().splitlines()[0]
        except Exception:  # no source for this frame
            source = ""
        out.append(f"  {_short_path(entry.path)}:{entry.lineno + 1} in {entry.name}")
        if source:
            out.append(f"      {source}")
    return out


def _short_path(path) -> str:
    path = Path(str(path))
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        parts = path.parts
        return str(Path(*parts[-3:])) if len(parts) > 3 else str(path)


def _planted_name(item):
    """The variant this item ran with: the planted wrong answer's name, or "stub" (None outside
    the planted and proof sources)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "solution" not in params:
        return None
    fn = params["solution"]
    found = _exercise_of(item)
    if found and fn is learner.solution_for(found[0], found[1], "learner"):  # the stub of a proof run
        return STUB
    return getattr(fn, "__name__", None)


def pytest_sessionfinish(session):
    path = session.config.getoption("--exercise-report")
    if path:
        Path(path).write_text(json.dumps(session.config._exercise_results, indent=1))
    if _source(session.config) == "learner":
        _record_progress(session.config._exercise_results)


def _record_progress(results: list[dict]) -> None:
    """Each exercise whose graders ran: passed when every one of them passed (`python -m course progress`)."""
    from course import progress

    verdicts: dict[str, dict[str, bool]] = {}
    for r in results:
        if r["outcome"] == "skipped" and r["exercise"] not in verdicts.get(r["chapter"], {}):
            continue  # skipped before any grader of it ran (an edited stub in another mode, a -k)
        mine = verdicts.setdefault(r["chapter"], {})
        mine[r["exercise"]] = mine.get(r["exercise"], True) and r["outcome"] == "passed"
    for chapter, passed in verdicts.items():
        progress.record_exercises(chapter, passed)
