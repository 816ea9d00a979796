"""MkDocs hooks of the course site (mkdocs.yml: hooks). Its jobs, each keyed to a plain marker
in a chapter page, so that a new chapter needs only docs/chapters/NN.md and quizzes/NN.yaml:

- `<!-- quiz: NN -->` becomes chapter NN's quiz, rendered from quizzes/NN.yaml with the same
  hashes the terminal grader uses (quizzes/html.py, docs/javascripts/quiz.js).
- `--8<-- "chapters/01/layers.py:rms_norm"` includes a function or class by name (also
  `Class.method`): the name is turned into the line range snippets needs, at build time, so an
  included excerpt follows the source when lines move, and a renamed function fails the build.
  Plain snippets (`--8<-- "chapters/01/model.py"`, line ranges, section markers) work as usual.
- `<!-- visual: ch03 -->` becomes chapter 3's interactive visual: a div carrying the numbers of
  docs/assets/visuals/ch03.json (written by `python -m course.visual_data`), drawn in the
  browser by docs/javascripts/visuals/ch03.js on top of core.js (loaded once per page).
- `<!-- spine-map -->` becomes the map of the chapters' classes (course/spine_map.py), read from
  the code at build time: which chapter defines or replaces which class and method.
- `<!-- measured: bench_h200 fp8.median -->` becomes a measured number from measurements/*.json,
  `<!-- measured-table: serving_h200 -->` a table of one such file, `<!-- measured-source: NAME -->`
  its machine, versions, date and command (course/measurements.py): a page never types a number
  measured on a GPU, and a missing file or key fails the build.
- `<!-- notebook: NN -->` becomes a link to the rendered notebooks/NN_*.ipynb, or the file's name
  while the notebook does not exist yet. Notebooks live in notebooks/ at the repo root and are
  added to the site here (never executed: outputs are stripped in git).
"""

import ast
import glob
import html as html_lib
import json
import posixpath
import re
import sys
from functools import lru_cache
from pathlib import Path

import markdown as markdown_lib
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # the quizzes package, when the repo is not pip-installed
    sys.path.insert(0, str(REPO_ROOT))

from course.measurements import MeasurementError, render_markers  # noqa: E402
from quizzes.core import QuizError, load_quiz  # noqa: E402
from quizzes.html import render as render_quiz  # noqa: E402

QUIZ = re.compile(r"<!--\s*quiz:\s*(\d+)\s*-->")
VISUAL = re.compile(r"<!--\s*visual:\s*([a-z0-9-]+)\s*-->")
NOTEBOOK = re.compile(r"<!--\s*notebook:\s*(\d+)\s*-->")
SPINE_MAP = re.compile(r"<!--\s*spine-map\s*-->")
SNIPPET = re.compile(r"""^(?P<lead>[ \t]*--8<--[ \t]+)(?P<q>["'])(?P<path>[^"':]+\.py):(?P<name>[A-Za-z_][\w.]*)(?P=q)[ \t]*$""", re.M)


def notebook_paths() -> list[Path]:
    return sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@event_priority(100)  # before mkdocs-jupyter's on_files, which claims the .ipynb files
def on_files(files, config):
    for path in notebook_paths():
        src_uri = f"notebooks/{path.name}"
        if files.get_file_from_path(src_uri) is None:
            # A plain File rooted at the repo (not File.generated, whose missing src_dir
            # mkdocs-jupyter's wrapper cannot see through): src_dir/src_uri is the notebook.
            files.append(File(src_uri, src_dir=str(REPO_ROOT), dest_dir=config.site_dir,
                              use_directory_urls=config.use_directory_urls))
    return files


def on_serve(server, config, builder):
    for folder in ("notebooks", "quizzes", "chapters", "measurements"):
        if (REPO_ROOT / folder).is_dir():
            server.watch(str(REPO_ROOT / folder))
    return server


@lru_cache(maxsize=None)
def _symbols(path: Path, mtime: float) -> dict:
    """{qualified name: (first line, last line)} of a Python file's functions and classes."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {}

    def visit(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + node.name
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                found[name] = (first, node.end_lineno)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name + ".")

    visit(tree.body, "")
    return found


def _resolve_symbols(markdown: str, page) -> str:
    def replace(m):
        rel, name = m["path"], m["name"]
        path = REPO_ROOT / rel
        if not path.is_file():
            return m[0]  # snippets reports the missing file itself (check_paths)
        if f"[start:{name}]" in path.read_text(encoding="utf-8"):
            return m[0]  # a real snippets section marker: leave it to snippets
        symbols = _symbols(path, path.stat().st_mtime)
        if name not in symbols:
            raise PluginError(
                f"{page.file.src_uri}: {rel} has no function or class '{name}' "
                f"(it has: {', '.join(symbols) or 'none'}); fix the name in the --8<-- line"
            )
        first, last = symbols[name]
        return f"{m['lead']}{m['q']}{rel}:{first}:{last}{m['q']}"

    return SNIPPET.sub(replace, markdown)


def _notebook_links(markdown: str, page) -> str:
    def replace(m):
        chapter = f"{int(m[1]):02d}"
        found = sorted(glob.glob(str(REPO_ROOT / "notebooks" / f"{chapter}_*.ipynb")))
        if not found:
            return f"`notebooks/{chapter}_*.ipynb`"
        name = Path(found[0]).name
        link = posixpath.relpath(f"notebooks/{name}", posixpath.dirname(page.file.src_uri) or ".")
        return f"[`notebooks/{name}`]({link})"

    return NOTEBOOK.sub(replace, markdown)


def _spine_map(markdown: str) -> str:
    if not SPINE_MAP.search(markdown):
        return markdown
    from course.spine_map import markdown as spine_map  # imports every chapter: only for this page

    return SPINE_MAP.sub(lambda m: spine_map(), markdown)


def _measured(markdown: str, page) -> str:
    try:
        return render_markers(markdown, page.file.src_uri)
    except MeasurementError as err:
        raise PluginError(str(err)) from None


def on_page_markdown(markdown, page, config, files):
    return _spine_map(_measured(_notebook_links(_resolve_symbols(markdown, page), page), page))


def _visuals(html: str, page) -> str:
    """Each visual marker -> the div its chapter's script draws into, the data inline (in an
    attribute, so that the search index does not take in the numbers), then the scripts."""
    docs = REPO_ROOT / "docs"
    loaded_core = False

    def replace(m):
        nonlocal loaded_core
        name = m[1]
        data, script = docs / "assets" / "visuals" / f"{name}.json", docs / "javascripts" / "visuals" / f"{name}.js"
        for path, fix in ((data, f"run `python -m course.visual_data {name}`"), (script, "write it")):
            if not path.is_file():
                raise PluginError(f"{page.file.src_uri}: visual '{name}' needs {path.relative_to(REPO_ROOT)}; {fix}")
        text = json.dumps(json.loads(data.read_text(encoding="utf-8")), separators=(",", ":"), ensure_ascii=False)
        scripts = [] if loaded_core else ["javascripts/visuals/core.js"]
        loaded_core = True
        tags = "".join(f'<script src="{get_relative_url(src, page.url)}"></script>'
                       for src in scripts + [f"javascripts/visuals/{name}.js"])
        return (f'<div class="visual" id="visual-{name}" data-visual="{name}" data-json="{html_lib.escape(text)}">'
                '<p class="visual__fallback">This interactive picture needs JavaScript.</p></div>' + tags)

    return VISUAL.sub(replace, html)


def on_page_content(html, page, config, files):
    html = _visuals(html, page)
    if not QUIZ.search(html):
        return html
    md = markdown_lib.Markdown(extensions=config.markdown_extensions, extension_configs=config.mdx_configs)

    def to_html(text: str) -> str:
        return md.reset().convert(text)

    def replace(m):
        try:
            quiz = load_quiz(m[1])
        except QuizError as err:
            raise PluginError(f"{page.file.src_uri}: {err}") from None
        return render_quiz(quiz, to_html)

    return QUIZ.sub(replace, html)
