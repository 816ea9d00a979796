"""The map of the spine: which chapter defines or replaces which class and method, read from the code.

Each chapter's package (chapters/NN, imported as chNN) holds only what the chapter adds or
changes, mostly as subclasses of an earlier chapter's classes. This module imports every
chapter, finds the classes each one defines, their parents, and the methods each adds or
replaces, and writes it as markdown. The site's spine page includes it at build time (the
`<!-- spine-map -->` marker, docs/hooks/course_site.py), so it cannot drift from the code.

    python -m course.spine_map        # the same markdown, in the terminal
"""

import importlib
import inspect
import pkgutil
import re
from dataclasses import fields, is_dataclass
from pathlib import Path

from course.paths import REPO_ROOT

# The engine's parts, as LLMEngine names them (chapter 4 on); chapters 1-3's LLM names fewer.
PART_ATTRIBUTES = ("config_class", "sampling_params_class", "sequence_class", "block_manager_class",
                   "scheduler_class", "model_runner_class")
SKIPPED_MODULES = ("exercises", "solutions", "tests", "__main__")


def chapter_packages() -> list[str]:
    """['ch01', 'ch02', ...]: every chapters/NN folder that is a package."""
    return [f"ch{p.name}" for p in sorted((REPO_ROOT / "chapters").glob("[0-9][0-9]")) if (p / "__init__.py").is_file()]


def chapter_modules(chapter: str) -> list:
    """The chapter's own modules: not its exercises, answer key or tests."""
    package = importlib.import_module(chapter)
    names = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in SKIPPED_MODULES]
    return [importlib.import_module(f"{chapter}.{name}") for name in sorted(names)]


def chapter_of(obj) -> str | None:
    """'ch05' for anything defined in chapters/05, else None."""
    match = re.match(r"(ch\d\d)\.", getattr(obj, "__module__", "") + ".")
    return match.group(1) if match else None


def label(cls) -> str:
    chapter = chapter_of(cls)
    return f"{chapter}.{cls.__qualname__}" if chapter else f"{cls.__module__}.{cls.__qualname__}"


def own_members(cls) -> list[str]:
    """Methods and properties the class body itself writes, in source order (not what @dataclass
    or Enum generate)."""
    written = _source_defs(cls)
    names = []
    for name, value in vars(cls).items():
        if isinstance(value, property) or (name in written and (inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod)))):
            names.append(name)
        elif inspect.isfunction(value) and value.__module__.endswith(".solutions"):  # an exercise: its answer key
            names.append(name)
        elif inspect.isfunction(value) and not name.startswith("__"):  # another class's method, named here
            names.append(f"{name} = {chapter_of(value) or value.__module__}.{value.__qualname__}")
    return names


def _source_defs(cls) -> set[str]:
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return set()
    return set(re.findall(r"^\s+def (\w+)", source, re.M))


def spine_classes() -> list[dict]:
    """One record per class a chapter defines: where, its parent, what it adds and replaces."""
    records = []
    for chapter in chapter_packages():
        for module in chapter_modules(chapter):
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__ or cls.__name__.startswith("_"):
                    continue
                parent = next((b for b in cls.__mro__[1:] if chapter_of(b)), None)
                members = own_members(cls)
                replaced = [m for m in members if parent is not None and hasattr(parent, m.split(" = ")[0])]
                new_fields = []
                if is_dataclass(cls):
                    inherited = {f.name for f in fields(parent)} if parent is not None and is_dataclass(parent) else set()
                    new_fields = [f.name for f in fields(cls) if f.name not in inherited]
                    redeclared = [f for f in vars(cls).get("__annotations__", {}) if f in inherited]
                    replaced += [f"field {f}" for f in redeclared]
                parts = [f"{a} = {_short(vars(cls)[a])}" for a in PART_ATTRIBUTES if a in vars(cls)]
                if "parts" in vars(cls):
                    parts.append(f"parts: {_parts_diff(vars(cls)['parts'])}")
                records.append({
                    "chapter": chapter, "name": cls.__name__, "file": Path(inspect.getsourcefile(cls)).relative_to(REPO_ROOT).as_posix(),
                    "parent": parent, "cls": cls,
                    "adds": [m for m in members if m not in replaced],
                    "replaces": replaced,
                    "fields": new_fields,
                    "parts": parts,
                })
    return records


def _short(cls) -> str:
    return label(cls) if inspect.isclass(cls) else repr(cls)


def _parts_diff(parts) -> str:
    """The slots of a Parts that differ from chapter 1's defaults: 'attention=ch03.Attention'."""
    default = type(parts)()
    changed = [f"{f.name}={_short(getattr(parts, f.name))}" for f in fields(parts)
               if getattr(parts, f.name) is not getattr(default, f.name)]
    return ", ".join(changed) or "chapter 1's"


def engine_parts() -> list[tuple[str, dict]]:
    """(chapter, {part attribute: the class it names}) for every chapter's LLM."""
    rows = []
    for chapter in chapter_packages():
        llm = getattr(importlib.import_module(chapter), "LLM", None)
        if llm is not None:
            rows.append((chapter, {a: getattr(llm, a) for a in PART_ATTRIBUTES if hasattr(llm, a)}))
    return rows


def _code(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "—"


def markdown() -> str:
    records = spine_classes()
    order = []
    for r in records:  # classes in the order chapters first define them
        if r["name"] not in order:
            order.append(r["name"])
    lines = [
        "| class | chapter | file | subclass of | adds | replaces |",
        "|---|---|---|---|---|---|",
    ]
    for name in order:
        for r in (r for r in records if r["name"] == name):
            parent = f"`{label(r['parent'])}`" if r["parent"] is not None else "—"
            adds = [_code(r["adds"])] if r["adds"] else []
            if r["fields"]:
                adds.append("fields " + _code(r["fields"]))
            adds += [f"`{p}`" for p in r["parts"]]
            lines.append(f"| `{name}` | {r['chapter'][2:]} | `{r['file']}` | {parent} | {'; '.join(adds) or '—'} "
                         f"| {_code(r['replaces'])} |")
    table = "\n".join(lines)

    parts = engine_parts()
    attrs = [a for a in PART_ATTRIBUTES if any(a in p for _, p in parts)]
    head = "| chapter's `LLM` | " + " | ".join(f"`{a}`" for a in attrs) + " |"
    rule = "|---" * (len(attrs) + 1) + "|"
    rows = []
    for chapter, p in parts:
        cells = []
        for a in attrs:
            cls = p.get(a)
            if cls is None:
                cells.append("—")
            else:
                own = chapter_of(cls) == chapter
                cells.append(f"**`{label(cls)}`**" if own else f"`{label(cls)}`")
        rows.append(f"| {chapter[2:]} | " + " | ".join(cells) + " |")
    engine = "\n".join([head, rule] + rows)
    return (
        "### Every class, by the chapter that defines or replaces it\n\n"
        "A row is a class a chapter's package defines: its parent (an earlier chapter's class of the same "
        "name, as a rule), the methods and fields it adds, and the methods it replaces. A method not "
        "listed is inherited as it is.\n\n"
        f"{table}\n\n"
        "### The engine's parts, chapter by chapter\n\n"
        "The classes each chapter's `LLM` runs with (the `*_class` attributes of `LLMEngine`, chapter 4 "
        "on). **Bold**: the chapter's own class; plain: inherited from an earlier chapter.\n\n"
        f"{engine}\n"
    )


if __name__ == "__main__":
    print(markdown())
