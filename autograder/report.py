"""Render check results for people: a text table, an HTML table, and the grade summary."""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import Environment

from autograder.results import CheckRun

_HTML = Environment(autoescape=True).from_string("""
<div class="autograder-report">
<p><b>{{ title }}</b>: {{ "%g"|format(points) }} / {{ "%g"|format(max_points) }} points
{%- if all_passed %} &mdash; all {{ ran }} checks passed.{% endif %}</p>
<table>
<thead><tr><th>check</th><th>device</th><th>result</th><th>points</th><th>what to fix</th></tr></thead>
<tbody>
{%- for r in runs %}
<tr>
<td><code>{{ r.name }}</code></td><td>{{ r.device }}</td>
<td style="color: {{ 'green' if r.passed else ('gray' if r.skipped else 'firebrick') }}">
{{ 'passed' if r.passed else ('skipped' if r.skipped else 'FAILED') }}</td>
<td>{{ "%g"|format(r.points) }} / {{ "%g"|format(r.max_points) }}</td>
<td style="text-align: left; white-space: pre-wrap">{{ r.message }}</td>
</tr>
{%- endfor %}
</tbody></table></div>
""")


def status(run: CheckRun) -> str:
    return "passed" if run.passed else ("skipped" if run.skipped else "FAILED")


def totals(runs: Sequence[CheckRun]) -> tuple[float, float]:
    return sum(r.points for r in runs), sum(r.max_points for r in runs)


def html_table(runs: Sequence[CheckRun], *, title: str) -> str:
    """An HTML table for JupyterLab."""
    points, max_points = totals(runs)
    ran = [r for r in runs if not r.skipped]
    shown = list(runs) if not ran or not all(r.passed for r in ran) else []
    return _HTML.render(title=title, points=points, max_points=max_points, runs=shown,
                        all_passed=bool(ran) and all(r.passed for r in ran), ran=len(ran))


def text_table(runs: Sequence[CheckRun], *, title: str) -> str:
    """A plain-text table for terminals; when everything passed, one line says so."""
    points, max_points = totals(runs)
    ran = [r for r in runs if not r.skipped]
    head = f"{title}: {points:g} / {max_points:g} points"
    if ran and all(r.passed for r in ran):
        return f"{head}, all {len(ran)} checks passed."
    width = max((len(r.name) for r in runs), default=5)
    lines = [head]
    for r in runs:
        lines.append(f"  {status(r):7} {r.name:<{width}} {r.device:<4} {r.points:g}/{r.max_points:g}")
        if r.message and not r.passed:
            lines.extend(f"          {line}" for line in r.message.splitlines())
    return "\n".join(lines)
