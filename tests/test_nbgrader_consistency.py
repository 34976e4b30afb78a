"""`nbgrader autograde` and `grade` give the same points per exercise on the demo class.

nbgrader takes seconds per notebook, so each assignment is graded for the fewest demo students
whose notebooks hold every pick the whole class makes (each exercise's reference, stub and drawn
variants), at most :data:`SAMPLE` of them, those who hold the most picks first, and the students
whose notebooks slip (:func:`autograder.demo.covering`). Where more would be needed (a7, seven
exercises with many variants), the variants left out are still scored by `grade audit`'s test;
what this test adds is that nbgrader, executing the notebook, agrees with the sandbox.

nbgrader executes the whole notebook in a Jupyter kernel; its check cells (the instructor's
version, hidden region restored) call ``check_all``, which runs the public and hidden checks
against the reference. `grade` runs the same checks in the sandbox. The one case where they
cannot agree: a notebook file nbgrader cannot read (kofi's truncated a3) gets no score from
nbgrader at all, and zero with the error from `grade`; the gradebook keeps grade's zero when
`grade course autograde` is used (see README).
"""

from __future__ import annotations

import csv

import pytest
from conftest import ASSIGNMENT_NAMES, ROOT, SOLUTIONS, tool

from autograder.course import load_assignment
from autograder.demo import covering, make_class

pytestmark = pytest.mark.slow

SAMPLE = 3  # notebooks per assignment at most, besides the slips: the suite's time is bounded
UNREADABLE = {("kofi", "a3_backprop")}  # truncated JSON: nbgrader cannot execute it


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_nbgrader_autograde_and_grade_agree_per_exercise(name, tmp_path):
    from nbgrader.api import Gradebook, MissingEntry

    course = tmp_path / "course"
    tool("grade", "--solutions", str(SOLUTIONS), "course", "init", str(course), "--assignment", name,
            cwd=ROOT, home=tmp_path)
    tool("nbgrader", "generate_assignment", name, cwd=course, home=tmp_path)
    assignment = load_assignment(name, SOLUTIONS)
    students = covering(assignment, limit=SAMPLE)
    make_class(SOLUTIONS, course / "submitted", students=students)
    # nbgrader exits 1 when any one notebook fails (kofi's); the others are graded all the same
    autograde = tool("nbgrader", "autograde", name, cwd=course, home=tmp_path, ok=False)
    tool("grade", "--solutions", str(SOLUTIONS), "run", name, str(course / "submitted"),
            "--devices", "cpu", "--out", str(tmp_path / "ours"), cwd=ROOT, home=tmp_path)
    with open(tmp_path / "ours" / "results.csv", newline="") as handle:
        ours = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(ours) == set(students)
    disagreements, compared = [], 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "torchgrade") as gb:
        for student, row in ours.items():
            for exercise in assignment.exercises:
                try:
                    theirs = gb.find_grade(f"{exercise.name}_check", name, name, student).auto_score
                except MissingEntry:
                    theirs = None
                if (student, name) in UNREADABLE:
                    assert theirs is None and row["status"] == "error" and float(row[exercise.name]) == 0
                    continue
                compared += 1
                if theirs is None or abs(theirs - float(row[exercise.name])) > 1e-6:
                    disagreements.append((student, exercise.name, theirs, row[exercise.name]))
    unreadable = sum((student, name) in UNREADABLE for student in students)
    assert compared == (len(students) - unreadable) * len(assignment.exercises)
    assert not disagreements, (disagreements, autograde.stdout[-2000:] + autograde.stderr[-2000:])
