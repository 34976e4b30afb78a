"""Grade a batch: find the submissions, reuse what is done, write each result as it arrives.

A result already on disk for the same file contents is reused unless asked to grade again, so a
batch interrupted part-way finishes where it stopped; each result is written atomically the
moment it comes back, so a crash loses nothing graded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from autograder.course import Assignment
from autograder.grading.config import GradeConfig
from autograder.grading.pool import GraderPool
from autograder.grading.scoring import Submission, environment, grade_submission
from autograder.isolation.launch import wait_for_exits
from autograder.results import (
    SubmissionResult,
    batch_document,
    read_submission,
    safe_name,
    write_atomic,
    write_csv,
    write_submission,
)

SUFFIXES = (".ipynb", ".py")

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


BatchGrader = Callable[[list[Submission]], Iterator[tuple[int, SubmissionResult]]]
"""Grade a list of submissions, yielding ``(position in the list, result)`` as each finishes."""


def grade_batch(
    submissions: list[Submission], *, assignment: Assignment, config: GradeConfig, out_dir: Path,
    on_result: Callable[[SubmissionResult], None] | None = None, rerun: bool = False,
    workers: int = 1,
) -> list[SubmissionResult]:
    """Grade each submission, writing ``out_dir/submissions/<student>.json`` as each finishes.

    A result already on disk for the same file contents is reused unless ``rerun``, so a batch
    interrupted part-way finishes where it stopped. With ``workers`` above 1, that many
    submissions are graded at once, each in a grader process of its own (see :class:`GraderPool`);
    the returned list and the batch files keep the order of ``submissions`` whatever the order
    in which they finish.
    """
    if workers < 1:
        raise ValueError(f"Invalid workers {workers}: must be at least 1")

    def grade(todo: list[Submission]) -> Iterator[tuple[int, SubmissionResult]]:
        if workers == 1 or len(todo) < 2:
            try:
                for position, submission in enumerate(todo):
                    yield position, grade_submission(submission, assignment=assignment, config=config)
            finally:  # each worker's exit overlapped the next submission; the last one's ends here
                wait_for_exits()
            return
        with GraderPool(min(workers, len(todo)), assignment=assignment, config=config) as pool:
            yield from pool.grade(todo)

    return stream_batch(submissions, assignment=assignment.name, out_dir=out_dir, grade=grade,
                        on_result=on_result, rerun=rerun)


def stream_batch(
    submissions: list[Submission], *, assignment: str, out_dir: Path, grade: BatchGrader,
    on_result: Callable[[SubmissionResult], None] | None = None, rerun: bool = False,
    environment_info: dict[str, Any] | None = None,
) -> list[SubmissionResult]:
    """Reuse what is done, ``grade`` the rest, and write each result the moment it arrives.

    ``on_result`` is called in this thread for every submission: reused ones first, then graded
    ones in the order they finish. ``results.json`` and ``results.csv`` follow ``submissions``.
    """
    per_submission = out_dir / "submissions"
    for leftover in per_submission.glob(".*.tmp"):  # from a batch killed mid-write
        leftover.unlink(missing_ok=True)
    results: list[SubmissionResult | None] = [None] * len(submissions)
    todo: list[int] = []
    for index, submission in enumerate(submissions):
        previous = None if rerun else read_submission(_target(out_dir, submission))
        if previous is not None and previous.sha256 and previous.sha256 == _sha256(submission.path):
            results[index] = previous
            if on_result is not None:
                on_result(previous)
        else:
            todo.append(index)
    for position, result in grade([submissions[i] for i in todo]):
        index = todo[position]
        write_submission(_target(out_dir, submissions[index]), result)
        results[index] = result
        if on_result is not None:
            on_result(result)
    missing = [s.student for s, r in zip(submissions, results, strict=True) if r is None]
    if missing:  # a grader that skips a submission is a bug: never write a batch without it
        raise RuntimeError(f"no result came back for {', '.join(missing)}")
    done = [r for r in results if r is not None]
    document = batch_document(assignment, done, environment_info or environment())
    write_atomic(out_dir / "results.json", json.dumps(document, indent=1) + "\n")
    write_csv(out_dir / "results.csv", done)
    return done


def rewrite_batch_files(out_dir: Path, assignment: str) -> list[SubmissionResult]:
    """Write ``results.json`` and ``results.csv`` from every ``submissions/<student>.json`` in
    ``out_dir``: after grading a few students of a course, the files keep everyone graded so far
    (a batch's own files hold only its submissions)."""
    results = [r for p in sorted((out_dir / "submissions").glob("*.json"))
               if (r := read_submission(p)) is not None]
    document = batch_document(assignment, results, environment())
    write_atomic(out_dir / "results.json", json.dumps(document, indent=1) + "\n")
    write_csv(out_dir / "results.csv", results)
    return results


def _target(out_dir: Path, submission: Submission) -> Path:
    return out_dir / "submissions" / f"{safe_name(submission.student)}.json"


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
