"""``grade new``: the skeleton of a new assignment, ready for ``grade build`` and ``grade audit``.

The skeleton is a complete, working assignment whose reference is a placeholder (each exercise
doubles its input): the notebook with prose placeholders, a setup cell, and per exercise a
solution cell and a check cell with nbgrader's metadata and the exact check-cell text;
``public_checks.py`` and ``hidden_checks.py`` with one value check and one property check each
way, worth the exercise's points; and ``variants.py`` with a correct variant and two mistakes.
Every placeholder is marked ``TODO``. The author replaces them, keeping the links (names, grade
ids, points) that ``grade build`` checks.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.course import CHECK_SUFFIX, SETUP_ID, CourseError, cell_metadata, check_cell_source

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

INTRO = """# {name}

TODO: what this assignment teaches, in a few sentences, and how it is graded: each exercise has a
check cell below it that runs the public checks on your code; the instructor's grader also runs
hidden checks on other inputs, dimensions and dtypes.
"""

EXERCISE_INTRO = """## Exercise: `{exercise}(x)` ({points:g} points)

TODO: what to implement, its contract (argument and result shapes, dtypes, devices), and what not
to use. Keep the name and the signature: the grader calls `{exercise}` by name.
"""

SOLUTION = '''def {exercise}(x):
    """TODO: one line on what {exercise} returns.

    x: a float tensor of any shape, on any device.
    """
    ### BEGIN SOLUTION
    return 2 * x  # TODO: the reference solution
    ### END SOLUTION
'''

PUBLIC = '''"""Public checks for {name}: students get this file and run it from the check cells.

Write checks with the names of autograder.checks (see docs/authoring.md).
"""

import torch

from autograder.checks import assert_close, assert_same_kind, check, hint, randn
{sections}'''

PUBLIC_SECTION = '''
# --- {exercise} {rule}

{upper}_HINT = hint("TODO: point at the idea and the symptom, not the answer.",
{pad}formula="TODO: the formula, shown only where the course enables it.")


@check("{exercise}", points={value:g})
def test_{exercise}_matches_reference(student, reference, device):
    x = randn(4, 3, seed={seed}, device=device)
    assert_close(student.{exercise}(x), reference.{exercise}(x),
                 what="{exercise}(x) for x of shape (4, 3)", inputs={{"x": x}}, hint={upper}_HINT)


@check("{exercise}", points={form:g}, kind="property")
def test_{exercise}_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        x = randn(2, 5, seed={seed2}, dtype=dtype, device=device)
        assert_same_kind(student.{exercise}(x), x, what=f"{exercise}(x) for {{dtype}} x")
'''

HIDDEN = '''"""Hidden checks for {name}: run by `grade`, never released to students."""

import torch

from autograder.checks import assert_close, check, randn

from public_checks import (  # helpers shared with the public checks
{imports})
{sections}'''

HIDDEN_SECTION = '''

@check("{exercise}", points={value:g})
def test_{exercise}_float64_3d(student, reference, device):
    x = randn(2, 3, 4, seed={seed}, dtype=torch.float64, device=device)
    assert_close(student.{exercise}(x), reference.{exercise}(x),
                 what="{exercise}(x) for a float64 x of shape (2, 3, 4)", inputs={{"x": x}},
                 hint={upper}_HINT)
'''

VARIANTS = '''# Alternative implementations of {name}'s exercises, for `grade audit`: correct code written
# another way must score full marks, and each mistake must fail the checks its header names.
# Instructor material: never released. One section per variant:
#   # %% <exercise>: <name> [correct]
#   # %% <exercise>: <name> [wrong: <check>, <check>]   (check names without test_)
{sections}'''

VARIANT_SECTION = '''
# %% {exercise}: added_to_itself [correct]
def {exercise}(x):
    return x + x

# %% {exercise}: tripled [wrong: {exercise}_matches_reference, {exercise}_float64_3d]
def {exercise}(x):
    return 3 * x

# %% {exercise}: always_float64 [wrong: {exercise}_keeps_dtype_and_device]
def {exercise}(x):
    return 2 * x.double()
'''


def _check_name(kind: str, value: str) -> None:
    if not _NAME.match(value) or keyword.iskeyword(value):
        raise CourseError(f"Invalid {kind} name {value!r}: use letters, digits and _, starting "
                          "with a letter (it becomes a Python name and an nbgrader id)")


def split_points(points: float) -> tuple[float, float, float]:
    """Share an exercise's points: public value check, public property check, hidden value check."""
    form = round(points / 10, 6) or points
    public = round((points - form) / 2, 6)
    return public, form, round(points - form - public, 6)


def notebook(name: str, exercises: list[str], points: float) -> nbformat.NotebookNode:
    """The source notebook: prose placeholders, the setup cell, each exercise and its check."""
    cells = [new_markdown_cell(INTRO.format(name=name))]
    setup = new_code_cell("import torch\nfrom torch import nn")
    setup.metadata["nbgrader"] = cell_metadata(SETUP_ID, role="setup")
    cells.append(setup)
    for exercise in exercises:
        cells.append(new_markdown_cell(EXERCISE_INTRO.format(exercise=exercise, points=points)))
        solution = new_code_cell(SOLUTION.format(exercise=exercise))
        solution.metadata["nbgrader"] = cell_metadata(exercise, role="solution")
        check = new_code_cell(check_cell_source(exercise))
        check.metadata["nbgrader"] = cell_metadata(f"{exercise}{CHECK_SUFFIX}", role="check",
                                                   points=points)
        cells.extend([solution, check])
    cells.append(new_markdown_cell("## Takeaways\n\nTODO: what to remember from this assignment."))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    return nb


def scaffold(solutions: Path, name: str, exercises: list[str], *, points: float = 10.0) -> list[Path]:
    """Write the skeleton of assignment ``name`` into ``solutions/name/``; return its files.

    Refuses (CourseError) to touch an assignment folder that exists.
    """
    _check_name("assignment", name)
    if not exercises:
        raise CourseError("name at least one exercise (--exercise NAME)")
    for exercise in exercises:
        _check_name("exercise", exercise)
    if len(set(exercises)) != len(exercises):
        raise CourseError(f"an exercise is named twice: {', '.join(exercises)}")
    if not points > 0:
        raise CourseError(f"Invalid points {points:g}: must be positive")
    directory = solutions / name
    if directory.exists():
        raise CourseError(f"{directory} exists already; `grade new` never overwrites an assignment")
    public, form, hidden = split_points(points)
    public_sections, hidden_sections, variant_sections, imports = [], [], [], []
    for i, exercise in enumerate(exercises):
        upper = exercise.upper()
        rule = "-" * max(3, 90 - len(exercise))
        public_sections.append(PUBLIC_SECTION.format(
            exercise=exercise, upper=upper, value=public, form=form, seed=10 * i + 1,
            seed2=10 * i + 2, rule=rule, pad=" " * (len(upper) + 13)))
        hidden_sections.append(HIDDEN_SECTION.format(exercise=exercise, upper=upper, value=hidden,
                                                     seed=10 * i + 3))
        variant_sections.append(VARIANT_SECTION.format(exercise=exercise))
        imports.append(f"    {upper}_HINT,\n")
    files = {
        f"{name}.ipynb": nbformat.writes(notebook(name, exercises, points)) + "\n",
        "public_checks.py": PUBLIC.format(name=name, sections="".join(public_sections)),
        "hidden_checks.py": HIDDEN.format(name=name, imports="".join(imports),
                                          sections="".join(hidden_sections)),
        "variants.py": VARIANTS.format(name=name, sections="".join(variant_sections)),
    }
    directory.mkdir(parents=True)
    written = []
    for file, text in files.items():
        (directory / file).write_text(text, encoding="utf-8")
        written.append(directory / file)
    return written
