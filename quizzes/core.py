"""The quiz data model, its hashing and its grader, shared by the command line, the authoring
tool and the course site. The file format and the hashing scheme are described in
quizzes/__init__.py; docs/javascripts/quiz.js mirrors `answer_hash`, `grid_index` and
`parse_number` for the browser, so change them together.
"""

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

QUIZ_DIR = Path(__file__).resolve().parent
TYPES = ("single", "multiple", "numeric")
MIN_QUESTIONS, MAX_QUESTIONS = 6, 10
LETTERS = "abcdefgh"  # a choice question has 2 to 8 options
HEX64 = re.compile(r"[0-9a-f]{64}")
QUESTION_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(e[+-]?[0-9]+)?")  # ASCII digits, as in quiz.js


class QuizError(ValueError):
    """Something a user can fix (a missing quiz, a malformed quiz or answers file); the message
    is one line that says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Option:
    text: str
    feedback: str


@dataclass(frozen=True)
class Trap:
    """A common wrong numeric answer (hashed like the right one) and the mistake behind it."""

    hashes: frozenset
    feedback: str


@dataclass(frozen=True)
class Question:
    id: str
    type: str  # "single", "multiple" or "numeric"
    text: str
    hashes: frozenset  # the accepted values, hashed (see answer_hash)
    options: tuple = ()  # of Option, for choice questions
    tolerance: float = 0.0  # numeric only
    step: float = 1.0  # numeric only: the grid that replies are rounded to before hashing
    unit: str = ""  # numeric only, shown after the input
    feedback: dict | None = None  # numeric only: {"correct": ..., "incorrect": ...}
    traps: tuple = ()  # numeric only, of Trap

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.options)]


@dataclass(frozen=True)
class Quiz:
    chapter: str
    title: str
    salt: str
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


def answer_hash(salt: str, question_id: str, value) -> str:
    """sha256 of "salt:question_id:value", hex; value is an option letter or a grid index."""
    return hashlib.sha256(f"{salt}:{question_id}:{value}".encode()).hexdigest()


def grid_index(x: float, step: float) -> int:
    """The grid point a numeric reply rounds to (half up, as in the browser's Math.floor)."""
    return math.floor(x / step + 0.5)


def parse_number(value) -> float:
    """A reply as a number: 60, "1,000", "1e3", "4x" and " 2.5 " are all numbers."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = re.sub(r"[\s,_]", "", str(value)).lower()
        text = re.sub(r"[x×]$", "", text)
        if not NUMBER.fullmatch(text):
            raise ValueError(f"{value!r} is not a number")
        number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def right_letters(quiz: Quiz, q: Question) -> str:
    """The letters of a choice question's right options, found by hashing each letter."""
    return "".join(letter for letter in q.letters if answer_hash(quiz.salt, q.id, letter) in q.hashes)


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
        fail("the file must be a mapping with chapter, title, salt and questions")
    for key in ("chapter", "title", "salt", "questions"):
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
        salt=str(data["salt"]),
        questions=tuple(parsed),
        path=Path(path) if path else None,
    )


def _qid(raw) -> str:
    return str(raw.get("id", "no id")) if isinstance(raw, dict) else "not a mapping"


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _hashes(value, fail, what="answer_hashes") -> frozenset:
    if not isinstance(value, list) or not value or not all(isinstance(h, str) and HEX64.fullmatch(h) for h in value):
        fail(f"'{what}' must be a non-empty list of sha256 hex digests (python -m quizzes.author writes them)")
    return frozenset(value)


def _parse_question(raw, fail) -> Question:
    if not isinstance(raw, dict):
        fail("must be a mapping")
    if "answer" in raw:
        fail("holds a plain 'answer'; hash it with python -m quizzes.author and keep the draft out of the repo")
    qid, qtype = raw.get("id"), raw.get("type")
    if not isinstance(qid, str) or not QUESTION_ID.fullmatch(qid):
        fail("needs an 'id' of lower-case letters, digits and dashes")
    if qtype not in TYPES:
        fail(f"'type' must be one of {', '.join(TYPES)}")
    if not _text(raw.get("text")):
        fail("needs a 'text'")
    hashes = _hashes(raw.get("answer_hashes"), fail)
    if qtype in ("single", "multiple"):
        options = raw.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS):
            fail(f"needs 2 to {len(LETTERS)} 'options'")
        parsed = []
        for letter, opt in zip(LETTERS, options):
            if not isinstance(opt, dict) or not _text(opt.get("text")) or not _text(opt.get("feedback")):
                fail(f"option ({letter}) needs a 'text' and a 'feedback' that says why it is right or wrong")
            parsed.append(Option(opt["text"].strip(), opt["feedback"].strip()))
        if qtype == "single" and len(hashes) != 1:
            fail("a single-choice question has exactly one right option (one hash)")
        if len(hashes) > len(parsed):
            fail("has more answer hashes than options")
        return Question(qid, qtype, raw["text"].strip(), hashes, options=tuple(parsed))
    # numeric
    try:
        tolerance, step = float(raw.get("tolerance", 0)), float(raw.get("step", 1))
    except (TypeError, ValueError):
        fail("'tolerance' and 'step' must be numbers")
    if not (tolerance >= 0 and step > 0):
        fail("needs 'tolerance' >= 0 and 'step' > 0")
    if len(hashes) > 2 * tolerance / step + 2:
        fail("has more hashes than the tolerance allows at this step; rebuild it with python -m quizzes.author")
    feedback = raw.get("feedback")
    if not isinstance(feedback, dict) or not _text(feedback.get("correct")) or not _text(feedback.get("incorrect")):
        fail("a numeric question needs 'feedback' with 'correct' and 'incorrect' explanations")
    traps = []
    for j, trap in enumerate(raw.get("traps") or [], 1):
        if not isinstance(trap, dict) or not _text(trap.get("feedback")):
            fail(f"trap {j} needs 'answer_hashes' and a 'feedback'")
        traps.append(Trap(_hashes(trap.get("answer_hashes"), fail, f"traps[{j}].answer_hashes"), trap["feedback"].strip()))
    return Question(
        qid, "numeric", raw["text"].strip(), hashes, tolerance=tolerance, step=step,
        unit=str(raw.get("unit", "")), feedback={k: feedback[k].strip() for k in ("correct", "incorrect")},
        traps=tuple(traps),
    )


def _one_line(err) -> str:
    return " ".join(str(err).split())


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
            raise ValueError(f"{raw!r} is not a number; answer with a number such as 42 or 1,000") from None
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
        k = grid_index(reply, q.step)
        h = answer_hash(quiz.salt, q.id, k)
        if h in q.hashes:
            return Result(q, reply, 1.0, message=q.feedback["correct"])
        for trap in q.traps:
            if h in trap.hashes:
                return Result(q, reply, 0.0, message=f"{trap.feedback}\n\n{q.feedback['incorrect']}")
        return Result(q, reply, 0.0, message=q.feedback["incorrect"])
    right = right_letters(quiz, q)
    chosen = (reply,) if q.type == "single" else tuple(reply)
    picked = tuple((c, c in right, q.options[q.letters.index(c)].feedback) for c in chosen)
    missed = tuple((c, q.options[q.letters.index(c)].feedback) for c in right if c not in chosen)
    hits = sum(ok for _, ok, _ in picked)
    if q.type == "single":
        score = float(hits)
    else:
        score = max(0.0, (hits - (len(picked) - hits)) / len(right))
    return Result(q, reply, score, picked=picked, missed=missed)
