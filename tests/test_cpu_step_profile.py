"""Chapter 5's account of a CPU step's fixed cost quotes measurements/ch05_cpu_step_profile.json
(written by `python -m course.profile_step`): the file says how it was made, and each share the
page quotes is the file's."""

import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROFILE = REPO_ROOT / "measurements" / "ch05_cpu_step_profile.json"
PAGE = REPO_ROOT / "docs" / "chapters" / "05.md"


def test_the_profile_says_how_it_was_made():
    data = json.loads(PROFILE.read_text(encoding="utf-8"))
    assert data["command"] == "python -m course.profile_step"
    assert {"date", "machine", "versions", "steps"} <= set(data)
    assert {"torch", "python"} <= set(data["versions"]) and data["machine"]["cores"] >= 1
    for step in data["steps"]:
        assert abs(sum(step["shares"].values()) - 1) < 0.01, step


def test_the_page_quotes_the_profile():
    decodes_alone = next(s for s in json.loads(PROFILE.read_text(encoding="utf-8"))["steps"] if s["prompt_chunk"] == 0)
    shares = decodes_alone["shares"]
    quoted = {
        "the GEMMs": shares["gemm"],
        "attention": shares["attention_gather"] + shares["attention_other"],
        "gather": shares["attention_gather"],
        "attention over": shares["attention_other"],
        "LM head": shares["lm_head_and_sampling"],
    }
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    paragraph = text[text.index("`python -m course.profile_step`"):]
    paragraph = paragraph[:paragraph.index("On a GPU")]
    for what, share in quoted.items():
        after = paragraph[paragraph.index(what):]
        first = re.search(r"(\d+)%", after)
        assert first and int(first.group(1)) == round(100 * share), (
            f"docs/chapters/05.md quotes {first.group(0) if first else 'nothing'} for {what}; "
            f"{PROFILE.name} has {share:.1%}: rerun `python -m course.profile_step` or fix the page")
