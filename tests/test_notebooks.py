"""Every solution notebook runs top to bottom in a real Jupyter kernel, and its check cells
report full public marks; the student notebook's check cells report zero for the stubs."""

from __future__ import annotations

import nbformat
import pytest
from conftest import ASSIGNMENT_NAMES, ASSIGNMENTS, SOLUTIONS
from nbclient import NotebookClient

from autograder.course import load_assignment, nbgrader_meta

pytestmark = pytest.mark.slow


def execute(path, *, allow_errors=False):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def check_values(nb):
    values = {}
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id", "")
        if grade_id.endswith("_check"):
            results = [o for o in cell.outputs if o.output_type == "execute_result"]
            values[grade_id.removesuffix("_check")] = float(results[0]["data"]["text/plain"])
    return values


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_solution_notebook_executes_with_full_public_marks(name):
    assignment = load_assignment(name, SOLUTIONS)
    nb = execute(assignment.notebook)
    values = check_values(nb)
    assert set(values) == {e.name for e in assignment.exercises}
    assert all(v > 0 for v in values.values()), values
    html = [o for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert html and all("checks passed" in o["data"]["text/html"] for o in html
                        if "autograder-report" in o["data"]["text/html"])


def test_student_notebook_check_cells_report_zero_for_stubs():
    nb = execute(ASSIGNMENTS / "a1_logistic" / "a1_logistic.ipynb", allow_errors=True)
    assert check_values(nb) == {"bce": 0.0}
    text = nbformat.writes(nb)
    assert "not implemented yet" in text
