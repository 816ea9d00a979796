"""A quiz as HTML for the course site; docs/javascripts/quiz.js makes it interactive.

The page carries what the terminal quiz shows: questions, options, feedback (hidden until
checked) and the answers, in each question's `data-key`; the browser grades exactly as
quizzes.core does. `render(quiz, markdown)` takes a function that turns Markdown into HTML, so
question text and feedback get the site's own extensions (code, math).
"""

import json
from html import escape

from quizzes.core import Question, Quiz

KIND = {"single": "Pick one.", "multiple": "Pick all that apply.", "numeric": "Type a number."}
PASS_FRACTION = 0.7  # a quiz counts as passed on the home page from this share of the points


def _attr(value) -> str:
    return escape(value if isinstance(value, str) else json.dumps(value, separators=(",", ":")), quote=True)


def _inline(html: str) -> str:
    """Markdown of one paragraph without its <p>, to sit inside a <label>."""
    html = html.strip()
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return html[3:-4]
    return html


def number_text(x: float) -> str:
    """4.375 -> "4.375", 114688.0 -> "114,688": as a learner would type it."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.10g}"


def key(q: Question) -> dict:
    """What quiz.js needs to grade question q."""
    if q.type == "numeric":
        return {"answer": q.answer, "tolerance": q.tolerance, "traps": [t.answer for t in q.traps]}
    return {"answer": q.answer}


def render(quiz: Quiz, markdown=escape) -> str:
    prefix = f"quiz-{quiz.chapter}"
    parts = [
        f'<div class="quiz" id="{prefix}" data-chapter="{quiz.chapter}" data-pass="{PASS_FRACTION}">',
        '<ol class="quiz__questions">',
    ]
    for q in quiz.questions:
        qname = f"{prefix}-{q.id}"
        parts.append(
            f'<li class="quiz-question" id="{qname}" data-qid="{_attr(q.id)}" data-type="{q.type}" '
            f'data-key="{_attr(key(q))}">'
        )
        parts.append(f'<div class="quiz-question__text">{markdown(q.text)}</div>')
        parts.append(f'<p class="quiz-question__kind">{KIND[q.type]}</p>')
        if q.type == "numeric":
            unit = f' <span class="quiz-number__unit">{escape(q.unit)}</span>' if q.unit else ""
            parts.append(
                f'<p class="quiz-number"><input type="text" inputmode="decimal" autocomplete="off" '
                f'name="{qname}" aria-label="your answer">{unit}</p>'
            )
            within = f" (give or take {number_text(q.tolerance)})" if q.tolerance else ""
            parts.append(
                f'<p class="quiz-answer" hidden>The answer: <strong>{number_text(q.answer)}</strong>'
                f'{" " + escape(q.unit) if q.unit else ""}{within}.</p>'
            )
            parts.append(f'<div class="quiz-feedback" data-for="correct" hidden>{markdown(q.feedback["correct"])}</div>')
            for i, trap in enumerate(q.traps):
                parts.append(f'<div class="quiz-feedback" data-trap="{i}" hidden>{markdown(trap.feedback)}</div>')
            parts.append(f'<div class="quiz-feedback" data-for="incorrect" hidden>{markdown(q.feedback["incorrect"])}</div>')
        else:
            kind = "radio" if q.type == "single" else "checkbox"
            parts.append('<div class="quiz-options">')
            for letter, opt in zip(q.letters, q.options):
                parts.append(
                    f'<div class="quiz-option" data-letter="{letter}"><label>'
                    f'<input type="{kind}" name="{qname}" value="{letter}">'
                    f'<span class="quiz-option__letter">{letter}</span>'
                    f'<span class="quiz-option__text">{_inline(markdown(opt.text))}</span></label>'
                    f'<div class="quiz-feedback" hidden>{markdown(opt.feedback)}</div></div>'
                )
            parts.append("</div>")
        parts.append(
            '<div class="quiz-actions"><button type="button" class="md-button md-button--primary quiz-check">Check</button>'
            '<button type="button" class="md-button quiz-reveal" hidden>Show the answer</button>'
            '<span class="quiz-verdict" aria-live="polite"></span></div>'
        )
        parts.append("</li>")
    parts.append("</ol>")
    parts.append(
        f'<p class="quiz-score" aria-live="polite">Score: <strong class="quiz-score__value">0</strong> / '
        f'{len(quiz.questions)} <span class="quiz-score__checked"></span></p>'
    )
    parts.append('<p class="quiz-best" hidden></p>')
    parts.append(
        f'<noscript><p>This quiz needs JavaScript. It also runs in a terminal: '
        f"<code>python -m quizzes {quiz.chapter}</code>.</p></noscript>"
    )
    parts.append("</div>")
    return "\n".join(parts)
