"""assignments/ is generated from solutions/, is up to date, and leaks nothing."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ASSIGNMENT_NAMES, ASSIGNMENTS, SOLUTIONS

from autograder.cli import cli
from autograder.course import nbgrader_meta


def test_assignments_are_up_to_date():
    result = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "build", "--check"])
    assert result.exit_code == 0, f"assignments/ is stale; run `grade build`:\n{result.output}"


def test_recorded_numpy_answers_are_compared_by_value():
    from autograder import wire
    from autograder.build import _same_answers

    def recording(value):
        outcome = {"value": value, "torch_calls": [], "error": None}
        return json.dumps({"assignment": {"name": "a"},
                           "records": {"test_x[]#0": wire.encode(outcome).decode()}})

    answer = np.linspace(0.1, 0.9, 5)
    assert _same_answers(recording((answer, 0.5)), recording((answer + 1e-12, 0.5)))
    assert not _same_answers(recording((answer, 0.5)), recording((answer + 1e-3, 0.5)))
    assert not _same_answers(recording(answer), recording(answer.astype(np.float32)))
    assert not _same_answers(recording(answer), recording(answer.tolist()))


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_student_folder_holds_only_public_material(name):
    folder = ASSIGNMENTS / name
    probes = ["probes.py"] if (SOLUTIONS / name / "probes.py").is_file() else []
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{name}.ipynb", "expected.json", "public_checks.py", *probes])
    hidden = (SOLUTIONS / name / "hidden_checks.py").read_text()
    public = (folder / "public_checks.py").read_text()
    for line in hidden.splitlines():
        if line.startswith("def test_"):
            assert line not in public, f"hidden check leaked: {line}"
    recorded = json.loads((folder / "expected.json").read_text())["records"]
    hidden_names = [line[4:line.index("(")] for line in hidden.splitlines() if line.startswith("def test_")]
    assert not [k for k in recorded if k.split("[")[0] in hidden_names]


def solution_region_lines(source: str) -> list[str]:
    """The non-trivial lines between ### BEGIN SOLUTION and ### END SOLUTION."""
    lines, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            inside = "BEGIN" in line
        elif inside and len(line.strip()) >= 12:
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_student_notebook_has_stubs_not_solutions(name):
    source = nbformat.read(SOLUTIONS / name / f"{name}.ipynb", as_version=4)
    student = nbformat.read(ASSIGNMENTS / name / f"{name}.ipynb", as_version=4)
    assert "BEGIN SOLUTION" not in nbformat.writes(student)
    student_cells = {nbgrader_meta(c).get("grade_id"): c.source for c in student.cells}
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if not meta.get("solution"):
            continue
        stub = student_cells[meta["grade_id"]]
        assert "raise NotImplementedError()" in stub
        solution = solution_region_lines(cell.source)
        assert solution, f"{meta['grade_id']}: no solution region in the source notebook"
        leaked = [line for line in solution if line in stub]
        assert not leaked, f"{meta['grade_id']}: solution lines in the student notebook: {leaked}"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_build_refuses_a_reference_that_fails_its_public_checks(tmp_path):
    src = SOLUTIONS / "a1_logistic"
    dst = tmp_path / "solutions" / "a1_logistic"
    dst.mkdir(parents=True)
    for f in ("public_checks.py", "hidden_checks.py"):
        (dst / f).write_text((src / f).read_text())
    nb = nbformat.read(src / "a1_logistic.ipynb", as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "bce")
    cell.source = cell.source.replace(".mean()", ".mean(dim=0)")  # breaks the 0-dim contract
    nbformat.write(nb, dst / "a1_logistic.ipynb")
    result = CliRunner().invoke(cli, ["--solutions", str(tmp_path / "solutions"), "build",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "the reference fails its own check test_bce_returns_0dim_tensor" in result.output
    assert not (tmp_path / "out").exists()


def test_recorded_tensors_are_compared_at_the_scale_of_their_largest_value():
    """Two CPUs' kernels give a deep network's logits 2e-6 apart, also where a logit is near 0:
    not staleness. A change the size of a real edit still is."""
    import torch

    from autograder import wire
    from autograder.build import _same_answers

    def recording(value):
        outcome = {"value": value, "torch_calls": [], "error": None}
        return json.dumps({"assignment": {"name": "a"},
                           "records": {"test_x[]#0": wire.encode(outcome).decode()}})

    logits = torch.tensor([2.1977, -1.5, 0.01, 0.0])
    noise = torch.tensor([2.3e-6, -1e-6, 2e-6, 1e-6])
    assert _same_answers(recording(logits), recording(logits + noise))
    assert not _same_answers(recording(logits), recording(logits + torch.tensor([0, 0, 1e-3, 0])))
    assert not _same_answers(recording(logits), recording(logits.double()))
    zeros = torch.zeros(3)
    assert not _same_answers(recording(zeros), recording(zeros + 1e-6))
