"""An nbgrader course directory graded by ``grade``: set it up, grade it, fill its gradebook.

The semester loop uses nbgrader's own commands for everything they do well (generate and release
assignments, the exchange, collect, feedback) and ``grade`` where an autograder must be trusted:

1. ``grade course init COURSE`` writes ``nbgrader_config.py`` and copies each assignment into
   ``source/<a>/``: the instructor's notebook, the public and hidden checks, and
   ``expected.json``. The config keeps ``hidden_checks.py`` out of everything nbgrader copies
   (release and autograded folders).
2. ``nbgrader generate_assignment``, ``release_assignment``; students ``fetch_assignment`` and
   ``submit``; ``nbgrader collect`` (all unchanged).
3. ``grade course autograde <a>`` grades ``submitted/<student>/<a>/`` in the sandbox, writes
   ``autograded/<student>/<a>/<a>.ipynb`` (the submission with each check cell's output replaced
   by its results: public checks in full, hidden checks as counts), and sets ``auto_score`` of
   every check cell in nbgrader's gradebook.
4. ``nbgrader generate_feedback`` / ``release_feedback`` and ``nbgrader export`` read that.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from autograder.course import (
    CHECK_SUFFIX,
    PROBE_FILE,
    Assignment,
    CourseError,
    load_assignment,
    nbgrader_meta,
)
from autograder.grading.batch import discover, grade_batch, rewrite_batch_files
from autograder.grading.config import GradeConfig
from autograder.grading.pool import default_workers
from autograder.grading.scoring import Submission
from autograder.report import html_table, skipped_reasons, text_table
from autograder.results import CheckRun, ExerciseResult, SubmissionResult
from autograder.settings import COURSE_FILE

if TYPE_CHECKING:
    from autograder.integrations.cluster import Cluster

CONFIG_FILE = "nbgrader_config.py"
NEVER_RELEASED = ["hidden_checks.py", "variants.py"]
COPIED = ("public_checks.py", "hidden_checks.py", PROBE_FILE)  # those that exist

_CONFIG = '''\
# Written by `grade course init`. nbgrader reads it from this folder; edit it freely:
# `grade course init` never overwrites it.
c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = {course_id!r}
# The hidden checks stay in source/: never released, never copied next to a student's work.
c.CourseDirectory.ignore = {ignore!r}
# Under `nbgrader autograde` a check cell runs all of its exercise's checks (public and hidden)
# in one go: give it as long as `grade` gives a whole submission.
c.Execute.timeout = 600
{exchange}'''


STUDENT_CONFIG_FILE = "student_nbgrader_config.py"
_STUDENT_CONFIG = '''\
# Written by `grade course init` for the students of course {course_id!r}. Save it as
# ~/.jupyter/nbgrader_config.py: JupyterLab's Assignments tab and the nbgrader commands
# (fetch_assignment, submit, fetch_feedback) read it there.
c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = {course_id!r}
{exchange}'''


@dataclass(frozen=True)
class CourseLayout:
    """Where an nbgrader course keeps things, as its own configuration says."""

    root: Path
    course_id: str
    db_url: str
    source: Path
    submitted: Path
    autograded: Path
    release: Path

    def assignment(self, name: str) -> Assignment:
        return load_assignment(name, self.source)


def init_course(course: Path, *, solutions: Path, built: Path, names: list[str],
                course_id: str = "torchgrade", exchange: Path | None = None) -> list[Path]:
    """Create or refresh ``course``: its config (once) and ``source/<a>/`` for each of ``names``.

    ``built`` is the ``assignments/`` folder made by ``grade build`` (for ``expected.json``).
    Returns the files written.
    """
    written = []
    course.mkdir(parents=True, exist_ok=True)
    config = course / CONFIG_FILE
    exchange_line = f"c.Exchange.root = {str(exchange.resolve())!r}\n" if exchange else ""
    if not config.exists():
        from nbgrader.coursedir import CourseDirectory

        ignore = [*CourseDirectory().ignore, *NEVER_RELEASED]
        config.write_text(_CONFIG.format(course_id=course_id, ignore=ignore, exchange=exchange_line),
                          encoding="utf-8")
        written.append(config)
    student_config = course / STUDENT_CONFIG_FILE
    if not student_config.exists():  # what students need to reach the same exchange
        student_config.write_text(_STUDENT_CONFIG.format(
            course_id=course_id, exchange=exchange_line or "# c.Exchange.root: nbgrader's default, "
            "/usr/local/share/nbgrader/exchange (it must exist and be writable by everyone)\n"),
            encoding="utf-8")
        written.append(student_config)
    for name in names:
        assignment = load_assignment(name, solutions)
        expected = built / name / "expected.json"
        if not expected.is_file():
            raise CourseError(f"{expected} is missing: run `grade build {name}` first")
        target = course / "source" / name
        target.mkdir(parents=True, exist_ok=True)
        copied = [assignment.directory / f for f in COPIED if (assignment.directory / f).is_file()]
        for source in (assignment.notebook, *copied, expected):
            shutil.copyfile(source, target / source.name)
            written.append(target / source.name)
    settings = solutions / COURSE_FILE
    if settings.is_file() and names:  # the hint level, read where `grade` grades source/<a>/
        shutil.copyfile(settings, course / "source" / COURSE_FILE)
        written.append(course / "source" / COURSE_FILE)
    return written


def layout(course: Path) -> CourseLayout:
    """Read ``course``'s nbgrader configuration the way nbgrader does."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import Config, PyFileConfigLoader

    if not (course / CONFIG_FILE).is_file():
        raise CourseError(f"{course} has no {CONFIG_FILE}: run `grade course init {course}` first "
                          "(or point --course at the course folder)")
    try:
        config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    except Exception as exc:  # noqa: BLE001 - the instructor's config file, reported as such
        raise CourseError(f"{course / CONFIG_FILE} could not be read: {exc}") from None
    coursedir = CourseDirectory(config=Config(config), root=str(course.resolve()))

    def folder(step: str) -> Path:
        return Path(coursedir.root) / step

    return CourseLayout(root=Path(coursedir.root), course_id=coursedir.course_id,
                        db_url=coursedir.db_url, source=folder(coursedir.source_directory),
                        submitted=folder(coursedir.submitted_directory),
                        autograded=folder(coursedir.autograded_directory),
                        release=folder(coursedir.release_directory))


def gradebook(course: CourseLayout) -> Any:
    """Open the course's nbgrader gradebook.

    nbgrader runs the ``alembic`` command to check the database schema; when ``grade`` runs from
    an environment that is not activated, that command is beside this interpreter, not on PATH.
    """
    from nbgrader.api import Gradebook

    if shutil.which("alembic") is None:
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return Gradebook(course.db_url, course.course_id)


def check_gradebook(course: CourseLayout, assignment: Assignment) -> None:
    """Fail early, with the command to run, if nbgrader does not know the assignment's cells."""
    from nbgrader.api import MissingEntry

    with gradebook(course) as gb:
        try:
            gb.find_assignment(assignment.name)
            for exercise in assignment.exercises:
                cell = gb.find_grade_cell(exercise.name + CHECK_SUFFIX, assignment.name, assignment.name)
                if cell.max_score != exercise.points:
                    raise CourseError(
                        f"the gradebook gives {cell.name} {cell.max_score:g} points, the source "
                        f"notebook {exercise.points:g}: run `nbgrader generate_assignment "
                        f"{assignment.name} --force` again")
        except MissingEntry as exc:
            raise CourseError(f"the gradebook does not know {assignment.name} ({exc}): run "
                              f"`nbgrader generate_assignment {assignment.name}` first") from None


def record_grades(course: CourseLayout, result: SubmissionResult, *, timestamp: str | None) -> None:
    """Set ``auto_score`` of each check cell of ``result``'s notebook in nbgrader's gradebook."""
    from sqlalchemy.exc import SAWarning

    with gradebook(course) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's add_submission triggers these
        gb.update_or_create_student(result.student)
        if timestamp:
            gb.update_or_create_submission(result.assignment, result.student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(result.assignment, result.student)
        for exercise in result.exercises:
            grade = gb.find_grade(exercise.exercise + CHECK_SUFFIX, result.assignment,
                                  result.assignment, result.student)
            grade.auto_score = exercise.points
            # as nbgrader's own autograder does: a manual score an instructor gave is kept
            # and flagged for review rather than silently overwritten
            grade.needs_manual_grade = grade.manual_score is not None
        gb.db.commit()


def _output_cells(runs: list[Any], *, title: str, points: float) -> list[Any]:
    """A check cell's outputs in the feedback: the table (checks not run are said once, at the
    top of the notebook) and the points."""
    return [
        nbformat.v4.new_output("display_data", data={
            "text/html": html_table(runs, title=title, show_skipped=False),
            "text/plain": text_table(runs, title=title, show_skipped=False)}),
        nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(points))},
                               execution_count=None),
    ]


def autograded_notebook(result: SubmissionResult, *, submitted: Path, released: Path) -> Any:
    """The submission as the student will see it in feedback.

    Outputs from the student's own kernel are cleared (the grader did not run those cells); each
    check cell gets the released source and metadata back, and the grader's results as output.
    A check cell the student deleted is put back after the exercise's cell. Cells that reuse a
    grade id keep nbgrader metadata only on the first, as nbgrader's DeduplicateIds does.
    """
    release_nb = nbformat.read(released, as_version=4)
    checks = {nbgrader_meta(c).get("grade_id"): c for c in release_nb.cells
              if nbgrader_meta(c).get("grade_id", "").endswith(CHECK_SUFFIX)}
    known = {nbgrader_meta(c).get("grade_id") for c in release_nb.cells} - {None, ""}
    try:
        nb = nbformat.read(submitted, as_version=4)
        unreadable = None
    except Exception as exc:  # noqa: BLE001 - any unreadable file: show the released notebook
        nb, unreadable = nbformat.read(released, as_version=4), str(exc)
    seen: set[str] = set()
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id", "")
        if grade_id and (grade_id not in known or grade_id in seen):
            cell.metadata.pop("nbgrader", None)
        seen.add(grade_id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for exercise in result.exercises:
        check_id = exercise.exercise + CHECK_SUFFIX
        runs = [r for r in result.checks if r.exercise == exercise.exercise]
        cell = next((c for c in nb.cells if nbgrader_meta(c).get("grade_id") == check_id), None)
        if cell is None and check_id in checks:
            cell = nbformat.from_dict(checks[check_id])
            after = max((i for i, c in enumerate(nb.cells)
                         if nbgrader_meta(c).get("grade_id") == exercise.exercise), default=len(nb.cells) - 1)
            nb.cells.insert(after + 1, cell)
        if cell is None:
            continue
        if check_id in checks:
            cell.source, cell.metadata = checks[check_id].source, checks[check_id].metadata
        cell.cell_type, cell.execution_count = "code", None
        note = exercise.problem or exercise.cell_error
        if note and result.error and note in result.error:
            note = None  # the submission's own error is said once, at the top
        title = f"{exercise.exercise} (graded)" + (f": {note.splitlines()[0]}" if note else "")
        cell.outputs = _output_cells(runs, title=title, points=exercise.points)
    summary = f"**Graded by `grade`: {result.points:g} / {result.max_points:g} points.**"
    if unreadable or result.error:
        summary += f"\n\nYour submitted file could not be graded as it was: {result.error or unreadable}"
    for reason, count in skipped_reasons(result.checks):
        summary += f"\n\n{count} check{'s' if count != 1 else ''} not run: {reason}"
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(summary))
    return nb


def read_timestamp(folder: Path) -> str | None:
    path = folder / "timestamp.txt"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def autograde(course_dir: Path, assignment_name: str, *, config: GradeConfig,
              students: tuple[str, ...] = (), rerun: bool = False,
              on_result: Callable[[SubmissionResult], None] | None = None,
              workers: int | None = None, cluster: Cluster | None = None,
              worker_solutions: str | None = None) -> tuple[list[SubmissionResult], Path]:
    """Grade ``submitted/*/<a>/`` of ``course_dir``; fill ``autograded/`` and the gradebook.

    Grades on this machine (``workers`` at once, by default as many as suit the batch), or on
    ``cluster``, whose workers find the assignment in ``worker_solutions`` (by default the
    course's ``source/`` folder at the same path) or their own default.
    Returns the results and the folder holding ``results.json``, ``results.csv`` and one JSON
    file per submission (``<course>/grades/<a>/``).
    """
    course = layout(course_dir)
    assignment = course.assignment(assignment_name)
    check_gradebook(course, assignment)
    released = course.release / assignment.name / f"{assignment.name}.ipynb"
    if not released.is_file():
        raise CourseError(f"{released} is missing: run `nbgrader generate_assignment {assignment.name}`")
    found: list[Submission] = (discover([course.submitted], assignment.name)
                               if course.submitted.is_dir() else [])
    if students:
        found = [s for s in found if s.student in students]
    if not found:
        raise CourseError(f"no submissions of {assignment.name} in {course.submitted} "
                          "(run `nbgrader collect` first?)")
    out_dir = course.root / "grades" / assignment.name

    def finish(result: SubmissionResult) -> None:
        folder = course.submitted / result.student / assignment.name
        target = course.autograded / result.student / assignment.name
        target.mkdir(parents=True, exist_ok=True)
        nb = autograded_notebook(result, submitted=Path(result.path), released=released)
        nbformat.write(nb, target / f"{assignment.name}.ipynb")
        # nbgrader's feedback steps read timestamp.txt and submission_secret.txt from here
        for kept in ("timestamp.txt", "submission_secret.txt"):
            if (folder / kept).is_file():
                shutil.copyfile(folder / kept, target / kept)
        record_grades(course, result, timestamp=read_timestamp(folder))
        if on_result is not None:
            on_result(result)

    if cluster is not None:
        results = cluster.grade_batch(
            found, assignment=assignment, config=config, out_dir=out_dir, on_result=finish,
            rerun=rerun, solutions=(worker_solutions or str(course.source),),
            fallback=worker_solutions is None)
    else:
        results = grade_batch(found, assignment=assignment, config=config, out_dir=out_dir,
                              on_result=finish, rerun=rerun,
                              workers=workers or default_workers(len(found), devices=config.devices))
    if students:  # results.json and results.csv keep the students graded before
        rewrite_batch_files(out_dir, assignment.name)
    return results, out_dir


def gradebook_results(gb: Any) -> list[list[SubmissionResult]]:
    """Every submission in an open nbgrader ``Gradebook``, one list per assignment, for the report.

    The gradebook knows scores per graded cell, not per check: each graded cell becomes one
    item (an exercise's check cell is named after the exercise), passed when it earned full
    marks, and its failure "message" says whether it earned part of its points or none. Scores
    are nbgrader's (a manual score overrides the automatic one); late penalties are not
    subtracted, as the report is about the exercises, not the grades. An assignment no one
    submitted gives an empty list.
    """
    batches = []
    for assignment in gb.assignments:
        batch = []
        for submission in assignment.submissions:
            exercises, runs = [], []
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    name = grade.name.removesuffix(CHECK_SUFFIX)
                    score, top = float(grade.score or 0.0), float(grade.max_score or 0.0)
                    exercises.append(ExerciseResult(exercise=name, points=score, max_points=top))
                    full = score >= top
                    message = "" if full else ("part of its points" if score > 0 else "no points")
                    runs.append(CheckRun(name=grade.name, exercise=name, device="gradebook", hidden=False,
                                         passed=full, skipped=False, points=score, max_points=top,
                                         message=message, duration_s=0.0))
            batch.append(SubmissionResult(
                student=submission.student.id, assignment=assignment.name, path="", sha256="",
                status="graded", error=None, points=sum(e.points for e in exercises),
                max_points=sum(e.max_points for e in exercises), exercises=exercises, checks=runs))
        batches.append(sorted(batch, key=lambda r: r.student))
    return batches
