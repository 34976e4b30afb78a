"""Extraction: what runs for each exercise, and clear messages for broken submissions."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import ASSIGNMENTS

from autograder.course import nbgrader_meta
from autograder.submission import SubmissionError, extract


@pytest.fixture
def stub_nb():
    return nbformat.read(ASSIGNMENTS / "a1_logistic" / "a1_logistic.ipynb", as_version=4)


def _solution_cell(nb):
    return next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "bce")


def _write(tmp_path: Path, nb, name="sub.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_solution_cell_is_extracted_with_setup_first(a1, stub_nb, tmp_path):
    _solution_cell(stub_nb).source = "def bce(yhat, y):\n    return 1\n%matplotlib inline\n!ls"
    extraction = extract(_write(tmp_path, stub_nb), a1)
    ids = [c["id"] for c in extraction.cells]
    assert ids == ["setup", "bce"]
    assert extraction.cells[0]["source"] == a1.setup_source
    assert "# %matplotlib inline" in extraction.cells[1]["source"]
    assert "# !ls" in extraction.cells[1]["source"]
    assert not extraction.problems


def test_deleted_cell_falls_back_to_a_cell_defining_the_function(a1, stub_nb, tmp_path):
    cell = _solution_cell(stub_nb)
    cell.metadata.pop("nbgrader")
    cell.source = "def bce(yhat, y):\n    return yhat.mean()"
    extraction = extract(_write(tmp_path, stub_nb), a1)
    assert "bce" not in extraction.problems
    assert "used the cell that defines bce" in extraction.notices["bce"]


def test_deleted_cell_without_replacement_is_a_clear_problem(a1, stub_nb, tmp_path):
    stub_nb.cells.remove(_solution_cell(stub_nb))
    extraction = extract(_write(tmp_path, stub_nb), a1)
    assert extraction.problems["bce"].endswith(
        "no cell with grade_id 'bce'. Was it deleted? Expected one of: bce")


def test_markdown_cell_runs_as_code_and_says_to_change_it_back(a1, stub_nb, tmp_path):
    # as nbgrader autograde does (it restores the cell type): correct code keeps its marks
    cell = _solution_cell(stub_nb)
    cell.cell_type, cell.source = "markdown", "def bce(yhat, y):\n    return 0"
    del cell["outputs"], cell["execution_count"]
    extraction = extract(_write(tmp_path, stub_nb), a1)
    assert "bce" not in extraction.problems
    assert "is a markdown cell" in extraction.notices["bce"]
    assert "Change it back to a code cell" in extraction.notices["bce"]
    assert [c["source"] for c in extraction.cells if c["id"] == "bce"] == [cell.source]


def test_duplicated_cell_runs_both_in_order(a1, stub_nb, tmp_path):
    cell = _solution_cell(stub_nb)
    copy = nbformat.from_dict(json.loads(json.dumps(cell)))
    cell.source, copy.source = "A = 1", "A = 2"
    stub_nb.cells.insert(stub_nb.cells.index(cell) + 1, copy)
    extraction = extract(_write(tmp_path, stub_nb), a1)
    assert [c["source"] for c in extraction.cells[1:]] == ["A = 1", "A = 2"]
    assert "the last definition counts" in extraction.notices["bce"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b'{"cells": [', "broken JSON at line 1"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "not a notebook"),
])
def test_unreadable_files_raise_a_clear_error(a1, tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionError, match=message):
        extract(path, a1)


def test_nbformat3_notebook_is_upgraded_and_graded(a1, stub_nb, tmp_path):
    _solution_cell(stub_nb).source = "def bce(yhat, y):\n    return yhat.mean()"
    v3 = nbformat.convert(stub_nb, 3)
    path = tmp_path / "old.ipynb"
    path.write_text(nbformat.writes(v3, version=3))
    assert json.loads(path.read_text())["nbformat"] == 3
    extraction = extract(path, a1)
    assert not extraction.problems
    assert "return yhat.mean()" in extraction.cells[-1]["source"]


def test_python_file_is_one_cell_for_every_exercise(a1, tmp_path):
    path = tmp_path / "bob.py"
    path.write_text("def bce(yhat, y):\n    return yhat.mean()\n")
    extraction = extract(path, a1)
    assert extraction.cells[-1]["id"] == "submission"
    assert extraction.cell_exercises["submission"] == ["bce"]


# --- what each exercise's code names, for the built-in checks ----------------------------------

A7_ALL_IN_ONE = '''import torch
import torch.nn.functional as F

aten_softmax = torch.ops.aten._softmax


def _expit(x):
    return torch.special.expit(x)


def sigmoid(z):
    return _expit(z)


def sigmoid_grad(s):
    return s - s ** 2


def tanh_grad(h):
    grad = (1 - h) * (1 + h)  # a local called grad is not autograd
    return grad


def relu(z):
    return aten_softmax(z, 0, False)


def layer_grad_norms(model, x, y):
    for p in model.parameters():
        p.grad = None
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [m.weight for m in model if hasattr(m, "weight")])
    return [float(g.norm()) for g in grads]


# the student's own check against autograd, beside the definitions
z = torch.randn(5, requires_grad=True)
torch.tanh(z).sum().backward()
print(z.grad, tanh_grad(torch.tanh(z)))
'''


def test_each_exercise_is_charged_only_with_the_names_its_own_code_reaches(tmp_path):
    """One file (or one cell) holding several exercises and the student's own tests: autograd
    in layer_grad_norms or in a test line is not sigmoid_grad's; a helper or an alias is."""
    from conftest import SOLUTIONS

    from autograder.course import load_assignment

    path = tmp_path / "zoe.py"
    path.write_text(A7_ALL_IN_ONE)
    names = extract(path, load_assignment("a7_activations", SOLUTIONS)).names
    assert not {"grad", "backward", "autograd"} & (names["sigmoid_grad"] | names["tanh_grad"])
    assert {"special", "expit"} <= names["sigmoid"]  # through the helper
    assert {"ops", "aten", "_softmax"} <= names["relu"]  # through the alias
    assert {"autograd", "grad", "cross_entropy"} <= names["layer_grad_norms"]


def test_correct_code_in_one_file_with_autograd_elsewhere_gets_full_marks(tmp_path):
    """End to end: the derivatives written by hand score in full although the same file uses
    autograd in layer_grad_norms and in a test line (it lost them all before)."""
    from conftest import SOLUTIONS

    from autograder.course import load_assignment
    from autograder.grading.config import GradeConfig
    from autograder.grading.scoring import Submission, grade_submission

    a7 = load_assignment("a7_activations", SOLUTIONS)
    source = A7_ALL_IN_ONE.replace("return _expit(z)", "e = torch.exp(-z.abs())\n    "
                                   "return torch.where(z >= 0, 1 / (1 + e), e / (1 + e))")
    source = source.replace("return aten_softmax(z, 0, False)", "return z * (z > 0)")
    path = tmp_path / "zoe.py"
    path.write_text(source + "\n\ndef tanh(z):\n    return 2 * sigmoid(2 * z) - 1\n\n\n"
                    "def relu_grad(r):\n    return torch.where(r > 0, torch.ones_like(r), "
                    "torch.zeros_like(r))\n")
    result = grade_submission(Submission("zoe", path), assignment=a7,
                              config=GradeConfig(devices=("cpu",)))
    lost = {e.exercise: e.points for e in result.exercises if e.points < e.max_points}
    assert result.points == result.max_points, (lost, [c.message for c in result.checks
                                                       if not c.passed][:3])
