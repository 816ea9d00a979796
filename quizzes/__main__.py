"""python -m quizzes NN [--answers FILE]: take chapter NN's quiz in the terminal, or grade a file.

See quizzes/__init__.py for the answers file's format. Errors a user can fix (an unknown chapter,
a malformed answers file) print one line and exit with status 2.
"""

import argparse
import re
import sys
import textwrap
from pathlib import Path

import yaml

from course import progress
from quizzes.core import QuizError, Result, available_chapters, fairness_problems, grade, load_quiz, normalize_reply
from quizzes.html import PASS_FRACTION

WIDTH = 88


MATH = re.compile(r"\$([^$\n]+)\$")
SYMBOLS = {"cdot": "·", "times": "×", "sum": "Σ", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "lceil": "⌈",
           "rceil": "⌉", "lfloor": "⌊", "rfloor": "⌋", "approx": "≈", "infty": "∞", "sqrt": "√", "to": "→"}


def plain_math(text: str) -> str:
    """The quiz's LaTeX ($q_i \\cdot k_j$, which the site typesets) as plain text for a terminal: q_i · k_j."""
    def one(m):
        math = m[1].replace("\\_", "_")
        math = re.sub(r"\\(?:mathrm|text|operatorname)\{([^{}]*)\}", r"\1", math)
        math = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1) / (\2)", math)
        math = re.sub(r"\\([A-Za-z]+)", lambda c: SYMBOLS.get(c[1], c[1]), math)
        math = re.sub(r"([_^])\{([^{}]*\s[^{}]*)\}", r"\1(\2)", math)  # a subscript of several words keeps its grouping
        return math.replace("{", "").replace("}", "")
    return MATH.sub(one, text)


def wrap(text: str, indent: str = "") -> str:
    paragraphs = [" ".join(p.split()) for p in plain_math(text).strip().split("\n\n")]
    return "\n\n".join(textwrap.fill(p, WIDTH, initial_indent=indent, subsequent_indent=indent) for p in paragraphs)


def show_question(i: int, q, out) -> None:
    kind = {"single": "pick one", "multiple": "pick all that apply", "numeric": "a number"}[q.type]
    print(f"\n{i}. [{q.id}] ({kind})", file=out)
    print(wrap(q.text, "   "), file=out)
    for letter, opt in zip(q.letters, q.options):
        print(textwrap.fill(" ".join(plain_math(opt.text).split()), WIDTH, initial_indent=f"   ({letter}) ", subsequent_indent="       "), file=out)


def describe(result: Result) -> str:
    """The verdict and the feedback of one graded question, indented under it."""
    q = result.question
    if result.reply is None:
        verdict = "not answered"
    else:
        verdict = "right" if result.correct else ("partly right" if result.score > 0 else "wrong")
    reply = result.reply
    if isinstance(reply, tuple):
        reply = ", ".join(reply)
    elif isinstance(reply, float):
        reply = f"{reply:g}"
    lines = [f"   -> {verdict} ({points(result.score)} point{'s' if result.score != 1 else ''})" + (f", you answered {reply}" if reply is not None else "")]
    for letter, ok, feedback in result.picked:
        lines.append(wrap(f"({letter}) {'right' if ok else 'wrong'}: {feedback}", "      "))
    for letter, feedback in result.missed:
        label = "is the answer" if q.type == "single" else "is right too"
        lines.append(wrap(f"({letter}) {label}: {feedback}", "      "))
    if result.message and result.reply is not None:
        lines.append(wrap(result.message, "      "))
    if q.type == "numeric" and result.reply is None:
        lines.append(wrap(q.feedback["incorrect"], "      "))
    return "\n".join(lines)


def points(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def summary(quiz, results, out) -> None:
    total = sum(r.score for r in results)
    n = len(quiz.questions)
    print(f"\nScore: {points(total)} / {n} ({100 * total / n:.0f}%) on chapter {quiz.chapter}'s quiz, {quiz.title}", file=out)
    wrong = [r.question.id for r in results if not r.correct]
    if wrong:
        print(f"To revisit: {', '.join(wrong)} (docs/chapters/{quiz.chapter}.md has the why)", file=out)


def read_answers(path: Path, quiz) -> dict:
    """The answers file -> {question index: normalized reply}. QuizError says what is wrong."""
    example = f"e.g. '{quiz.questions[0].id}: b' (see python -m quizzes --help)"
    if not path.is_file():
        raise QuizError(f"answers file {path} not found; write one with a line per question, {example}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise QuizError(f"answers file {path} is not valid YAML ({' '.join(str(err).split())[:160]}); {example}") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise QuizError(f"answers file {path} must map question ids to answers, {example}")
    replies = {}
    for key, raw in data.items():
        found = quiz.find(key)
        if found is None:
            ids = ", ".join(q.id for q in quiz.questions)
            raise QuizError(f"answers file {path}: no question {key!r} in chapter {quiz.chapter}'s quiz; use an id ({ids}) or a number 1-{len(quiz.questions)}")
        i, q = found
        if i in replies:
            raise QuizError(f"answers file {path}: question {q.id} is answered twice; keep one line for it")
        try:
            replies[i] = normalize_reply(q, raw)
        except ValueError as err:
            raise QuizError(f"answers file {path}: question {q.id}: {err}") from None
    return replies


def ask(quiz, inp, out) -> list[Result]:
    results = []
    print(f"Chapter {quiz.chapter} quiz: {quiz.title} ({len(quiz.questions)} questions; an empty line skips one)", file=out)
    for i, q in enumerate(quiz.questions, 1):
        show_question(i, q, out)
        while True:
            print("   your answer: ", end="", file=out, flush=True)
            line = inp.readline()
            if line and not inp.isatty():
                print(line.rstrip("\n"), file=out)  # echo piped answers so the transcript reads well
            if not line:
                raise QuizError(f"input ended at question {i}; answer in a terminal, or grade a file with --answers FILE")
            try:
                reply = normalize_reply(q, line.strip())
                break
            except ValueError as err:
                print(f"   {err}", file=out)
        result = grade(quiz, q, reply)
        print(describe(result), file=out)
        results.append(result)
    return results


def check(chapter) -> int:
    """Validate quizzes/NN.yaml (every chapter's when none is named) and print what breaks the
    fairness rules of quizzes.core.fairness_problems; exit status 1 when anything does."""
    failed = 0
    for name in [chapter] if chapter else available_chapters():
        try:
            problems = fairness_problems(load_quiz(name))
        except QuizError as err:
            problems = [str(err)]
        for problem in problems:
            print(f"quizzes/{name}.yaml: {problem}")
        print(f"quizzes/{name}.yaml: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        failed += bool(problems)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m quizzes",
        description="Take a chapter's quiz in the terminal, or grade a file of answers.",
        epilog="Answers file (YAML): one line per question, by id or number: 'loop: b', 'gqa: [a, c]', '3: 60'.",
    )
    parser.add_argument("chapter", nargs="?", help="the chapter number, e.g. 01")
    parser.add_argument("--answers", type=Path, metavar="FILE", help="grade this YAML file instead of asking")
    parser.add_argument("--list", action="store_true", help="list the chapters that have a quiz")
    parser.add_argument("--check", action="store_true", help="for authors: validate the quiz file and its fairness rules")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available_chapters()))
        return 0
    if args.check:
        return check(args.chapter)
    if not args.chapter:
        print(f"error: name a chapter, e.g. python -m quizzes {(available_chapters() or ['01'])[0]}", file=sys.stderr)
        return 2
    try:
        quiz = load_quiz(args.chapter)
        if args.answers:
            replies = read_answers(args.answers, quiz)
            results = [grade(quiz, q, replies.get(i)) for i, q in enumerate(quiz.questions)]
            for i, (q, r) in enumerate(zip(quiz.questions, results), 1):
                show_question(i, q, sys.stdout)
                print(describe(r))
        else:
            results = ask(quiz, sys.stdin, sys.stdout)
    except QuizError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nquiz stopped; run it again any time", file=sys.stderr)
        return 130
    summary(quiz, results, sys.stdout)
    total = sum(r.score for r in results)
    progress.record_quiz(str(quiz.chapter), total, len(quiz.questions), total >= PASS_FRACTION * len(quiz.questions) - 1e-9)
    return 0


if __name__ == "__main__":
    sys.exit(main())
