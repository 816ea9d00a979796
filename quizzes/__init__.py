"""Chapter quizzes: one YAML file per chapter, graded in the terminal and on the course site.

Taking a quiz
-------------
    python -m quizzes 01                          # asks each question, then prints your score
    python -m quizzes 01 --answers answers.yaml   # grades a file of answers, no questions asked
    python -m quizzes --list                      # the chapters that have a quiz
    python -m quizzes --check 01                  # an author's check: format and fairness rules

An answers file maps a question's id (shown in brackets, e.g. `[loop]`) or its number to your
answer: one option letter for a single-choice question, a list of letters for a multiple-choice
one, a number for a numeric one. A question left out counts as unanswered.

    loop: b                 # single choice
    gqa: [a, c]             # multiple choice ("a, c" works too)
    3: 60                   # numeric, by question number; "1,000", "1e3", "4x", "87.8%" are numbers

Grading: a single-choice or numeric question scores 1 or 0. A multiple-choice question scores
(right options picked - wrong options picked) / (number of right options), at least 0, so
picking every option is not a free point.

Writing quizzes/NN.yaml
-----------------------
The file is the answer key, in plain text, reviewed like code (the learner sees the feedback only
after answering, on the site and in the terminal). Question text and feedback are Markdown
(inline code, emphasis, math as $...$).

    chapter: '05'
    title: Chunked prefill
    questions:                        # 6 to 10
    - id: budget                      # lower-case letters, digits, dashes; unique in the file
      type: single                    # single | multiple | numeric
      text: Which step ...?
      options:                        # 2 to 8; each needs text and feedback
      - text: ...
        feedback: ...                 # why this option is right or wrong (not "Right."/"Wrong.")
      - text: ...
        feedback: ...
      answer: b                       # single: one letter
    - id: which-hold
      type: multiple
      text: Which of these hold?
      options: [...]
      answer: [b, d]                  # multiple: the right letters; at least one option is wrong
    - id: tokens
      type: numeric
      text: How many tokens ...?
      answer: 60
      tolerance: 0                    # a reply within this of the answer is right (default 0)
      unit: tokens                    # optional, shown after the input
      feedback:
        correct: ...                  # why, shown on a right reply
        incorrect: ...                # how to get there, without the number itself
      traps:                          # optional: common wrong answers, matched within the tolerance
      - answer: 50
        feedback: ...                 # names the mistake ("you counted only the new tokens")

Fairness rules (quizzes.core.fairness_problems; tests/test_quizzes.py applies them to every
quiz file): the right option is the strictly longest in at most a third of the single-choice
questions; in a multiple-choice question some wrong option is at least as long as the shortest
right one; single-choice answers use at least two positions and none holds more than half of them
(rounded up); multiple-choice answers are not all the first options; at least one numeric
question; feedback starts with the reason, not a verdict.

Put `<!-- quiz: NN -->` under a "Quiz" heading of docs/chapters/NN.md: the site build renders the
quiz there (quizzes/html.py, docs/javascripts/quiz.js).
"""

from quizzes.core import (
    QUIZ_DIR,
    Question,
    Quiz,
    QuizError,
    Result,
    available_chapters,
    fairness_problems,
    grade,
    load_quiz,
    parse_number,
)

__all__ = [
    "QUIZ_DIR",
    "Question",
    "Quiz",
    "QuizError",
    "Result",
    "available_chapters",
    "fairness_problems",
    "grade",
    "load_quiz",
    "parse_number",
]
