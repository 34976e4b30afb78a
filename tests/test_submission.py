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
