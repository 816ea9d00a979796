"""The quizzes: every quiz file is valid and answerable, grading is right, answers stay hashed,
and the command line grades a file or says in one line what is wrong with it."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from quizzes import author
from quizzes.__main__ import main as quiz_main
from quizzes.core import (
    QuizError,
    answer_hash,
    available_chapters,
    grade,
    grid_index,
    load_quiz,
    normalize_reply,
    parse_number,
    parse_quiz,
)
from quizzes.html import render

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = available_chapters()
QUIZ_JS = REPO_ROOT / "docs" / "javascripts" / "quiz.js"

# A small quiz written for these tests, with its plain answers (a real quiz keeps its draft out of the repo).
DRAFT = {
    "chapter": 99,
    "title": "Test quiz",
    "salt": "test-salt",
    "questions": [
        {"id": "one", "type": "single", "text": "Pick b.", "answer": "b",
         "options": [{"text": f"option {x}", "feedback": f"why {x}"} for x in "abc"]},
        {"id": "many", "type": "multiple", "text": "Pick a and c.", "answer": ["a", "c"],
         "options": [{"text": f"option {x}", "feedback": f"why {x}"} for x in "abcd"]},
        {"id": "count", "type": "numeric", "text": "How many?", "answer": 60, "tolerance": 0, "unit": "tokens",
         "feedback": {"correct": "yes", "incorrect": "add them up"},
         "traps": [{"answer": 50, "feedback": "the sequence grows"}]},
        {"id": "ratio", "type": "numeric", "text": "About how much?", "answer": 3.998, "tolerance": 0.1, "step": 0.01,
         "feedback": {"correct": "quadratic", "incorrect": "sum it"}, "traps": [{"answer": 2, "feedback": "linear"}]},
        {"id": "five", "type": "single", "text": "Pick a.", "answer": "a",
         "options": [{"text": "x", "feedback": "fx"}, {"text": "y", "feedback": "fy"}]},
        {"id": "six", "type": "single", "text": "Pick a.", "answer": "a",
         "options": [{"text": "x", "feedback": "fx"}, {"text": "y", "feedback": "fy"}]},
    ],
}


@pytest.fixture(scope="module")
def quiz():
    return parse_quiz(author.build(DRAFT), "test quiz")


def reply(quiz, qid, raw):
    _, q = quiz.find(qid)
    return grade(quiz, q, normalize_reply(q, raw))


# --- grading -------------------------------------------------------------------------------------

def test_single_choice(quiz):
    assert reply(quiz, "one", "b").score == 1 and reply(quiz, "one", "B").correct
    wrong = reply(quiz, "one", "a")
    assert wrong.score == 0
    assert wrong.picked == (("a", False, "why a"),) and wrong.missed == (("b", "why b"),)


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
    for inside in (3.998, 4, "4x", 3.9, 4.09, 3.91):
        assert reply(quiz, "ratio", inside).correct, inside
    for outside in (3.88, 4.12, 2, 40):
        assert not reply(quiz, "ratio", outside).correct, outside


def test_numeric_trap_gives_its_own_feedback(quiz):
    trapped = reply(quiz, "count", 50)
    assert trapped.score == 0 and "the sequence grows" in trapped.message and "add them up" in trapped.message
    assert "the sequence grows" not in reply(quiz, "count", 51).message
    assert "linear" in reply(quiz, "ratio", "2.04").message  # a trap has the question's tolerance too


def test_unanswered_scores_zero(quiz):
    assert reply(quiz, "one", None).score == 0 and reply(quiz, "count", "").reply is None


@pytest.mark.parametrize("text,value", [("60", 60), ("1,000", 1000), ("1e3", 1000), (" 2.5 ", 2.5), ("4x", 4),
                                        ("-3", -3), (".5", 0.5), ("10_000", 10000), (7, 7)])
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "inf", "nan", "½", True])
def test_parse_number_rejects(text):
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize("qid,raw", [("one", "d"), ("one", ["a", "b"]), ("many", "a, z"), ("count", "sixty"), ("one", 3)])
def test_invalid_replies_say_what_is_expected(quiz, qid, raw):
    _, q = quiz.find(qid)
    with pytest.raises(ValueError, match="answer with|one option letter|not a number"):
        normalize_reply(q, raw)


# --- hashing -------------------------------------------------------------------------------------

def test_answer_hash_is_salted_sha256_of_the_question_and_value():
    assert answer_hash("s", "q", "b") == hashlib.sha256(b"s:q:b").hexdigest()
    assert answer_hash("s", "q", "b") != answer_hash("t", "q", "b") != answer_hash("s", "r", "b")
    assert grid_index(3.998, 0.01) == 400 and grid_index(-0.26, 0.5) == -1


def test_built_quiz_holds_no_plain_answers():
    built = author.build(DRAFT)
    assert "answer" not in yaml.safe_dump(built).replace("answer_hashes", "")
    count = next(q for q in built["questions"] if q["id"] == "count")
    assert count["answer_hashes"] == [answer_hash("test-salt", "count", 60)]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quiz_files_hold_no_plain_answers(chapter):
    raw = yaml.safe_load((REPO_ROOT / "quizzes" / f"{chapter}.yaml").read_text(encoding="utf-8"))

    def keys(node):
        if isinstance(node, dict):
            for k, v in node.items():
                yield k
                yield from keys(v)
        elif isinstance(node, list):
            for v in node:
                yield from keys(v)

    assert not {"answer", "answers", "correct_option", "solution", "key"} & set(keys(raw))
    quiz = load_quiz(chapter)
    solved = author.solve(quiz)
    for q in quiz.questions:
        if q.type == "numeric":  # the number itself must not be spelled out in its own feedback
            lo, hi = solved[q.id]
            middle = f"{round((lo + hi) / 2, 6):g}"
            texts = [q.feedback["correct"], q.feedback["incorrect"]] + [t.feedback for t in q.traps]
            pattern = rf"(?<![\d.]){re.escape(middle)}(?!\d|\.\d)"  # 60 but not 600 or 6.0
            assert not any(re.search(pattern, t.replace(",", "")) for t in texts), f"{q.id}: {middle} in its feedback"


# --- every quiz file -----------------------------------------------------------------------------

def test_there_is_a_quiz_for_chapter_1():
    assert "01" in CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quiz_file_is_valid(chapter):
    quiz = load_quiz(chapter)  # schema: parse_quiz raises QuizError on any problem
    assert quiz.chapter == chapter
    assert 6 <= len(quiz.questions) <= 10
    assert {q.type for q in quiz.questions} == {"single", "multiple", "numeric"}, "use all three kinds"
    for q in quiz.questions:
        assert q.text.strip()
        if q.type == "numeric":
            assert q.feedback["correct"].strip() and q.feedback["incorrect"].strip()
        else:
            assert all(opt.feedback.strip() and opt.text.strip() for opt in q.options)
            assert len({opt.text for opt in q.options}) == len(q.options), f"{q.id}: two options read the same"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_question_has_a_right_answer_that_grades_right(chapter):
    """The key is searched out of the hashes, never stored: letters by trying each, numbers by
    walking the grid. A wrong neighbour must grade wrong."""
    quiz = load_quiz(chapter)
    solved = author.solve(quiz)
    for q in quiz.questions:
        if q.type == "numeric":
            lo, hi = solved[q.id]
            assert hi - lo <= 2 * q.tolerance + q.step * 1e-6, f"{q.id}: accepts more than its tolerance"
            for y in (lo, (lo + hi) / 2, hi):
                assert grade(quiz, q, y).correct, f"{q.id}: {y}"
            for y in (lo - 2 * q.step, hi + 2 * q.step):
                assert not grade(quiz, q, y).correct, f"{q.id}: {y}"
        else:
            right = solved[q.id]
            assert right, f"{q.id}: no option is right"
            if q.type == "single":
                assert len(right) == 1
            assert grade(quiz, q, normalize_reply(q, list(right))).correct
            wrong = [x for x in q.letters if x not in right]
            assert wrong, f"{q.id}: every option is right"
            assert not grade(quiz, q, normalize_reply(q, wrong[:1])).correct


# --- bad quiz files ------------------------------------------------------------------------------

def _mutated(change):
    data = author.build(DRAFT)
    change(data)
    return data


@pytest.mark.parametrize("change,message", [
    (lambda d: d["questions"][0].update(answer="b"), "plain 'answer'"),
    (lambda d: d.update(questions=d["questions"][:5]), "6 to 10"),
    (lambda d: d["questions"][0]["options"][1].pop("feedback"), "feedback"),
    (lambda d: d["questions"][0].update(type="essay"), "'type'"),
    (lambda d: d["questions"][0].update(answer_hashes=["b"]), "sha256"),
    (lambda d: d["questions"][2].pop("feedback"), "'feedback'"),
    (lambda d: d["questions"][1].update(id="one"), "used twice"),
    (lambda d: d.pop("salt"), "'salt'"),
])
def test_malformed_quiz_is_refused(change, message):
    with pytest.raises(QuizError, match=message):
        parse_quiz(_mutated(change), "bad.yaml")


def test_unknown_chapter():
    with pytest.raises(QuizError, match="no quiz for chapter 42"):
        load_quiz(42)


# --- the authoring tool --------------------------------------------------------------------------

def test_author_writes_and_checks_a_quiz(tmp_path, capsys):
    draft, out = tmp_path / "draft.yaml", tmp_path / "99.yaml"
    draft.write_text(yaml.safe_dump({**DRAFT, "salt": None}), encoding="utf-8")
    assert author.main([str(draft), "-o", str(out)]) == 0
    salt = yaml.safe_load(out.read_text())["salt"]
    assert "answer:" not in out.read_text()
    assert author.main([str(draft), "-o", str(out)]) == 0  # run again: the salt is kept
    assert yaml.safe_load(out.read_text())["salt"] == salt
    assert author.main([str(draft), "--check", str(out)]) == 0
    wrong = {**DRAFT, "questions": [{**DRAFT["questions"][0], "answer": "c"}] + DRAFT["questions"][1:]}
    draft.write_text(yaml.safe_dump(wrong), encoding="utf-8")
    capsys.readouterr()
    assert author.main([str(draft), "--check", str(out)]) == 1
    assert "one: the draft's answer 'c' does not grade as right" in capsys.readouterr().out


def test_author_refuses_a_bad_draft(tmp_path, capsys):
    bad = {**DRAFT, "questions": [{**DRAFT["questions"][0], "answer": "z"}] + DRAFT["questions"][1:]}
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(bad), encoding="utf-8")
    assert author.main([str(draft), "-o", str(tmp_path / "out.yaml")]) == 2
    assert "must be option letters" in capsys.readouterr().err
    with pytest.raises(ValueError, match="coarser step"):
        author.hash_numeric("s", "q", 1e9, 0, 1)
    with pytest.raises(ValueError, match="tolerance"):
        author.default_step(2.5, 0)


# --- the command line ----------------------------------------------------------------------------

def solved_answers(chapter) -> dict:
    solved = author.solve(load_quiz(chapter))
    return {qid: (list(v) if isinstance(v, str) else (v[0] + v[1]) / 2) for qid, v in solved.items()}


def run_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "quizzes", *args], cwd=REPO_ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_grades_an_answers_file(tmp_path):
    answers = solved_answers("01")
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
    answers = solved_answers("01")
    quiz = load_quiz("01")
    lines = ["zz"]  # an invalid reply first: the question is asked again
    lines += [",".join(a) if isinstance(a, list) else str(a) for a in (answers[q.id] for q in quiz.questions)]
    proc = run_cli("01", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "is not one of the options" in proc.stdout or "is not a number" in proc.stdout
    assert f"Score: {len(quiz.questions)} / {len(quiz.questions)}" in proc.stdout


@pytest.mark.parametrize("content,message", [
    ("pipeline: [b", "is not valid YAML"),
    ("- b\n- c\n", "must map question ids to answers"),
    ("nonsense: b", "no question 'nonsense'"),
    ("pipeline: z", "'z' is not one of the options"),
    ("positions-processed: lots", "is not a number"),
    ("pipeline: b\n1: b", "answered twice"),
])
def test_cli_bad_answers_file_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "answers.yaml"
    path.write_text(content, encoding="utf-8")
    assert quiz_main(["01", "--answers", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


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
def test_site_html_carries_the_same_hashes(chapter):
    quiz = load_quiz(chapter)
    html = render(quiz)
    assert f'data-salt="{quiz.salt}"' in html
    for q in quiz.questions:
        assert f'id="quiz-{chapter}-{q.id}"' in html
        assert all(h in html for h in q.hashes)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_browser_grader_matches_python():
    """quiz.js hashes, rounds and parses numbers exactly as quizzes.core does."""
    cases = {"hash": [["s", "q", "b"], ["8ef7", "gqa", "a"], ["ü€", "x", "-3"], ["s" * 70, "q", "400"]],
             "grid": [[3.998, 0.01], [-0.26, 0.5], [60, 1], [0.3, 0.1], [1e6, 0.05]],
             "number": ["1,000", "1e3", "4x", " 2.5 ", "abc", "1.2.3", ".5", "inf", "10_000"]}
    script = (f"const q = require({json.dumps(str(QUIZ_JS))}); const c = {json.dumps(cases)};"
              "console.log(JSON.stringify({hash: c.hash.map(a => q.answerHash(...a)),"
              " grid: c.grid.map(a => q.gridIndex(...a)), number: c.number.map(q.parseNumber)}));")
    out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True).stdout)
    assert out["hash"] == [answer_hash(*a) for a in cases["hash"]]
    assert out["grid"] == [grid_index(*a) for a in cases["grid"]]

    def py_number(text):
        try:
            return parse_number(text)
        except ValueError:
            return None

    assert out["number"] == [py_number(t) for t in cases["number"]]
