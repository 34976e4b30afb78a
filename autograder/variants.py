"""Alternative implementations of exercises, and submissions built from them.

``solutions/<name>/variants.py`` holds, per exercise, correct code written another way and
realistic mistakes (the seeds' known errors among them), in sections headed::

    # %% bce: sum_instead_of_mean [wrong: bce_matches_bceloss, bce_2d_float64_mean_over_all]
    # %% bce: torch_where [correct]

A ``[correct]`` variant must score full marks; a ``[wrong: ...]`` one must fail every check
named (on cpu) and so lose points. A mistake that only shows on a GPU (a model never moved to the
device) is ``[wrong on cuda: ...]``: full marks on the cpu, and the named checks fail on cuda.
``grade audit`` grades all of them; the demo class is built from them. The file is instructor
material: it is never copied to ``assignments/``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.course import Assignment, CourseError, nbgrader_meta, strip_solution_markers

_HEADER = re.compile(
    r"^# %% (?P<exercise>\w+): (?P<name>\w+) \[(?P<kind>correct|wrong)(?: on (?P<device>cuda))?"
    r"(?::\s*(?P<fails>[\w, ]+))?\]\s*$"
)


@dataclass(frozen=True)
class Variant:
    """One alternative implementation of one exercise."""

    exercise: str
    name: str
    correct: bool
    must_fail: tuple[str, ...]
    source: str
    device: str | None = None  # "cuda": wrong only there (right on the cpu)

    @property
    def label(self) -> str:
        return f"{self.exercise}:{self.name}"


def parse_variants(path: Path) -> list[Variant]:
    """Read the sections of a variants file."""
    variants: list[Variant] = []
    header: re.Match[str] | None = None
    body: list[str] = []

    def flush() -> None:
        if header is None:
            return
        fails = tuple(f.strip() for f in (header["fails"] or "").split(",") if f.strip())
        if header["kind"] == "wrong" and not fails:
            raise CourseError(f"{path}: wrong variant {header['name']} names no check that must fail")
        variants.append(Variant(header["exercise"], header["name"], header["kind"] == "correct",
                                fails, "\n".join(body).strip() + "\n", header["device"]))

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("# %%"):
            flush()
            header, body = _HEADER.match(line), []
            if header is None:
                raise CourseError(f"{path}:{number}: bad section header {line!r}; expected "
                                  "'# %% exercise: name [correct]', '[wrong: check, ...]' or "
                                  "'[wrong on cuda: check, ...]'")
        elif header is not None:
            body.append(line)
    flush()
    return variants


def variants_of(assignment: Assignment) -> list[Variant]:
    path = assignment.directory / "variants.py"
    return parse_variants(path) if path.is_file() else []


def compose(student_notebook: Path, sources: dict[str, str]) -> nbformat.NotebookNode:
    """Return the student notebook with the solution cells in ``sources`` filled in."""
    nb = copy.deepcopy(nbformat.read(student_notebook, as_version=4))
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if cell.cell_type == "code" and grade_id in sources:
            cell.source = sources[grade_id]
    return nb


def reference_sources(assignment: Assignment) -> dict[str, str]:
    return {k: strip_solution_markers(v) for k, v in assignment.reference_sources.items()}
