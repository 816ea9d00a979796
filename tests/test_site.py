"""The course site: `mkdocs build --strict` passes, chapter pages include the real source, their
diagrams, quiz and interactive visual (drawn and clicked in headless Chromium), and the vendored
JavaScript that makes it all work offline stays small."""

import ast
import html
import importlib.util
import json
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


def jupyter_path() -> str:
    """JUPYTER_PATH with the base interpreter's share/jupyter added: in a venv made with
    --system-site-packages, nbconvert's templates (mkdocs-jupyter renders notebooks with them) lie
    there, where jupyter does not look by itself."""
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    return os.pathsep.join(paths + [str(Path(sys.base_prefix) / "share" / "jupyter")])


def test_the_site_tests_share_one_xdist_worker(request):
    """make test's --dist loadgroup sends every test of an xdist_group to one worker (which then
    builds the site once); it marks them by suffixing their ids, which a pytest/xdist pairing can
    silently stop doing."""
    if request.config.getoption("dist", "no") == "loadgroup" or os.environ.get("PYTEST_XDIST_WORKER"):
        if getattr(request.config.option, "loadgroup", False):
            assert request.node.nodeid.endswith("@site"), (
                f"{request.node.nodeid}: no @site suffix, so --dist loadgroup spreads this group over every worker; "
                "pyproject.toml's pins of pytest and pytest-xdist say which versions work together")


# Session scope: xdist's loadgroup sends every test here to one worker but may interleave them with
# other files' tests, and a module-scoped fixture would then be torn down and the site built again.
@pytest.fixture(scope="session")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "JUPYTER_PATH": jupyter_path()},
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out


def page(site: Path, chapter: str) -> str:
    return (site / "chapters" / chapter / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_chapter_1_includes_the_real_source(site):
    seen = text_of(page(site, "01"))
    source = (REPO_ROOT / "chapters" / "01" / "solutions.py").read_text(encoding="utf-8")
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
        rendered = (site / "notebooks" / notebook.stem / "index.html").read_text(encoding="utf-8")
        pictures = sorted(p.name for p in (DOCS / "assets" / "notebooks").glob(f"{notebook.stem}-*.png"))
        missing = [name for name in pictures if f"assets/notebooks/{name}" not in rendered]
        assert not missing, f"the site's {notebook.name} does not show its pictures {missing}"
        assert all((site / "assets" / "notebooks" / name).is_file() for name in pictures)


@pytest.mark.slow
def test_measured_numbers_reach_the_pages(site):
    from course.measurements import fmt, load

    performance = text_of((site / "performance" / "index.html").read_text(encoding="utf-8"))
    for name in ("bench_h200", "bench_h200_second"):
        for run in load(name)["values"].values():
            assert fmt(run["median"]) in performance
    assert "measurements/bench_h200.json" in performance  # the source line: machine, versions, date, command
    for built in site.rglob("*.html"):
        assert not re.search(r"<!--\s*measured", built.read_text(encoding="utf-8")), f"{built}: a measured marker was left"


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
    out = hooks._resolve_symbols('```python\n--8<-- "chapters/01/solutions.py:rms_norm"\n```', _Page)
    first, last = map(int, re.search(r'solutions\.py:(\d+):(\d+)"', out).groups())
    lines = (REPO_ROOT / "chapters" / "01" / "solutions.py").read_text(encoding="utf-8").splitlines()
    assert lines[first - 1].startswith("def rms_norm(") and lines[last - 1].strip().startswith("return")
    method = hooks._resolve_symbols('--8<-- "chapters/01/model.py:DecoderLayer.forward"', _Page)
    assert re.search(r'model\.py:\d+:\d+"$', method)
    untouched = '--8<-- "chapters/01/model.py"\n--8<-- "chapters/01/model.py:3:9"'
    assert hooks._resolve_symbols(untouched, _Page) == untouched
    with pytest.raises(Exception, match="no function or class 'rms_normm'"):
        hooks._resolve_symbols('--8<-- "chapters/01/layers.py:rms_normm"', _Page)


# --- the interactive visuals, drawn and clicked in headless Chromium ---------------------------

def _visual_names(site: Path, chapter: str) -> list[str]:
    return re.findall(r'<div class="visual" id="visual-([\w-]+)"', page(site, chapter))


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTER_PAGES)
def test_chapter_page_embeds_its_visual(site, chapter):
    if not (DOCS / "javascripts" / "visuals" / f"ch{chapter}.js").is_file():
        pytest.skip(f"chapter {chapter} has no interactive visual yet (docs/javascripts/visuals/ch{chapter}.js)")
    names = _visual_names(site, chapter)
    assert names == [f"ch{chapter}"], f"chapter {chapter} should embed one visual, <!-- visual: ch{chapter} -->"
    body = page(site, chapter)
    assert "javascripts/visuals/core.js" in body and f"javascripts/visuals/ch{chapter}.js" in body


@pytest.fixture(scope="session")
def browser(site):
    """Chromium on the built site, served over HTTP as `make docs` serves it."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from course.headless import Chromium, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium to draw the visuals in (Debian: apt-get install chromium)")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(site)))
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Chromium(width=1280, height=900) as chromium:  # a laptop's screen
            chromium.base = f"http://127.0.0.1:{server.server_address[1]}"
            chromium.site = site
            yield chromium
    finally:
        server.shutdown()
        server.server_close()


def visual_page(site: Path, chapter: str) -> str:
    """The site path that shows chapter NN's visual: its chapter page, or, while the chapter has no
    page yet, a preview: chapter 3's page with its article replaced by the visual alone."""
    if chapter in CHAPTER_PAGES:
        return f"chapters/{chapter}/"
    hooks = _hooks()

    class Preview:
        url = f"chapters/preview-{chapter}/"

        class file:
            src_uri = f"chapters/preview-{chapter}.md"

    embed = hooks._visuals(f"<h1>Chapter {chapter}'s visual</h1>\n<!-- visual: ch{chapter} -->", Preview)
    body = re.sub(r'(<article class="md-content__inner md-typeset">).*?(</article>)', lambda m: m[1] + embed + m[2],
                  page(site, "03"), count=1, flags=re.S)
    (site / Preview.url).mkdir(parents=True, exist_ok=True)
    (site / Preview.url / "index.html").write_text(body, encoding="utf-8")
    return Preview.url


def open_visual(browser, chapter: str) -> str:
    """Load the visual's page; return the visual's selector once it has drawn, without errors."""
    browser.console.clear()
    browser.open(f"{browser.base}/{visual_page(browser.site, chapter)}")
    root = f"#visual-ch{chapter}"
    state = browser.js(f"""(() => {{ const el = document.querySelector('{root}');
        return el && {{mounted: el.dataset.mounted, error: !!el.querySelector('.visual__error'),
                       fallback: !!el.querySelector('.visual__fallback'), height: el.offsetHeight}}; }})()""")
    assert state and state["mounted"] == "1" and not state["error"] and not state["fallback"], state
    assert state["height"] > 200, f"the visual is only {state['height']} px high"
    errors = [m for m in browser.console if m.startswith("exception")]
    assert not errors, errors
    return root


def text(browser, selector: str) -> str:
    return browser.js(f"document.querySelector({selector!r}).textContent")


def click(browser, selector: str, times: int = 1) -> None:
    browser.js(f"for (let i = 0; i < {times}; i++) document.querySelector({selector!r}).click()")


def move_slider(browser, selector: str, value) -> None:
    browser.js(f"""(() => {{ const el = document.querySelector({selector!r}); el.value = {json.dumps(str(value))};
        el.dispatchEvent(new Event('input', {{bubbles: true}})); }})()""")


def keep_screenshot(browser, root: str, name: str) -> None:
    """$VISUAL_SCREENSHOTS=DIR keeps a PNG of each visual there, to look at."""
    folder = os.environ.get("VISUAL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.screenshot(Path(folder) / f"{name}.png", root)


@pytest.mark.slow
def test_chapter_1_visual_steps_through_the_generation(browser):
    root = open_visual(browser, "01")
    data = json.loads((DOCS / "assets" / "visuals" / "ch01.json").read_text(encoding="utf-8"))
    assert text(browser, f"{root} [data-figure=step]") == "step 1 of 20"
    assert text(browser, f"{root} [data-figure=positions]") == "5"
    bars = f"Array.from(document.querySelectorAll('{root} rect[data-token]'), r => [r.dataset.token, +r.getAttribute('width')])"
    first = browser.js(bars)
    assert [t for t, _ in first] == [t for t, _ in data["steps"][0]["top"]]
    assert first[0][1] > 10 * first[1][1]  # " Paris" at 77% dwarfs " the" at 6.5%
    keep_screenshot(browser, root, "ch01-step1")
    click(browser, f"{root} [data-action=next]", 3)
    assert text(browser, f"{root} [data-figure=step]") == "step 4 of 20"
    assert text(browser, f"{root} [data-figure=positions]") == "8"
    assert text(browser, f"{root} [data-figure=total]") == str(5 + 6 + 7 + 8)
    assert [t for t, _ in browser.js(bars)] == [t for t, _ in data["steps"][3]["top"]]
    click(browser, f"{root} [data-action=next]", 30)  # stops at the last step
    assert text(browser, f"{root} [data-figure=step]") == "step 20 of 20"
    assert text(browser, f"{root} [data-figure=total]") == "290"  # the page's count
    keep_screenshot(browser, root, "ch01-step20")


@pytest.mark.slow
def test_chapter_2_visual_follows_the_model_and_the_length(browser):
    root = open_visual(browser, "02")
    assert "= 23,040 bytes" in text(browser, f"{root} [data-figure=formula]")
    assert text(browser, f"{root} [data-figure=seq-bytes]") == "22.5 MiB"  # 1,024 tokens
    keep_screenshot(browser, root, "ch02-smollm2")
    click(browser, f"{root} button[data-value='Qwen3-0.6B']")
    assert "= 114,688 bytes (112 KiB)" in text(browser, f"{root} [data-figure=formula]")
    lengths = browser.js(f"+document.querySelector('{root} input[name=length]').max")
    move_slider(browser, f"{root} input[name=length]", lengths)  # the longest context, 40,960 tokens
    assert text(browser, f"{root} [data-figure=positions]") == "40,960"
    assert text(browser, f"{root} [data-figure=seq-bytes]") == "4.38 GiB"  # the page's 4.375 GiB
    move_slider(browser, f"{root} input[name=length]", 0)
    assert text(browser, f"{root} [data-figure=positions]") == "1"
    assert text(browser, f"{root} [data-figure=ratio]") == "1×"  # one token: nothing to save yet
    click(browser, f"{root} button[data-value='Llama-3.1-8B']")
    assert "(128 KiB)" in text(browser, f"{root} [data-figure=formula]")
    keep_screenshot(browser, root, "ch02-llama")


@pytest.mark.slow
def test_chapter_3_visual_takes_and_frees_blocks(browser):
    root = open_visual(browser, "03")
    data = json.loads((DOCS / "assets" / "visuals" / "ch03.json").read_text(encoding="utf-8"))
    tables = f"Object.fromEntries(Array.from(document.querySelectorAll('{root} tr[data-seq]'), r => [r.dataset.seq, r.querySelector('.visual__table').textContent]))"
    expected = {k: f"[{', '.join(map(str, v))}]" for k, v in data["example_states"][-1]["tables"].items()}
    assert browser.js(tables) == expected  # opens on the example, as ch03.BlockManager ran it
    keep_screenshot(browser, root, "ch03-example")
    free = data["example_states"][-1]["free"]
    click(browser, f"{root} [data-action=add]")  # a 6-token prompt: two blocks from the left of the free list
    assert browser.js(tables)["4"] == f"[{free[0]}, {free[1]}]"
    click(browser, f"{root} tr[data-seq='0'] button[title='deallocate']")
    assert "0" not in browser.js(tables)
    assert text(browser, f"{root} .visual__log").startswith("Sequence A finished: blocks 6, 1, 0")
    used = lambda: text(browser, f"{root} [data-figure=used]")  # noqa: E731
    assert used() == f"{16 - len(free) + 2 - 3} / 16"
    for _ in range(20):  # fill the pool until an add is refused
        click(browser, f"{root} [data-action=add]")
    assert browser.js(f"document.querySelector('{root} .visual__log').classList.contains('visual__log--refused')")
    assert "Refused" in text(browser, f"{root} .visual__log")
    click(browser, f"{root} [data-action=reset]")
    assert used() == "0 / 16"
    keep_screenshot(browser, root, "ch03-after-clicks")


@pytest.mark.slow
def test_chapter_4_visual_compares_static_and_continuous_batching(browser):
    root = open_visual(browser, "04")
    figure = lambda name: text(browser, f"{root} [data-figure={name}]")  # noqa: E731
    assert browser.js(f"document.querySelectorAll('{root} svg[data-chart]').length") == 2
    before = (figure("static-steps"), figure("continuous-steps"), figure("static-utilisation"), figure("continuous-utilisation"))
    assert int(before[1]) <= int(before[0])  # continuous batching never ends later on these settings
    assert int(before[3].rstrip("%")) > int(before[2].rstrip("%"))
    keep_screenshot(browser, root, "ch04-default")
    cells = f"document.querySelectorAll('{root} svg[data-chart] rect').length"
    drawn = browser.js(cells)
    move_slider(browser, f"{root} input[name=spread]", 0)  # every output the same length
    move_slider(browser, f"{root} input[name=rate]", browser.js(f"+document.querySelector('{root} input[name=rate]').max"))
    after = (figure("static-steps"), figure("continuous-steps"))
    assert after != before[:2] and browser.js(cells) != drawn
    assert text(browser, f"{root} input[name=rate] + output") == "all at once"
    click(browser, f"{root} [data-action=redraw]")
    keep_screenshot(browser, root, "ch04-burst")


@pytest.mark.slow
def test_chapter_7_visual_filters_real_logits(browser):
    """The visual's figures are ch07's sampler's on the whole vocabulary (no tail left out)."""
    import torch

    from ch07 import sampler
    from course import visual_data

    data = json.loads((visual_data.OUT_DIR / "ch07.json").read_text(encoding="utf-8"))
    logits = torch.tensor([visual_data.ch07_logits(data["prompts"][0])], dtype=torch.float64)

    def sampled(t, p):  # (tokens kept, entropy in bits, the top token's probability) by ch07's sampler
        probs = sampler.filtered_probs(logits / t, torch.tensor([-1]), torch.tensor([p], dtype=torch.float64),
                                       torch.tensor([0.0], dtype=torch.float64))[0]
        q = probs[probs > 0]
        return f"{len(q):,}", f"{float(-(q * q.log2()).sum()):.2f} bits", f"{100 * float(q.max()):.1f}%"

    root = open_visual(browser, "07")
    figure = lambda name: text(browser, f"{root} [data-figure={name}]")  # noqa: E731
    kept, _, top = sampled(1.0, 1.0)
    assert figure("kept") == f"all {kept}" and kept == f"{data['vocab_size']:,}"
    assert figure("top") == top  # " Paris", of the whole vocabulary
    move_slider(browser, f"{root} input[name=temperature]", 1.5)
    move_slider(browser, f"{root} input[name=top_p]", 0.9)
    kept, entropy, top = sampled(1.5, 0.9)  # the tail at T = 1.5: thousands of tokens share the last 10%
    assert (figure("kept"), figure("entropy"), figure("top")) == (kept, entropy, top)
    move_slider(browser, f"{root} input[name=temperature]", 1)
    move_slider(browser, f"{root} input[name=top_p]", 1)
    move_slider(browser, f"{root} input[name=top_k]", 5)
    assert figure("kept") == "5"
    move_slider(browser, f"{root} input[name=top_p]", 0.5)
    assert figure("kept") == "1"  # " Paris" alone holds more than half
    move_slider(browser, f"{root} input[name=top_p]", 1)
    move_slider(browser, f"{root} input[name=temperature]", 0)
    assert figure("top") == "100.0%" and figure("entropy") == "0.00 bits"
    click(browser, f"{root} button[data-value^='Once upon']")
    move_slider(browser, f"{root} input[name=temperature]", 1)
    move_slider(browser, f"{root} input[name=top_k]", 0)
    move_slider(browser, f"{root} input[name=min_p]", 0.1)
    kept = int(figure("kept").replace(",", ""))
    assert 5 < kept < 400
    click(browser, f"{root} [data-action=draw]")
    assert "of 100" in browser.js(f"document.querySelector('{root} svg').textContent")
    keep_screenshot(browser, root, "ch07-min-p")


@pytest.mark.slow
def test_chapter_5_visual_moves_points_on_the_roofline(browser):
    root = open_visual(browser, "05")
    figure = lambda name: text(browser, f"{root} [data-figure={name}]")  # noqa: E731
    assert figure("chunks") == "5"  # 8,192 tokens, 2,048 - 32 per step
    points = f"Array.from(document.querySelectorAll('{root} circle[data-point]'), c => c.getAttribute('cx'))"
    before = browser.js(points)
    assert len(before) == 3
    keep_screenshot(browser, root, "ch05-default")
    move_slider(browser, f"{root} input[name=budget]", browser.js(f"+document.querySelector('{root} input[name=budget]').max"))
    assert figure("chunks") == "1" and browser.js(points) != before  # 16,384 tokens: the prompt fits in one step
    move_slider(browser, f"{root} input[name=budget]", 0)
    move_slider(browser, f"{root} input[name=batch]", browser.js(f"+document.querySelector('{root} input[name=batch]').max"))
    assert figure("chunks") == "never" and len(browser.js(points)) == 2  # 512 decodes fill a budget of 256
    keep_screenshot(browser, root, "ch05-full-budget")


# --- the quizzes in the browser: grading, "Show the answer", the best score and the home page ----

def answer_question(browser, chapter: str, question, reply) -> str:
    """Type or tick `reply` in one question of the page's quiz, press Check; return the verdict."""
    return browser.js(f"""(() => {{
        const li = document.querySelector('#quiz-{chapter}-{question.id}');
        const reply = {json.dumps(reply)};
        if (li.dataset.type === 'numeric') li.querySelector('input').value = String(reply);
        else li.querySelectorAll('input').forEach(el => {{ el.checked = [].concat(reply).includes(el.value); }});
        li.querySelector('.quiz-check').click();
        return li.querySelector('.quiz-verdict').textContent; }})()""")


def right_reply(question):
    return question.answer if question.type == "numeric" else list(question.answer)


@pytest.mark.slow
def test_quiz_keeps_its_best_score_and_shows_a_numeric_answer(browser):
    from quizzes.html import number_text

    chapter = "02"
    quiz = load_quiz(chapter)
    url = f"{browser.base}/chapters/{chapter}/"
    browser.open(url)
    browser.js("localStorage.clear()")
    browser.open(url)
    assert browser.js("document.querySelector('.quiz-best').hidden"), "no best score before any quiz was taken"

    numeric = next(q for q in quiz.questions if q.type == "numeric")
    assert answer_question(browser, chapter, numeric, numeric.answer * 3 + 7).startswith("Not quite")
    reveal = f"#quiz-{chapter}-{numeric.id} .quiz-reveal"
    assert not browser.js(f"document.querySelector({reveal!r}).hidden"), "a wrong number offers 'Show the answer'"
    click(browser, reveal)
    shown = browser.js(f"(() => {{ const el = document.querySelector('#quiz-{chapter}-{numeric.id} .quiz-answer');"
                       " return el.hidden ? null : el.textContent; })()")
    assert shown and number_text(numeric.answer) in shown, shown
    assert "scores nothing" in answer_question(browser, chapter, numeric, numeric.answer)  # shown, so no point

    percent = next(q for q in quiz.questions if q.unit == "%")
    assert answer_question(browser, chapter, percent, f"{percent.answer:.1f}%") == "Right."
    stored = browser.js(f"JSON.parse(localStorage.getItem('nanovllm-course:quiz:{chapter}'))")
    assert stored == {"best": 1, "total": len(quiz.questions), "passed": False}, stored

    browser.open(url)  # a reload: the page forgets the answers, the browser keeps the best score
    best = browser.js("(() => { const el = document.querySelector('.quiz-best'); return el.hidden ? null : el.textContent; })()")
    assert best and f"1 / {len(quiz.questions)}" in best, best
    for q in quiz.questions:
        assert answer_question(browser, chapter, q, right_reply(q)) == "Right.", q.id
    assert text(browser, f"#quiz-{chapter} .quiz-score__value") == str(len(quiz.questions))
    assert browser.js(f"JSON.parse(localStorage.getItem('nanovllm-course:quiz:{chapter}')).passed") is True

    browser.open(f"{browser.base}/")
    assert text(browser, ".course-progress__summary") == "Quizzes passed: 1 of 11."
    cells = browser.js("Array.from(document.querySelectorAll('.course-progress__chapter'), el => [el.dataset.chapter, el.className])")
    assert len(cells) == 11
    assert [c for c, cls in cells if cls.endswith("--passed")] == [chapter]
    browser.js("localStorage.clear()")


@pytest.mark.slow
def test_chapter_10_visual_rounds_to_fp8(browser):
    root = open_visual(browser, "10")
    figure = lambda name: text(browser, f"{root} [data-figure={name}]")  # noqa: E731
    assert figure("bits") == "0 1011 111"  # 0.3 / 0.01 = 30 = 1.875 * 2^4: exponent 4 + 7 = 0b1011, mantissa 7/8
    assert figure("back") == "0.3"
    move_slider(browser, f"{root} input[name=value]", 0.297)  # 29.7: between 28 and 30, nearer 30
    assert figure("back") == "0.3" and "%" in figure("error")
    move_slider(browser, f"{root} input[name=value]", -4)
    assert figure("bits") == "1 1111 100" and figure("back") == "-3.84"  # -400: midway from 384 to 416, to the even 384
    move_slider(browser, f"{root} input[name=scale]", 0)  # scale 0.001: -4000 saturates at -448
    assert figure("back") == "-0.448"
    assert figure("clipped") == "0" and float(figure("vec-top")) <= 28  # the engine's scale: the prompt's largest |x| at 448 / 16
    move_slider(browser, f"{root} input[name=stretch]", 0)  # 1/64 of it: the largest |x| at 28 * 64, past 448
    assert int(figure("clipped")) > 0
    keep_screenshot(browser, root, "ch10-clipping")


@pytest.mark.slow
def test_chapter_8_visual_splits_the_weights(browser):
    root = open_visual(browser, "08")
    figure = lambda name: text(browser, f"{root} [data-figure={name}]")  # noqa: E731
    assert figure("params") == "298,057,728"  # Qwen3-0.6B on 2 ranks, as chapter 8 builds it
    assert figure("heads") == "8 query heads, 4 KV heads"
    stripes = f"new Set(Array.from(document.querySelectorAll('{root} rect[data-rank]'), r => r.dataset.rank)).size"
    assert browser.js(stripes) == 2
    move_slider(browser, f"{root} input[name=tp]", 3)  # 8 ranks
    assert figure("heads") == "2 query heads, 1 KV head" and browser.js(stripes) == 8
    keep_screenshot(browser, root, "ch08-eight-ranks")
    move_slider(browser, f"{root} input[name=tp]", 0)
    assert figure("traffic") == "0 bytes"


@pytest.mark.slow
def test_chapter_6_visual_steps_through_the_prefix_cache(browser):
    root = open_visual(browser, "06")
    data = json.loads((DOCS / "assets" / "visuals" / "ch06.json").read_text(encoding="utf-8"))
    figure = lambda name: text(browser, f"{root} [data-figure={name}]")  # noqa: E731
    assert figure("event") == f"event 1 of {len(data['events'])}" and figure("hit") == "0"
    click(browser, f"{root} [data-action=next]")  # B shares A's system prompt block
    assert figure("hit") == str(data["events"][1]["hit"]) != "0"
    shared = f"Array.from(document.querySelectorAll('{root} rect[data-node].visual__bar-b'), r => r.dataset.node)"
    assert browser.js(shared) == [str(data["events"][1]["tables"]["A"][0])]
    click(browser, f"{root} [data-action=next]", 2)  # A finishes; C asks A's question again
    assert figure("hit") == str(data["events"][3]["hit"])
    keep_screenshot(browser, root, "ch06-revived")


@pytest.mark.slow
def test_chapter_11_visual_shows_the_measurement_files(browser):
    root = open_visual(browser, "11")
    data = json.loads((DOCS / "assets" / "visuals" / "ch11.json").read_text(encoding="utf-8"))
    bars = f"Array.from(document.querySelectorAll('{root} [data-bar]'), b => b.getAttribute('data-bar'))"
    assert len(browser.js(bars)) == len(data["staircase"]["values"])  # one bar per engine
    click(browser, f"{root} button[data-value='latency vs throughput']")
    assert len(browser.js(f"Array.from(document.querySelectorAll('{root} circle[data-rate]'))")) == len(data["online"]["values"])
    click(browser, f"{root} button[data-value='GPU and the roofline']")
    width = f"+document.querySelector('{root} rect[data-bar=\"roofline bound, bf16 KV\"]').getAttribute('width')"
    before = browser.js(width)
    move_slider(browser, f"{root} input[name=bandwidth]", 8)
    assert browser.js(width) > before  # a faster memory raises the bound
    if data["gpu"] is None:
        assert "not yet measured" in text(browser, root)
    keep_screenshot(browser, root, "ch11-gpu")
