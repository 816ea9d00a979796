"""A learner's progress, chapter by chapter: which exercises pass and which quizzes are passed.

Two commands record it, in .course-progress.json at the repository's root (git ignores it; set
NANOVLLM_PROGRESS to keep it elsewhere, or to "off" not to keep it):

    pytest chapters/05          the graders' verdict on each exercise they ran (course.grading)
    python -m quizzes 05        the quiz's score, and whether it passed (70% of the points)

and one shows it:

    python -m course progress           chapter by chapter, from the recorded results
    python -m course progress --run     run every chapter's graders first (minutes on a CPU)

The site's home page shows the quizzes taken on the site (they stay in that browser).
"""

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

from course.paths import REPO_ROOT


def progress_path() -> Path | None:
    setting = os.environ.get("NANOVLLM_PROGRESS")
    if setting is not None and setting.strip().lower() in ("", "off", "0", "no"):
        return None
    return Path(setting).expanduser() if setting else REPO_ROOT / ".course-progress.json"


def load() -> dict:
    path = progress_path()
    if path is None or not path.is_file():
        return {"exercises": {}, "quizzes": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"exercises": {}, "quizzes": {}}  # a damaged file starts again rather than stopping a test run
    data.setdefault("exercises", {})
    data.setdefault("quizzes", {})
    return data


def _save(data: dict) -> None:
    path = progress_path()
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def record_exercises(chapter: str, passed: dict[str, bool]) -> None:
    """chapter: 'ch05'; passed: {exercise name: whether every grader of it passed}."""
    if not passed:
        return
    data = load()
    mine = data["exercises"].setdefault(chapter, {})
    for name, ok in passed.items():
        mine[name] = {"passed": bool(ok), "when": _now()}
    _save(data)


def record_quiz(chapter: str, score: float, total: int, passed: bool) -> None:
    """chapter: '05'. Keeps the best score; passed once, passed for good."""
    data = load()
    old = data["quizzes"].get(chapter, {})
    best = max(score, old.get("best", 0.0))
    data["quizzes"][chapter] = {"best": best, "total": total, "passed": bool(passed or old.get("passed")),
                                "last": score, "when": _now()}
    _save(data)


def chapters() -> list[str]:
    """'01', '02', ... every chapter with exercises or a quiz."""
    with_exercises = {p.parent.name for p in (REPO_ROOT / "chapters").glob("[0-9][0-9]/exercises.py")}
    with_quiz = {p.stem for p in (REPO_ROOT / "quizzes").glob("[0-9][0-9].yaml")}
    return sorted(with_exercises | with_quiz)


def report(data: dict | None = None) -> str:
    from course.learner import exercise_names

    data = load() if data is None else data
    lines = [f"{'chapter':<8}{'exercises passing':<44}quiz"]
    for chapter in chapters():
        names = exercise_names(f"ch{chapter}") if (REPO_ROOT / "chapters" / chapter / "exercises.py").is_file() else []
        done = data["exercises"].get(f"ch{chapter}", {})
        if not names:
            exercises = "no exercises"
        else:
            passing = [n for n in names if done.get(n, {}).get("passed")]
            failing = [f"{int(chapter)}.{i + 1}" for i, n in enumerate(names) if n in done and not done[n]["passed"]]
            untried = [f"{int(chapter)}.{i + 1}" for i, n in enumerate(names) if n not in done]
            exercises = f"{len(passing)} of {len(names)}"
            if failing:
                exercises += f", failing {' '.join(failing)}"
            if untried:
                exercises += f", not run {' '.join(untried)}"
        quiz = data["quizzes"].get(chapter)
        if not (REPO_ROOT / "quizzes" / f"{chapter}.yaml").is_file():
            quiz_text = "no quiz"
        elif quiz is None:
            quiz_text = f"not taken (python -m quizzes {chapter})"
        else:
            quiz_text = f"{'passed' if quiz['passed'] else 'not passed yet'}, best {quiz['best']:g} / {quiz['total']}"
        lines.append(f"{chapter:<8}{exercises:<44}{quiz_text}")
    path = progress_path()
    lines.append(f"(from {path}; `pytest chapters/NN` and `python -m quizzes NN` update it)" if path
                 else "(NANOVLLM_PROGRESS is off: nothing is recorded)")
    return "\n".join(lines)


def run_graders() -> None:
    """`pytest chapters/NN` for every chapter with exercises, as the learner runs it; each run records."""
    for chapter in chapters():
        if (REPO_ROOT / "chapters" / chapter / "exercises.py").is_file():
            print(f"grading chapters/{chapter} ...", flush=True)
            subprocess.run([sys.executable, "-m", "pytest", f"chapters/{chapter}", "-q", "-p", "no:xdist", "--no-header"],
                           cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
