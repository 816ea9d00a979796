"""`python -m course progress`: what the graders and the quiz command recorded, per chapter."""

import pytest

from course import progress
from course.__main__ import main as course_main
from course.learner import exercise_names
from quizzes.__main__ import main as quiz_main
from quizzes.core import load_quiz


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv("NANOVLLM_PROGRESS", str(path))
    return path


def test_report_lists_every_chapter_with_what_was_recorded(progress_file, capsys):
    first, second = exercise_names("ch03")[:2]
    progress.record_exercises("ch03", {first: True, second: False})
    progress.record_quiz("03", 7, 8, True)
    progress.record_quiz("03", 2, 8, False)  # a worse try later keeps the best and the pass
    assert course_main(["progress"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("03"))
    n = len(exercise_names("ch03"))
    assert f"1 of {n}, failing 3.2" in row and "passed, best 7 / 8" in row, row
    assert all(any(line.startswith(c) for line in out.splitlines()) for c in progress.chapters())
    assert "not taken (python -m quizzes 01)" in out


def test_the_quiz_command_records_its_score(progress_file, tmp_path):
    quiz = load_quiz("01")
    answers = tmp_path / "answers.yaml"
    answers.write_text("".join(f"{q.id}: {q.answer if q.type != 'multiple' else list(q.answer)}\n" for q in quiz.questions))
    assert quiz_main(["01", "--answers", str(answers)]) == 0
    recorded = progress.load()["quizzes"]["01"]
    assert recorded["passed"] and recorded["best"] == len(quiz.questions) == recorded["total"]


# A learner's pytest run records its exercises: tests/test_graders.py's learner run checks that
# (one pytest process over every chapter's stubs instead of one more here).


def test_off_records_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("NANOVLLM_PROGRESS", "off")
    progress.record_quiz("01", 8, 8, True)
    assert progress.load() == {"exercises": {}, "quizzes": {}}
