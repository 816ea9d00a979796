"""Every picture a notebook draws is on the course site: notebooks/export_pictures.py saved it as
docs/assets/notebooks/<notebook>-<cell id>.png, and the site hook puts it after its cell on the
rendered notebook (which the site shows with outputs stripped). New notebooks are found by name."""

import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DRAWS = re.compile(r"plt\.show\(\)|\.savefig\(|display\(fig")


def hook():
    spec = importlib.util.spec_from_file_location("course_site_hook", REPO_ROOT / "docs" / "hooks" / "course_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drawing_cells(notebook: Path) -> list[str]:
    """The code cells that draw. A cell that draws a GPU measurement only once it exists, and
    says "not yet measured" until then, draws nothing on a machine where the file is missing."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    hook_ = hook()
    return [c["id"] for c in cells if c["cell_type"] == "code" and DRAWS.search("".join(c["source"]))
            and not ("not yet measured" in "".join(c["source"]) and not hook_.notebook_pictures(notebook.stem, c["id"]))]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_every_drawing_cell_has_its_picture_on_the_site(notebook):
    site = hook()
    cells = drawing_cells(notebook)
    missing = [c for c in cells if not site.notebook_pictures(notebook.stem, c)]
    assert not missing, (f"{notebook.name}: cells {missing} draw a picture that docs/assets/notebooks/ lacks; run "
                         f"`.venv/bin/python notebooks/export_pictures.py {notebook.name[:2]}` and commit the PNGs")
    # The rendered notebook: a cell div per cell (as nbconvert's lab template writes them).
    html = "".join(f'<div class="jp-Cell" id="cell-id={c}"><pre>code</pre></div>' for c in ["intro", *cells, "end"])
    page = SimpleNamespace(file=SimpleNamespace(src_uri=f"notebooks/{notebook.name}"), url=f"notebooks/{notebook.stem}/")
    shown = site._notebook_pictures(html, page)
    for c in cells:
        for picture in site.notebook_pictures(notebook.stem, c):
            after = shown[shown.index(f'id="cell-id={c}"'):]
            nxt = after.find('id="cell-id=', 1)
            assert f"../../assets/notebooks/{picture.name}" in after[:nxt], f"{picture.name} is not shown after cell {c}"


def test_a_picture_belongs_to_its_own_cell(tmp_path, monkeypatch):
    """Cell "kv-3" does not take cell "kv-36"'s picture; numbered pictures of one cell come in order."""
    site = hook()
    folder = tmp_path / "docs" / "assets" / "notebooks"
    folder.mkdir(parents=True)
    for name in ("nb-kv-36.png", "nb-kv-3-2.png", "nb-kv-3-10.png", "nb-kv-3-1.png"):
        (folder / name).write_bytes(b"")
    monkeypatch.setattr(site, "REPO_ROOT", tmp_path)
    assert [p.name for p in site.notebook_pictures("nb", "kv-3")] == ["nb-kv-3-1.png", "nb-kv-3-2.png", "nb-kv-3-10.png"]
    assert [p.name for p in site.notebook_pictures("nb", "kv-36")] == ["nb-kv-36.png"]
