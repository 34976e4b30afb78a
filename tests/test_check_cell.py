"""The student's check cell: public checks only, against recorded answers, returns a float."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import ASSIGNMENTS

from autograder import notebook
from autograder.notebook import ChecksNotFound, run_public_checks

A1 = ASSIGNMENTS / "a1_logistic"


def namespace(source: str) -> dict:
    ns = {"torch": torch, "nn": torch.nn}
    exec(source, ns)
    return ns


CORRECT = """
def bce(yhat, y):
    p = yhat.clamp(1e-7, 1 - 1e-7)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
"""


def test_correct_code_gets_all_public_points_and_no_hidden_check_runs():
    runs = run_public_checks("bce", namespace=namespace(CORRECT), directory=A1)
    ran = [r for r in runs if not r.skipped]
    assert ran and all(r.passed for r in ran)
    assert not any(r.hidden for r in runs)
    assert sum(r.points for r in runs) == 4


def test_wrong_code_gets_an_actionable_message():
    runs = run_public_checks("bce", namespace=namespace(CORRECT.replace(".mean()", ".sum()")),
                             directory=A1)
    failed = [r for r in runs if not r.passed and not r.skipped]
    assert failed[0].name == "bce_matches_bceloss"
    assert "expected 1.327, got" in failed[0].message.replace("1.3271", "1.327")
    assert "Input: yhat = [" in failed[0].message


def test_cuda_variant_is_skipped_with_the_reason():
    runs = run_public_checks("bce", namespace=namespace(CORRECT), directory=A1)
    cuda = [r for r in runs if r.device == "cuda"]
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the cuda checks ran")
    assert cuda and all(r.skipped and r.message == "no CUDA device on this machine" for r in cuda)


@pytest.fixture
def kernel_main(monkeypatch):
    """The student's kernel: ``__main__`` holds what their cells defined."""
    import sys
    import types

    def define(source):
        main = types.ModuleType("__main__")
        vars(main).update(namespace(source))
        monkeypatch.setitem(sys.modules, "__main__", main)

    return define


def test_a_passing_check_cell_has_no_value_and_says_what_hidden_checks_grade(kernel_main, capsys):
    """No value: nbgrader validate would read public points (4 of the cell's 10) as partial credit."""
    kernel_main(CORRECT)
    assert notebook.check("bce", directory=A1) is None
    # three public checks of bce, each on cpu, and on cuda too where the kernel has a GPU
    ran = 6 if torch.cuda.is_available() else 3
    out = capsys.readouterr().out
    assert f"4 / 4 points, all {ran} checks passed" in out
    assert "6 more points are graded by hidden checks after you submit" in out


def test_a_failing_check_cell_ends_in_an_error_naming_the_failed_checks(kernel_main, capsys):
    kernel_main(CORRECT.replace(".mean()", ".sum()"))
    with pytest.raises(notebook.ChecksFailed) as failed:
        notebook.check("bce", directory=A1)
    assert str(failed.value).startswith("bce: 1 of 3 public checks failed (bce_matches_bceloss)")
    assert failed.value._render_traceback_() == [f"ChecksFailed: {failed.value}"]
    out = capsys.readouterr().out  # the table came first, with what to fix
    assert "FAILED  bce_matches_bceloss" in out and "6 more points are graded by hidden checks" in out


def test_missing_recording_says_where_to_open_the_notebook(tmp_path):
    shutil.copy(A1 / "public_checks.py", tmp_path)
    with pytest.raises(ChecksNotFound, match="expected.json is not in"):
        run_public_checks("bce", namespace={}, directory=tmp_path)
