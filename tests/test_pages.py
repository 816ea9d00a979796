"""The chapter pages and the exercise stubs give no answers away.

A page may explain an exercise with the code around it (its callers, the shapes it gets, a
worked example), but the reference solution of an exercise appears only after the exercise,
folded in a collapsed `??? success "Solution — try first"` block. A stub's message says what to
do and which notebook section to read, never the formula.
"""

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

from course.grading import exercise_names, grading_table

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO_ROOT / "docs" / "chapters").glob("[0-9][0-9].md"))
CHAPTERS = sorted(p.parent.name for p in (REPO_ROOT / "chapters").glob("[0-9][0-9]/exercises.py"))

# --8<-- "path", --8<-- "path:name", --8<-- "path:first:last" (also the lines of a block-form
# --8<-- ... --8<-- list)
INLINE = re.compile(r"""^(?P<indent>[ \t]*)--8<--[ \t]+["'](?P<spec>[^"']+)["'][ \t]*$""")
BLOCK_FENCE = re.compile(r"^[ \t]*--8<--[ \t]*$")
COLLAPSED = re.compile(r"^[ \t]*\?\?\?[ \t]")  # `???` folds; `???+` opens unfolded, so it does not count


def symbols(path: Path) -> dict[str, tuple[int, int]]:
    """{qualified name: (first line, last line)}, decorators included, as the site hook resolves them."""
    found = {}

    def visit(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                found[prefix + node.name] = (first, node.end_lineno)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, prefix + node.name + ".")

    visit(ast.parse(path.read_text(encoding="utf-8")).body, "")
    return found


def included_lines(spec: str) -> tuple[str, int, int] | None:
    """(repo-relative file, first line, last line) that a snippet spec includes."""
    parts = spec.split(":")
    path = REPO_ROOT / parts[0]
    if not path.is_file():
        return None
    if len(parts) == 1:
        return parts[0], 1, len(path.read_text(encoding="utf-8").splitlines())
    if len(parts) == 2 and not parts[1].isdigit():
        first_last = symbols(path).get(parts[1])
        return (parts[0], *first_last) if first_last else None
    first = int(parts[1] or 1)
    last = int(parts[2]) if len(parts) > 2 and parts[2] else len(path.read_text(encoding="utf-8").splitlines())
    return parts[0], first, last


def snippet_lines(lines: list[str]):
    """(line index, spec) of every include of a page."""
    in_block = False
    for i, line in enumerate(lines):
        if BLOCK_FENCE.match(line):
            in_block = not in_block
            continue
        m = INLINE.match(line)
        if m:
            yield i, m["spec"]
        elif in_block and line.strip() and not line.strip().startswith(";"):
            yield i, line.strip().strip("\"'")


def indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def is_folded(lines: list[str], index: int) -> bool:
    """True when line `index` lies inside a collapsed `???` block: walking back, some enclosing
    line (less indented than everything after it) is a `??? ...` line."""
    level = indent(lines[index])
    for line in reversed(lines[:index]):
        if not line.strip() or indent(line) >= level:
            continue
        if COLLAPSED.match(line):
            return True
        level = indent(line)
        if level == 0:
            return False
    return False


def reference_ranges(chapter: str) -> dict[str, tuple[str, int, int]]:
    """{exercise: (repo-relative file, first line, last line)} of each reference solution."""
    ranges = {}
    for name, fn in grading_table(chapter).REFERENCE.items():
        fn = inspect.unwrap(fn)
        source, first = inspect.getsourcelines(fn)
        package, *module = fn.__module__.split(".")  # ch01.layers -> chapters/01/layers.py
        path = "/".join(["chapters", package[2:], *module]) + ".py"
        ranges[name] = (path, first, first + len(source) - 1)
    return ranges


def answers_shown(page_text: str, ranges: dict) -> list[str]:
    """Every include of the page that shows a reference solution outside a folded block."""
    lines = page_text.splitlines()
    shown = []
    for i, spec in snippet_lines(lines):
        got = included_lines(spec)
        if got is None:
            continue  # a missing file fails the site build itself
        path, first, last = got
        for name, (ref_path, ref_first, ref_last) in ranges.items():
            if path == ref_path and first <= ref_last and ref_first <= last and not is_folded(lines, i):
                shown.append(f"line {i + 1}: --8<-- {spec!r} shows the answer to exercise {name!r}")
    return shown


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_shows_solutions_only_folded_after_the_exercise(page):
    chapter = f"ch{page.stem}"
    if not (REPO_ROOT / "chapters" / page.stem / "exercises.py").exists():
        pytest.skip(f"chapter {page.stem} has no exercises yet")
    shown = answers_shown(page.read_text(encoding="utf-8"), reference_ranges(chapter))
    assert not shown, (
        f"docs/chapters/{page.name} shows exercise solutions outside a collapsed block; move each into "
        "`??? success \"Solution — try first\"` after its exercise (indented by 4), and show the "
        "code around it instead:\n" + "\n".join(shown)
    )


def test_the_page_check_can_fail():
    """The checker itself: an include in the open, in a tab or in an open `???+` block is shown;
    one in a `???` block (through a code fence) is folded."""
    ranges = reference_ranges("ch01")
    rms = '--8<-- "chapters/01/solutions.py:rms_norm"'
    assert answers_shown(f"# page\n\n```python\n{rms}\n```\n", ranges)
    assert answers_shown(f'=== "tab"\n\n    ```python\n    {rms}\n    ```\n', ranges)
    assert answers_shown(f'???+ success "open"\n\n    ```python\n    {rms}\n    ```\n', ranges)
    assert answers_shown('```python\n--8<-- "chapters/01/solutions.py"\n```\n', ranges), "a whole-file include"
    first, last = symbols(REPO_ROOT / "chapters/01/solutions.py")["rms_norm"]
    assert answers_shown(f'--8<-- "chapters/01/solutions.py:{first + 2}:{last}"\n', ranges), "a line range"
    assert not answers_shown(f'??? success "Solution — try first"\n\n    ```python\n    {rms}\n    ```\n', ranges)
    assert not answers_shown('--8<-- "chapters/01/layers.py:RMSNorm"\n', ranges), "the caller is fine"


# --- stub messages -------------------------------------------------------------------------------
MESSAGE = re.compile(r"^Exercise (?P<number>\d+\.\d+): (?P<what>.+); see (?P<notebook>notebooks/\S+\.ipynb), section '(?P<section>[^']+)'$")
FORMULA = re.compile(r"\*|//|%|@|\*\*|rsqrt|softmax\(|\[|\]|==|\+ ")


def stub_messages(chapter_dir: str) -> dict[str, str]:
    """{exercise: its NotImplementedError message} from chapters/NN/exercises.py."""
    tree = ast.parse((REPO_ROOT / "chapters" / chapter_dir / "exercises.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Raise) and isinstance(sub.exc, ast.Call) and sub.exc.args:
                    found[node.name] = ast.literal_eval(sub.exc.args[0])
    return found


def notebook_headings(path: Path) -> set[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return {m[1].strip() for m in re.finditer(r"^#{1,4} (.+)$", text, re.M)}


@pytest.mark.parametrize("chapter_dir", CHAPTERS)
def test_stub_messages_say_what_and_where_never_how(chapter_dir):
    if not (REPO_ROOT / "docs" / "chapters" / f"{chapter_dir}.md").exists():
        pytest.skip(f"chapter {chapter_dir} is not written yet (no docs/chapters/{chapter_dir}.md): its notebook may not exist")
    messages = stub_messages(chapter_dir)
    names = exercise_names(f"ch{chapter_dir}")
    assert set(messages) == set(names), f"exercises without a NotImplementedError message: {set(names) - set(messages)}"
    for i, name in enumerate(names, start=1):
        m = MESSAGE.match(messages[name])
        assert m, f"{name}: the message should read \"Exercise {int(chapter_dir)}.{i}: <what to do>; see notebooks/<file>.ipynb, section '<heading>'\", got {messages[name]!r}"
        assert m["number"] == f"{int(chapter_dir)}.{i}", f"{name}: numbered {m['number']}, but it is exercise {int(chapter_dir)}.{i} in file order"
        assert not FORMULA.search(m["what"]), f"{name}: the message gives a formula away: {m['what']!r}"
        notebook = REPO_ROOT / m["notebook"]
        assert notebook.exists(), f"{name}: {m['notebook']} does not exist"
        assert m["section"] in notebook_headings(notebook), f"{name}: {m['notebook']} has no section {m['section']!r}"


# --- which chapters are written ----------------------------------------------------------------------
ROW = re.compile(r"^\| (\d\d) \|(.*)$", re.M)


@pytest.mark.parametrize("path", ["docs/index.md", "README.md"])
def test_chapter_lists_mark_which_chapters_are_written(path):
    """A chapter with a page is linked (home page) and marked written; one without says "not
    written yet". Adding docs/chapters/NN.md means updating both lists."""
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    tables = re.split(r"\n(?!\|)", text)  # contiguous runs of table lines
    table = next((t for t in tables if re.search(r"^\| 01 \|", t, re.M)), "")
    rows = dict(ROW.findall(table))
    assert sorted(rows) == [f"{n:02d}" for n in range(1, 12)], f"{path} should list chapters 01-11 in a table"
    for chapter, row in rows.items():
        written = (REPO_ROOT / "docs" / "chapters" / f"{chapter}.md").exists()
        if written:
            assert "not written yet" not in row and "written" in row, f"{path}: chapter {chapter} has a page; mark its row written"
            if path == "docs/index.md":
                assert f"(chapters/{chapter}.md)" in row, f"{path}: link chapter {chapter}'s row to chapters/{chapter}.md"
        else:
            # course.readme says "being written: <parts>" once a chapter has parts but no page
            assert "not written yet" in row or "being written" in row, (
                f"{path}: chapter {chapter} has no page yet; its row should say \"not written yet\"")


# --- notebooks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("chapter_dir", CHAPTERS)
def test_notebook_never_prints_an_exercise_solution(chapter_dir):
    """A notebook runs the learner's functions; it never shows the chapter's own code of an
    exercise (no inspect.getsource of a reference solution, no call into the answer key)."""
    notebooks = sorted((REPO_ROOT / "notebooks").glob(f"{chapter_dir}_*.ipynb"))
    if not notebooks:
        pytest.skip(f"chapter {chapter_dir} has no notebook yet")
    solutions = {fn.__qualname__ for fn in grading_table(f"ch{chapter_dir}").REFERENCE.values()}
    cells = json.loads(notebooks[0].read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        for arg in re.findall(r"getsource\(([^)]*)\)", source):
            shown = [q for q in solutions if arg.strip().endswith(q)]
            assert not shown, f"{notebooks[0].name}, cell {cell['id']}: prints the solution of {shown[0]}"
        assert ".tests.grading" not in source and "REFERENCE" not in source, (
            f"{notebooks[0].name}, cell {cell['id']}: reads the answer key; use the exercise helper (course.solution_for)")
