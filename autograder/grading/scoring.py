"""Grade one submission: extract its cells, start its sandbox, run the checks, score.

This module decides scores. It never imports, execs or unpickles a student's code: the code goes
to :mod:`autograder.isolation.sandbox` as text and only plain data comes back.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autograder.course import Assignment
from autograder.grading.config import GradeConfig
from autograder.isolation.config import protections
from autograder.isolation.launch import preload_for, warm_up
from autograder.isolation.sandbox import Sandbox, SandboxSubject
from autograder.plugin import CheckPlugin, run_in_session
from autograder.results import ExerciseResult, SubmissionResult, score_runs
from autograder.subjects import Subject, reference_subject
from autograder.submission import SubmissionError, extract


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
    uses_cuda = config.uses_cuda
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
    # the fork server boots (the first time) while the reference runs here
    warm_up(config.sandbox, preload=preload_for(extraction.cells, assignment.probes_source))
    reference = reference or reference_subject(assignment)
    probes = {"filename": str(assignment.probes_file), "source": assignment.probes_source}
    with Sandbox(extraction.cells, config=config.sandbox, uses_cuda=uses_cuda,
                 deny=(assignment.directory.parent,), probes=probes) as sandbox:
        sandbox.start()
        result.protections.extend(sandbox.confinement)
        if sandbox.cuda_problem:
            result.protections.append(f"cuda checks not run: the sandbox could not use the GPU "
                                      f"({sandbox.cuda_problem})")
        plugin = CheckPlugin(student=SandboxSubject(sandbox, names=extraction.names),
                             reference=reference,
                             devices=config.devices, problems=dict(extraction.problems),
                             hints=assignment.hints, cuda_unreachable=sandbox.cuda_problem)
        runs = run_in_session(check_files(assignment, include_hidden=config.include_hidden), plugin)
        cell_errors = {
            exercise: _cell_error_text(cell_id, err)
            for cell_id, err in sandbox.cell_errors.items()
            for exercise in extraction.cell_exercises.get(cell_id, [])
        }
        setup_error = sandbox.cell_errors.get("setup")
        sandbox.end()  # the worker's exit overlaps what comes next
    # read once the worker has closed its output: until then, the last of it may be in the pipe
    result.stdout, result.stderr = sandbox.stdout.text(), sandbox.stderr.text()
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


def error_result(submission: Submission, *, assignment: Assignment, message: str) -> SubmissionResult:
    """Return zero points for ``submission``, saying why it could not be graded."""
    return SubmissionResult(
        student=submission.student, assignment=assignment.name, path=str(submission.path),
        sha256="", status="error", error=message, points=0.0, max_points=assignment.max_points,
        exercises=[ExerciseResult(e.name, 0.0, e.points, problem=message) for e in assignment.exercises],
        environment=environment(),
    )
