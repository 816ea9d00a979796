"""Run the chapter notebooks and save their pictures for the course site.

The notebooks are committed with their outputs stripped, and the site does not run them (a build
would take minutes), so the pictures a chapter page shows are made here, once, and committed:

    .venv/bin/python notebooks/export_pictures.py          # every notebook, a few minutes on a CPU
    .venv/bin/python notebooks/export_pictures.py 02       # only notebooks/02_*.ipynb

Each picture a code cell draws becomes docs/assets/notebooks/<notebook>-<cell id>.png (with a
number after the id when a cell draws more than one), so a page refers to it by the cell's stable
id. Pictures of cells that time something show this computer's times. Run it again after changing
a notebook's pictures, and commit the PNGs it writes; it removes the notebook's old ones first.
"""

import base64
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT = REPO_ROOT / "docs" / "assets" / "notebooks"


def export(notebook: Path) -> list[Path]:
    nb = nbformat.read(notebook, as_version=4)
    # The chapter's own functions, as the tests run the notebooks: the pictures must not depend
    # on how far this computer's exercises.py has got.
    os.environ["NANOVLLM_REFERENCE"] = "1"
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
    for old in OUT.glob(f"{notebook.stem}-*.png"):
        old.unlink()
    written = []
    for cell in nb.cells:
        images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        for i, image in enumerate(images):
            suffix = "" if len(images) == 1 else f"-{i + 1}"
            path = OUT / f"{notebook.stem}-{cell.id}{suffix}.png"
            path.write_bytes(base64.b64decode(image))
            written.append(path)
    return written


def main(chapters: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    notebooks = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if chapters:
        notebooks = [n for n in notebooks if n.name[:2] in {c.zfill(2) for c in chapters}]
        if not notebooks:
            raise SystemExit(f"no notebooks/NN_*.ipynb for chapters {chapters}; give numbers such as 01 or 3")
    for notebook in notebooks:
        for path in export(notebook):
            print(f"{path.relative_to(REPO_ROOT)}  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
