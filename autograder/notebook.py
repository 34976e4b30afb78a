"""The check cells: ``check("softmax")`` for students, ``check_all`` when nbgrader grades.

``check`` runs in the student's own kernel on the functions defined there, against reference
answers recorded in ``expected.json`` next to the notebook (the reference code is not shipped).

Each check cell of the instructor's notebook rebinds ``check`` to ``check_all`` inside nbgrader's
``### BEGIN HIDDEN TESTS`` region, so the released notebook runs the public checks only, while
``nbgrader autograde`` (which restores the region) runs public and hidden checks against the
reference solution found in the course's ``source/<assignment>/`` folder. Both show a table (HTML
in JupyterLab, text in a terminal) with hidden checks only as counts.

What the cell ends with is what nbgrader scores. ``check_all`` returns the points as a float,
which nbgrader counts as partial credit for the cell. ``check`` (the student's) returns nothing
when every public check passed, and raises :class:`ChecksFailed` naming the failed ones
otherwise: `nbgrader validate` (JupyterLab's Validate button) runs the released notebook and
would read the public points (say 4 of a cell's 8) as partial credit, failing a correct
notebook. The table states how many points the hidden checks grade after submission. Nothing is
written to stderr: nbgrader scores a grade cell with any stderr output as zero.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autograder.course import Assignment, assignment_from_manifest, load_assignment
from autograder.plugin import CheckPlugin, run_checks
from autograder.report import html_table, text_table
from autograder.results import CheckRun, score_runs
from autograder.subjects import (
    LocalSubject,
    ReplaySubject,
    Subject,
    assignment_probes,
    reference_subject,
)


class ChecksNotFound(FileNotFoundError):
    """The check files are not where the notebook expects them."""


class ChecksFailed(AssertionError):
    """Public checks of an exercise failed: the check cell ends in this error, so that `nbgrader
    validate` reports the exercise (the table above it says what to fix)."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: the message alone."""
        return [f"{type(self).__name__}: {self}"]


def _student_namespace() -> dict[str, Any]:
    return vars(sys.modules["__main__"])


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Keep warnings and stray stderr writes out of the cell's output (nbgrader would score 0)."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _run(files: list[Path], *, exercise: str, student: Subject, reference: Subject,
         devices: tuple[str, ...], hints: str) -> list[CheckRun]:
    plugin = CheckPlugin(student=student, reference=reference, devices=devices,
                         only=frozenset({exercise}), hints=hints)
    with _quiet_stderr():
        runs = run_checks(files, plugin)
    if not runs:
        raise ValueError(f"no checks for exercise '{exercise}' in {', '.join(map(str, files))}")
    score_runs(runs)
    return runs


def _released(directory: Path) -> tuple[Path, Path]:
    """The public checks and ``expected.json`` for a notebook in ``directory``."""
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
    return checks, expected


def hidden_points(exercise: str, runs: list[CheckRun], *, directory: Path) -> float:
    """The points of ``exercise`` that only the hidden checks grade: the exercise's points (its
    check cell's) less the public checks' (0 when the outline does not say)."""
    outline = assignment_from_manifest(_released(directory)[1])
    points = {e.name: e.points for e in outline.exercises}.get(exercise)
    return max(points - sum(r.max_points for r in runs), 0.0) if points is not None else 0.0


def run_public_checks(exercise: str, *, namespace: dict[str, Any], directory: Path,
                      devices: tuple[str, ...] = ("cpu", "cuda")) -> list[CheckRun]:
    """Run the public checks of ``exercise`` on ``namespace``; return the scored runs."""
    checks, expected = _released(directory)
    outline = assignment_from_manifest(expected)
    return _run([checks], exercise=exercise,
                student=LocalSubject(namespace, "student", probes=assignment_probes(outline)),
                reference=ReplaySubject(expected), devices=devices, hints=outline.hints)


def find_source(directory: Path) -> Path:
    """Return the instructor's folder of the assignment graded in ``directory``.

    ``directory`` is the source folder itself (running the instructor's notebook), or nbgrader's
    ``autograded/<student>/<assignment>/``, whose course root holds ``source/<assignment>/``.
    """
    name = directory.name
    candidates = [directory, *(parent / "source" / name for parent in directory.parents)]
    for candidate in candidates:
        if (candidate / f"{name}.ipynb").is_file() and (candidate / "hidden_checks.py").is_file():
            return candidate
    raise ChecksNotFound(
        f"no source/{name}/ with {name}.ipynb and hidden_checks.py above {directory}: check_all "
        "runs where nbgrader autogrades, in <course>/autograded/<student>/<assignment>/"
    )


def run_all_checks(exercise: str, *, namespace: dict[str, Any], directory: Path,
                   devices: tuple[str, ...] = ("cpu", "cuda")) -> list[CheckRun]:
    """Run public and hidden checks of ``exercise`` on ``namespace`` against the reference."""
    source = find_source(directory.resolve())
    assignment: Assignment = load_assignment(source.name, source.parent)
    return _run([assignment.public_checks, assignment.hidden_checks], exercise=exercise,
                student=LocalSubject(namespace, "student", probes=assignment_probes(assignment)),
                reference=reference_subject(assignment), devices=devices, hints=assignment.hints)


def _in_ipython() -> bool:
    shell = sys.modules.get("IPython")
    return bool(shell and getattr(shell, "get_ipython", lambda: None)())


def show(runs: list[CheckRun], *, title: str, hidden_points: float = 0.0) -> float:
    """Display ``runs`` as a table (HTML in Jupyter, text elsewhere); return the points."""
    text = text_table(runs, title=title, hidden_points=hidden_points)
    if _in_ipython():
        from IPython.display import display

        display({"text/html": html_table(runs, title=title, hidden_points=hidden_points),
                 "text/plain": text}, raw=True)
    else:
        print(text)
    return float(sum(r.points for r in runs))


def check(exercise: str, *, directory: str | Path | None = None) -> None:
    """Run the public checks of ``exercise`` and show the results; raise
    :class:`ChecksFailed` naming those that failed, if any."""
    folder = Path(directory) if directory else Path.cwd()
    runs = run_public_checks(exercise, namespace=_student_namespace(), directory=folder)
    show(runs, title=f"{exercise} (public checks)",
         hidden_points=hidden_points(exercise, runs, directory=folder))
    failed = list(dict.fromkeys(r.name for r in runs if not r.skipped and not r.passed))
    if failed:
        ran = len({r.name for r in runs if not r.skipped})
        raise ChecksFailed(f"{exercise}: {len(failed)} of {ran} public checks failed "
                           f"({', '.join(failed)}); the table above says what to fix")


def check_all(exercise: str, *, directory: str | Path | None = None) -> float:
    """Run public and hidden checks of ``exercise`` (grading); hidden ones are shown as counts."""
    runs = run_all_checks(exercise, namespace=_student_namespace(),
                          directory=Path(directory) if directory else Path.cwd())
    return show(runs, title=f"{exercise} (all checks)")
