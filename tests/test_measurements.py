"""Measured numbers have one source: measurements/*.json. Every file is complete and consistent,
the README's results table is what the files say, and no page, notebook or the README types a
GPU number that should have been included from a file."""

import json
import re
import statistics

import pytest

from course import measurements, readme
from course.measurements import MeasurementError, evaluate, fmt, load, names, render_markers
from course.paths import REPO_ROOT

FILES = names()
PERFORMANCE_PAGES = [REPO_ROOT / "docs" / "performance.md"]  # every number with a unit here is a GPU measurement
# A number with a unit that only a GPU measurement gives here; "datasheet" numbers are published, not measured.
GPU_UNIT = r"(?:TB/s|TFLOP/s|tok/s|tokens/s|output tokens/s)"
ANY_UNIT = r"(?:µs|us|ms|s|TB/s|GB/s|TFLOP/s|tok/s|tokens/s|GB|MB)"
NUMBER = r"\d[\d,]*(?:\.\d+)?"
GPU = re.compile(r"\b(?:H100|H200|GPU|CUDA|Hopper)\b")


def test_there_are_measurement_files():
    assert {"bench_h200", "kernels_h200"} <= set(FILES), FILES


@pytest.mark.parametrize("name", FILES)
def test_a_file_says_where_its_numbers_came_from(name):
    data = load(name)
    for key in ("title", "command", "date"):
        assert isinstance(data[key], str) and data[key].strip(), f"measurements/{name}.json: {key} is empty"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", data["date"]), f"measurements/{name}.json: date {data['date']!r} is not YYYY-MM-DD"
    assert data["machine"] and data["versions"], f"measurements/{name}.json: say the machine and the versions"
    assert measurements.table(name).count("\n") >= 2, "a file renders as a table of at least one row"


@pytest.mark.parametrize("name", [n for n in FILES if load(n)["kind"] == "bench"])
def test_a_median_is_the_median_of_its_runs(name):
    for label, run in load(name)["values"].items():
        assert run["median"] == statistics.median(run["tokens_per_s"]), f"measurements/{name}.json: {label}"


def test_the_readme_results_table_is_what_the_files_say():
    block = readme.generated(readme.README.read_text(encoding="utf-8"), "results")
    assert block == measurements.readme_results(), "README.md's results table is stale; run `python -m course.readme`"
    for name in measurements.results():
        for run in load(name)["values"].values():
            assert fmt(run["median"]) in block


def test_markers_render_numbers_arithmetic_and_formats():
    assert evaluate("bench_h200", "fp8.median") == load("bench_h200")["values"]["fp8"]["median"]
    median = load("bench_h200")["values"]["bf16"]["median"]
    out = render_markers("a <!-- measured: bench_h200 bf16.median --> b "
                         "<!-- measured: bench_h200 2 * bf16.median / 1e3 | .1f --> c")
    assert out == f"a {median:,} b {2 * median / 1e3:.1f} c"
    assert "| --- |" in render_markers("<!-- measured-table: bench_h200 -->")
    assert "measurements/bench_h200.json" in render_markers("<!-- measured-source: bench_h200 -->")


def test_markers_reach_keys_with_spaces_and_sections_beside_values():
    data = load("ch11_gpu")
    tf = data["values"]["transformers (continuous batching)"]["median"]
    bound = data["roofline"]["bf16, this GPU, measured copy"]["output_tokens_per_s"]
    assert evaluate("ch11_gpu", 'values["transformers (continuous batching)"].median') == tf
    assert evaluate("ch11_gpu", 'bf16.median / roofline["bf16, this GPU, measured copy"].output_tokens_per_s') == \
        data["values"]["bf16"]["median"] / bound
    assert evaluate("bench_h200", "bf16.tokens_per_s[0]") == load("bench_h200")["values"]["bf16"]["tokens_per_s"][0]
    with pytest.raises(MeasurementError, match="no 'command'"):  # the file's provenance is no section of numbers
        evaluate("ch11_gpu", "command.x")


@pytest.mark.parametrize("marker, complaint", [
    ("<!-- measured: no_such_file x -->", "no measurement file"),
    ("<!-- measured: bench_h200 fp9.median -->", "no 'fp9'"),
    ("<!-- measured: bench_h200 __import__('os') -->", "only key paths"),
    ("<!-- measured: bench_h200 fp8 -->", "'fp8' is not a number (inside: tokens_per_s, median"),
])
def test_a_bad_marker_says_what_is_wrong(marker, complaint):
    with pytest.raises(MeasurementError, match=re.escape(complaint)):
        render_markers(marker, "docs/x.md")


def _paragraphs(text: str) -> list[str]:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)  # markers (and comments) render from the files
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _typed_gpu_numbers(text: str, strict: bool) -> list[str]:
    """Numbers with a unit that a paragraph about a GPU states by hand. `strict`: any number with
    a unit counts (a page about GPU performance)."""
    found = []
    for paragraph in _paragraphs(text):
        if "datasheet" in paragraph.lower():
            continue
        if strict:
            found += re.findall(rf"(?<![\w.-]){NUMBER}\s?{ANY_UNIT}\b", paragraph)
        elif GPU.search(paragraph):
            found += re.findall(rf"(?<![\w.-]){NUMBER}\s?{GPU_UNIT}", paragraph)
    return found


def _texts():
    """(where, text, strict) for every page, the README outside its generated block, and every
    notebook cell."""
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        yield str(page.relative_to(REPO_ROOT)), page.read_text(encoding="utf-8"), page in PERFORMANCE_PAGES
    text = readme.README.read_text(encoding="utf-8")
    yield "README.md", text.replace(readme.generated(text, "results"), ""), False
    for notebook in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "code":  # only what its strings print
                source = "\n\n".join(re.findall(r"\"[^\"\n]*\"|'[^'\n]*'", source))
            yield f"{notebook.relative_to(REPO_ROOT)} cell {i}", source, False


def test_no_page_types_a_gpu_number():
    typed = {where: found for where, text, strict in _texts() if (found := _typed_gpu_numbers(text, strict))}
    assert not typed, (
        "these numbers about a GPU are typed by hand; put them in measurements/*.json and include them "
        f"(`<!-- measured: FILE KEY -->` on a page, course.measurements.value in a notebook): {typed}")


def test_the_scan_finds_a_typed_number():
    assert _typed_gpu_numbers("On the H200 the engine makes 20,876 output tokens/s.", strict=False) == ["20,876 output tokens/s"]
    assert _typed_gpu_numbers("A layer takes 99.2 µs.", strict=True) == ["99.2 µs"]
    assert not _typed_gpu_numbers("On the H200 it makes <!-- measured: bench_h200 bf16.median --> tokens/s.", strict=False)
    assert not _typed_gpu_numbers("NVIDIA's datasheet: 4.8 TB/s on the H200.", strict=False)
