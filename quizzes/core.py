"""The quiz data model and its grader, shared by the command line and the course site. The file
format is described in quizzes/__init__.py; docs/javascripts/quiz.js grades the same way in the
browser (`parse_number` and the numeric tolerance), so change them together.
"""

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

QUIZ_DIR = Path(__file__).resolve().parent
TYPES = ("single", "multiple", "numeric")
MIN_QUESTIONS, MAX_QUESTIONS = 6, 10
LETTERS = "abcdefgh"  # a choice question has 2 to 8 options
QUESTION_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(e[+-]?[0-9]+)?")  # ASCII digits, as in quiz.js
# Feedback explains why; the verdict is printed by the grader, so it must not open the feedback too.
VERDICT_OPENING = re.compile(r"(right|wrong|correct|incorrect|yes|no|true|false)\s*[.!:,;—–-]", re.I)


class QuizError(ValueError):
    """Something a user can fix (a missing quiz, a malformed quiz or answers file); the message
    is one line that says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Option:
    text: str
    feedback: str


@dataclass(frozen=True)
class Trap:
    """A common wrong numeric answer and the mistake behind it; it matches within the
    question's tolerance, like the right answer."""

    answer: float
    feedback: str


@dataclass(frozen=True)
class Question:
    id: str
    type: str  # "single", "multiple" or "numeric"
    text: str
    answer: object  # choice: the right letters as a string ("b", "ac"); numeric: a float
    options: tuple = ()  # of Option, for choice questions
    tolerance: float = 0.0  # numeric only: a reply within this of the answer is right
    unit: str = ""  # numeric only, shown after the input
    feedback: dict | None = None  # numeric only: {"correct": ..., "incorrect": ...}
    traps: tuple = ()  # numeric only, of Trap

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.options)]

    def matches(self, reply: float, target: float) -> bool:
        """A numeric reply within the tolerance of target (with room for float rounding:
        87.3 is within 0.5 of 87.8)."""
        return abs(reply - target) <= self.tolerance + 1e-9 * max(1.0, abs(target))


@dataclass(frozen=True)
class Quiz:
    chapter: str
    title: str
    questions: tuple
    path: Path | None = None

    def find(self, key) -> tuple[int, Question] | None:
        """A question by its id or its 1-based number -> (index, question), or None."""
        for i, q in enumerate(self.questions):
            if str(key) == q.id or str(key) == str(i + 1):
                return i, q
        return None


@dataclass(frozen=True)
class Result:
    """How one reply scored. `picked`: (letter, is_right, feedback) for each option chosen;
    `missed`: (letter, feedback) for each right option not chosen; `message`: numeric feedback."""

    question: Question
    reply: object  # None (unanswered), a letter, a tuple of letters, or a float
    score: float
    picked: tuple = ()
    missed: tuple = ()
    message: str = ""

    @property
    def correct(self) -> bool:
        return self.score == 1.0


def parse_number(value) -> float:
    """A reply as a number: 60, "1,000", "1e3", "4x", "87.8%" and " 2.5 " are all numbers."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = re.sub(r"[\s,_]", "", str(value)).lower()
        text = re.sub(r"[x×%]$", "", text)
        if not NUMBER.fullmatch(text):
            raise ValueError(f"{value!r} is not a number")
        number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


# ---------------------------------------------------------------------------------------------
# Loading and validating a quiz file


def available_chapters(quiz_dir: Path = QUIZ_DIR) -> list[str]:
    return sorted(p.stem for p in quiz_dir.glob("[0-9][0-9].yaml"))


def chapter_name(chapter) -> str:
    """"1", 1 and "01" all name chapter "01"."""
    text = str(chapter).strip()
    if not text.isdigit():
        raise QuizError(f"{chapter!r} is not a chapter number; give one like 01")
    return f"{int(text):02d}"


def load_quiz(chapter, quiz_dir: Path = QUIZ_DIR) -> Quiz:
    """Read and validate quizzes/NN.yaml."""
    name = chapter_name(chapter)
    path = Path(quiz_dir) / f"{name}.yaml"
    if not path.is_file():
        have = ", ".join(available_chapters(quiz_dir)) or "none"
        raise QuizError(f"no quiz for chapter {name} (chapters with a quiz: {have}); pick one of those")
    return load_quiz_file(path)


def load_quiz_file(path: Path) -> Quiz:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise QuizError(f"{path} is not valid YAML ({_one_line(err)}); fix the file") from err
    return parse_quiz(data, path)


def parse_quiz(data, path=None) -> Quiz:
    where = str(path or "quiz")

    def fail(msg):
        raise QuizError(f"{where}: {msg}")

    if not isinstance(data, dict):
        fail("the file must be a mapping with chapter, title and questions")
    for key in ("chapter", "title", "questions"):
        if key not in data:
            fail(f"missing top-level key '{key}'")
    questions = data["questions"]
    if not isinstance(questions, list) or not MIN_QUESTIONS <= len(questions) <= MAX_QUESTIONS:
        n = len(questions) if isinstance(questions, list) else 0
        fail(f"has {n} questions; a quiz has {MIN_QUESTIONS} to {MAX_QUESTIONS}")
    seen, parsed = set(), []
    for i, raw in enumerate(questions, 1):
        q = _parse_question(raw, lambda msg, i=i, raw=raw: fail(f"question {i} ({_qid(raw)}): {msg}"))
        if q.id in seen:
            fail(f"question {i}: id '{q.id}' is used twice; ids must be unique")
        seen.add(q.id)
        parsed.append(q)
    return Quiz(
        chapter=chapter_name(data["chapter"]),
        title=str(data["title"]),
        questions=tuple(parsed),
        path=Path(path) if path else None,
    )


def _qid(raw) -> str:
    return str(raw.get("id", "no id")) if isinstance(raw, dict) else "not a mapping"


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _number(value, fail, what: str) -> float:
    try:
        return parse_number(value)
    except ValueError:
        fail(f"'{what}' must be a number, not {value!r}")


def _parse_question(raw, fail) -> Question:
    if not isinstance(raw, dict):
        fail("must be a mapping")
    qid, qtype = raw.get("id"), raw.get("type")
    if not isinstance(qid, str) or not QUESTION_ID.fullmatch(qid):
        fail("needs an 'id' of lower-case letters, digits and dashes")
    if qtype not in TYPES:
        fail(f"'type' must be one of {', '.join(TYPES)}")
    if not _text(raw.get("text")):
        fail("needs a 'text'")
    if "answer" not in raw:
        fail("needs an 'answer': a letter (single), a list of letters (multiple) or a number (numeric)")
    answer = raw["answer"]
    if qtype in ("single", "multiple"):
        options = raw.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS):
            fail(f"needs 2 to {len(LETTERS)} 'options'")
        parsed = []
        for letter, opt in zip(LETTERS, options):
            if not isinstance(opt, dict) or not _text(opt.get("text")) or not _text(opt.get("feedback")):
                fail(f"option ({letter}) needs a 'text' and a 'feedback' that says why it is right or wrong")
            parsed.append(Option(opt["text"].strip(), opt["feedback"].strip()))
        letters = LETTERS[: len(parsed)]
        if qtype == "single":
            if not (isinstance(answer, str) and answer in letters and len(answer) == 1):
                fail(f"'answer' of a single-choice question is one option letter ({letters[0]}-{letters[-1]}), not {answer!r}")
            right = answer
        else:
            if not (isinstance(answer, list) and answer and all(isinstance(x, str) and len(x) == 1 and x in letters for x in answer)):
                fail(f"'answer' of a multiple-choice question is a list of option letters ({letters[0]}-{letters[-1]}), e.g. [a, c], not {answer!r}")
            right = "".join(sorted(set(answer)))
            if len(right) != len(answer):
                fail("'answer' names an option twice")
            if len(right) == len(parsed):
                fail("every option is right; make at least one wrong, or the question is free")
        return Question(qid, qtype, raw["text"].strip(), right, options=tuple(parsed))
    # numeric
    value = _number(answer, fail, "answer")
    tolerance = _number(raw.get("tolerance", 0), fail, "tolerance")
    if tolerance < 0:
        fail("'tolerance' must be >= 0")
    feedback = raw.get("feedback")
    if not isinstance(feedback, dict) or not _text(feedback.get("correct")) or not _text(feedback.get("incorrect")):
        fail("a numeric question needs 'feedback' with 'correct' and 'incorrect' explanations")
    q = Question(qid, "numeric", raw["text"].strip(), value, tolerance=tolerance, unit=str(raw.get("unit", "")),
                 feedback={k: feedback[k].strip() for k in ("correct", "incorrect")})
    traps = []
    for j, trap in enumerate(raw.get("traps") or [], 1):
        if not isinstance(trap, dict) or "answer" not in trap or not _text(trap.get("feedback")):
            fail(f"trap {j} needs an 'answer' (a common wrong number) and a 'feedback' that names the mistake")
        trap_value = _number(trap["answer"], fail, f"traps[{j}].answer")
        if q.matches(trap_value, value) or q.matches(value, trap_value):
            fail(f"trap {j} ({trap['answer']}) lies within the tolerance of the answer; a trap must be wrong")
        traps.append(Trap(trap_value, trap["feedback"].strip()))
    return Question(**{**q.__dict__, "traps": tuple(traps)})


def _one_line(err) -> str:
    return " ".join(str(err).split())


# ---------------------------------------------------------------------------------------------
# Fairness: a quiz that length or position gives away is no test of reading


def fairness_problems(quiz: Quiz) -> list[str]:
    """What makes a quiz guessable without reading; [] when none. tests/test_quizzes.py holds
    every quiz file to this (`python -m quizzes --check NN` prints it):

    - the right option is the strictly longest one in at most a third of the single-choice questions,
      and the strictly shortest one in at most a third;
    - in a multiple-choice question, length does not separate the right options from the wrong
      ones (some wrong option is at least as long as the shortest right one);
    - single-choice answers use at least two positions, and no position holds more than half of them
      (rounded up);
    - multiple-choice answers are not all the first options (a; a, b; a, b, c ...);
    - at least one numeric question, and no feedback opens with a verdict ("Right.", "Wrong.", ...):
      the grader says that; feedback says why.
    """
    problems = []
    single = [q for q in quiz.questions if q.type == "single"]
    multiple = [q for q in quiz.questions if q.type == "multiple"]
    longest = [q.id for q in single if _strictly_longest(q) == q.answer]
    if 3 * len(longest) > len(single):
        problems.append(
            f"the right option is the strictly longest in {len(longest)} of {len(single)} single-choice "
            f"questions ({', '.join(longest)}); at most a third may be: lengthen a wrong option or trim the right one"
        )
    shortest = [q.id for q in single if _strictly_shortest(q) == q.answer]
    if 3 * len(shortest) > len(single):
        problems.append(
            f"the right option is the strictly shortest in {len(shortest)} of {len(single)} single-choice "
            f"questions ({', '.join(shortest)}); at most a third may be: trim a wrong option or lengthen the right one"
        )
    for q in multiple:
        right = [len(o.text) for letter, o in zip(q.letters, q.options) if letter in q.answer]
        wrong = [len(o.text) for letter, o in zip(q.letters, q.options) if letter not in q.answer]
        if min(right) > max(wrong):
            problems.append(f"{q.id}: every right option is longer than every wrong one; length gives the answer away")
    positions = Counter(q.answer for q in single)
    if len(single) >= 2 and len(positions) < 2:
        problems.append(f"every single-choice answer is ({single[0].answer}); move some right options elsewhere")
    if single and positions and max(positions.values()) > math.ceil(len(single) / 2):
        letter, count = positions.most_common(1)[0]
        problems.append(
            f"({letter}) is the answer to {count} of {len(single)} single-choice questions; "
            f"no position may hold more than {math.ceil(len(single) / 2)}"
        )
    if multiple and all(q.answer == LETTERS[: len(q.answer)] for q in multiple):
        problems.append(
            "every multiple-choice answer is the first options ("
            + "; ".join(", ".join(q.answer) for q in multiple) + "); mix right and wrong options"
        )
    if not any(q.type == "numeric" for q in quiz.questions):
        problems.append("no numeric question; a quiz has at least one")
    for q in quiz.questions:
        texts = [(f"option ({letter})", o.feedback) for letter, o in zip(q.letters, q.options)]
        if q.type == "numeric":
            texts += [(f"'{k}' feedback", v) for k, v in q.feedback.items()]
            texts += [(f"trap {t.answer:g}", t.feedback) for t in q.traps]
        for what, text in texts:
            if VERDICT_OPENING.match(text):
                problems.append(f"{q.id}: {what}'s feedback opens with a verdict ({text.split()[0]!r}); start with the why")
    return problems


def _strictly_longest(q: Question) -> str | None:
    """The letter of the option strictly longer than every other, or None on a tie."""
    lengths = sorted(((len(o.text), letter) for letter, o in zip(q.letters, q.options)), reverse=True)
    return lengths[0][1] if lengths[0][0] > lengths[1][0] else None


def _strictly_shortest(q: Question) -> str | None:
    """The letter of the option strictly shorter than every other, or None on a tie."""
    lengths = sorted((len(o.text), letter) for letter, o in zip(q.letters, q.options))
    return lengths[0][1] if lengths[0][0] < lengths[1][0] else None


# ---------------------------------------------------------------------------------------------
# Replies and grading


def normalize_reply(q: Question, raw):
    """A reply as the grader wants it: None, a letter, a sorted tuple of letters, or a float.
    Raises ValueError with what a valid reply looks like."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if q.type == "numeric":
        try:
            return parse_number(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number; answer with a number such as 42, 1,000 or 87.5%") from None
    span = f"{q.letters[0]}-{q.letters[-1]}"
    if isinstance(raw, list):
        letters = [str(x).strip().lower() for x in raw]
    elif isinstance(raw, str):
        letters = [x for x in re.split(r"[\s,;]+", raw.strip().lower()) if x]
        if len(letters) == 1 and len(letters[0]) > 1 and q.type == "multiple":
            letters = list(letters[0])  # "ac" means a and c
    else:
        raise ValueError(f"{raw!r} is not an option letter; answer with letters {span}")
    bad = [x for x in letters if x not in q.letters or len(x) != 1]
    if bad:
        raise ValueError(f"{bad[0]!r} is not one of the options; answer with letters {span}")
    if q.type == "single":
        if len(letters) != 1:
            raise ValueError(f"this question takes one option letter ({span}), got {len(letters)}")
        return letters[0]
    return tuple(sorted(set(letters)))


def grade(quiz: Quiz, q: Question, reply) -> Result:
    """Score a normalized reply (see normalize_reply) to question q of quiz."""
    if reply is None:
        return Result(q, None, 0.0, message="not answered")
    if q.type == "numeric":
        if q.matches(reply, q.answer):
            return Result(q, reply, 1.0, message=q.feedback["correct"])
        for trap in q.traps:
            if q.matches(reply, trap.answer):
                return Result(q, reply, 0.0, message=f"{trap.feedback}\n\n{q.feedback['incorrect']}")
        return Result(q, reply, 0.0, message=q.feedback["incorrect"])
    right = q.answer
    chosen = (reply,) if q.type == "single" else tuple(reply)
    picked = tuple((c, c in right, q.options[q.letters.index(c)].feedback) for c in chosen)
    missed = tuple((c, q.options[q.letters.index(c)].feedback) for c in right if c not in chosen)
    hits = sum(ok for _, ok, _ in picked)
    if q.type == "single":
        score = float(hits)
    else:
        score = max(0.0, (hits - (len(picked) - hits)) / len(right))
    return Result(q, reply, score, picked=picked, missed=missed)
