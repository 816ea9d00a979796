"""The graders can fail: every exercise test fails on the untouched stub (with the exercise's
message) and on at least one planted wrong answer, and every planted wrong answer is caught.
The reference passing them is the main suite's job (`make test` runs it with --reference).
And what a learner sees: `pytest chapters/NN` on the stubs gives each exercise one short failure
with its "Exercise N.M" message, and `--exercise N.M` / `-k N.M` pick one exercise."""

import json
import os
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from course.grading import STUB, exercise_names, exercise_number, grading_table, is_untouched_stub
from course.paths import REPO_ROOT

CHAPTERS = sorted(p.parent.name for p in (REPO_ROOT / "chapters").glob("[0-9][0-9]/exercises.py"))


@pytest.fixture(params=CHAPTERS)
def chapter_dir(request):
    """Every chapter with an exercises.py: a new chapter joins these proofs without an edit here."""
    return request.param


@pytest.fixture(scope="session")
def proof(tmp_path_factory) -> list[dict]:
    """One pytest process for every chapter: each grader against the stub and each planted wrong
    answer. One process, not one per chapter: starting Python with torch and transformers costs
    more than most chapters' graders take (the tests below share it through xdist_group)."""
    report = tmp_path_factory.mktemp("proof") / "proof.json"
    cmd = [sys.executable, "-m", "pytest", *(f"chapters/{c}" for c in CHAPTERS), "-q", "-m", "exercise",
           "-p", "no:xdist", "-p", "no:nbmake", "-p", "no:cacheprovider", "--exercise-source=proof",
           f"--exercise-report={report}", "--tb=no"]  # the report keeps each failure's last line; tracebacks cost a third of the run
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert report.exists(), f"grader run wrote no report:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(report.read_text())


def run_graders(chapter_dir: str, proof: list[dict]) -> list[dict]:
    """The proof's results for one chapter."""
    return [r for r in proof if r["nodeid"].startswith(f"chapters/{chapter_dir}/")]


def test_every_exercise_has_a_reference_a_planted_bug_and_a_grader(chapter_dir):
    chapter = f"ch{chapter_dir}"
    names = exercise_names(chapter)
    table = grading_table(chapter)
    assert 2 <= len(names) <= 5, f"{chapter}/exercises.py should hold 2-5 exercises, has {names}"
    for name in names:
        assert name in table.REFERENCE, f"{chapter}: no REFERENCE for exercise {name}"
        assert table.PLANTED.get(name), f"{chapter}: no planted wrong answer for exercise {name}"
    tests = (REPO_ROOT / "chapters" / chapter_dir / "tests").rglob("test_*.py")
    source = "\n".join(p.read_text() for p in tests)
    for name in names:
        assert f'@pytest.mark.exercise("{name}")' in source, f"{chapter}: no grader for exercise {name}"


@pytest.mark.slow
@pytest.mark.xdist_group("graders")  # one worker computes the proof once for every chapter
def test_graders_fail_on_the_stub_and_catch_the_planted_bugs(chapter_dir, proof):
    chapter = f"ch{chapter_dir}"
    results = run_graders(chapter_dir, proof)
    assert results, f"{chapter}: no grader ran"
    for r in results:
        assert r["variant"], f"{r['nodeid']} ran without a stub or a planted answer"
    check_the_stub(chapter, [r for r in results if r["variant"] == STUB])
    check_the_planted(chapter, [r for r in results if r["variant"] != STUB])


def check_the_stub(chapter: str, results: list[dict]):
    module = __import__(f"{chapter}.exercises", fromlist=["_"])
    edited = [n for n in exercise_names(chapter) if not is_untouched_stub(getattr(module, n))]
    if edited:
        pytest.skip(f"{chapter}/exercises.py has edited exercises {edited}; the stub proof needs the committed stubs "
                    "(the planted bugs were checked)")
    for r in results:
        assert r["outcome"] == "failed", f"{r['nodeid']} passed on the untouched stub"
        assert "NotImplementedError" in r["message"] and "Exercise" in r["message"], (
            f"{r['nodeid']} failed on the stub, but not with the exercise's message:\n{r['message'][-800:]}"
        )
    graded = {r["exercise"] for r in results}
    assert graded == set(exercise_names(chapter)), f"{chapter}: exercises without a grader: {set(exercise_names(chapter)) - graded}"


def check_the_planted(chapter: str, results: list[dict]):
    caught_by_test = defaultdict(set)  # grader -> planted answers it rejects
    caught = defaultdict(set)  # exercise -> planted answers some grader rejects
    for r in results:
        planted = r["variant"]
        if r["outcome"] == "failed":
            caught_by_test[r["test"]].add(planted)
            caught[r["exercise"]].add(planted)
        else:
            caught_by_test.setdefault(r["test"], set())
    lazy = sorted(t for t, bugs in caught_by_test.items() if not bugs)
    assert not lazy, f"{chapter}: these graders pass every planted wrong answer: {lazy}"
    for name, bugs in grading_table(chapter).PLANTED.items():
        missed = {b.__name__ for b in bugs} - caught[name]
        assert not missed, f"{chapter}: no grader of {name!r} catches the planted {sorted(missed)}"


def run_learner(*args, progress_file=None) -> subprocess.CompletedProcess:
    """pytest as a learner runs it: no options but the ones given, from the repo root."""
    # `make test` runs with --reference, which exports NANOVLLM_REFERENCE=1 for the notebooks; a
    # learner's shell has no such variable, so the child must not inherit it.
    env = {k: v for k, v in os.environ.items() if k != "NANOVLLM_REFERENCE"}
    env["NANOVLLM_PROGRESS"] = str(progress_file) if progress_file else "off"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


LINES_PER_EXERCISE = 40


@pytest.mark.slow
def test_learner_run_on_the_stubs_is_short(tmp_path):
    """Each exercise: its stub's "Exercise N.M" message once, no traceback, a few lines. One
    learner run over every chapter whose stubs are untouched (exercise numbers are unique); the
    same run records each exercise as not passing (`python -m course progress` reads that)."""
    untouched, names = [], []
    for chapter_dir in CHAPTERS:
        chapter = f"ch{chapter_dir}"
        module = __import__(f"{chapter}.exercises", fromlist=["_"])
        if all(is_untouched_stub(getattr(module, n)) for n in exercise_names(chapter)):
            untouched.append(chapter_dir)
            names += [(chapter, n) for n in exercise_names(chapter)]
    if not untouched:
        pytest.skip("every exercises.py has been edited; this needs the committed stubs")
    progress_file = tmp_path / "progress.json"
    proc = run_learner(*(f"chapters/{c}" for c in untouched), progress_file=progress_file)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    lines = out.count("\n")
    assert lines <= LINES_PER_EXERCISE * len(names), f"{lines} lines for {len(names)} exercises:\n{out}"
    failures = out.split("short test summary info")[0]  # the summary repeats a message when it fits the width
    for chapter, name in names:
        number = exercise_number(chapter, name)
        shown = re.findall(rf"^Exercise {re.escape(number)}:", failures, re.M)
        assert len(shown) == 1, f"Exercise {number}'s message should show once:\n{out}"
        assert f"--exercise {number}" in out
    assert "Traceback" not in out and "site-packages" not in out, out
    assert f"{len(names)} failed" in out.splitlines()[-1], out.splitlines()[-1]
    recorded = json.loads(progress_file.read_text())["exercises"]
    for chapter, name in names:
        assert recorded[chapter][name]["passed"] is False, (chapter, name, recorded.get(chapter))


def test_one_exercise_by_number_or_name(pytester, monkeypatch):
    """In this process (pytester), as collection alone needs no fresh interpreter."""
    monkeypatch.delenv("NANOVLLM_REFERENCE", raising=False)  # a learner's shell has none (see run_learner)
    chapter_dir = CHAPTERS[-1]
    chapter = f"ch{chapter_dir}"
    name = exercise_names(chapter)[-1]
    number = exercise_number(chapter, name)
    # Each run gives both ways at once (they must agree), to run pytest twice rather than four times.
    for selector in (["--exercise", number, "-k", name], ["--exercise", name, "-k", number]):
        result = pytester.runpytest_inprocess(str(REPO_ROOT / "chapters" / chapter_dir), "--rootdir", str(REPO_ROOT),
                                              "-p", "no:xdist", "--collect-only", "-q", *selector)
        collected = [line for line in result.outlines if "::" in line]
        assert result.ret == 0 and collected, f"{selector} selected nothing:\n{result.stdout.str()}{result.stderr.str()}"
        other_families = [c for c in collected if "[llama" in c or "[qwen2" in c]
        assert not other_families, f"learner mode runs one model family: {other_families}"


def test_test_file_names_are_unique():
    """pytest imports test files by name (importlib mode): two chapters' `test_exercises.py`
    would shadow each other in one run, and one chapter's graders would silently run twice."""
    names = [p.name for p in REPO_ROOT.glob("**/test_*.py") if ".venv" not in p.parts and "build" not in p.parts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"rename these so each test file name is unique in the repo: {duplicates}"


def test_a_crash_in_an_engine_run_names_the_line_of_exercises_py(tmp_path, monkeypatch):
    """ch04's graders report a crash inside the engine in one line (pytrace=False, no traceback):
    that line must still say where in exercises.py the learner's code raised."""
    from ch04.scheduler import Scheduler
    from ch04.tests import test_scheduler_exercises_ch04 as graders

    (tmp_path / "exercises.py").write_text("def schedule(self):\n    batch = []\n    return batch, self.waiting[7]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "exercises", raising=False)
    import exercises

    monkeypatch.setattr(Scheduler, "schedule", exercises.schedule)
    with pytest.raises(pytest.fail.Exception) as failure:
        graders.schedule(graders.small_scheduler())
    message = str(failure.value)
    assert "IndexError" in message and "exercises.py:3 in schedule: return batch, self.waiting[7]" in message, message
