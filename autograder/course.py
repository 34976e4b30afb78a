"""Assignments as the instructor wrote them: the source notebook and its check files.

An assignment lives in ``solutions/<name>/``: ``<name>.ipynb`` (nbgrader source notebook with
``### BEGIN SOLUTION`` regions), ``public_checks.py`` (shipped to students),
``hidden_checks.py`` (never shipped) and, where an exercise needs its own trusted driver,
``probes.py`` (shipped: the check cell runs it). Exercises are the notebook's nbgrader solution
cells; the check cell ``<exercise>_check`` under each carries the exercise's points. Settings
shared by the course (the hint level) come from ``solutions/course.toml``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.settings import (
    COURSE_FILE,
    DEFAULT_HINTS,
    AssignmentSettings,
    SettingsError,
    assignment_settings,
)

PROBE_FILE = "probes.py"
SETUP_ID = "setup"
CHECK_SUFFIX = "_check"
_SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$", re.MULTILINE)


CHECK_CELL = (
    "from autograder.notebook import check\n"
    "### BEGIN HIDDEN TESTS\n"
    "from autograder.notebook import check_all as check  # grading: public and hidden checks\n"
    "### END HIDDEN TESTS\n"
    'check("{exercise}")'
)
"""The exact text of an exercise's check cell. The released notebook runs the public checks
(nbgrader clears the hidden region); ``nbgrader autograde`` restores the region and so runs
``check_all``, the public and hidden checks against the reference."""


class CourseError(Exception):
    """The course material itself is inconsistent or missing."""


def check_cell_source(exercise: str) -> str:
    return CHECK_CELL.format(exercise=exercise)


def cell_metadata(grade_id: str, *, role: str, points: float = 0) -> dict[str, Any]:
    """nbgrader metadata of a cell with ``role`` "setup", "solution" or "check"."""
    meta: dict[str, Any] = {"grade": role == "check", "grade_id": grade_id,
                            "locked": role != "solution", "schema_version": 3,
                            "solution": role == "solution"}
    if role == "check":
        meta["points"] = points
    return meta


@dataclass(frozen=True)
class Exercise:
    """One graded solution cell of an assignment."""

    name: str
    points: float
    defines: tuple[str, ...]


@dataclass(frozen=True)
class Assignment:
    """An assignment's source notebook, reference code and check files."""

    name: str
    directory: Path
    exercises: tuple[Exercise, ...]
    setup_source: str
    reference_sources: dict[str, str]
    probes_source: str = ""
    hints: str = DEFAULT_HINTS

    @property
    def notebook(self) -> Path:
        return self.directory / f"{self.name}.ipynb"

    @property
    def public_checks(self) -> Path:
        return self.directory / "public_checks.py"

    @property
    def hidden_checks(self) -> Path:
        return self.directory / "hidden_checks.py"

    @property
    def probes_file(self) -> Path:
        return self.directory / PROBE_FILE

    @property
    def max_points(self) -> float:
        return sum(e.points for e in self.exercises)

    def exercise(self, name: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.name == name:
                return exercise
        raise KeyError(name)


def shown(path: Path | str) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def strip_solution_markers(source: str) -> str:
    return _SOLUTION_MARKERS.sub("", source)


def top_level_names(source: str) -> tuple[str, ...]:
    """Return the functions and classes a cell defines at top level (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    return tuple(
        node.name for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    )


def find_solutions_dir(start: Path | None = None) -> Path:
    """Return ``solutions/`` from the working directory, or beside this package."""
    for base in ((start or Path.cwd()), Path(__file__).resolve().parents[1]):
        candidate = base / "solutions"
        if candidate.is_dir():
            return candidate
    raise CourseError("no solutions/ directory found here or beside the autograder package; "
                      "pass --solutions DIR")


def available(solutions_dir: Path) -> list[str]:
    """The assignments in ``solutions_dir``, in course order: a2 before a10 (numbers compared
    as numbers)."""
    names = [p.name for p in solutions_dir.iterdir() if (p / f"{p.name}.ipynb").is_file()]
    return sorted(names, key=lambda name: [int(part) if part.isdigit() else part
                                           for part in re.split(r"(\d+)", name)])


def load_assignment(name: str, solutions_dir: Path) -> Assignment:
    """Read ``solutions_dir/name`` and return the assignment it defines.

    Read once per process while its files stay as they are (a grading server lives for many
    commands, and an author edits between them).
    """
    return _load_assignment(name, solutions_dir, _fingerprint(solutions_dir, name))


def _fingerprint(solutions_dir: Path, name: str) -> tuple[tuple[str, str], ...]:
    """Name and digest of every file that shapes the assignment (a few small files)."""
    stamps = []
    for path in (solutions_dir / COURSE_FILE, *sorted((solutions_dir / name).glob("*"))):
        try:
            stamps.append((path.name, hashlib.sha1(path.read_bytes()).hexdigest()))
        except OSError:  # a folder, or gone
            continue
    return tuple(stamps)


@functools.lru_cache(maxsize=32)
def _load_assignment(name: str, solutions_dir: Path, fingerprint: tuple[Any, ...]) -> Assignment:
    directory = solutions_dir / name
    notebook_path = directory / f"{name}.ipynb"
    if not notebook_path.is_file():
        choices = ", ".join(available(solutions_dir)) if solutions_dir.is_dir() else "none"
        raise CourseError(f"unknown assignment '{name}': no {notebook_path}. Known: {choices}")
    if not (directory / "public_checks.py").is_file():
        raise CourseError(f"{directory}: public_checks.py is missing; every assignment needs one")
    import nbformat  # here, not at the top: `grade --help` must not wait for it

    nb = nbformat.read(notebook_path, as_version=4)
    setup, sources, points = [], {}, {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id", "")
        if cell.cell_type != "code" or not grade_id:
            continue
        if grade_id == SETUP_ID:
            setup.append(cell.source)
        elif meta.get("solution"):
            sources[grade_id] = strip_solution_markers(cell.source)
        elif meta.get("grade") and grade_id.endswith(CHECK_SUFFIX):
            points[grade_id.removesuffix(CHECK_SUFFIX)] = float(meta.get("points", 0))
    missing = sorted(set(sources) - set(points))
    if missing:
        raise CourseError(f"{notebook_path}: exercises without a check cell: {', '.join(missing)}")
    exercises = tuple(
        Exercise(name=ex, points=points[ex], defines=top_level_names(src))
        for ex, src in sources.items()
    )
    return Assignment(name=name, directory=directory, exercises=exercises,
                      setup_source="\n\n".join(setup), reference_sources=sources,
                      probes_source=_read_probes(directory),
                      hints=_settings(solutions_dir, name).hints)


def _settings(solutions_dir: Path, name: str) -> AssignmentSettings:
    try:
        return assignment_settings(solutions_dir, name)
    except SettingsError as exc:
        raise CourseError(str(exc)) from None


def _read_probes(directory: Path) -> str:
    path = directory / PROBE_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def assignment_from_manifest(expected: Path) -> Assignment:
    """Read the assignment's outline recorded in ``expected.json`` (what students receive).

    It names the exercises, their points and the functions they define, and the setup cell, so a
    student's notebook can be graded with the public checks without the solutions folder.
    """
    import json

    try:
        outline = json.loads(expected.read_text(encoding="utf-8"))["assignment"]
        exercises = tuple(Exercise(name=str(e["name"]), points=float(e["points"]),
                                   defines=tuple(map(str, e["defines"])))
                          for e in outline["exercises"])
        return Assignment(name=str(outline["name"]), directory=expected.parent, exercises=exercises,
                          setup_source=str(outline["setup"]), reference_sources={},
                          probes_source=_read_probes(expected.parent),
                          hints=str(outline.get("hints", DEFAULT_HINTS)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CourseError(f"{expected} has no usable assignment outline ({exc}); "
                          "ask your instructor for a fresh copy of the assignment") from None


def reference_namespace(assignment: Assignment) -> dict[str, Any]:
    """Execute the reference solution in a fresh namespace (trusted code, run in-process)."""
    from autograder.probes import register_source

    namespace: dict[str, Any] = {"__name__": f"reference_{assignment.name}"}
    for cell_id, source in [(SETUP_ID, assignment.setup_source), *assignment.reference_sources.items()]:
        filename = f"<reference {assignment.name}:{cell_id}>"
        register_source(filename, source)
        exec(compile(source, filename, "exec"), namespace)
    return namespace
