"""The answer key stays behind its boundary: a learner meets every exercise before its answer.

Each chapter keeps the reference of its exercised functions in chapters/NN/solutions.py (the
answer key), and its other modules import them from there. So the files a learner is told to read
first (the page's "Code:" box, the package docstring) show where an exercise plugs in, never how
it is solved; the reading order names solutions.py only as "after"; the page shows a solution
only folded after its exercise (tests/test_pages.py); the notebook never reads the answer key.
chapters/TEMPLATE.md states the rule for new chapters.
"""

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

from course.learner import grading_table

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.parent.name for p in (REPO_ROOT / "chapters").glob("[0-9][0-9]/exercises.py"))
NOT_READ_FIRST = {"exercises.py", "solutions.py"}


def reference(chapter_dir: str) -> dict:
    return {name: inspect.unwrap(fn) for name, fn in grading_table(f"ch{chapter_dir}").REFERENCE.items()}


def first_read_modules(chapter_dir: str) -> list[Path]:
    """The chapter's modules a learner reads to learn it: all but the stubs and the answer key."""
    folder = REPO_ROOT / "chapters" / chapter_dir
    return sorted(p for p in folder.glob("*.py") if p.name not in NOT_READ_FIRST)


def bodies(path: Path) -> dict[str, str]:
    """{function name: its body without the docstring, as an AST dump} of every def in a file."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if node.body and isinstance(node.body[0], ast.Expr) and isinstance(
                getattr(node.body[0], "value", None), ast.Constant) else node.body
            found[node.name] = "\n".join(ast.dump(stmt) for stmt in body)
    return found


@pytest.mark.parametrize("chapter_dir", CHAPTERS)
def test_every_reference_lives_in_the_answer_key(chapter_dir):
    """The function the graders call the reference is the one in chapters/NN/solutions.py."""
    outside = {name: inspect.getsourcefile(fn) for name, fn in reference(chapter_dir).items()
               if Path(inspect.getsourcefile(fn)).name != "solutions.py"}
    assert not outside, (
        f"chapter {chapter_dir}: the reference of these exercises is outside chapters/{chapter_dir}/solutions.py; "
        f"move each function there and import it where it is used: {outside}")


@pytest.mark.parametrize("chapter_dir", CHAPTERS)
def test_no_first_read_module_holds_an_answer(chapter_dir):
    """No other module of the chapter holds a copy of an answer's body."""
    key = bodies(REPO_ROOT / "chapters" / chapter_dir / "solutions.py")
    answers = {body: name for name, body in key.items() if body}
    copies = [f"{path.name}: def {name} is solutions.{answers[body]}"
              for path in first_read_modules(chapter_dir) for name, body in bodies(path).items() if body in answers]
    assert not copies, f"chapter {chapter_dir} repeats an answer outside solutions.py: {copies}"


def sentences_naming(text: str, name: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;])\s+", " ".join(text.split())) if name in s]


@pytest.mark.parametrize("chapter_dir", CHAPTERS)
def test_the_reading_order_sends_the_learner_to_the_answer_key_last(chapter_dir):
    """The package docstring and the page's "Code:" box name solutions.py only as what comes
    after the exercises, and never as a file to read first."""
    docstring = ast.get_docstring(ast.parse((REPO_ROOT / "chapters" / chapter_dir / "__init__.py").read_text(encoding="utf-8")))
    page_path = REPO_ROOT / "docs" / "chapters" / f"{chapter_dir}.md"
    texts = {f"chapters/{chapter_dir}/__init__.py": docstring or ""}
    if page_path.exists():
        page = page_path.read_text(encoding="utf-8")
        box = re.search(r"\*\*Code:\*\*(.*?)(?:\n\s*\n)", page, re.S)
        assert box, f"docs/chapters/{chapter_dir}.md has no **Code:** box saying what to read first"
        texts[f"docs/chapters/{chapter_dir}.md"] = box.group(1)
    for where, text in texts.items():
        named = sentences_naming(text, "solutions.py")
        assert named, f"{where}: say where the answer key is (solutions.py) and that it comes after the exercises"
        for sentence in named:
            assert "after" in sentence and "exercises" in sentence, (
                f"{where}: solutions.py is named without saying it comes after the exercises: {sentence!r}")
        for sentence in sentences_naming(text, "first"):
            assert "solutions.py" not in sentence, f"{where}: solutions.py in the read-first list: {sentence!r}"


def test_the_readme_learner_path_reaches_the_answer_key_after_the_exercises():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    path = readme[readme.index("## The learner path"):]
    path = path[:path.index("\n## ", 1)]
    assert "solutions.py" in path, "the README's learner path should say where the answer key is"
    assert path.index("exercises.py") < path.index("solutions.py"), "the README names the answer key before the exercises"


@pytest.mark.parametrize("chapter_dir", CHAPTERS)
def test_the_notebook_never_opens_the_answer_key(chapter_dir):
    notebooks = sorted((REPO_ROOT / "notebooks").glob(f"{chapter_dir}_*.ipynb"))
    if not notebooks:
        pytest.skip(f"chapter {chapter_dir} has no notebook yet")
    for cell in json.loads(notebooks[0].read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            assert not re.search(r"\bsolutions\b", source), (
                f"{notebooks[0].name}, cell {cell['id']}: reads the answer key; use course.solution_for, which gives "
                "the learner's function (or the reference under NANOVLLM_REFERENCE=1)")


def test_the_checks_can_fail(tmp_path):
    """The body comparison finds a copied answer, and the sentence check finds an answer key
    named as a first read."""
    copy = tmp_path / "layers.py"
    key = (REPO_ROOT / "chapters" / "01" / "solutions.py").read_text(encoding="utf-8")
    copy.write_text(key, encoding="utf-8")
    assert set(bodies(copy)) >= {"rms_norm", "apply_rope"}
    assert bodies(copy)["rms_norm"] == bodies(REPO_ROOT / "chapters" / "01" / "solutions.py")["rms_norm"]
    assert any("solutions.py" in s for s in sentences_naming("Read solutions.py first, then layers.py.", "first"))
