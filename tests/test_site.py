"""The course site: `mkdocs build --strict` passes, chapter pages include the real source, their
diagrams and their quiz, and the vendored JavaScript that makes it all work offline stays small."""

import ast
import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from quizzes.core import available_chapters, load_quiz

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
pytestmark = pytest.mark.xdist_group("site")  # one worker, so the site is built once

CHAPTER_PAGES = sorted(p.stem for p in (DOCS / "chapters").glob("[0-9][0-9].md"))


def text_of(page_html: str) -> str:
    """What a reader sees: tags dropped, entities decoded (highlighted code is split into spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page_html))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out


def page(site: Path, chapter: str) -> str:
    return (site / "chapters" / chapter / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_chapter_1_includes_the_real_source(site):
    seen = text_of(page(site, "01"))
    source = (REPO_ROOT / "chapters" / "01" / "layers.py").read_text(encoding="utf-8")
    rms_norm = next(n for n in ast.parse(source).body if getattr(n, "name", None) == "rms_norm")
    excerpt = "\n".join(source.splitlines()[rms_norm.lineno - 1 : rms_norm.end_lineno])
    assert excerpt in seen  # the whole function, as it is in the file today
    for needle in ("def causal_attention(", "class DecoderLayer(nn.Module):", "def generate(model: CausalLM"):
        assert needle in seen, needle


@pytest.mark.slow
def test_chapter_1_has_its_diagrams_and_math(site):
    body = page(site, "01")
    assert body.count('<pre class="mermaid"><code>') >= 2  # drawn in the browser by mermaid
    assert "flowchart TB" in body
    assert body.count('class="arithmatex"') >= 10  # drawn in the browser by KaTeX
    assert r"\mathrm{RMSNorm}" in body


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTER_PAGES)
def test_chapter_page_has_a_picture_and_no_leftover_markers(site, chapter):
    body = page(site, chapter)
    assert '<pre class="mermaid"><code>' in body or "<img " in body, "a chapter page needs a diagram or a picture"
    assert "--8&lt;--" not in body and "--8<--" not in body, "an include was not resolved"
    assert not re.search(r"<!--\s*(quiz|notebook):", body), "a page marker was not replaced"


@pytest.mark.slow
@pytest.mark.parametrize("chapter", available_chapters())
def test_chapter_page_carries_its_quiz(site, chapter):
    assert chapter in CHAPTER_PAGES, f"quizzes/{chapter}.yaml has no docs/chapters/{chapter}.md to live on"
    body = page(site, chapter)
    quiz = load_quiz(chapter)
    assert f'<div class="quiz" id="quiz-{chapter}" data-chapter="{chapter}"' in body
    assert body.count('class="quiz-question"') == len(quiz.questions)
    for q in quiz.questions:
        assert f'id="quiz-{chapter}-{q.id}"' in body, q.id
    assert "javascripts/quiz.js" in body


@pytest.mark.slow
def test_home_page_and_notebooks(site):
    home = text_of((site / "index.html").read_text(encoding="utf-8"))
    for needle in ("make demo", "make test", "make lab", "make docs", "python -m quizzes", "pytest chapters/NN"):
        assert needle in home, needle
    for notebook in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert (site / "notebooks" / notebook.stem / "index.html").is_file(), f"{notebook.name} is not on the site"


# --- fast checks, no build ---------------------------------------------------------------------

class _AnyTagLoader(yaml.SafeLoader):
    """mkdocs.yml uses !relative and !!python/name tags; read them as plain values."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)
_AnyTagLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def test_extra_assets_exist():
    config = yaml.load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_AnyTagLoader)
    for asset in config["extra_javascript"] + config["extra_css"]:
        assert (DOCS / asset).is_file(), asset


def test_vendored_javascript_is_small():
    files = [p for p in (DOCS / "javascripts" / "vendor").rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total < 3_000_000, f"vendored files take {total / 1e6:.1f} MB; keep them under 3 MB"
    big = [p.name for p in files if p.stat().st_size > 2_000_000]
    assert not big, f"files over 2 MB: {big}"
    assert (DOCS / "javascripts" / "vendor" / "mermaid" / "mermaid.esm.min.mjs").is_file()
    assert (DOCS / "javascripts" / "vendor" / "katex" / "katex.min.js").is_file()


def _hooks():
    spec = importlib.util.spec_from_file_location("course_site_hooks", DOCS / "hooks" / "course_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Page:
    class file:
        src_uri = "chapters/01.md"


def test_include_by_name_follows_the_source():
    hooks = _hooks()
    out = hooks._resolve_symbols('```python\n--8<-- "chapters/01/layers.py:rms_norm"\n```', _Page)
    first, last = map(int, re.search(r'layers\.py:(\d+):(\d+)"', out).groups())
    lines = (REPO_ROOT / "chapters" / "01" / "layers.py").read_text(encoding="utf-8").splitlines()
    assert lines[first - 1].startswith("def rms_norm(") and lines[last - 1].strip().startswith("return")
    method = hooks._resolve_symbols('--8<-- "chapters/01/model.py:DecoderLayer.forward"', _Page)
    assert re.search(r'model\.py:\d+:\d+"$', method)
    untouched = '--8<-- "chapters/01/model.py"\n--8<-- "chapters/01/model.py:3:9"'
    assert hooks._resolve_symbols(untouched, _Page) == untouched
    with pytest.raises(Exception, match="no function or class 'rms_normm'"):
        hooks._resolve_symbols('--8<-- "chapters/01/layers.py:rms_normm"', _Page)
