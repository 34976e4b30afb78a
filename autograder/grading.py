"""Grade submissions: extract, start the sandbox, run the checks, score, write results.

This module decides scores. It never imports, execs or unpickles a student's code: the code goes
to :mod:`autograder.sandbox` as text and only plain data comes back.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from autograder.course import Assignment, reference_namespace
from autograder.plugin import CheckPlugin, cuda_skip_reason, run_checks
from autograder.results import (
    ExerciseResult,
    SubmissionResult,
    batch_document,
    read_submission,
    score_runs,
    write_atomic,
    write_csv,
    write_submission,
)
from autograder.sandbox import Sandbox, SandboxConfig, SandboxSubject, protections
from autograder.subjects import LocalSubject, Subject
from autograder.submission import SubmissionError, extract

SUFFIXES = (".ipynb", ".py")


@dataclass(frozen=True)
class GradeConfig:
    """How to grade: devices, sandbox limits, and which checks to include."""

    devices: tuple[str, ...] = ("cpu", "cuda")
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    include_hidden: bool = True


@dataclass(frozen=True)
class Submission:
    """A file to grade and the student it belongs to."""

    student: str
    path: Path


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


_REFERENCES: dict[Path, LocalSubject] = {}


def _reference(assignment: Assignment) -> LocalSubject:
    """Return the reference subject, executing the solution once per process."""
    if assignment.notebook not in _REFERENCES:
        _REFERENCES[assignment.notebook] = LocalSubject(reference_namespace(assignment), "reference")
    return _REFERENCES[assignment.notebook]


def check_files(assignment: Assignment, *, include_hidden: bool) -> list[Path]:
    files = [assignment.public_checks]
    if include_hidden and assignment.hidden_checks.is_file():
        files.append(assignment.hidden_checks)
    return files


def grade_submission(submission: Submission, *, assignment: Assignment, config: GradeConfig,
                     reference: Subject | None = None) -> SubmissionResult:
    """Grade one file; problems with the file become the result's ``error``, never an exception.

    ``reference`` defaults to the reference solution run in this process; ``grade check`` passes
    the answers recorded in ``expected.json`` instead (with ``include_hidden`` off).
    """
    started = time.monotonic()
    uses_cuda = cuda_skip_reason(config.devices) is None
    result = SubmissionResult(
        student=submission.student, assignment=assignment.name, path=str(submission.path),
        sha256="", status="graded", error=None, points=0.0, max_points=assignment.max_points,
        environment=environment(), protections=protections(config.sandbox, uses_cuda=uses_cuda),
    )
    try:
        extraction = extract(submission.path, assignment)
    except SubmissionError as exc:
        result.status, result.error = "error", str(exc)
        result.exercises = [ExerciseResult(e.name, 0.0, e.points, problem=str(exc))
                            for e in assignment.exercises]
        result.duration_s = round(time.monotonic() - started, 3)
        return result
    result.sha256 = extraction.sha256
    with Sandbox(extraction.cells, config=config.sandbox, uses_cuda=uses_cuda,
                 deny=(assignment.directory.parent,)) as sandbox:
        sandbox.start()
        result.protections.extend(sandbox.confinement)
        plugin = CheckPlugin(student=SandboxSubject(sandbox, names=extraction.names),
                             reference=reference or _reference(assignment),
                             devices=config.devices, problems=dict(extraction.problems))
        runs = run_checks(check_files(assignment, include_hidden=config.include_hidden), plugin)
        result.stdout, result.stderr = sandbox.stdout.text(), sandbox.stderr.text()
        cell_errors = {
            exercise: _cell_error_text(cell_id, err)
            for cell_id, err in sandbox.cell_errors.items()
            for exercise in extraction.cell_exercises.get(cell_id, [])
        }
        setup_error = sandbox.cell_errors.get("setup")
    score_runs(runs)
    result.checks = runs
    for exercise in assignment.exercises:
        mine = [r for r in runs if r.exercise == exercise.name]
        result.exercises.append(ExerciseResult(
            exercise=exercise.name,
            points=round(sum(r.points for r in mine), 6),
            max_points=round(sum(r.max_points for r in mine), 6) or exercise.points,
            problem=extraction.problems.get(exercise.name),
            notice=extraction.notices.get(exercise.name),
            cell_error=cell_errors.get(exercise.name),
        ))
    if setup_error:
        result.status, result.error = "error", "the setup cell failed: " + setup_error["message"]
    result.points = round(sum(e.points for e in result.exercises), 6)
    result.max_points = round(sum(e.max_points for e in result.exercises), 6)
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _cell_error_text(cell_id: str, error: dict[str, Any]) -> str:
    kind = (error.get("types") or ["Exception"])[0]
    text = f"running the cell '{cell_id}' raised {kind}: {error.get('message', '')}"
    return text + (f"\n{error['traceback']}" if error.get("traceback") else "")


# --- batches --------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(student: str) -> str:
    """Return a file name for ``student`` that cannot leave the output directory."""
    ascii_name = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).strip("._") or "student"
    digest = hashlib.sha1(student.encode("utf-8")).hexdigest()[:8]
    return cleaned[:60] if cleaned == student else f"{cleaned[:60]}-{digest}"


def discover(paths: Iterable[Path], assignment: str) -> list[Submission]:
    """Find submissions among files and folders, reading nbgrader's ``submitted/`` layout.

    A folder holding ``<student>/<assignment>/*.ipynb`` (nbgrader) gives one submission per
    student; any other folder gives one per ``.ipynb``/``.py`` file in it, named by file stem.
    """
    found: list[Submission] = []
    for path in paths:
        if path.is_file():
            found.append(Submission(student=path.stem, path=path))
            continue
        nbgrader_style = sorted(path.glob(f"*/{assignment}/*.ipynb")) + sorted(
            path.glob(f"*/{assignment}/*.py"))
        if nbgrader_style:
            by_student: dict[str, list[Path]] = {}
            for file in nbgrader_style:
                by_student.setdefault(file.parent.parent.name, []).append(file)
            for student, files in sorted(by_student.items()):
                preferred = [f for f in files if f.stem == assignment] or files
                found.append(Submission(student=student, path=preferred[0]))
            continue
        for file in sorted(path.iterdir()):
            if file.suffix in SUFFIXES and file.is_file() and not file.name.startswith("."):
                found.append(Submission(student=file.stem, path=file))
    return found


def grade_batch(
    submissions: list[Submission], *, assignment: Assignment, config: GradeConfig, out_dir: Path,
    on_result: Callable[[SubmissionResult], None] | None = None, rerun: bool = False,
) -> list[SubmissionResult]:
    """Grade each submission, writing ``out_dir/submissions/<student>.json`` as each finishes.

    A result already on disk for the same file contents is reused unless ``rerun``, so a batch
    interrupted part-way finishes where it stopped.
    """
    per_submission = out_dir / "submissions"
    for leftover in per_submission.glob(".*.tmp"):  # from a batch killed mid-write
        leftover.unlink(missing_ok=True)
    results = []
    for submission in submissions:
        target = per_submission / f"{safe_name(submission.student)}.json"
        previous = None if rerun else read_submission(target)
        if previous is not None and previous.sha256 and previous.sha256 == _sha256(submission.path):
            result = previous
        else:
            result = grade_submission(submission, assignment=assignment, config=config)
            write_submission(target, result)
        results.append(result)
        if on_result is not None:
            on_result(result)
    write_atomic(out_dir / "results.json",
                 json.dumps(batch_document(assignment.name, results, environment()), indent=1) + "\n")
    write_csv(out_dir / "results.csv", results)
    return results


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
