"""`grade report`: the item analysis of one or more assignments as one HTML page, its PNGs and CSVs.

Written to ``OUT/``: ``index.html`` (for the instructor, not for students: it names students),
``<assignment>-scores.png`` and ``<assignment>-checks.png`` per assignment, ``trend.png`` when
there are several, and the same numbers as ``checks.csv``, ``scores.csv`` and ``limits.csv``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, select_autoescape

from autograder.analysis import LOW_DISCRIMINATION, TAIL, AssignmentAnalysis, analyse
from autograder.results import SubmissionResult, write_atomic

_ENV = Environment(autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
_ENV.filters["num"] = lambda v, digits=2: "–" if v is None else f"{v:.{digits}f}"
_ENV.filters["pct"] = lambda v: f"{100 * v:.0f}%"

_PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Item analysis: {{ names }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 72em; margin: 2em auto; line-height: 1.4 }
table { border-collapse: collapse; margin: 1em 0 } td, th { border: 1px solid #ccc; padding: .25em .5em }
td.n { text-align: right } tr.flag td { background: #fff4e5 } img { max-width: 100% }
.note { color: #555 }
</style></head><body>
<h1>Item analysis: {{ names }}</h1>
<p class="note">For instructors: this page names students. Discrimination: the point-biserial
correlation of passing a check with the rest of the score, and the pass rate of the top
{{ tail|pct }} minus that of the bottom {{ tail|pct }}; below {{ low }} the check is flagged. On
a few dozen submissions both are rough: read them with the counts beside them.</p>
{% if trend %}
<h2>Across assignments</h2>
<img src="{{ trend }}" alt="mean score per assignment">
<table><tr><th>assignment</th><th>submissions</th><th>could not be graded</th><th>mean</th></tr>
{% for a in analyses %}
<tr><td>{{ a.assignment }}</td><td class="n">{{ a.submissions }}</td><td class="n">{{ a.errors }}</td>
<td class="n">{{ a.mean_percent|num(0) }}%</td></tr>
{% endfor %}</table>
{% endif %}
{% for a in analyses %}
<h2 id="{{ a.assignment }}">{{ a.assignment }}: {{ a.submissions }} submissions, mean
{{ a.mean_percent|num(0) }}%{% if a.errors %}, {{ a.errors }} could not be graded{% endif %}</h2>
<img src="{{ a.assignment }}-scores.png" alt="score distributions of {{ a.assignment }}">
<img src="{{ a.assignment }}-checks.png" alt="pass rate of every check of {{ a.assignment }}">
<table><tr><th>exercise</th><th>check</th><th>device</th><th>hidden</th><th>ran</th><th>pass rate</th>
<th>point-biserial</th><th>upper − lower</th><th>flag</th><th>most common failures (students)</th></tr>
{% for c in a.checks %}
<tr{% if c.flag %} class="flag"{% endif %}><td>{{ c.exercise }}</td><td><code>{{ c.name }}</code></td>
<td>{{ c.device }}</td><td>{{ "yes" if c.hidden else "" }}</td><td class="n">{{ c.ran }}</td>
<td class="n">{{ c.pass_rate|pct }}</td><td class="n">{{ c.point_biserial|num }}</td>
<td class="n">{{ c.upper_lower|num }}</td><td>{{ c.flag }}</td>
<td>{% for message, count, students in c.failures %}{{ count }} × {{ message }}
<span class="note">({{ students|join(", ") }})</span><br>{% endfor %}</td></tr>
{% endfor %}</table>
{% if a.limits %}
<p>Stopped by a limit:</p><ul>
{% for hit in a.limits %}<li>{{ hit.student }}: {{ hit.kind }} ({{ hit.message }})</li>{% endfor %}
</ul>
{% else %}<p>No submission hit a time, memory or scratch limit.</p>{% endif %}
{% endfor %}
</body></html>
""")


def load_results(path: Path) -> list[SubmissionResult]:
    """The submissions of a ``results.json`` (or of the one in folder ``path``)."""
    file = path / "results.json" if path.is_dir() else path
    document = json.loads(file.read_text(encoding="utf-8"))
    return [SubmissionResult.from_dict(s) for s in document["submissions"]]


def write_report(batches: Sequence[list[SubmissionResult]], out: Path) -> Path:
    """Analyse each batch (one assignment each) and write the page, PNGs and CSVs to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    analyses = [analyse(batch) for batch in batches if batch]
    out.mkdir(parents=True, exist_ok=True)
    for a in analyses:
        _scores_figure(a, out / f"{a.assignment}-scores.png")
        _checks_figure(a, out / f"{a.assignment}-checks.png")
    trend = None
    if len(analyses) > 1:
        trend = "trend.png"
        _trend_figure(analyses, out / trend)
    write_atomic(out / "checks.csv", _csv([
        ["assignment", "exercise", "check", "device", "hidden", "max_points", "ran", "passed",
         "pass_rate", "point_biserial", "upper_lower", "flag", "top_failure", "top_failure_count"],
        *([c.assignment, c.exercise, c.name, c.device, str(c.hidden), f"{c.max_points:g}", str(c.ran),
           str(c.passed), f"{c.pass_rate:.3f}", _opt(c.point_biserial), _opt(c.upper_lower), c.flag,
           c.failures[0][0] if c.failures else "", str(c.failures[0][1]) if c.failures else "0"]
          for a in analyses for c in a.checks)]), mode=0o644)
    students = sorted({s for a in analyses for s in a.totals})
    write_atomic(out / "scores.csv", _csv([
        ["student", *(f"{a.assignment} (of {a.max_points:g})" for a in analyses)],
        *([s, *(f"{a.totals[s]:g}" if s in a.totals else "" for a in analyses)] for s in students)]),
        mode=0o644)
    write_atomic(out / "limits.csv", _csv([["assignment", "student", "kind", "message"],
                                          *([a.assignment, h.student, h.kind, h.message]
                                            for a in analyses for h in a.limits)]), mode=0o644)
    page = out / "index.html"
    write_atomic(page, _PAGE.render(analyses=analyses, names=", ".join(a.assignment for a in analyses),
                                    trend=trend, tail=TAIL, low=LOW_DISCRIMINATION), mode=0o644)
    return page


def _opt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _scores_figure(a: AssignmentAnalysis, path: Path) -> None:
    import matplotlib.pyplot as plt

    panels = 1 + len(a.exercise_max)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 2.6), squeeze=False)
    for ax, (title, values, top) in zip(axes[0], [
            (f"total (of {a.max_points:g})", list(a.totals.values()), a.max_points),
            *((f"{e} (of {m:g})", list(a.exercises[e].values()), m) for e, m in a.exercise_max.items())],
            strict=True):
        ax.hist(values, bins=10, range=(0, top or 1), color="tab:blue", edgecolor="white")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("points", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("submissions", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _checks_figure(a: AssignmentAnalysis, path: Path) -> None:
    import matplotlib.pyplot as plt

    labels = [f"{'hidden: ' if c.hidden else ''}{c.name} [{c.device}]" for c in a.checks]
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(labels) + 1))
    colours = ["tab:orange" if c.flag else "tab:green" for c in a.checks]
    ax.barh(range(len(labels)), [100 * c.pass_rate for c in a.checks], color=colours)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("pass rate, % of submissions it ran on (orange: flagged)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _trend_figure(analyses: list[AssignmentAnalysis], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    names = [a.assignment for a in analyses]
    spreads = [[100 * v / a.max_points for v in a.totals.values()] if a.max_points else [0.0]
               for a in analyses]
    ax.boxplot(spreads, positions=range(len(names)), widths=0.5)
    ax.plot(range(len(names)), [a.mean_percent for a in analyses], "o-", color="tab:blue", label="mean")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("score, % of the assignment")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
