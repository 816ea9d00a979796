"""README.md is what a newcomer reads first: short, its layout first, its generated tables (the
chapters present, the measured results) current, and every command it names real."""

import re

from course import readme
from course.paths import REPO_ROOT

TEXT = readme.README.read_text(encoding="utf-8")


def test_the_generated_tables_are_current():
    stale = readme.stale_blocks(TEXT)
    assert not stale, f"README.md's {stale} table is stale; run `python -m course.readme`"


def test_a_chapter_row_follows_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(readme, "REPO_ROOT", tmp_path)
    assert readme.chapter_status("08") == "not written yet"
    (tmp_path / "chapters" / "08").mkdir(parents=True)
    (tmp_path / "chapters" / "08" / "exercises.py").write_text("")
    assert readme.chapter_status("08") == "being written: exercises"
    for path in ("docs/chapters/08.md", "notebooks/08_tp.ipynb", "quizzes/08.yaml"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    assert readme.chapter_status("08") == "written: page, notebook, exercises, quiz"


def test_short_with_the_layout_first():
    assert TEXT.count("\n") < 150, f"README.md has {TEXT.count(chr(10))} lines; keep it under 150 (the site holds the rest)"
    sections = re.findall(r"^## (.+)$", TEXT, re.M)
    assert sections[0] == "Layout", sections


def test_its_make_targets_exist():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    for target in sorted(set(re.findall(r"\bmake (\w+)", TEXT))):
        assert re.search(rf"^{target}:", makefile, re.M), f"README.md names `make {target}`, which the Makefile lacks"


def test_its_paths_exist():
    for path in sorted(set(re.findall(r"`((?:docs|course|chapters|notebooks|measurements|tests|nanovllm_final)/[\w./-]*)`", TEXT))):
        if "NN" not in path and "*" not in path:
            assert (REPO_ROOT / path).exists(), f"README.md names {path}, which does not exist"
