"""`nbgrader autograde` and `grade` give the same points per exercise on the demo class.

nbgrader executes the whole notebook in a Jupyter kernel: the setup cell, the prose's training
and plotting cells, and the check cells (the instructor's version, hidden region restored),
which call ``check_all`` to run the public and hidden checks against the reference. `grade` runs
the same checks in the sandbox. What this adds to `grade audit`'s test (which scores every
variant): that executing the notebook, whatever its other cells do to the kernel's state, gives
the points the sandbox gives.

nbgrader takes seconds per notebook, so one course holds every assignment, nbgrader runs once
over all of them (``nbgrader autograde "*"``), and each assignment is graded for:

- ``zz_reference``, who hands in the solution notebook as released, with the reference in every
  solution cell: nbgrader must give full marks, and every check cell's report must say that
  its checks passed (the solution notebook runs top to bottom in a real kernel);
- the demo student whose notebook holds the most mistakes and stubs (where partial points can
  differ), then the most correct code written another way, and the
  students whose notebooks slip (:data:`autograder.demo.SLIPS`).

The one case where they cannot agree: a notebook file nbgrader cannot read (kofi's truncated
a3) gets no score from nbgrader at all, and zero with the error from `grade`; the gradebook
keeps grade's zero when `grade course autograde` is used (see README).
"""

from __future__ import annotations

import csv
import shutil

import nbformat
import pytest
from click.testing import CliRunner
from conftest import ASSIGNMENT_NAMES, ROOT, SOLUTIONS, tool

from autograder.cli import cli
from autograder.course import load_assignment, nbgrader_meta
from autograder.demo import SLIPS, STUDENTS, make_class, picks
from autograder.variants import compose, reference_sources, variants_of

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("consistency")]

REFERENCE = "zz_reference"
UNREADABLE = {("kofi", "a3_backprop")}  # truncated JSON: nbgrader cannot execute it


def sample(name: str) -> dict[str, float]:
    """The demo students graded for assignment ``name``: name -> skill."""
    assignment = load_assignment(name, SOLUTIONS)
    right = {"reference"} | {v.name for v in variants_of(assignment) if v.correct}
    chosen = picks(assignment)

    def variety(student: str) -> tuple[int, int]:  # mistakes and stubs first, then other correct code
        mine = chosen[student].values()
        return sum(p not in right for p in mine), sum(p != "reference" for p in mine)

    varied = max(chosen, key=variety)
    keep = {varied} | {student for student, assignment in SLIPS if assignment == name}
    return {student: skill for student, skill in STUDENTS.items() if student in keep}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One nbgrader course with every assignment, autograded by nbgrader and graded by `grade`:
    (course folder, {assignment: {student: results.csv row}}, nbgrader's output)."""
    home = tmp_path_factory.mktemp("consistency")
    course = home / "course"
    tool("grade", "--solutions", str(SOLUTIONS), "course", "init", str(course), cwd=ROOT, home=home)
    tool("nbgrader", "generate_assignment", "*", cwd=course, home=home)
    everyone = home / "class"
    students = {name: sample(name) for name in ASSIGNMENT_NAMES}
    make_class(SOLUTIONS, everyone, students={s: k for chosen in students.values()
                                               for s, k in chosen.items()})
    for name, chosen in students.items():
        for student in chosen:
            shutil.copytree(everyone / student / name, course / "submitted" / student / name)
        released = compose(course / "release" / name / f"{name}.ipynb",
                           reference_sources(load_assignment(name, SOLUTIONS)))
        (course / "submitted" / REFERENCE / name).mkdir(parents=True)
        nbformat.write(released, course / "submitted" / REFERENCE / name / f"{name}.ipynb")
    # nbgrader exits 1 when any one notebook fails (kofi's); the others are graded all the same
    autograde = tool("nbgrader", "autograde", "*", cwd=course, home=home, ok=False)
    ours = {}
    for name in ASSIGNMENT_NAMES:  # in this process: its sandbox's fork server stays warm
        out = home / "ours" / name
        done = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "run", name,
                                        str(course / "submitted"), "--devices", "cpu", "--out", str(out)])
        assert done.exit_code == 0, done.output
        with open(out / "results.csv", newline="") as handle:
            ours[name] = {row["student"]: row for row in csv.DictReader(handle)}
    return course, ours, autograde.stdout[-3000:] + autograde.stderr[-3000:]


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_nbgrader_autograde_and_grade_agree_per_exercise(name, graded):
    from nbgrader.api import Gradebook, MissingEntry

    course, ours, log = graded
    assignment = load_assignment(name, SOLUTIONS)
    expected = {*sample(name), REFERENCE}
    assert set(ours[name]) == expected
    disagreements, compared = [], 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "torchgrade") as gb:
        for student, row in ours[name].items():
            for exercise in assignment.exercises:
                try:
                    theirs = gb.find_grade(f"{exercise.name}_check", name, name, student).auto_score
                except MissingEntry:
                    theirs = None
                if (student, name) in UNREADABLE:
                    assert theirs is None and row["status"] == "error" and float(row[exercise.name]) == 0
                    continue
                compared += 1
                if student == REFERENCE and theirs != exercise.points:
                    disagreements.append((student, exercise.name, theirs,
                                          f"not full marks ({exercise.points:g})"))
                if theirs is None or abs(theirs - float(row[exercise.name])) > 1e-6:
                    disagreements.append((student, exercise.name, theirs, row[exercise.name]))
    unreadable = sum((student, name) in UNREADABLE for student in expected)
    assert compared == (len(expected) - unreadable) * len(assignment.exercises)
    assert not disagreements, (disagreements, log)


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_the_solution_notebook_runs_in_a_kernel_and_every_check_cell_reports_success(name, graded):
    course, _, _ = graded
    nb = nbformat.read(course / "autograded" / REFERENCE / name / f"{name}.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    reports = {}
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id", "")
        if grade_id.endswith("_check"):
            reports[grade_id] = [o["data"]["text/html"] for o in cell.outputs
                                 if "autograder-report" in o.get("data", {}).get("text/html", "")]
    assert set(reports) == {f"{e.name}_check" for e in load_assignment(name, SOLUTIONS).exercises}
    assert all(html and all("checks passed" in h for h in html) for html in reports.values()), reports
