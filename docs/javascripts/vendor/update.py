"""Refresh the vendored JavaScript that lets the site draw diagrams and math offline.

    python docs/javascripts/vendor/update.py            # versions pinned below
    python docs/javascripts/vendor/update.py --mermaid 11.17.2 --katex 0.19.1

The site must work with no network: Material for MkDocs would fetch mermaid from a CDN, and
MathJax/KaTeX are not bundled with it. So we keep a small copy here, fetched with `npm pack`:

- KaTeX: katex.min.js, contrib/auto-render.min.js, katex.min.css and its .woff2 fonts (~0.6 MB).
- mermaid: the ES-module build's core and only the diagram types a course page is likely to use
  (flowchart, sequence, state, class, gantt, xychart, block, timeline) with the dagre layout
  (~1.2 MB of the 20 MB package). Another diagram type needs its name added to DIAGRAMS.

Keeps the whole folder under 3 MB and every file under 2 MB (tests/test_site.py checks).
"""

import argparse
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIAGRAMS = ("flowDiagram", "sequenceDiagram", "stateDiagram", "classDiagram", "ganttDiagram",
            "xychartDiagram", "blockDiagram", "timeline-definition")
LAYOUTS = ("dagre", "sizeCapture")  # lazily imported by the core; the other layouts are large
STATIC = re.compile(r'(?:from|import)\s*"(\./[^"]+\.mjs)"')
DYNAMIC = re.compile(r'import\("(\./[^"]+\.mjs)"\)')


def npm_pack(spec: str, into: Path) -> Path:
    out = subprocess.run(["npm", "pack", spec, "--json", "--silent"], cwd=into, check=True,
                         capture_output=True, text=True).stdout
    tgz = into / json.loads(out)[0]["filename"]
    dest = into / tgz.stem
    with tarfile.open(tgz) as tar:
        tar.extractall(dest, filter="data")
    return dest / "package"


def module_closure(start: Path, wanted) -> set[Path]:
    """Every .mjs file `start` needs: its static imports, and the dynamic ones `wanted` accepts."""
    seen, stack = set(), [start]
    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        src = f.read_text()
        stack += [(f.parent / r).resolve() for r in STATIC.findall(src)]
        stack += [(f.parent / r).resolve() for r in DYNAMIC.findall(src) if wanted(Path(r).name)]
    return seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid", default="11.17.2")
    parser.add_argument("--katex", default="0.19.1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        katex = npm_pack(f"katex@{args.katex}", tmp)
        mermaid = npm_pack(f"mermaid@{args.mermaid}", tmp)

        out = HERE / "katex"
        shutil.rmtree(out, ignore_errors=True)
        (out / "fonts").mkdir(parents=True)
        for name in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js"):
            shutil.copy(katex / "dist" / name, out / Path(name).name)
        for font in (katex / "dist" / "fonts").glob("*.woff2"):
            shutil.copy(font, out / "fonts" / font.name)
        shutil.copy(katex / "LICENSE", out / "LICENSE")

        dist = (mermaid / "dist").resolve()
        wanted = lambda name: name.startswith(DIAGRAMS + LAYOUTS)  # noqa: E731
        files = module_closure(dist / "mermaid.esm.min.mjs", wanted)
        out = HERE / "mermaid"
        shutil.rmtree(out, ignore_errors=True)
        for f in files:
            target = out / f.relative_to(dist)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
        shutil.copy(mermaid / "LICENSE", out / "LICENSE")
        (HERE / "VERSIONS.txt").write_text(
            f"katex {args.katex}\nmermaid {args.mermaid} (diagrams: {', '.join(DIAGRAMS)})\n"
            "Both MIT-licensed. Refresh with: python docs/javascripts/vendor/update.py\n"
        )
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    biggest = max((p for p in HERE.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    print(f"vendored {total / 1e6:.2f} MB; largest file {biggest.name} {biggest.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
