"""The glossary holds every term a chapter page defines, and the page links it there.

A page defines a term by writing it in bold where it first explains it (`**chunk**`), as the
chapters do; emphasis that is not a term is in italics. A bold phrase counts as a term when it is
short (at most four words) and has no digit and no sentence punctuation; "Try it", the call-out
before each visual, is the one exception. New chapters are found by their file name.
"""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = REPO_ROOT / "docs" / "glossary.md"
PAGES = sorted((REPO_ROOT / "docs" / "chapters").glob("[0-9][0-9].md"))
BOLD = re.compile(r"\*\*(?!\s)(.+?)(?<!\s)\*\*")
HEADING = re.compile(r"^### (?P<title>.+?) \{#(?P<anchor>[\w-]+)\}$", re.M)
NOT_TERMS = {"try it"}


def prose(text: str) -> str:
    """A page without its code: fenced blocks, indented code and inline code spans that are not bold."""
    text = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.S | re.M)
    return re.sub(r"^(    |\t)(?![-*\d]).*$", "", text, flags=re.M)


def normalized(term: str) -> str:
    term = re.sub(r"\[(.+?)\]\([^)]*\)", r"\1", term).replace("`", "").strip().lower()
    return re.sub(r"^(a|an|the) ", "", term)


def glossary_names() -> dict[str, str]:
    """{name: anchor}: each heading's names, split at commas, "and" and parentheses."""
    names = {}
    for m in HEADING.finditer(GLOSSARY.read_text(encoding="utf-8")):
        for name in re.split(r", | and |\(|\)", m["title"]):
            if name.strip():
                names[normalized(name)] = m["anchor"]
    return names


def anchor_of(term: str, names: dict[str, str]) -> str | None:
    t = normalized(term)
    for candidate in (t, t[:-1] if t.endswith("s") else None, t[:-2] if t.endswith("es") else None):
        if candidate in names:
            return names[candidate]
    return None


def defined_terms(page: Path) -> list[str]:
    """The bold terms of a page, in order, each once."""
    terms = []
    for m in BOLD.finditer(prose(page.read_text(encoding="utf-8"))):
        text = re.sub(r"\[(.+?)\]\([^)]*\)", r"\1", m.group(1))
        if re.search(r"\d|[.:;!?,]", text) or len(text.split()) > 4 or normalized(text) in NOT_TERMS:
            continue
        if normalized(text) not in [normalized(t) for t in terms]:
            terms.append(text)
    return terms


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_bold_term_is_in_the_glossary_and_linked(page):
    names = glossary_names()
    text = page.read_text(encoding="utf-8")
    missing, unlinked = [], []
    for term in defined_terms(page):
        anchor = anchor_of(term, names)
        if anchor is None:
            missing.append(term)
        elif f"glossary.md#{anchor})" not in text:
            unlinked.append(f"{term} (#{anchor})")
    assert not missing, (f"docs/chapters/{page.name} defines these terms in bold, but docs/glossary.md has no entry "
                         f"for them (a ### heading naming them): {missing}")
    assert not unlinked, (f"docs/chapters/{page.name} defines these terms in bold without linking their glossary "
                          f"entry; write the first one as **[term](../glossary.md#anchor)**: {unlinked}")


def test_the_glossary_check_can_fail(tmp_path):
    page = tmp_path / "99.md"
    page.write_text("A **widget frobnicator** turns. A **[KV cache](../glossary.md#kv-cache)** is linked; a **seat** is not.\n"
                    "**Try it**: the visual. **93.4%** of it is **wasted in 3 ways**. Plural **chunks** count.\n")
    names = glossary_names()
    assert defined_terms(page) == ["widget frobnicator", "KV cache", "seat", "chunks"]
    assert [anchor_of(t, names) for t in defined_terms(page)] == [None, "kv-cache", "seat", "chunk"]
