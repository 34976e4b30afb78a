"""Catch an assignment's authoring mistakes before any student is graded (run by ``grade build``).

Links between the notebook, the check files and the probes are checked here, never left to
convention. Two passes:

1. The source notebook, read as data: every nbgrader cell has a grade id, no id is used twice,
   each solution cell has a ``### BEGIN SOLUTION`` region and a check cell ``<exercise>_check``
   whose text is exactly :data:`~autograder.course.CHECK_CELL` and whose metadata nbgrader
   accepts.
2. The checks, run with the reference playing the student (public and hidden, on the cpu): each
   names an exercise the notebook has, every exercise has checks and at least one value check,
   the weights of an exercise's checks add up to its check cell's points, the reference passes
   every check, and the reference agrees with every oracle the author declared. The same run
   records the reference's answers to the public checks for ``expected.json``.

Every problem names a file and a line (or a notebook cell) and is written for the author.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat

from autograder.checks import forget_oracles, oracles
from autograder.course import (
    CHECK_SUFFIX,
    SETUP_ID,
    Assignment,
    CourseError,
    check_cell_source,
    load_assignment,
    nbgrader_meta,
    reference_namespace,
    shown,
)
from autograder.plugin import CheckPlugin, run_checks
from autograder.results import CheckRun
from autograder.subjects import LocalSubject, Outcome, RecordingSubject, Subject, assignment_probes

_GRADE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class Problem:
    """One authoring mistake: where it is and what to do about it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class AuthoringError(CourseError):
    """An assignment that must not be released or graded as it stands."""

    def __init__(self, assignment: str, problems: list[Problem]) -> None:
        problems = list(dict.fromkeys(problems))  # a check runs once per device: say it once
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(f"{assignment}: {count} to fix before students get it:\n"
                         + "\n".join(f"  {p}" for p in problems))


@dataclass
class Validated:
    """An assignment that passed validation, and the reference's answers to its public checks."""

    assignment: Assignment
    records: dict[str, str]
    runs: list[CheckRun] = field(default_factory=list)


# --- pass 1: the notebook -------------------------------------------------------------------

@dataclass
class _Cells:
    """Where each graded cell of the source notebook is, by grade id (1-based cell numbers)."""

    solutions: dict[str, int] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)


def notebook_problems(directory: Path, name: str) -> tuple[list[Problem], _Cells]:
    """Check the source notebook's cells and nbgrader metadata."""
    path = directory / f"{name}.ipynb"
    cells = _Cells()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many types for bad documents
        return [Problem(shown(path), f"cannot be read as a notebook: {exc}")], cells
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, cell in enumerate(nb.cells, 1):
        meta = nbgrader_meta(cell)
        if not meta or not (meta.get("solution") or meta.get("grade") or meta.get("locked")):
            continue
        where = f"{shown(path)}, cell {number}"
        grade_id = meta.get("grade_id")
        if not isinstance(grade_id, str) or not grade_id:
            problems.append(Problem(where, "has nbgrader metadata but no grade_id; give it one "
                                           "(nbgrader's Create Assignment toolbar, 'ID')"))
            continue
        where += f" (grade_id '{grade_id}')"
        if not _GRADE_ID.match(grade_id):
            problems.append(Problem(where, "a grade_id may hold only letters, digits, _ and -"))
        if grade_id in seen:
            problems.append(Problem(where, f"grade_id '{grade_id}' is also used by cell "
                                           f"{seen[grade_id]}; every graded cell needs its own"))
            continue
        seen[grade_id] = number
        if meta.get("schema_version") != 3:
            problems.append(Problem(where, f"nbgrader schema_version is {meta.get('schema_version')!r}; "
                                           "nbgrader 0.9 needs 3"))
        if meta.get("solution"):
            problems.extend(_solution_problems(where, cell, meta))
            cells.solutions[grade_id] = number
        elif meta.get("grade"):
            problems.extend(_check_problems(where, cell, meta, grade_id))
            cells.checks[grade_id.removesuffix(CHECK_SUFFIX)] = number
    for exercise, number in cells.solutions.items():
        if exercise == SETUP_ID:
            problems.append(Problem(f"{shown(path)}, cell {number}", "the setup cell must be "
                                    "read-only (locked), not a solution cell"))
        elif exercise not in cells.checks:
            problems.append(Problem(
                f"{shown(path)}, cell {number} (grade_id '{exercise}')",
                f"exercise '{exercise}' has no check cell: add a code cell below it with grade_id "
                f"'{exercise}{CHECK_SUFFIX}', its points, and the text\n"
                + _indent(check_cell_source(exercise))))
    for exercise, number in cells.checks.items():
        if exercise not in cells.solutions:
            problems.append(Problem(
                f"{shown(path)}, cell {number} (grade_id '{exercise}{CHECK_SUFFIX}')",
                f"a check cell for '{exercise}', but no solution cell has grade_id '{exercise}'"
                + _known(cells.solutions)))
    return problems, cells


def _solution_problems(where: str, cell: Any, meta: dict[str, Any]) -> list[Problem]:
    problems = []
    if cell.cell_type != "code":
        problems.append(Problem(where, "a solution cell must be a code cell: the grader runs it"))
    if meta.get("grade"):
        problems.append(Problem(where, "is both a solution and a graded cell, which nbgrader grades "
                                       "by hand; the check cell below it carries the points "
                                       "(untick 'graded')"))
    if _BEGIN not in cell.source or _END not in cell.source:
        problems.append(Problem(where, f"has no '{_BEGIN}' ... '{_END}' region, so the released "
                                       "notebook would hold the reference solution"))
    return problems


def _check_problems(where: str, cell: Any, meta: dict[str, Any], grade_id: str) -> list[Problem]:
    if not grade_id.endswith(CHECK_SUFFIX):
        return [Problem(where, f"a graded cell must be an exercise's check cell, with grade_id "
                               f"'<exercise>{CHECK_SUFFIX}' (nbgrader would give points that "
                               "`grade` never awards)")]
    exercise = grade_id.removesuffix(CHECK_SUFFIX)
    problems = []
    points = meta.get("points")
    if not isinstance(points, (int, float)) or isinstance(points, bool) or not points > 0:
        problems.append(Problem(where, f"points is {points!r}; a check cell carries the exercise's "
                                       "points, a positive number"))
    if cell.cell_type != "code" or not meta.get("locked") or meta.get("solution"):
        problems.append(Problem(where, "a check cell must be a read-only (locked) code cell that "
                                       "is not a solution cell"))
    expected = check_cell_source(exercise)
    if cell.source.strip() != expected:
        missing = "### BEGIN HIDDEN TESTS" not in cell.source
        why = ("has no hidden-test region, so `nbgrader autograde` would run only the public "
               "checks" if missing else "does not have the exact check-cell text")
        problems.append(Problem(where, f"{why}. Its text must be exactly:\n{_indent(expected)}"))
    return problems


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" for line in text.splitlines())


def _known(names: dict[str, int]) -> str:
    return f" (exercises: {', '.join(names)})" if names else " (the notebook has no solution cells)"


# --- pass 2: the checks, run on the reference -------------------------------------------------

def validate(directory: Path) -> Validated:
    """Validate the assignment in ``directory``; raise :class:`AuthoringError` listing every problem."""
    name = directory.name
    problems, cells = notebook_problems(directory, name)
    if not (directory / "public_checks.py").is_file():
        problems.append(Problem(shown(directory), "public_checks.py is missing; every assignment "
                                                  "needs one (`grade new` writes a skeleton)"))
    if problems:
        raise AuthoringError(name, problems)
    assignment = load_assignment(name, directory.parent)
    runs, locations, records = _run_reference(assignment)
    problems = check_problems(assignment, runs, locations, cells)
    if not problems:
        problems = oracle_problems(assignment, locations)
    if problems:
        raise AuthoringError(name, problems)
    released = {r.group for r in runs if not r.hidden}  # students never get hidden answers
    public = {k: v for k, v in records.items() if k.rsplit("#", 1)[0] in released}
    return Validated(assignment=assignment, records=public, runs=runs)


def check_files(assignment: Assignment) -> list[Path]:
    files = [assignment.public_checks]
    if assignment.hidden_checks.is_file():
        files.append(assignment.hidden_checks)
    return files


def _run_reference(assignment: Assignment) -> tuple[list[CheckRun], dict[str, tuple[str, int]],
                                                     dict[str, Any]]:
    probes = assignment_probes(assignment)
    recorder = RecordingSubject(LocalSubject(reference_namespace(assignment), "reference", probes=probes))
    plugin = CheckPlugin(student=LocalSubject(reference_namespace(assignment), "student", probes=probes),
                         reference=recorder, devices=("cpu",), hints="formula", author=True)
    forget_oracles(check_files(assignment))  # the fresh import below declares them again
    # one torch thread, as the sandbox runs: a float32 reduction's rounding depends on the
    # thread count, and expected.json must not depend on the machine that built it
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = run_checks(check_files(assignment), plugin, fresh=True)
    finally:
        torch.set_num_threads(threads)
    return runs, plugin.locations, recorder.records


def check_problems(assignment: Assignment, runs: list[CheckRun],
                   locations: dict[str, tuple[str, int]], cells: _Cells) -> list[Problem]:
    """Problems with the checks themselves, found from a run of the reference against itself."""
    problems: list[Problem] = []
    notebook = shown(assignment.notebook)
    names = [e.name for e in assignment.exercises]

    def at(run: CheckRun) -> str:
        file, line = locations.get(run.group, (str(assignment.directory), 0))
        return f"{shown(file)}:{line}"

    for run in runs:
        if run.exercise == "unknown":
            problems.append(Problem(at(run), f"test_{run.name} is not marked as a check: add "
                                             "@check(\"<exercise>\", points=...) above it"))
        elif run.exercise not in names:
            problems.append(Problem(at(run), f"check test_{run.name} names exercise "
                                             f"'{run.exercise}', which {notebook} does not have "
                                             f"(exercises: {', '.join(names)})"))
        elif not run.passed and not run.skipped:
            problems.append(Problem(at(run), f"the reference fails its own check test_{run.name}: "
                                             f"{run.message}"))
        file = locations.get(run.group, ("", 0))[0]
        if run.hidden and Path(file).name == "public_checks.py":
            problems.append(Problem(at(run), f"hidden_checks.py imports the check test_{run.name} "
                                             "from public_checks.py, so it would run twice; "
                                             "import helpers, never checks"))
    for exercise in assignment.exercises:
        number = cells.checks.get(exercise.name, 0)
        cell = f"{notebook}, cell {number} (grade_id '{exercise.name}{CHECK_SUFFIX}')"
        mine = {r.group: r for r in runs if r.exercise == exercise.name}
        if not mine:
            problems.append(Problem(cell, f"exercise '{exercise.name}' has no checks: add "
                                          f"@check(\"{exercise.name}\", points=...) tests to "
                                          "public_checks.py or hidden_checks.py"))
            continue
        total = sum(r.weight for r in mine.values())
        if not math.isclose(total, exercise.points, rel_tol=1e-9, abs_tol=1e-9):
            parts = "; ".join(f"test_{r.name} {r.weight:g} at {at(r)}" for r in mine.values())
            problems.append(Problem(cell, f"the checks of '{exercise.name}' are worth {total:g} "
                                          f"points in all (a parametrised check counts once per "
                                          f"instance: {parts}), but the check cell carries "
                                          f"{exercise.points:g}. nbgrader records the cell's "
                                          "points: make them agree."))
        if not any(r.kind == "value" for r in mine.values()):
            problems.append(Problem(cell, f"'{exercise.name}' has only property checks; a property "
                                          "check pays only when the exercise's value checks pass, "
                                          "so add at least one value check (the default kind)"))
    return problems


class OracleSubject(LocalSubject):
    """The author's oracle playing the student. It may use any built-in: its calls are not
    reported, so "implement it yourself" parts of value checks do not count against it."""

    def run(self, probe: str, *args: Any, **kwargs: Any) -> Outcome:
        return replace(super().run(probe, *args, **kwargs), torch_calls=frozenset())


def oracle_problems(assignment: Assignment, locations: dict[str, tuple[str, int]]) -> list[Problem]:
    """Run every value check of each exercise that has an oracle, the oracle playing the student."""
    problems = []
    declared = oracles(check_files(assignment))
    for exercise_name, functions in declared.items():
        try:
            exercise = assignment.exercise(exercise_name)
        except KeyError:
            problems.append(Problem(shown(assignment.public_checks), f"oracle('{exercise_name}', "
                                    f"...) names an exercise the notebook does not have"))
            continue
        try:
            namespace = _oracle_namespace(assignment, exercise.defines, functions)
        except ValueError as exc:
            problems.append(Problem(shown(assignment.public_checks), str(exc)))
            continue
        student = OracleSubject(namespace, "oracle", probes=assignment_probes(assignment))
        plugin = CheckPlugin(student=student, reference=_reference(assignment), devices=("cpu",),
                             only=frozenset({exercise_name}), kinds=frozenset({"value"}),
                             hints="formula", author=True)
        label = ", ".join(getattr(f, "__qualname__", repr(f)) for f in functions.values())
        for run in run_checks(check_files(assignment), plugin):
            if not run.passed and not run.skipped:
                file, line = locations.get(run.group, (str(assignment.directory), 0))
                problems.append(Problem(f"{shown(file)}:{line}", f"the reference disagrees with "
                                        f"the oracle declared for '{exercise_name}' ({label}) in "
                                        f"test_{run.name} ('expected' is the reference's answer, "
                                        f"'got' the oracle's): {run.message}"))
    return problems


def _reference(assignment: Assignment) -> Subject:
    return LocalSubject(reference_namespace(assignment), "reference",
                        probes=assignment_probes(assignment))


def _oracle_namespace(assignment: Assignment, defines: tuple[str, ...],
                      functions: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    functions = dict(functions)
    if "" in functions:
        if len(defines) != 1:
            raise ValueError(f"oracle() gives one function, but the exercise defines "
                             f"{', '.join(defines) or 'nothing'}: name each, oracle(exercise, "
                             f"{'=..., '.join(defines)}=...)")
        functions[defines[0]] = functions.pop("")
    unknown = sorted(set(functions) - set(defines))
    if unknown:
        raise ValueError(f"oracle() names {', '.join(unknown)}, which the exercise's cell does "
                         f"not define (it defines {', '.join(defines) or 'nothing'})")
    namespace: dict[str, Any] = {"__name__": f"oracle_{assignment.name}"}
    exec(compile(assignment.setup_source, f"<oracle {assignment.name}:setup>", "exec"), namespace)
    namespace.update(functions)
    return namespace
