"""The README's two generated tables, so that neither can drift from the repo:

- `<!-- chapters: start -->` ... `<!-- chapters: end -->`: the learner path, one row per chapter with
  the parts that exist today (page, notebook, exercises, quiz), read from the file system;
- `<!-- results: start -->` ... `<!-- results: end -->`: the measured results, from measurements/*.json
  (course/measurements.py).

`python -m course.readme` rewrites both; `python -m course.readme --check` exits 1 when README.md
is not what they say (tests/test_readme.py runs it, so a new chapter or a new measurement shows up
as a failing test until the README is regenerated).
"""

import argparse
import re
import sys

from course import measurements
from course.paths import REPO_ROOT

README = REPO_ROOT / "README.md"

# The syllabus, in order. A chapter's row says which of its parts exist.
TOPICS = {
    "01": "naive generate",
    "02": "KV cache",
    "03": "paged KV blocks",
    "04": "scheduler",
    "05": "prefill/decode split, chunked prefill",
    "06": "prefix cache",
    "07": "sampling",
    "08": "tensor parallelism",
    "09": "Triton kernels and CUDA graphs",
    "10": "FP8 KV cache",
    "11": "benchmarks",
}
PARTS = {
    "page": lambda nn: (REPO_ROOT / "docs" / "chapters" / f"{nn}.md").is_file(),
    "notebook": lambda nn: any((REPO_ROOT / "notebooks").glob(f"{nn}_*.ipynb")),
    "exercises": lambda nn: (REPO_ROOT / "chapters" / nn / "exercises.py").is_file(),
    "quiz": lambda nn: (REPO_ROOT / "quizzes" / f"{nn}.yaml").is_file(),
}


def chapter_status(nn: str) -> str:
    present = [part for part, exists in PARTS.items() if exists(nn)]
    if len(present) == len(PARTS):
        return "written: " + ", ".join(present)
    if present:
        return "being written: " + ", ".join(present)
    return "not written yet"


def chapter_table() -> str:
    rows = ["| ch | topic | status |", "|---|---|---|"]
    rows += [f"| {nn} | {topic} | {chapter_status(nn)} |" for nn, topic in TOPICS.items()]
    return "\n".join(rows) + "\n"


BLOCKS = {"chapters": chapter_table, "results": measurements.readme_results}


def _block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}: start -->\n)(.*?)(<!-- {name}: end -->)", re.S)


def generated(text: str, name: str) -> str:
    """What README.md holds in the block `name` now."""
    m = _block(name).search(text)
    if not m:
        raise ValueError(f"README.md has no `<!-- {name}: start -->` ... `<!-- {name}: end -->` block")
    return m[2]


def stale_blocks(text: str) -> list[str]:
    return [name for name, make in BLOCKS.items() if generated(text, name) != make()]


def write(text: str) -> str:
    for name, make in BLOCKS.items():
        generated(text, name)  # the block must exist
        text = _block(name).sub(lambda m: m[1] + make() + m[3], text, count=1)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's generated tables are stale")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    if args.check:
        stale = stale_blocks(text)
        if stale:
            print(f"README.md's {', '.join(stale)} table is stale; run `python -m course.readme`", file=sys.stderr)
            return 1
        return 0
    README.write_text(write(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
