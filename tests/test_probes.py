"""Exercise-specific probes live beside their assignment, not in the trusted core: a new kind of
exercise brings its own `probes.py`, which reaches the sandbox as trusted code, the reference,
the build and the student's check cell."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from autograder import probes
from autograder.cli import cli
from autograder.course import load_assignment
from autograder.grading.batch import grade_batch
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission
from autograder.notebook import run_public_checks
from autograder.validation import AuthoringError, validate

PROBES = '''"""Probes of tiny: call first() twice, the second time on its own output."""

from autograder.probes import ProbeError, probe


@probe
def twice(ns, x):
    once = ns.call("first", x)
    if once is None:
        raise ProbeError("first(x) returned None: did you forget the return statement?")
    return ns.call("first", once)
'''

CHECK = '''

@check("first", points=2)
def test_first_applied_twice(student, reference, device):
    x = randn(3, seed=7, device=device)
    assert_close(student.run("twice", x).unwrap(), reference.run("twice", x).unwrap(),
                 what="first(first(x))", inputs={"x": x})
'''


def test_the_core_keeps_only_generic_probes():
    assert set(probes.GENERIC) == {"call", "call_backward"}
    defined = {name for name, value in vars(probes).items()
               if getattr(value, "__module__", None) == probes.__name__}
    assert not defined & {"net_structure", "net_forward", "train", "evaluate", "ProbeCNN",
                          "WatchedLoader", "_WatchedLoader"}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """`grade new tiny --exercise first`, with a probe of its own and a check that uses it."""
    made = CliRunner().invoke(cli, ["--solutions", str(tmp_path / "solutions"), "new", "tiny",
                                    "--exercise", "first"])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "solutions" / "tiny"
    (folder / "probes.py").write_text(PROBES)
    hidden = folder / "hidden_checks.py"
    text = hidden.read_text().replace("@check(\"first\", points=4.5)", "@check(\"first\", points=2.5)")
    hidden.write_text(text + CHECK)
    return folder


def test_an_assignment_probe_drives_the_student_in_the_sandbox(tiny, tmp_path):
    right, wrong = tmp_path / "right.py", tmp_path / "wrong.py"
    right.write_text("def first(x):\n    return x + x\n")
    wrong.write_text("def first(x):\n    return 2 * x if x.sum() < 100 else x\n")
    assignment = load_assignment("tiny", tiny.parent)
    results = grade_batch([Submission("right", right), Submission("wrong", wrong)],
                          assignment=assignment, config=GradeConfig(devices=("cpu",)),
                          out_dir=tmp_path / "out")
    assert results[0].points == results[0].max_points == 10
    twice = next(c for c in results[0].checks if c.name == "first_applied_twice")
    assert twice.passed and twice.hidden


def test_probes_are_released_and_run_in_the_students_kernel(tiny):
    out = tiny.parent.parent / "assignments"
    built = CliRunner().invoke(cli, ["--solutions", str(tiny.parent), "build", "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert (out / "tiny" / "probes.py").read_text().endswith(PROBES)
    public = tiny / "public_checks.py"
    public.write_text(public.read_text().replace('points=4.5)', 'points=2.5)', 1) + CHECK)
    built = CliRunner().invoke(cli, ["--solutions", str(tiny.parent), "build", "--out", str(out)])
    assert built.exit_code == 0, built.output
    namespace: dict = {}
    exec("def first(x):\n    return 3 * x\n", namespace)
    runs = run_public_checks("first", namespace=namespace, directory=out / "tiny", devices=("cpu",))
    twice = next(r for r in runs if r.name == "first_applied_twice")
    assert not twice.passed and "first(first(x))" in twice.message


def test_a_check_naming_an_unknown_probe_is_refused_at_build(tiny):
    hidden = tiny / "hidden_checks.py"
    hidden.write_text(hidden.read_text().replace('student.run("twice"', 'student.run("thrice"'))
    with pytest.raises(AuthoringError) as caught:
        validate(tiny)
    assert any("no probe named 'thrice' (known: call, call_backward, twice)" in str(p)
               for p in caught.value.problems), caught.value.problems


def test_moved_probes_still_grade_a4_and_a5(tmp_path):
    """Net and the training loop are driven by solutions/<a>/probes.py now."""
    from conftest import SOLUTIONS

    for name in ("a4_deep", "a5_cnn"):
        assert (SOLUTIONS / name / "probes.py").is_file()
        assignment = load_assignment(name, SOLUTIONS)
        [result] = grade_batch([Submission("ref", assignment.notebook)], assignment=assignment,
                               config=GradeConfig(devices=("cpu",)), out_dir=tmp_path / name)
        assert result.points == result.max_points, [c.message for c in result.checks if not c.passed]


def test_a_function_that_changes_its_arguments_in_place_changes_only_its_own_copies():
    """In this process (the reference, the student's kernel, nbgrader's check cells), as across
    the wire: the check's tensors and arrays stay as they were, so both sides see one input."""
    import numpy as np

    from autograder.subjects import LocalSubject

    def step(p, v, grads):
        v.mul_(0.9).add_(grads["g"])
        p.sub_(0.1 * v)
        grads["g"].zero_()
        return p, v

    def scale(a):
        a *= 2
        return a

    subject = LocalSubject({"step": step, "scale": scale}, "student")
    p, v, g = torch.ones(3), torch.zeros(3), torch.full((3,), 2.0)
    new_p, new_v = subject.step(p, v, {"g": g})
    assert torch.equal(new_v, torch.full((3,), 2.0)) and torch.allclose(new_p, torch.full((3,), 0.8))
    assert torch.equal(p, torch.ones(3)) and torch.equal(v, torch.zeros(3))
    assert torch.equal(g, torch.full((3,), 2.0))
    a = np.arange(3.0)
    assert subject.scale(a).tolist() == [0.0, 2.0, 4.0] and a.tolist() == [0.0, 1.0, 2.0]


def test_the_reference_answers_each_question_once_and_hands_out_copies():
    """A grader keeps the reference's answers: the same probe on the same arguments runs once,
    other arguments run again, each caller gets its own copy, and arguments that do not encode
    to plain data (two different models would look alike) are never looked up."""
    from autograder.subjects import LocalSubject

    calls = []

    def square(x):
        calls.append(x)
        return x * x

    subject = LocalSubject({"square": square}, "reference", memo=True)
    first = subject.square(torch.arange(3.0))
    first.add_(100)  # a check that changes what it got changes nothing for the next check
    assert subject.square(torch.arange(3.0)).tolist() == [0.0, 1.0, 4.0]
    assert len(calls) == 1
    assert subject.square(torch.arange(4.0)).tolist() == [0.0, 1.0, 4.0, 9.0]
    assert subject.square(torch.arange(3.0, dtype=torch.float64)).dtype == torch.float64
    assert len(calls) == 3
    errors = LocalSubject({"square": square}, "reference", memo=True)
    assert errors.outcome("square", "text").error is not None  # errors are answers too
    assert errors.outcome("square", "text").error.is_a("TypeError")
    assert len(calls) == 4

    model = torch.nn.Linear(2, 2)
    counted = LocalSubject({"weight_sum": lambda m: m.weight.sum()}, "reference", memo=True)
    one = counted.weight_sum(model)
    with torch.no_grad():
        model.weight.add_(1)
    assert counted.weight_sum(model).item() == pytest.approx(one.item() + 4)
    plain = LocalSubject({"square": square}, "student")
    plain.square(torch.ones(1)), plain.square(torch.ones(1))
    assert len(calls) == 6  # a student's answers are never kept
