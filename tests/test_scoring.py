"""The scoring rule: a wrong answer earns nothing for its form.

A property check (form, dtype, device, "your own code") earns its points on a device only when
every value check of its exercise passed on that device; the student's message says why.
"""

from __future__ import annotations

import pytest
from conftest import SOLUTIONS

from autograder.course import load_assignment
from autograder.grading.batch import grade_batch
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission
from autograder.results import CheckRun, score_runs


def run(name: str, *, kind: str = "value", passed: bool = True, device: str = "cpu",
        hidden: bool = False, skipped: bool = False, weight: float = 1.0) -> CheckRun:
    return CheckRun(name=name, exercise="softmax", device=device, hidden=hidden, passed=passed,
                    skipped=skipped, points=0.0, max_points=0.0, message="", duration_s=0.0,
                    group=f"{'hidden:' if hidden else ''}{name}[]", weight=weight, kind=kind)


def test_property_points_are_paid_when_every_value_check_passes():
    runs = [run("values"), run("dtype", kind="property")]
    score_runs(runs)
    assert [r.points for r in runs] == [1.0, 1.0]
    assert not runs[1].withheld


def test_property_points_are_withheld_when_a_value_check_fails_and_the_message_says_why():
    runs = [run("values", passed=False), run("more_values", passed=False, hidden=True),
            run("other_hidden", passed=False, hidden=True), run("dtype", kind="property", weight=2)]
    score_runs(runs)
    dtype = runs[-1]
    assert dtype.passed and dtype.withheld and dtype.points == 0 and dtype.max_points == 2
    assert dtype.message == (
        "passed, but its points are withheld: a check of the form of the answer pays only once "
        "every value check of softmax passes on cpu (failed: values and 2 hidden checks).")
    assert "more_values" not in dtype.message  # hidden checks are only counted


def test_withholding_is_per_device():
    runs = [run("values", device="cpu"), run("values", device="cuda", passed=False),
            run("dtype", kind="property", device="cpu"), run("dtype", kind="property", device="cuda")]
    score_runs(runs)
    assert [r.points for r in runs] == [0.5, 0.0, 0.5, 0.0]
    assert not runs[2].withheld and runs[3].withheld


def test_a_skipped_value_check_withholds_nothing():
    runs = [run("values"), run("values", device="cuda", passed=False, skipped=True),
            run("dtype", kind="property")]
    score_runs(runs)
    assert runs[-1].points == 1.0 and not runs[-1].withheld


CONSTANT_BCE = "import torch\n\ndef bce(yhat, y):\n    return torch.tensor(0.)\n"
CONSTANT_SOFTMAX = """import torch

def softmax(z, dim=-1):
    return torch.ones_like(z) / z.shape[dim]      # a distribution, of the right shape and dtype

def softmax_backward(q, grad_q, dim=-1):
    return torch.zeros_like(q)
"""


@pytest.mark.parametrize(("name", "source", "max_points"), [
    ("a1_logistic", CONSTANT_BCE, 10), ("a2_softmax", CONSTANT_SOFTMAX, 20)])
def test_constant_answers_earn_nothing(tmp_path, name, source, max_points):
    # the finding: these scored 4/10 and 5/20 before the rule
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    assignment = load_assignment(name, SOLUTIONS)
    [result] = grade_batch([Submission("constant", path)], assignment=assignment,
                           config=GradeConfig(devices=("cpu",)), out_dir=tmp_path / "out")
    assert (result.points, result.max_points) == (0, max_points)
    withheld = [c for c in result.checks if c.withheld]
    assert withheld, "some property checks pass on a constant, and are withheld"
    public = [c for c in withheld if not c.hidden]
    assert all("points are withheld" in c.message for c in public)
