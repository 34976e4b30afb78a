"""Render check results for people: text and HTML tables, and the per-student feedback page.

What a student may see: every public check in full (name, device, points, and for failures the
input, expected vs got and a hint), and hidden checks only as counts and points. A hidden check's
name, inputs and messages never appear in anything rendered here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment

from autograder.results import CheckRun, SubmissionResult, write_atomic

_ENV = Environment(autoescape=True)
_ENV.filters["pts"] = lambda value: f"{value:g}"
_ENV.filters["status"] = lambda run: status(run)
_ENV.globals["COLOURS"] = {"passed": "green", "withheld": "darkorange", "skipped": "gray",
                           "FAILED": "firebrick"}

_TABLE = _ENV.from_string("""
<div class="autograder-report">
<p><b>{{ title }}</b>: {{ points|pts }} / {{ max_points|pts }} points
{%- if all_passed %} &mdash; all {{ ran }} checks passed.{% endif %}
{%- if hidden_points %} &middot; {{ hidden_points|pts }} more points are graded by hidden checks
after you submit.{% endif %}</p>
{%- if runs %}
<table>
<thead><tr><th>check</th><th>device</th><th>result</th><th>points</th><th>what to fix</th></tr></thead>
<tbody>
{%- for r in runs %}
<tr>
<td><code>{{ r.name }}</code></td><td>{{ r.device }}</td>
{%- set state = r|status %}
<td style="color: {{ COLOURS[state] }}">
{{ state }}</td>
<td>{{ r.points|pts }} / {{ r.max_points|pts }}</td>
<td style="text-align: left; white-space: pre-wrap">{{ r.message }}</td>
</tr>
{%- endfor %}
</tbody></table>
{%- endif %}
{%- for reason, count in skipped %}
<p style="color: gray">{{ count }} skipped: {{ reason }}</p>
{%- endfor %}
{%- if hidden %}
<p>hidden checks: {{ hidden.passed }} of {{ hidden.ran }} passed, {{ hidden.points|pts }}/{{
hidden.max_points|pts }} points</p>
{%- endif %}
</div>
""")

_PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ r.assignment }}: feedback for {{ r.student }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.4 }
table { border-collapse: collapse } td, th { border: 1px solid #ccc; padding: .3em .6em }
pre { background: #f6f6f6; padding: .6em; white-space: pre-wrap }
.problem { color: firebrick }
</style></head><body>
<h1>{{ r.assignment }}: {{ r.points|pts }} / {{ r.max_points|pts }} points</h1>
<p>Feedback for <b>{{ r.student }}</b>.</p>
{%- if r.error %}<p class="problem">{{ r.error }}</p>{% endif %}
{%- for reason, count in skipped %}
<p style="color: gray">{{ count }} check{{ 's' if count != 1 }} not run: {{ reason }}</p>
{%- endfor %}
<table>
<thead><tr><th>exercise</th><th>points</th><th>note</th></tr></thead>
<tbody>
{%- for e in r.exercises %}
<tr><td><code>{{ e.exercise }}</code></td><td>{{ e.points|pts }} / {{ e.max_points|pts }}</td>
<td>{{ '' if r.error and (e.problem or '') in r.error else (e.problem or e.notice or '') }}</td></tr>
{%- endfor %}
</tbody></table>
{%- for e, table, cell_error in sections %}
<h2><code>{{ e.exercise }}</code></h2>
{%- if cell_error %}<p>Running your cell failed:</p><pre>{{ cell_error }}</pre>{% endif %}
{{ table|safe }}
{%- endfor %}
</body></html>
""")


@dataclass(frozen=True)
class HiddenSummary:
    """Hidden checks, counted: all a student learns about them."""

    ran: int
    passed: int
    skipped: int
    points: float
    max_points: float


def status(run: CheckRun) -> str:
    if run.withheld:
        return "withheld"
    return "passed" if run.passed else ("skipped" if run.skipped else "FAILED")


def totals(runs: Sequence[CheckRun]) -> tuple[float, float]:
    return sum(r.points for r in runs), sum(r.max_points for r in runs)


def hidden_summary(runs: Sequence[CheckRun]) -> HiddenSummary | None:
    hidden = [r for r in runs if r.hidden]
    if not hidden:
        return None
    ran = [r for r in hidden if not r.skipped]
    points, max_points = totals(hidden)
    return HiddenSummary(ran=len(ran), passed=sum(r.passed for r in ran),
                         skipped=len(hidden) - len(ran), points=points, max_points=max_points)


def skipped_reasons(runs: Sequence[CheckRun]) -> list[tuple[str, int]]:
    """Skipped checks, public and hidden, counted once per reason (a table row each would bury
    the failures)."""
    counts: dict[str, int] = {}
    for r in runs:
        if r.skipped:
            counts[r.message or "skipped"] = counts.get(r.message or "skipped", 0) + 1
    return list(counts.items())


def _all_passed(runs: Sequence[CheckRun]) -> bool:
    ran = [r for r in runs if not r.skipped]
    return bool(ran) and all(r.passed for r in ran)


def html_table(runs: Sequence[CheckRun], *, title: str, hidden_points: float = 0.0,
               show_skipped: bool = True) -> str:
    """An HTML table for JupyterLab: public checks in full (when one failed), hidden counted;
    ``hidden_points``: points that hidden checks grade later (said on the first line). Without
    ``show_skipped`` the checks not run are left for the page to state once."""
    points, max_points = totals(runs)
    public = [r for r in runs if not r.hidden]
    all_passed = _all_passed(runs)
    return _TABLE.render(title=title, points=points, max_points=max_points,
                         hidden_points=hidden_points,
                         runs=[] if all_passed else [r for r in public if not r.skipped],
                         skipped=[] if all_passed or not show_skipped else skipped_reasons(runs),
                         all_passed=all_passed,
                         ran=sum(not r.skipped for r in runs),
                         hidden=None if all_passed else hidden_summary(runs))


def text_table(runs: Sequence[CheckRun], *, title: str, hidden_points: float = 0.0,
               show_skipped: bool = True) -> str:
    """A plain-text table for terminals; when everything passed, one line says so.
    ``hidden_points``: points that hidden checks grade later, said on the first line; without
    ``show_skipped`` the checks not run are left for the caller to state once."""
    points, max_points = totals(runs)
    head = f"{title}: {points:g} / {max_points:g} points"
    later = (f" · {hidden_points:g} more points are graded by hidden checks after you submit."
             if hidden_points else "")
    if _all_passed(runs):
        return f"{head}, all {sum(not r.skipped for r in runs)} checks passed.{later}"
    head += later
    public = [r for r in runs if not r.hidden and not r.skipped]
    width = max((len(r.name) for r in public), default=5)
    lines = [head]
    for r in public:
        lines.append(f"  {status(r):7} {r.name:<{width}} {r.device:<4} {r.points:g}/{r.max_points:g}")
        if r.message and (not r.passed or r.withheld):
            lines.extend(f"          {line}" for line in r.message.splitlines())
    if show_skipped:
        lines.extend(f"  {count} skipped: {reason}" for reason, count in skipped_reasons(runs))
    hidden = hidden_summary(runs)
    if hidden is not None:
        lines.append(f"  hidden checks: {hidden.passed} of {hidden.ran} passed, "
                     f"{hidden.points:g}/{hidden.max_points:g} points")
    return "\n".join(lines)


def write_feedback_pages(results: list[SubmissionResult], out_dir: Path) -> None:
    """Write one page per student to ``out_dir/feedback/<student>.html``: safe to hand out."""
    from autograder.results import safe_name

    for result in results:  # 0644: pages are for handing out (nbgrader's release copies them)
        write_atomic(out_dir / "feedback" / f"{safe_name(result.student)}.html", feedback_page(result),
                     mode=0o644)


def feedback_page(result: SubmissionResult) -> str:
    """A standalone HTML page for one student: score per exercise, what failed and why."""
    sections = []
    for exercise in result.exercises:
        runs = [r for r in result.checks if r.exercise == exercise.exercise]
        table = html_table(runs, title=f"{exercise.exercise} checks", show_skipped=False) if runs else ""
        cell_error = exercise.cell_error
        if (exercise.points < exercise.max_points and table) or cell_error:
            sections.append((exercise, table, cell_error))
    # checks not run (no GPU, say) are stated once for the page, not under every exercise
    return _PAGE.render(r=result, sections=sections, skipped=skipped_reasons(result.checks))
