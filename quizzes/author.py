"""Turn a quiz draft with plain answers into a quiz file with hashed ones.

    python -m quizzes.author ~/quiz-drafts/05.yaml -o quizzes/05.yaml    # write the quiz file
    python -m quizzes.author ~/quiz-drafts/05.yaml --check quizzes/05.yaml

A draft is a quiz file whose questions say `answer:` in plain text (see quizzes/__init__.py).
Keep drafts out of the repo. The salt is kept from the draft, else from the existing output file
(so re-running gives the same hashes), else drawn fresh. `solve()` searches the hashes back out
of a quiz file; the tests use it to prove that every question has a right answer.
"""

import argparse
import copy
import math
import secrets
import sys
from pathlib import Path

import yaml

from quizzes.core import (
    LETTERS,
    QuizError,
    answer_hash,
    grade,
    grid_index,
    load_quiz_file,
    normalize_reply,
    parse_number,
    parse_quiz,
    right_letters,
)

MAX_GRID_INDEX = 1_000_000  # answer / step beyond this is too slow to search; use a coarser step
MAX_HASHES = 500  # 2 * tolerance / step + 1 above this bloats the file; use a coarser step


def numeric_grid(answer: float, tolerance: float, step: float) -> range:
    """The grid indices k with k * step within tolerance of the answer."""
    slack = 1e-9  # (10 - 0.5) / 0.05 is 190.00000000000003 in floating point
    lo = math.ceil((answer - tolerance) / step - slack)
    hi = math.floor((answer + tolerance) / step + slack)
    return range(lo, hi + 1)


def default_step(answer: float, tolerance: float) -> float:
    if tolerance > 0:
        return tolerance / 10
    if float(answer).is_integer():
        return 1.0
    raise ValueError(f"answer {answer} is not an integer; give it a 'tolerance' or a 'step'")


def hash_numeric(salt: str, qid: str, answer, tolerance: float, step: float) -> list[str]:
    grid = numeric_grid(parse_number(answer), tolerance, step)
    if not grid:
        raise ValueError(f"no multiple of step {step} lies within {tolerance} of {answer}; use a finer step")
    if len(grid) > MAX_HASHES or max(abs(grid.start), abs(grid.stop - 1)) > MAX_GRID_INDEX:
        raise ValueError(f"step {step} is too fine for answer {answer} and tolerance {tolerance}; use a coarser step")
    return sorted(answer_hash(salt, qid, k) for k in grid)


def build(draft: dict, salt: str | None = None) -> dict:
    """A draft (plain answers) -> quiz data (hashed answers). Raises ValueError on a bad draft."""
    if not isinstance(draft, dict) or not isinstance(draft.get("questions"), list):
        raise ValueError("a draft is a mapping with chapter, title and questions")
    draft = copy.deepcopy(draft)  # the quiz data must not share lists with the draft
    salt = str(draft.get("salt") or salt or secrets.token_hex(8))
    out = {"chapter": f"{int(draft['chapter']):02d}", "title": draft["title"], "salt": salt, "questions": []}
    for i, raw in enumerate(draft["questions"], 1):
        q = {k: v for k, v in raw.items() if k not in ("answer", "traps")}
        if "answer" not in raw:
            raise ValueError(f"question {i} ({raw.get('id')}) has no 'answer'")
        qid, answer = raw["id"], raw["answer"]
        if raw.get("type") == "numeric":
            tolerance = float(raw.get("tolerance", 0))
            step = float(raw.get("step") or default_step(parse_number(answer), tolerance))
            q["tolerance"], q["step"] = _plain_number(tolerance), _plain_number(step)
            q["answer_hashes"] = hash_numeric(salt, qid, answer, tolerance, step)
            if raw.get("traps"):
                q["traps"] = [
                    {"feedback": t["feedback"], "answer_hashes": hash_numeric(salt, qid, t["answer"], tolerance, step)}
                    for t in raw["traps"]
                ]
        else:
            letters = [answer] if isinstance(answer, str) else list(answer)
            n = len(raw.get("options") or [])
            bad = [x for x in letters if x not in LETTERS[:n]]
            if bad or not letters:
                raise ValueError(f"question {i} ({qid}): answer {answer!r} must be option letters among {LETTERS[:n]}")
            q["answer_hashes"] = sorted(answer_hash(salt, qid, x) for x in letters)
        out["questions"].append(q)
    parse_quiz(out, "the built quiz")  # the same validation a quiz file gets
    return out


def _plain_number(x: float):
    return int(x) if float(x).is_integer() else x


def solve(quiz) -> dict:
    """Search every question's accepted replies out of its hashes: {id: letters or (lo, hi)}.
    Choice questions try every letter; numeric ones walk the grid outwards from 0."""
    found = {}
    for q in quiz.questions:
        if q.type != "numeric":
            found[q.id] = right_letters(quiz, q)
            continue
        hits = []
        for k in _outwards(MAX_GRID_INDEX):
            if answer_hash(quiz.salt, q.id, k) in q.hashes:
                hits.append(k)
                if len(hits) == len(q.hashes):
                    break
        if len(hits) != len(q.hashes):
            raise QuizError(f"question {q.id}: found {len(hits)} of {len(q.hashes)} hashes within |k| <= {MAX_GRID_INDEX:,}")
        found[q.id] = (min(hits) * q.step, max(hits) * q.step)
    return found


def _outwards(limit):
    yield 0
    for k in range(1, limit + 1):
        yield k
        yield -k


def check(draft: dict, quiz) -> list[str]:
    """Problems found when the quiz file grades the draft's own answers; [] when all is well."""
    problems = []
    answers = {q["id"]: q for q in draft["questions"]}
    for q in quiz.questions:
        if q.id not in answers:
            problems.append(f"{q.id}: not in the draft")
            continue
        result = grade(quiz, q, normalize_reply(q, answers[q.id]["answer"]))
        if not result.correct:
            problems.append(f"{q.id}: the draft's answer {answers[q.id]['answer']!r} does not grade as right")
        if q.type == "numeric":
            for trap in answers[q.id].get("traps") or []:
                if grade(quiz, q, normalize_reply(q, trap["answer"])).correct:
                    problems.append(f"{q.id}: trap {trap['answer']!r} grades as right; it lies within the tolerance")
    return problems


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    value = value.strip()
    style = "|" if "\n" in value else (">" if len(value) > 80 else None)  # long prose stays readable
    return dumper.represent_scalar("tag:yaml.org,2002:str", value + ("\n" if style else ""), style=style)


_Dumper.add_representer(str, _str)


def dump(data: dict) -> str:
    header = "# Generated by python -m quizzes.author from a draft kept outside the repo; answers are hashed.\n"
    return header + yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quizzes.author", description="Hash a quiz draft's answers.")
    parser.add_argument("draft", type=Path, help="the draft: a quiz file with plain 'answer:' fields")
    parser.add_argument("-o", "--output", type=Path, help="where to write the quiz file (quizzes/NN.yaml)")
    parser.add_argument("--check", type=Path, metavar="QUIZ", help="check an existing quiz file against the draft")
    args = parser.parse_args(argv)
    try:
        draft = yaml.safe_load(args.draft.read_text(encoding="utf-8"))
        if args.check:
            problems = check(draft, load_quiz_file(args.check))
            for p in problems:
                print(f"{args.check}: {p}")
            print(f"{args.check}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
            return 1 if problems else 0
        if not args.output:
            parser.error("give -o quizzes/NN.yaml, or --check quizzes/NN.yaml")
        old_salt = None
        if args.output.is_file():
            old_salt = (yaml.safe_load(args.output.read_text(encoding="utf-8")) or {}).get("salt")
        data = build(draft, salt=old_salt)
        args.output.write_text(dump(data), encoding="utf-8")
        problems = check(draft, load_quiz_file(args.output))
        if problems:
            raise ValueError("; ".join(problems))
        print(f"wrote {args.output}: {len(data['questions'])} questions, answers hashed with salt {data['salt']}")
        return 0
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
