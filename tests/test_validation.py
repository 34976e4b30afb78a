"""`grade build` refuses every authoring mistake, with exit 1 and a message naming file and line.

Each test copies a real assignment, makes one mistake an instructor makes, and asserts the
refusal and where it points. Messages are for the author, not a student's feedback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from conftest import SOLUTIONS

from autograder.cli import cli
from autograder.course import nbgrader_meta
from autograder.validation import AuthoringError, validate


@pytest.fixture
def a1_copy(tmp_path: Path) -> Path:
    """A private copy of a1_logistic in tmp_path/solutions/."""
    target = tmp_path / "solutions" / "a1_logistic"
    shutil.copytree(SOLUTIONS / "a1_logistic", target)
    return target


def edit_cell(folder: Path, grade_id: str, change) -> None:
    """Apply ``change(cell, nb)`` to the cell with ``grade_id`` of the folder's notebook."""
    path = folder / f"{folder.name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    change(cell, nb)
    nbformat.write(nb, path)


def edit_file(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def problems(folder: Path) -> list[str]:
    with pytest.raises(AuthoringError) as caught:
        validate(folder)
    return [str(p) for p in caught.value.problems]


def build(folder: Path):
    return CliRunner().invoke(cli, ["--solutions", str(folder.parent), "build", folder.name,
                                    "--out", str(folder.parent.parent / "out")])


def test_a_clean_assignment_validates(a1_copy):
    validated = validate(a1_copy)
    assert validated.records and all(not key.startswith("hidden") for key in validated.records)


def test_weights_that_do_not_add_up_to_the_check_cell_are_refused(a1_copy, monkeypatch):
    # the mistake of the issue: 9 points of checks under a 10-point check cell
    checks = a1_copy / "public_checks.py"
    edit_file(checks, '@check("bce", points=2)\ndef test_bce_matches_bceloss',
              '@check("bce", points=1)\ndef test_bce_matches_bceloss')
    monkeypatch.chdir(a1_copy.parent.parent)
    result = build(a1_copy)
    assert result.exit_code == 1
    assert "solutions/a1_logistic/a1_logistic.ipynb, cell 7 (grade_id 'bce_check')" in result.output
    assert "worth 9 points in all" in result.output and "carries 10" in result.output
    line = line_of(checks, '@check("bce", points=1)\ndef test_bce_matches_bceloss'.splitlines()[0])
    assert f"test_bce_matches_bceloss 1 at solutions/a1_logistic/public_checks.py:{line}" in result.output
    assert not (a1_copy.parent.parent / "out").exists(), "nothing is written for a refused assignment"


def test_parametrised_checks_count_once_per_instance(a1_copy):
    hidden = a1_copy / "hidden_checks.py"
    edit_file(hidden, '@check("bce", points=2)\ndef test_bce_2d_float64_mean_over_all(student, '
                      'reference, device):',
              '@check("bce", points=1)\n@pytest.mark.parametrize("n", [3, 5])\n'
              'def test_bce_2d_float64_mean_over_all(student, reference, device, n):')
    edit_file(hidden, "import torch\n", "import pytest\nimport torch\n")
    validate(a1_copy)  # 2 instances of 1 point: still 10 in all
    edit_file(hidden, '[3, 5])', '[3, 5, 7])')
    assert any("worth 11 points in all" in p for p in problems(a1_copy))


def test_a_typo_in_a_checks_exercise_is_refused_at_its_line(a1_copy):
    checks = a1_copy / "public_checks.py"
    edit_file(checks, '@check("bce", points=1, kind="property")\ndef test_bce_is_your_own',
              '@check("bec", points=1, kind="property")\ndef test_bce_is_your_own')
    found = problems(a1_copy)
    line = line_of(checks, '@check("bec"')
    typo = [p for p in found if p.startswith(f"{checks}:{line}: check test_bce_is_your_own names "
                                             "exercise 'bec', which")]
    assert len(typo) == 1 and "(exercises: bce)" in typo[0], found  # once, not once per device
    # its point went missing from bce too
    assert any("worth 9 points in all" in p for p in found)


def test_a_test_without_the_check_marker_is_refused(a1_copy):
    checks = a1_copy / "public_checks.py"
    edit_file(checks, '@check("bce", points=1, kind="property")\ndef test_bce_is_your_own',
              'def test_bce_is_your_own')
    assert any("test_bce_is_your_own is not marked as a check" in p for p in problems(a1_copy))


def test_a_wrong_reference_is_refused_by_its_oracle(a1_copy):
    # sum instead of mean: passes its own checks (they compare it with itself), not the oracle
    edit_cell(a1_copy, "bce", lambda cell, nb: setattr(cell, "source",
                                                       cell.source.replace(".mean()", ".sum()")))
    found = problems(a1_copy)
    assert found and all("disagrees with the oracle declared for 'bce' (binary_cross_entropy)"
                         in p for p in found), found
    assert any(p.startswith(f"{a1_copy / 'public_checks.py'}:") for p in found)


def test_a_reference_that_fails_its_own_hidden_check_is_refused(a1_copy):
    # no clamp: log(0) = -inf at exact 0s and 1s, which a hidden check catches
    edit_cell(a1_copy, "bce", lambda cell, nb: setattr(cell, "source", cell.source.replace(
        "p = yhat.clamp(eps, 1 - eps)", "p = yhat")))
    found = problems(a1_copy)
    hidden = a1_copy / "hidden_checks.py"
    line = line_of(hidden, "def test_bce_finite_at_exact_zero_and_one") - 1
    assert any(p.startswith(f"{hidden}:{line}: the reference fails its own check "
                            "test_bce_finite_at_exact_zero_and_one") for p in found), found


def test_an_exercise_without_checks_is_refused(a1_copy):
    edit_cell(a1_copy, "bce", lambda cell, nb: None)
    hidden = a1_copy / "hidden_checks.py"
    hidden.write_text("")
    (a1_copy / "public_checks.py").write_text('"""No checks yet."""\n')
    found = problems(a1_copy)
    assert any("cell 7 (grade_id 'bce_check'): exercise 'bce' has no checks" in p for p in found), found


def test_duplicate_and_missing_grade_ids_are_refused(a1_copy):
    def duplicate(cell, nb):
        copy = nbformat.from_dict(cell)
        nb.cells.append(copy)

    edit_cell(a1_copy, "bce", duplicate)
    found = problems(a1_copy)
    assert any("cell 16 (grade_id 'bce'): grade_id 'bce' is also used by cell 6" in p for p in found)

    def drop_id(cell, nb):
        nb.cells[-1].metadata["nbgrader"]["grade_id"] = ""

    edit_cell(a1_copy, "bce", drop_id)
    assert any("cell 16: has nbgrader metadata but no grade_id" in p for p in problems(a1_copy))


def test_a_check_cell_without_the_hidden_region_is_refused(a1_copy):
    edit_cell(a1_copy, "bce_check", lambda cell, nb: setattr(
        cell, "source", 'from autograder.notebook import check\ncheck("bce")'))
    found = problems(a1_copy)
    assert any("cell 7 (grade_id 'bce_check'): has no hidden-test region" in p
               and "### BEGIN HIDDEN TESTS" in p for p in found), found


def test_a_solution_cell_without_a_check_cell_is_refused(a1_copy):
    edit_cell(a1_copy, "bce_check", lambda cell, nb: nb.cells.remove(cell))
    found = problems(a1_copy)
    assert any("exercise 'bce' has no check cell: add a code cell below it with grade_id "
               "'bce_check'" in p for p in found), found


def test_a_solution_cell_without_a_solution_region_is_refused(a1_copy):
    edit_cell(a1_copy, "bce", lambda cell, nb: setattr(
        cell, "source", cell.source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")))
    assert any("has no '### BEGIN SOLUTION'" in p for p in problems(a1_copy))


def test_hidden_checks_that_import_a_public_check_are_refused(a1_copy):
    hidden = a1_copy / "hidden_checks.py"
    edit_file(hidden, "    own_bce,\n", "    own_bce,\n    test_bce_is_your_own,\n")
    found = problems(a1_copy)
    assert any("imports the check test_bce_is_your_own from public_checks.py, so it would run "
               "twice" in p for p in found), found


def test_an_exercise_with_only_property_checks_is_refused(tmp_path):
    made = CliRunner().invoke(cli, ["--solutions", str(tmp_path / "solutions"), "new", "tiny",
                                    "--exercise", "double"])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "solutions" / "tiny"
    for file in ("public_checks.py", "hidden_checks.py"):
        path = folder / file
        path.write_text(path.read_text().replace('points=4.5)', 'points=4.5, kind="property")'))
    found = problems(folder)
    assert any("'double' has only property checks" in p for p in found), found


def test_authoring_messages_do_not_read_like_student_feedback(a1_copy):
    edit_cell(a1_copy, "bce", lambda cell, nb: setattr(cell, "source", cell.source.replace(
        "eps = torch.finfo(yhat.dtype).eps",
        "eps = torch.finfo(yhat.dtype).eps\n    raise ValueError('oops')")))
    found = problems(a1_copy)
    assert found
    for problem in found:
        assert "your code" not in problem and "tell your instructor" not in problem
        assert "the reference fails its own check" in problem
        assert "the code under test raised ValueError: oops" in problem


def test_a_bad_hint_level_names_the_file_and_table(a1_copy):
    settings = a1_copy.parent / "course.toml"
    settings.write_text('hints = "concept"\n\n[assignment.a1_logistic]\nhints = "everything"\n')
    result = build(a1_copy)
    assert result.exit_code != 0
    assert f"Invalid hints 'everything' from {settings} [assignment.a1_logistic]" in result.output
