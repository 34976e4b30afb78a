"""Results of grading, as dataclasses, and how they are scored, written and read back.

Scoring rule: a check worth ``p`` points that ran on ``n`` devices (skipped devices do not count)
gives ``p / n`` for each device it passed on. On a CPU-only machine the cpu run carries all ``p``;
with a GPU, code that only works on the cpu loses half. An exercise's total therefore does not
depend on the machine. The schema is documented in ``docs/results.md``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


@dataclass
class CheckRun:
    """One check on one device."""

    name: str
    exercise: str
    device: str
    hidden: bool
    passed: bool
    skipped: bool
    points: float
    max_points: float
    message: str
    duration_s: float
    group: str = ""
    weight: float = 0.0
    kind: str = "value"
    withheld: bool = False


@dataclass
class ExerciseResult:
    """One exercise's score and what stopped it from running, if anything."""

    exercise: str
    points: float
    max_points: float
    problem: str | None = None
    notice: str | None = None
    cell_error: str | None = None


@dataclass
class SubmissionResult:
    """Everything known about one graded submission."""

    student: str
    assignment: str
    path: str
    sha256: str
    status: str
    error: str | None
    points: float
    max_points: float
    exercises: list[ExerciseResult] = field(default_factory=list)
    checks: list[CheckRun] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    protections: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        data = dict(data)
        data["exercises"] = [ExerciseResult(**e) for e in data.get("exercises", [])]
        data["checks"] = [CheckRun(**c) for c in data.get("checks", [])]
        return cls(**data)


def score_runs(runs: list[CheckRun]) -> None:
    """Share each check's weight among the devices it ran on and award passed shares.

    A property check (form, dtype, device, "your own code") that passed earns its share on a
    device only if every value check of its exercise passed on that device; otherwise it is
    marked ``withheld``, earns nothing, and its message says why.
    """
    ran: dict[str, int] = {}
    failed_values: dict[tuple[str, str], list[CheckRun]] = {}
    for run in runs:
        if not run.skipped:
            ran[run.group] = ran.get(run.group, 0) + 1
            if run.kind == "value" and not run.passed:
                failed_values.setdefault((run.exercise, run.device), []).append(run)
    for run in runs:
        share = run.weight / ran[run.group] if not run.skipped else 0.0
        run.max_points = round(share, 6)
        run.points = round(share, 6) if run.passed and not run.skipped else 0.0
        failed = failed_values.get((run.exercise, run.device))
        if run.kind == "property" and run.points and failed:
            run.points, run.withheld = 0.0, True
            run.message = (f"passed, but its points are withheld: a check of the form of the "
                           f"answer pays only once every value check of {run.exercise} passes on "
                           f"{run.device} (failed: {_failed_names(failed)}).")


def _failed_names(failed: list[CheckRun]) -> str:
    """``a, b and 2 hidden checks``: public names in full, hidden ones only counted."""
    names = list(dict.fromkeys(r.name for r in failed if not r.hidden))
    hidden = len({r.group for r in failed if r.hidden})
    if hidden:
        names.append(f"{hidden} hidden check{'s' if hidden > 1 else ''}")
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def write_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new, never half;
    ``mode``: its permissions (default: readable by its owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_submission(path: Path, result: SubmissionResult) -> None:
    write_atomic(path, json.dumps(result.to_dict(), indent=1) + "\n")


def read_submission(path: Path) -> SubmissionResult | None:
    """Read a per-submission result, or None if it is missing or unreadable."""
    try:
        return SubmissionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def batch_document(assignment: str, results: list[SubmissionResult],
                   environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "assignment": assignment,
        "environment": environment,
        "submissions": [r.to_dict() for r in results],
    }


def write_csv(path: Path, results: list[SubmissionResult]) -> None:
    """One row per submission: totals, then points per exercise."""
    exercises: list[str] = []
    for result in results:
        for ex in result.exercises:
            if ex.exercise not in exercises:
                exercises.append(ex.exercise)
    rows = []
    for r in results:
        by_name = {e.exercise: e.points for e in r.exercises}
        rows.append([r.student, r.status, f"{r.points:g}", f"{r.max_points:g}",
                     *(f"{by_name.get(e, 0):g}" for e in exercises), r.error or ""])
    lines: list[list[str]] = [["student", "status", "points", "max_points", *exercises, "error"], *rows]
    tmp_text = _csv_text(lines)
    write_atomic(path, tmp_text)


def _csv_text(rows: list[list[str]]) -> str:
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(student: str) -> str:
    """Return a file name for ``student`` that cannot leave the output directory."""
    ascii_name = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).strip("._") or "student"
    digest = hashlib.sha1(student.encode("utf-8")).hexdigest()[:8]
    return cleaned[:60] if cleaned == student else f"{cleaned[:60]}-{digest}"
