"""The student notebook's check cells end in an error for the stubs, and `nbgrader validate`
passes a correct released notebook and fails a wrong one. (That every solution notebook runs top
to bottom in a real kernel with full marks is in tests/test_nbgrader_consistency.py, where
nbgrader executes it.)"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ASSIGNMENTS, SOLUTIONS, tool
from nbclient import NotebookClient

from autograder.course import load_assignment, nbgrader_meta
from autograder.variants import variants_of

pytestmark = pytest.mark.slow


def execute(path, *, allow_errors=False):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def test_student_notebook_check_cells_of_the_stubs_end_in_an_error_naming_the_checks():
    nb = execute(ASSIGNMENTS / "a1_logistic" / "a1_logistic.ipynb", allow_errors=True)
    check = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "bce_check")
    errors = [o for o in check.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["ChecksFailed"]
    assert errors[0].evalue.startswith("bce: 3 of 3 public checks failed (bce_matches_bceloss")
    assert not any(o.output_type == "execute_result" for o in check.outputs)
    assert "not implemented yet" in nbformat.writes(nb)


def released_with(tmp_path, name, sources):
    """The released notebook of ``name`` in its folder, with ``sources`` in its solution cells."""
    folder = tmp_path / name
    shutil.copytree(ASSIGNMENTS / name, folder)
    path = folder / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in sources:
            cell.source = sources[grade_id]
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("name", ["a1_logistic", "a2_softmax"])
def test_nbgrader_validate_passes_a_correct_notebook_and_names_what_fails_in_a_wrong_one(name, tmp_path):
    """The Validate button of JupyterLab's Assignments tab runs `nbgrader validate`."""
    assignment = load_assignment(name, SOLUTIONS)
    right = released_with(tmp_path / "right", name, assignment.reference_sources)
    wrong_variant = next(v for v in variants_of(assignment) if not v.correct and v.device is None)
    wrong = released_with(tmp_path / "wrong", name, {**assignment.reference_sources,
                                                     wrong_variant.exercise: wrong_variant.source})
    passed = tool("nbgrader", "validate", right.name, cwd=right.parent, home=tmp_path, ok=False)
    assert "Success! Your notebook passes all the tests." in passed.stdout, passed.stdout + passed.stderr
    failed = tool("nbgrader", "validate", wrong.name, cwd=wrong.parent, home=tmp_path, ok=False)
    assert "VALIDATION FAILED ON 1 CELL(S)" in failed.stdout, failed.stdout + failed.stderr
    assert f"ChecksFailed: {wrong_variant.exercise}: " in failed.stdout
