"""Hint levels: the concept by default, the formula only where the instructor enables it, and
formulas never released to students who should not see them."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from conftest import SOLUTIONS

from autograder.build import released_checks
from autograder.checks import hint, render_hints
from autograder.cli import cli
from autograder.course import load_assignment
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission, grade_submission
from autograder.notebook import run_public_checks

FORMULA = "Return -(y * torch.log(yhat) + (1 - y) * torch.log(1 - yhat)).mean()."
SUM_BCE = """import torch

def bce(yhat, y):
    p = yhat.clamp(1e-7, 1 - 1e-7)
    return -(y * p.log() + (1 - y) * (1 - p).log()).sum()
"""


def test_render_hints_keeps_the_formula_only_at_the_formula_level():
    advice = hint("Average over every element.", formula="Use .mean().")
    message = f"bce(yhat, y): expected 1, got 2. {advice}"
    assert render_hints(message, "concept") == "bce(yhat, y): expected 1, got 2. Average over every element."
    assert render_hints(message, "formula") == ("bce(yhat, y): expected 1, got 2. Average over every "
                                                "element. Use .mean().")
    assert hint("Only a concept.") == "Only a concept."


def test_released_checks_lose_their_formulas_at_the_concept_level():
    source = (SOLUTIONS / "a2_softmax" / "public_checks.py").read_text()
    released = released_checks(source, hints="concept")
    assert "q * (grad_q - (grad_q * q).sum(dim, keepdim=True))" in source
    assert "grad_q * q" not in released and "z.amax(dim, keepdim=True)) and return" not in released
    assert released.count("formula=None") == source.count("formula=")
    compile(released, "public_checks.py", "exec")
    assert released_checks(source, hints="formula") == source


@pytest.fixture
def course(tmp_path):
    """A copy of a1_logistic whose course shows formula hints for it."""
    shutil.copytree(SOLUTIONS / "a1_logistic", tmp_path / "solutions" / "a1_logistic")
    (tmp_path / "solutions" / "course.toml").write_text(
        'hints = "concept"\n\n[assignment.a1_logistic]\nhints = "formula"\n')
    return tmp_path


def messages(result) -> str:
    return "\n".join(c.message for c in result.checks if not c.passed)


def test_the_grader_shows_formulas_only_where_the_course_enables_them(course, tmp_path):
    submission = tmp_path / "sum.py"
    submission.write_text(SUM_BCE)
    config = GradeConfig(devices=("cpu",))
    default = grade_submission(Submission("s", submission),
                               assignment=load_assignment("a1_logistic", SOLUTIONS), config=config)
    assert "average the negated logs" in messages(default) and FORMULA not in messages(default)
    enabled = load_assignment("a1_logistic", course / "solutions")
    assert enabled.hints == "formula"
    shown = grade_submission(Submission("s", submission), assignment=enabled, config=config)
    assert FORMULA in messages(shown)


def test_build_releases_the_level_and_the_formulas_it_allows(course):
    out = course / "assignments"
    result = CliRunner().invoke(cli, ["--solutions", str(course / "solutions"), "build",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert FORMULA in (out / "a1_logistic" / "public_checks.py").read_text()
    expected = json.loads((out / "a1_logistic" / "expected.json").read_text())
    assert expected["assignment"]["hints"] == "formula"


def test_students_get_no_formula_at_the_default_level(tmp_path):
    built = SOLUTIONS.parent / "assignments" / "a1_logistic"
    assert "formula=None" in (built / "public_checks.py").read_text()
    assert FORMULA not in (built / "public_checks.py").read_text()
    assert json.loads((built / "expected.json").read_text())["assignment"]["hints"] == "concept"
    namespace: dict = {}
    exec(SUM_BCE, namespace)
    runs = run_public_checks("bce", namespace=namespace, directory=built, devices=("cpu",))
    failed = "\n".join(r.message for r in runs if not r.passed)
    assert "average the negated logs" in failed and FORMULA not in failed


def test_expected_json_holds_only_what_the_public_checks_need():
    for folder in (SOLUTIONS.parent / "assignments").iterdir():
        records = json.loads((folder / "expected.json").read_text())["records"]
        assert records
        for text in records.values():
            assert json.loads(text)["__dict__"]["torch_calls"] == [], folder.name
