"""Grades for a learning management system: Canvas's gradebook CSV and Moodle's grade import CSV.

Scores come from nbgrader's gradebook exactly as ``nbgrader export`` computes them: the
submission's score less its late-submission penalty (never below 0), and 0 for an assignment
a student did not submit. nbgrader's student ids are not the LMS's, so a mapping file says who
is who::

    nbgrader_id,lms_id,name,sis_login_id,section
    ada,10234,"Lovelace, Ada",ada@uni.example,Group A

``lms_id`` is Canvas's user ID, or the Moodle identifier chosen on import (email, ID number or
username); the other columns are optional (Canvas shows them). Nobody is dropped silently:
gradebook students missing from the mapping, and mapped students the gradebook does not know,
are both returned so the caller can list them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.course import CourseError

MAPPING_COLUMNS = ("nbgrader_id", "lms_id")
MOODLE_IDENTIFIERS = ("email", "idnumber", "username")


@dataclass(frozen=True)
class Person:
    nbgrader_id: str
    lms_id: str
    name: str = ""
    sis_login_id: str = ""
    section: str = ""


@dataclass
class Grades:
    """What the gradebook holds, scored as `nbgrader export` scores."""

    assignments: list[tuple[str, float]]  # name, max score, in the gradebook's order
    students: list[str]
    scores: dict[tuple[str, str], float]  # (student, assignment) -> score after the late penalty
    names: dict[str, str] = field(default_factory=dict)  # student -> "Last, First" where known


@dataclass
class Export:
    rows: int
    unmapped: list[str]  # in the gradebook, not in the mapping: not in the file
    unknown: list[str]  # in the mapping, not in the gradebook: in the file, with empty grades


def read_mapping(path: Path) -> dict[str, Person]:
    """Read the mapping CSV; refuse, naming the line, a missing column, an empty id or a repeat."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CourseError(f"{path}: cannot read the mapping ({exc.strerror})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in MAPPING_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CourseError(f"{path}: the mapping needs the columns {', '.join(MAPPING_COLUMNS)} in its "
                          f"first line (missing: {', '.join(missing)})")
    people: dict[str, Person] = {}
    seen_lms: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        nbgrader_id = (row.get("nbgrader_id") or "").strip()
        lms_id = (row.get("lms_id") or "").strip()
        if not nbgrader_id or not lms_id:
            raise CourseError(f"{path}:{line}: nbgrader_id and lms_id must both be given")
        if nbgrader_id in people:
            raise CourseError(f"{path}:{line}: nbgrader_id {nbgrader_id!r} appears twice")
        if lms_id in seen_lms:
            raise CourseError(f"{path}:{line}: lms_id {lms_id!r} is already line {seen_lms[lms_id]}'s")
        seen_lms[lms_id] = line
        people[nbgrader_id] = Person(nbgrader_id, lms_id, *((row.get(c) or "").strip()
                                                           for c in ("name", "sis_login_id", "section")))
    return people


def gradebook_grades(gradebook: Any) -> Grades:
    """Every assignment and student of an open nbgrader ``Gradebook``, scored as nbgrader exports."""
    from nbgrader.api import MissingEntry

    assignments = [(a.name, float(a.max_score)) for a in gradebook.assignments]
    students = [s.id for s in gradebook.students]
    names = {s.id: ", ".join(p for p in (s.last_name, s.first_name) if p) for s in gradebook.students}
    scores = {}
    for name, _ in assignments:
        for student in students:
            try:
                submission = gradebook.find_submission(name, student)
            except MissingEntry:
                scores[student, name] = 0.0
            else:
                scores[student, name] = max(0.0, float(submission.score) - float(
                    submission.late_submission_penalty or 0.0))
    return Grades(assignments, students, scores, names)


def write_lms(grades: Grades, people: dict[str, Person], path: Path, *, lms: str,
              moodle_identifier: str = "email") -> Export:
    """Write ``grades`` for ``lms`` ("canvas" or "moodle") to ``path``; say who was left out."""
    known = set(grades.students)
    mapped = list(people.values())
    unmapped = [s for s in grades.students if s not in people]
    unknown = [p.nbgrader_id for p in mapped if p.nbgrader_id not in known]
    names = [a for a, _ in grades.assignments]

    def score(person: Person, assignment: str) -> str:
        if person.nbgrader_id not in known:
            return ""  # no grade rather than a zero for someone the gradebook does not know
        return f"{grades.scores[person.nbgrader_id, assignment]:g}"

    rows: list[list[str]]
    if lms == "canvas":
        rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *names],
                ["Points Possible", "", "", "", "", *(f"{m:g}" for _, m in grades.assignments)]]
        rows += [[p.name or grades.names.get(p.nbgrader_id, "") or p.nbgrader_id, p.lms_id,
                  p.nbgrader_id, p.sis_login_id, p.section, *(score(p, a) for a in names)]
                 for p in mapped]
    elif lms == "moodle":
        if moodle_identifier not in MOODLE_IDENTIFIERS:
            raise CourseError(f"Moodle identifies students by {', '.join(MOODLE_IDENTIFIERS)}, "
                              f"not {moodle_identifier!r}")
        rows = [[moodle_identifier, *names]]
        rows += [[p.lms_id, *(score(p, a) for a in names)] for p in mapped]
    else:
        raise CourseError(f"unknown LMS {lms!r}: canvas or moodle")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    from autograder.results import write_atomic

    write_atomic(path, buffer.getvalue())
    return Export(rows=len(mapped), unmapped=unmapped, unknown=unknown)
