"""The learner's side of the exercises, without pytest: which function a notebook or a grader
uses for an exercise, and the one-thread setup that makes timings mean something.

In a notebook:

    from course import notebook_setup, solution_for
    notebook_setup()                              # one torch/OpenMP thread, as `make test` uses
    rms_norm = solution_for("ch01", "rms_norm")   # yours, or the chapter's own with NANOVLLM_REFERENCE=1
"""

import ast
import importlib
import inspect
import os
import re

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class EditedStub(Exception):
    """The committed stub was asked for (source "stub"), but exercises.py has been edited."""


def limit_threads(default: int = 1) -> int:
    """One torch/OpenMP thread per process, unless OMP_NUM_THREADS says otherwise.

    Two processes with a thread per core each (a test run and a notebook, or pytest's two workers)
    spin against each other on a laptop and turn a 0.5 ms matmul into 30 ms, which can make the
    slow path look as fast as the fast one. The environment variables reach OpenMP only when set
    before torch is first imported; torch.set_num_threads covers the case where it already was.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(default))
    threads = int(os.environ["OMP_NUM_THREADS"])
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def notebook_setup(threads: int = 1) -> None:
    """The first call of a chapter notebook: one thread per process (see limit_threads), so the
    timing cells measure the same thing on a busy laptop as in `make test`."""
    limit_threads(threads)


def under_make_test() -> bool:
    """True while `make test` runs the notebooks (COURSE_QUICK=1): it checks that every cell runs,
    not what the cell measures, so a notebook may then do less of the same thing."""
    return os.environ.get("COURSE_QUICK", "") == "1"


def rounds(n: int, quick: int = 1) -> int:
    """How many times a notebook's cell repeats a measurement (or how many tokens a demonstration
    generates): `n` when you run the notebook, `quick` under `make test`."""
    return quick if under_make_test() else n


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
        raise EditedStub(f"{chapter}/exercises.py:{name} has been edited; the stub proof needs the committed stub")
    return fn
