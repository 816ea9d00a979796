"""The quizzes: every quiz file is valid, answerable and fair (length and position give nothing
away), grading is right, and the command line grades a file or says in one line what is wrong."""

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from quizzes.__main__ import main as quiz_main
from quizzes.core import (
    QuizError,
    available_chapters,
    fairness_problems,
    grade,
    load_quiz,
    normalize_reply,
    parse_number,
    parse_quiz,
)
from quizzes.html import render

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = available_chapters()
QUIZ_JS = REPO_ROOT / "docs" / "javascripts" / "quiz.js"


def _options(letters, long=()):
    return [{"text": f"option {x}" + (" with more words" if x in long else ""), "feedback": f"because {x}"} for x in letters]


# A small quiz written for these tests.
QUIZ = {
    "chapter": 99,
    "title": "Test quiz",
    "questions": [
        {"id": "one", "type": "single", "text": "Pick b.", "options": _options("abc"), "answer": "b"},
        {"id": "many", "type": "multiple", "text": "Pick a and c.", "options": _options("abcd"), "answer": ["a", "c"]},
        {"id": "count", "type": "numeric", "text": "How many?", "answer": 60, "tolerance": 0, "unit": "tokens",
         "feedback": {"correct": "it adds up", "incorrect": "add them up"},
         "traps": [{"answer": 50, "feedback": "the sequence grows"}]},
        {"id": "ratio", "type": "numeric", "text": "About how much?", "answer": 3.998, "tolerance": 0.1,
         "feedback": {"correct": "quadratic", "incorrect": "sum it"}, "traps": [{"answer": 2, "feedback": "linear"}]},
        {"id": "share", "type": "numeric", "text": "What percentage?", "answer": 87.79, "tolerance": 0.5,
         "unit": "%", "feedback": {"correct": "most of it", "incorrect": "reserved minus used"}},
        {"id": "six", "type": "single", "text": "Pick a.", "options": _options("ab"), "answer": "a"},
    ],
}


@pytest.fixture(scope="module")
def quiz():
    return parse_quiz(copy.deepcopy(QUIZ), "test quiz")


def reply(quiz, qid, raw):
    _, q = quiz.find(qid)
    return grade(quiz, q, normalize_reply(q, raw))


# --- grading -------------------------------------------------------------------------------------

def test_single_choice(quiz):
    assert reply(quiz, "one", "b").score == 1 and reply(quiz, "one", "B").correct
    wrong = reply(quiz, "one", "a")
    assert wrong.score == 0
    assert wrong.picked == (("a", False, "because a"),) and wrong.missed == (("b", "because b"),)


def test_multiple_choice_full_partial_and_overpicking(quiz):
    assert reply(quiz, "many", ["a", "c"]).score == 1
    assert reply(quiz, "many", "c, a").score == 1 and reply(quiz, "many", "ac").score == 1
    assert reply(quiz, "many", ["a"]).score == 0.5  # one of two right options
    assert reply(quiz, "many", ["a", "c", "d"]).score == 0.5  # a wrong pick cancels a right one
    assert reply(quiz, "many", ["a", "b", "c", "d"]).score == 0  # ticking everything earns nothing
    assert reply(quiz, "many", ["b", "d"]).score == 0  # never below zero


def test_numeric_exact(quiz):
    assert reply(quiz, "count", 60).correct and reply(quiz, "count", "60").correct
    assert not reply(quiz, "count", 61).correct and not reply(quiz, "count", 59).correct


def test_numeric_within_tolerance(quiz):
    for inside in (3.998, 4, "4x", 3.9, 4.09, 3.91, 4.098):
        assert reply(quiz, "ratio", inside).correct, inside
    for outside in (3.88, 4.12, 2, 40):
        assert not reply(quiz, "ratio", outside).correct, outside


def test_percent_answers_are_numbers(quiz):
    for inside in ("87.8%", "87.8 %", "87.8", 88, "87.29"):
        assert reply(quiz, "share", inside).correct, inside
    assert not reply(quiz, "share", "12.2%").correct


def test_numeric_trap_gives_its_own_feedback(quiz):
    trapped = reply(quiz, "count", 50)
    assert trapped.score == 0 and "the sequence grows" in trapped.message and "add them up" in trapped.message
    assert "the sequence grows" not in reply(quiz, "count", 51).message
    assert "linear" in reply(quiz, "ratio", "2.04").message  # a trap has the question's tolerance too


def test_unanswered_scores_zero(quiz):
    assert reply(quiz, "one", None).score == 0 and reply(quiz, "count", "").reply is None


@pytest.mark.parametrize("text,value", [("60", 60), ("1,000", 1000), ("1e3", 1000), (" 2.5 ", 2.5), ("4x", 4),
                                        ("-3", -3), (".5", 0.5), ("10_000", 10000), (7, 7), ("87.8%", 87.8)])
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "inf", "nan", "½", True, "%"])
def test_parse_number_rejects(text):
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize("qid,raw", [("one", "d"), ("one", ["a", "b"]), ("many", "a, z"), ("count", "sixty"), ("one", 3)])
def test_invalid_replies_say_what_is_expected(quiz, qid, raw):
    _, q = quiz.find(qid)
    with pytest.raises(ValueError, match="answer with|one option letter|not a number"):
        normalize_reply(q, raw)


# --- every quiz file -----------------------------------------------------------------------------

def test_there_is_a_quiz_for_chapter_1():
    assert "01" in CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quiz_file_is_valid(chapter):
    quiz = load_quiz(chapter)  # schema: parse_quiz raises QuizError on any problem
    assert quiz.chapter == chapter
    assert 6 <= len(quiz.questions) <= 10
    for q in quiz.questions:
        assert q.text.strip()
        if q.type == "numeric":
            assert q.feedback["correct"].strip() and q.feedback["incorrect"].strip()
        else:
            assert all(opt.feedback.strip() and opt.text.strip() for opt in q.options)
            assert len({opt.text for opt in q.options}) == len(q.options), f"{q.id}: two options read the same"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_answer_grades_right_and_its_neighbours_wrong(chapter):
    quiz = load_quiz(chapter)
    for q in quiz.questions:
        if q.type == "numeric":
            for y in (q.answer - q.tolerance, q.answer, q.answer + q.tolerance):
                assert grade(quiz, q, y).correct, f"{q.id}: {y}"
            nudge = max(q.tolerance * 1.5, 1e-6 * max(1, abs(q.answer)), 0.5 if float(q.answer).is_integer() else 0)
            for y in (q.answer - nudge, q.answer + nudge):
                assert not grade(quiz, q, y).correct, f"{q.id}: {y}"
            for trap in q.traps:
                result = grade(quiz, q, trap.answer)
                assert not result.correct and trap.feedback in result.message, f"{q.id}: trap {trap.answer}"
        else:
            assert grade(quiz, q, normalize_reply(q, list(q.answer))).correct
            wrong = [x for x in q.letters if x not in q.answer]
            assert not grade(quiz, q, normalize_reply(q, wrong[:1])).correct


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_numeric_feedback_shown_on_a_wrong_reply_does_not_state_the_answer(chapter):
    """'incorrect' and trap feedback appear after a wrong reply, when the learner should try
    again; the number itself is for 'correct' feedback and the site's "Show the answer"."""
    for q in load_quiz(chapter).questions:
        if q.type != "numeric":
            continue
        number = f"{q.answer:g}"
        pattern = rf"(?<![\d.]){re.escape(number)}(?!\d|\.\d)"  # 60 but not 600 or 6.0
        texts = [q.feedback["incorrect"]] + [t.feedback for t in q.traps]
        assert not any(re.search(pattern, t.replace(",", "")) for t in texts), f"{q.id}: {number} in its feedback"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quiz_cannot_be_passed_without_reading(chapter):
    """Length and position give nothing away (quizzes.core.fairness_problems lists the rules);
    `python -m quizzes --check NN` prints the same list while writing a quiz."""
    assert fairness_problems(load_quiz(chapter)) == []


# --- bad quiz files ------------------------------------------------------------------------------

def _mutated(change):
    data = copy.deepcopy(QUIZ)
    change(data)
    return data


@pytest.mark.parametrize("change,message", [
    (lambda d: d["questions"][0].pop("answer"), "needs an 'answer'"),
    (lambda d: d["questions"][0].update(answer="z"), "one option letter"),
    (lambda d: d["questions"][0].update(answer=["b"]), "one option letter"),
    (lambda d: d["questions"][1].update(answer="a"), "list of option letters"),
    (lambda d: d["questions"][1].update(answer=["a", "b", "c", "d"]), "every option is right"),
    (lambda d: d["questions"][2].update(answer="lots"), "'answer' must be a number"),
    (lambda d: d["questions"][2]["traps"][0].update(answer=60), "within the tolerance"),
    (lambda d: d.update(questions=d["questions"][:5]), "6 to 10"),
    (lambda d: d["questions"][0]["options"][1].pop("feedback"), "feedback"),
    (lambda d: d["questions"][0].update(type="essay"), "'type'"),
    (lambda d: d["questions"][2].pop("feedback"), "'feedback'"),
    (lambda d: d["questions"][1].update(id="one"), "used twice"),
    (lambda d: d.pop("title"), "'title'"),
])
def test_malformed_quiz_is_refused(change, message):
    with pytest.raises(QuizError, match=message):
        parse_quiz(_mutated(change), "bad.yaml")


def test_unknown_chapter():
    with pytest.raises(QuizError, match="no quiz for chapter 42"):
        load_quiz(42)


# --- the command line ----------------------------------------------------------------------------

def right_answers(chapter) -> dict:
    return {q.id: (list(q.answer) if q.type != "numeric" else q.answer) for q in load_quiz(chapter).questions}


def run_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "quizzes", *args], cwd=REPO_ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_grades_an_answers_file(tmp_path):
    answers = right_answers("01")
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(answers), encoding="utf-8")
    proc = run_cli("01", "--answers", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"Score: {len(answers)} / {len(answers)} (100%)" in proc.stdout
    assert "-> right" in proc.stdout and "-> wrong" not in proc.stdout

    quiz = load_quiz("01")
    first = quiz.questions[0]
    wrong_letter = next(x for x in first.letters if x not in answers[first.id])
    partial = {"1": wrong_letter}  # by number; everything else unanswered
    path.write_text(yaml.safe_dump(partial), encoding="utf-8")
    proc = run_cli("01", "--answers", str(path))
    assert proc.returncode == 0 and f"Score: 0 / {len(quiz.questions)} (0%)" in proc.stdout
    assert f"({wrong_letter}) wrong: {first.options[first.letters.index(wrong_letter)].feedback[:30]}" in " ".join(proc.stdout.split())
    assert "not answered" in proc.stdout


def test_cli_interactive():
    answers = right_answers("01")
    quiz = load_quiz("01")
    lines = ["zz"]  # an invalid reply first: the question is asked again
    lines += [",".join(a) if isinstance(a, list) else str(a) for a in (answers[q.id] for q in quiz.questions)]
    proc = run_cli("01", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "is not one of the options" in proc.stdout or "is not a number" in proc.stdout
    assert f"Score: {len(quiz.questions)} / {len(quiz.questions)}" in proc.stdout


def _ids(chapter):
    quiz = load_quiz(chapter)
    single = next(q.id for q in quiz.questions if q.type == "single")
    numeric = next(q.id for q in quiz.questions if q.type == "numeric")
    return single, numeric


@pytest.mark.parametrize("content,message", [
    ("{single}: [b", "is not valid YAML"),
    ("- b\n- c\n", "must map question ids to answers"),
    ("nonsense: b", "no question 'nonsense'"),
    ("{single}: z", "'z' is not one of the options"),
    ("{numeric}: lots", "is not a number"),
    ("{single}: b\n1: b", "answered twice"),
])
def test_cli_bad_answers_file_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    single, numeric = _ids("01")
    path = tmp_path / "answers.yaml"
    path.write_text(content.format(single=single, numeric=numeric), encoding="utf-8")
    if "answered twice" in message:  # the first single-choice question is question 1
        assert load_quiz("01").questions[0].id == single
    assert quiz_main(["01", "--answers", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_cli_percent_answer(tmp_path):
    """Quiz 2 asks for a percentage; "87.8%" is an answer like 87.8."""
    quiz = load_quiz("02")
    q = next(q for q in quiz.questions if q.unit == "%")
    path = tmp_path / "answers.yaml"
    path.write_text(f"{q.id}: {q.answer:.1f}%\n", encoding="utf-8")
    proc = run_cli("02", "--answers", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "-> right" in proc.stdout


def test_cli_errors_in_a_subprocess(tmp_path):
    proc = run_cli("42")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: no quiz for chapter 42")
    assert proc.stderr.count("\n") == 1
    proc = run_cli("01", "--answers", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "not found" in proc.stderr and proc.stderr.count("\n") == 1
    assert run_cli("01", stdin="").returncode == 2  # input ends before the first answer


def test_cli_list(capsys):
    assert quiz_main(["--list"]) == 0
    assert capsys.readouterr().out.split() == CHAPTERS


# --- the site's copy -----------------------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS)
def test_site_html_carries_the_same_answers(chapter):
    quiz = load_quiz(chapter)
    html = render(quiz)
    keys = dict(re.findall(r'id="quiz-\d\d-([a-z0-9-]+)" data-qid="[^"]*" data-type="\w+" data-key="([^"]*)"', html))
    assert set(keys) == {q.id for q in quiz.questions}
    for q in quiz.questions:
        key = json.loads(keys[q.id].replace("&quot;", '"'))
        assert key["answer"] == (q.answer if q.type != "numeric" else pytest.approx(q.answer))
        if q.type == "numeric":
            assert key["tolerance"] == q.tolerance and key["traps"] == [t.answer for t in q.traps]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_browser_grader_matches_python():
    """quiz.js parses numbers and applies a tolerance exactly as quizzes.core does."""
    numbers = ["1,000", "1e3", "4x", " 2.5 ", "abc", "1.2.3", ".5", "inf", "10_000", "87.8%", "87.8 %", "%"]
    within = [[87.3, 87.8, 0.5], [87.29, 87.8, 0.5], [4.098, 3.998, 0.1], [60, 60, 0], [61, 60, 0], [0.3, 0.1 + 0.2, 0]]
    script = (f"const q = require({json.dumps(str(QUIZ_JS))});"
              f"console.log(JSON.stringify({{number: {json.dumps(numbers)}.map(q.parseNumber),"
              f" within: {json.dumps(within)}.map(a => q.within(...a))}}));")
    out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True).stdout)

    def py_number(text):
        try:
            return parse_number(text)
        except ValueError:
            return None

    assert out["number"] == [py_number(t) for t in numbers]
    q = parse_quiz(copy.deepcopy(QUIZ)).questions[0]
    assert out["within"] == [q.__class__(**{**q.__dict__, "tolerance": tol}).matches(y, t) for y, t, tol in within]


# --- fairness: length and position give nothing away ----------------------------------------------

def _fair_quiz(**changes):
    """QUIZ with questions replaced by id: {id: {field: value}}."""
    data = copy.deepcopy(QUIZ)
    for q in data["questions"]:
        q.update(changes.get(q["id"], {}))
    return parse_quiz(data, "test quiz")


def test_the_test_quiz_is_fair(quiz):
    assert fairness_problems(quiz) == []


def test_fairness_catches_the_longest_option_being_right():
    unfair = _fair_quiz(one={"options": _options("abc", long="b")})
    assert any("strictly longest in 1 of 2" in p for p in fairness_problems(unfair))
    tie = _fair_quiz(one={"options": _options("abc", long="bc")})  # b ties with c: not given away
    assert fairness_problems(tie) == []


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_terminal_shows_math_as_plain_text(chapter, capsys):
    """The site typesets $...$; the terminal quiz prints it plainly (q_i · k_j), never raw LaTeX."""
    from quizzes.__main__ import describe, show_question

    quiz = load_quiz(chapter)
    for i, q in enumerate(quiz.questions, 1):
        show_question(i, q, sys.stdout)
        print(describe(grade(quiz, q, None)))
        if q.type != "numeric":
            print(describe(grade(quiz, q, q.answer if q.type == "single" else tuple(q.answer))))
    out = capsys.readouterr().out
    raw = sorted(set(re.findall(r"\$[^$\n]*\$|\\[A-Za-z]+", out)))
    assert not raw, f"quizzes/{chapter}.yaml prints raw LaTeX in the terminal: {raw[:5]}"


def test_fairness_catches_the_shortest_option_being_right():
    unfair = _fair_quiz(one={"options": _options("abc", long="ac")})  # b alone is short, and right
    assert any("strictly shortest in 1 of 2" in p for p in fairness_problems(unfair))
    tie = _fair_quiz(one={"options": _options("abc", long="c")})  # a and b tie for shortest
    assert fairness_problems(tie) == []


def page_numbers(text: str) -> set[str]:
    """Every number a page writes, without its thousands commas: '114,688' -> '114688'."""
    return {n.replace(",", "") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if (REPO_ROOT / "docs" / "chapters" / f"{c}.md").is_file()])
def test_numeric_answers_need_the_idea_applied(chapter):
    """A numeric question asks for a number the chapter's page does not print: the learner applies
    the idea to new numbers instead of finding the page's worked example again. (Answers of one or
    two digits, such as a count of 3 blocks, are too common to check.)"""
    numbers = page_numbers((REPO_ROOT / "docs" / "chapters" / f"{chapter}.md").read_text(encoding="utf-8"))
    replayed = []
    for q in load_quiz(chapter).questions:
        if q.type == "numeric" and len(re.sub(r"\D", "", f"{q.answer:g}").strip("0")) >= 3:
            if f"{q.answer:g}" in numbers:
                replayed.append(f"{q.id} ({q.answer:g})")
    assert not replayed, f"quizzes/{chapter}.yaml: the page states these answers; give the question new numbers: {replayed}"


def test_fairness_catches_right_options_all_longer_in_a_multiple_choice():
    unfair = _fair_quiz(many={"options": _options("abcd", long="ac")})
    assert any("many: every right option is longer" in p for p in fairness_problems(unfair))


def test_fairness_catches_one_position_for_every_answer():
    unfair = _fair_quiz(one={"answer": "a"})
    problems = fairness_problems(unfair)
    assert any("every single-choice answer is (a)" in p for p in problems)
    assert any("(a) is the answer to 2 of 2" in p for p in problems)


def test_fairness_catches_multiple_choice_answers_that_are_the_first_options():
    unfair = _fair_quiz(many={"answer": ["a", "b"]})
    assert any("every multiple-choice answer is the first options" in p for p in fairness_problems(unfair))


def test_fairness_catches_a_verdict_opening_the_feedback():
    options = _options("abc")
    options[1]["feedback"] = "Right. Because b."
    assert any("opens with a verdict" in p for p in fairness_problems(_fair_quiz(one={"options": options})))
    options[1]["feedback"] = "No block is shared, so b."  # a sentence that starts with "No" is fine
    assert fairness_problems(_fair_quiz(one={"options": options})) == []


def test_fairness_wants_a_numeric_question():
    data = copy.deepcopy(QUIZ)
    data["questions"] = [q for q in data["questions"] if q["type"] != "numeric"] + [
        {"id": f"extra{i}", "type": "single", "text": "Pick a or b.", "options": _options("ab"), "answer": "ab"[i % 2]}
        for i in range(3)
    ]
    assert any("no numeric question" in p for p in fairness_problems(parse_quiz(data)))


def test_cli_check_reports_fairness(capsys):
    assert quiz_main(["--check", "01"]) in (0, 1)
    assert "quizzes/01.yaml: " in capsys.readouterr().out
