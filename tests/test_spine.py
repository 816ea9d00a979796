"""The spine's shape: every chapter names its parents plainly, and the site's map of the spine is
written from the code (course/spine_map.py) with the facts a learner reads in it."""

import ast
from pathlib import Path

import pytest

from course import spine_map

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTER_FILES = sorted(p for p in (REPO_ROOT / "chapters").glob("[0-9][0-9]/*.py"))


@pytest.fixture(scope="module")
def records():
    return spine_map.spine_classes()


def row(records, chapter: str, name: str) -> dict:
    found = [r for r in records if r["chapter"] == chapter and r["name"] == name]
    assert found, f"the spine map has no {chapter}.{name}"
    return found[0]


def test_every_parent_is_named_plainly():
    """`class ModelRunner(model_runner.ModelRunner)`, never `class ModelRunner(ch06.LLM.model_runner_class)`:
    a reader must see which chapter's class a subclass extends."""
    hidden = []
    for path in CHAPTER_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    text = ast.unparse(base)
                    if any(part.endswith("_class") for part in text.split(".")):
                        hidden.append(f"{path.relative_to(REPO_ROOT)}: class {node.name}({text})")
    assert not hidden, "subclass of a parent hidden behind an attribute; import the parent's module instead:\n" + "\n".join(hidden)


def test_the_map_knows_who_replaces_what(records):
    assert row(records, "ch05", "Scheduler")["replaces"] == ["schedule"]
    assert spine_map.label(row(records, "ch05", "Scheduler")["parent"]) == "ch04.Scheduler"
    assert spine_map.label(row(records, "ch07", "ModelRunner")["parent"]) == "ch05.ModelRunner"
    engine = row(records, "ch04", "LLMEngine")
    assert {"start_model_runner", "step", "generate"} <= set(engine["adds"])
    assert "allocate_kv_cache" in row(records, "ch02", "ModelRunner")["adds"]
    assert "__init__" in row(records, "ch06", "BlockManager")["replaces"]


def test_the_map_lists_every_chapter_and_its_engine_parts():
    text = spine_map.markdown()
    for chapter in spine_map.chapter_packages():
        assert f"`chapters/{chapter[2:]}/" in text, f"{chapter} has no row in the spine map"
    parts = dict(spine_map.engine_parts())
    assert parts["ch07"]["sampling_params_class"].__module__ == "ch07.sampling_params"
    assert parts["ch06"]["model_runner_class"].__module__ == "ch05.model_runner", "chapter 6 keeps chapter 5's runner"


def test_the_site_page_carries_the_map():
    page = (REPO_ROOT / "docs" / "spine.md").read_text(encoding="utf-8")
    assert "<!-- spine-map -->" in page, "docs/spine.md lost its <!-- spine-map --> marker: the map would not be drawn"
