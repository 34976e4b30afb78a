"""The student's check cell: ``check("softmax")`` runs that exercise's public checks.

It runs in the student's own kernel on the functions defined there, against reference answers
recorded in ``expected.json`` next to the notebook (the reference code is not shipped). It shows
a table (HTML in JupyterLab, text in a terminal) and returns the points as a float, which
nbgrader counts as partial credit for the cell.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from autograder.plugin import CheckPlugin, run_checks
from autograder.report import html_table, text_table
from autograder.results import CheckRun, score_runs
from autograder.subjects import LocalSubject, ReplaySubject


class ChecksNotFound(FileNotFoundError):
    """The check files are not beside the notebook."""


def _student_namespace() -> dict[str, Any]:
    return vars(sys.modules["__main__"])


def run_public_checks(exercise: str, *, namespace: dict[str, Any], directory: Path,
                      devices: tuple[str, ...] = ("cpu", "cuda")) -> list[CheckRun]:
    """Run the public checks of ``exercise`` on ``namespace``; return the scored runs."""
    checks, expected = directory / "public_checks.py", directory / "expected.json"
    built = directory.parent.parent / "assignments" / directory.name
    if not expected.is_file() and (built / "expected.json").is_file():
        checks, expected = built / "public_checks.py", built / "expected.json"  # solutions/ copy
    for needed in (checks, expected):
        if not needed.is_file():
            raise ChecksNotFound(
                f"{needed.name} is not in {directory}. Open the notebook from its assignment "
                "folder (the one holding public_checks.py and expected.json)."
            )
    plugin = CheckPlugin(student=LocalSubject(namespace, "student"),
                         reference=ReplaySubject(expected), devices=devices,
                         only=frozenset({exercise}))
    runs = run_checks([checks], plugin)
    if not runs:
        raise ValueError(f"no public checks for exercise '{exercise}' in {checks}")
    score_runs(runs)
    return runs


def _in_ipython() -> bool:
    shell = sys.modules.get("IPython")
    return bool(shell and getattr(shell, "get_ipython", lambda: None)())


def check(exercise: str, *, directory: str | Path | None = None) -> float:
    """Run the public checks of ``exercise``, show the results, and return the points earned."""
    runs = run_public_checks(exercise, namespace=_student_namespace(),
                             directory=Path(directory) if directory else Path.cwd())
    title = f"{exercise} (public checks)"
    text = text_table(runs, title=title)
    if _in_ipython():
        from IPython.display import display

        display({"text/html": html_table(runs, title=title), "text/plain": text}, raw=True)
    else:
        print(text)
    return float(sum(r.points for r in runs))
