"""Chapter quizzes: one YAML file per chapter, graded in the terminal and on the course site.

Taking a quiz
-------------
    python -m quizzes 01                          # asks each question, then prints your score
    python -m quizzes 01 --answers answers.yaml   # grades a file of answers, no questions asked
    python -m quizzes --list                      # the chapters that have a quiz

An answers file maps a question's id (shown in brackets, e.g. `[loop]`) or its number to your
answer: one option letter for a single-choice question, a list of letters for a multiple-choice
one, a number for a numeric one. A question left out counts as unanswered.

    loop: b                 # single choice
    gqa: [a, c]             # multiple choice ("a, c" works too)
    3: 60                   # numeric, by question number; "1,000", "1e3" and "4x" are read as numbers

Grading: a single-choice or numeric question scores 1 or 0. A multiple-choice question scores
(right options picked - wrong options picked) / (number of right options), at least 0, so
picking every option is not a free point.

How answers are stored
----------------------
The quiz file never holds an answer in plain text. A question's `answer_hashes` lists
sha256(salt + ":" + question id + ":" + value), hex, for every accepted value, where salt is the
file's `salt` and value is:

- single/multiple choice: the letter of a right option ("a", "b", ...), one hash per right option;
- numeric: the grid index round(x / step) of every x in [answer - tolerance, answer + tolerance];
  `step` and `tolerance` are public fields of the question. A reply y is right when the hash of
  floor(y / step + 0.5) is in the list, so it is graded within the tolerance (give or take half a
  step) without the file saying where that range lies.
  A numeric question may list `traps`: common wrong answers, hashed the same way, each with
  feedback that names the mistake ("you counted only the new tokens").

The browser computes the same hashes (docs/javascripts/quiz.js). This keeps the key from being
read at a glance; it is not security: the answer space is small enough to search, which is
exactly how the tests check that every question has a right answer.

Writing a quiz for chapter NN
-----------------------------
1. Write a draft outside the repo, e.g. ~/quiz-drafts/NN.yaml: the format of quizzes/01.yaml but
   with plain answers, `answer: b`, `answer: [a, c]`, or `answer: 60` with `tolerance: 0`
   (optional `step`, default tolerance / 10, or 1 for an exact integer); a trap is
   `{answer: 65, feedback: ...}`. Every option needs `feedback` saying why it is right or wrong;
   a numeric question needs `feedback: {correct: ..., incorrect: ...}`. 6-10 questions.
2. `python -m quizzes.author ~/quiz-drafts/NN.yaml -o quizzes/NN.yaml` hashes the answers and
   validates the result; `--check` compares an existing quiz file with the draft.
3. Put `<!-- quiz: NN -->` under a "Quiz" heading of docs/chapters/NN.md: the site build
   renders the quiz there. `pytest tests/test_quizzes.py` checks the new file.
Question text and feedback are Markdown (inline code, emphasis, math as $...$).
"""

from quizzes.core import (
    QUIZ_DIR,
    Question,
    Quiz,
    QuizError,
    Result,
    answer_hash,
    available_chapters,
    grade,
    grid_index,
    load_quiz,
    parse_number,
)

__all__ = [
    "QUIZ_DIR",
    "Question",
    "Quiz",
    "QuizError",
    "Result",
    "answer_hash",
    "available_chapters",
    "grade",
    "grid_index",
    "load_quiz",
    "parse_number",
]
