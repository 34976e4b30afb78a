"""`grade similarity`: read the submissions' graded cells, compare them, write a page to look at."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, select_autoescape

from autograder.course import Assignment
from autograder.grading.scoring import Submission
from autograder.results import write_atomic
from autograder.similarity import Code, Match, compare, exercise_code, normalise
from autograder.submission import SubmissionError, extract

_ENV = Environment(autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
_PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Similar code: {{ assignment }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 90em; margin: 2em auto; line-height: 1.4 }
table { border-collapse: collapse } td, th { border: 1px solid #ccc; padding: .25em .5em }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; font-size: 85% }
mark { background: #ffe08a } .warn { background: #fff4e5; padding: .6em; border-left: 4px solid orange }
</style></head><body>
<h1>Similar code in {{ assignment }}</h1>
<p class="warn"><b>A match is a reason to look, not proof of copying.</b> Short exercises,
hints followed closely and the same textbook idiom all make independent solutions alike; talk
to the students before concluding anything. Compared: each exercise's graded cells only, with
comments, formatting and names left out and the starter code removed; {{ students }}
submissions, {{ matches|length }} pairs at or above {{ "%.0f"|format(100 * threshold) }}%
similarity (of {{ total }} pairs sharing any code).</p>
{% if not matches %}<p>No pair reaches the threshold.</p>{% endif %}
<table><tr><th>#</th><th>similarity</th><th>exercise</th><th>students</th><th>shared fingerprints</th></tr>
{% for m in matches %}
<tr><td><a href="#m{{ loop.index }}">{{ loop.index }}</a></td>
<td>{{ "%.0f"|format(100 * m.similarity) }}%</td>
<td>{{ m.exercise }}</td><td>{{ m.a }} and {{ m.b }}</td><td>{{ m.shared }}</td></tr>
{% endfor %}</table>
{% for m in matches %}
<h2 id="m{{ loop.index }}">{{ loop.index }}. {{ m.exercise }}: {{ m.a }} and {{ m.b }},
{{ "%.0f"|format(100 * m.similarity) }}%</h2>
<div class="pair">
{% for code, lines in ((m.code_a, m.lines()[0]), (m.code_b, m.lines()[1])) %}
<div><b>{{ code.student }}</b><pre>
{% for text in code.source.splitlines() %}
{% if loop.index in lines %}<mark>{{ text }}</mark>{% else %}{{ text }}{% endif %}

{% endfor %}</pre></div>
{% endfor %}
</div>
{% endfor %}
</body></html>
""")


def collect(submissions: Sequence[Submission], assignment: Assignment) -> tuple[list[Code], list[str]]:
    """Each submission's code per exercise, and the files that could not be read (named)."""
    codes, unreadable = [], []
    for submission in submissions:
        try:
            extraction = extract(submission.path, assignment)
        except SubmissionError as exc:
            unreadable.append(f"{submission.student}: {exc}")
            continue
        for exercise in assignment.exercises:
            source = exercise_code(extraction.cells, extraction.cell_exercises, exercise.name,
                                   exercise.defines)
            if source.strip():
                codes.append(Code(submission.student, exercise.name, source, normalise(source)))
    return codes, unreadable


def starter_code(released: Path, assignment: Assignment) -> dict[str, str]:
    """The released notebook's code per exercise (the stubs everyone starts from); {} if absent."""
    if not released.is_file():
        return {}
    extraction = extract(released, assignment)
    return {e.name: exercise_code(extraction.cells, extraction.cell_exercises, e.name, e.defines)
            for e in assignment.exercises}


def write_page(matches: list[Match], codes: list[Code], out: Path, *, assignment: str,
               threshold: float) -> Path:
    shown = [m for m in matches if m.similarity >= threshold]
    page = out / "index.html"
    write_atomic(page, _PAGE.render(assignment=assignment, matches=shown,
                                    students=len({c.student for c in codes}), total=len(matches),
                                    threshold=threshold), mode=0o644)
    return page


def similarity_report(submissions: Sequence[Submission], assignment: Assignment, *, released: Path,
                      out: Path, threshold: float) -> tuple[Path, list[Match], list[str]]:
    """Compare ``submissions`` of ``assignment``; write ``out/index.html``; return the page, every
    pair sharing code (most similar first) and the unreadable submissions."""
    codes, unreadable = collect(submissions, assignment)
    matches = compare(codes, starter=starter_code(released, assignment))
    out.mkdir(parents=True, exist_ok=True)
    page = write_page(matches, codes, out, assignment=assignment.name, threshold=threshold)
    return page, matches, unreadable
