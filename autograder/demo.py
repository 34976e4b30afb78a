"""The demo class: twelve students with a realistic spread of work, in nbgrader's layout.

Each student has a skill level; for every exercise a seeded draw picks the reference solution,
a correct variant written another way, a realistic mistake from ``variants.py``, or the untouched
stub. A few students also make the notebook-level slips a real class makes (a deleted cell whose
code was pasted elsewhere, a cell turned into markdown, a truncated file). Deterministic: the same
class every time.
"""

from __future__ import annotations

import random
from pathlib import Path

import nbformat

from autograder.course import Assignment, available, load_assignment, nbgrader_meta
from autograder.variants import compose, reference_sources, variants_of

STUDENTS: dict[str, float] = {
    "ada": 1.0, "ben": 0.95, "chen": 0.85, "dara": 0.8, "eli": 0.75, "fatima": 0.7,
    "gus": 0.65, "hana": 0.6, "ivan": 0.5, "jo": 0.4, "kofi": 0.3, "lea": 0.15,
}


def _choose(student: str, skill: float, exercise: str, options: dict[str, list[str]]) -> str:
    rng = random.Random(f"{student}/{exercise}")
    draw = rng.random()
    if draw < skill:  # got it right, as the reference does or in a way of their own
        if draw < skill * 0.6 or not options["correct"]:
            return "reference"
        return rng.choice(options["correct"])
    if draw < skill + (1 - skill) * 0.75 and options["wrong"]:
        return rng.choice(options["wrong"])
    return "stub"


SLIPS: dict[tuple[str, str], str] = {
    ("fatima", "a1_logistic"): "deleted the graded cell, then pasted its code into a new cell",
    ("gus", "a2_softmax"): "turned the softmax_backward cell into markdown",
    ("kofi", "a3_backprop"): "uploaded a notebook cut off half-way",
}
"""The notebook-level slips of the demo class: (student, assignment) -> what happened."""


def _slip(student: str, assignment: str, nb: nbformat.NotebookNode, path: Path) -> bool:
    """Apply this student's notebook-level slip, if any; return True if the file is written."""
    if (student, assignment) not in SLIPS:
        return False
    if student == "fatima" and assignment == "a1_logistic":
        # deleted the graded cell, then pasted the code into a new cell
        for cell in nb.cells:
            if nbgrader_meta(cell).get("solution"):
                cell.metadata.pop("nbgrader")
                break
    if student == "gus" and assignment == "a2_softmax":
        for cell in nb.cells:
            if nbgrader_meta(cell).get("grade_id") == "softmax_backward":
                cell.cell_type = "markdown"
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
                break
    if student == "kofi" and assignment == "a3_backprop":
        text = nbformat.writes(nb)
        path.write_text(text[: len(text) // 2], encoding="utf-8")  # upload cut off half-way
        return True
    return False


def class_of(size: int) -> dict[str, float]:
    """``size`` students: the demo's twelve first, then more with skills spread evenly."""
    students = dict(list(STUDENTS.items())[:size])
    for i in range(len(students), size):
        students[f"student{i:04d}"] = round(1.0 - (i * 0.37) % 0.9, 3)
    return students


def picks(assignment: Assignment, students: dict[str, float] | None = None) -> dict[str, dict[str, str]]:
    """What each student hands in for each exercise: ``reference``, ``stub`` or a variant's name.

    ``students`` maps names to skill (0 to 1); the default is the demo class of twelve.
    """
    variants = variants_of(assignment)
    chosen: dict[str, dict[str, str]] = {}
    for student, skill in (STUDENTS if students is None else students).items():
        chosen[student] = {}
        for exercise in assignment.exercises:
            mine = [v for v in variants if v.exercise == exercise.name]
            options = {"correct": [v.name for v in mine if v.correct],
                       "wrong": [v.name for v in mine if not v.correct]}
            chosen[student][exercise.name] = _choose(student, skill, exercise.name, options)
    return chosen


def covering(assignment: Assignment, *, limit: int | None = None) -> dict[str, float]:
    """The fewest demo students (greedily) whose notebooks of ``assignment`` hold every pick the
    whole class makes, each exercise's reference, stub and drawn variants, plus the students
    whose notebook slips; name -> skill, in the class's order.

    For tests that pay seconds per notebook (nbgrader executes each): a student whose every pick
    is also someone else's adds nothing to compare. With ``limit``, at most that many students
    besides those who slip, each adding the most picks not yet covered: an assignment with many
    exercises and variants can need the whole class to cover everything.
    """
    chosen = picks(assignment)
    wanted = {(exercise, pick) for row in chosen.values() for exercise, pick in row.items()}
    keep = {student for student, name in SLIPS if name == assignment.name}
    covered = {item for student in keep for item in chosen[student].items()}
    budget = len(keep) + limit if limit is not None else len(chosen)
    while covered != wanted and len(keep) < budget:
        best = max(chosen, key=lambda student: len(set(chosen[student].items()) - covered))
        keep.add(best)
        covered |= set(chosen[best].items())
    return {student: skill for student, skill in STUDENTS.items() if student in keep}


def make_class(solutions: Path, out: Path, *, students: dict[str, float] | None = None) -> Path:
    """Write every student's submissions under ``out/<student>/<assignment>/``; return ``out``.

    ``students`` maps names to skill (0 to 1); the default is the demo class of twelve.
    """
    assignments_dir = solutions.parent / "assignments"
    for name in available(solutions):
        assignment = load_assignment(name, solutions)
        stub = assignments_dir / name / f"{name}.ipynb"
        if not stub.is_file():
            raise FileNotFoundError(f"{stub} is missing; run `grade build {name}` first")
        variants = {(v.exercise, v.name): v for v in variants_of(assignment)}
        for student, chosen in picks(assignment, students).items():
            sources = reference_sources(assignment)
            for exercise_name, pick in chosen.items():
                if pick == "stub":
                    del sources[exercise_name]
                elif pick != "reference":
                    sources[exercise_name] = variants[exercise_name, pick].source
            nb = compose(stub, sources)
            path = out / student / name / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not _slip(student, name, nb, path):
                nbformat.write(nb, path)
    return out
