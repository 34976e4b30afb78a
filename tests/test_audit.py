"""`grade audit`: every assignment found passes its own audit, and the audit catches each kind
of weak check it promises to (on small assignments made with `grade new`).

A new assignment in solutions/ is audited here without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ASSIGNMENT_NAMES, SOLUTIONS

from autograder.audit import Audit, audit
from autograder.cli import cli
from autograder.course import load_assignment
from autograder.grading.config import GradeConfig

CONFIG = GradeConfig(devices=("cpu", "cuda"))


def describe(result: Audit) -> str:
    rows = "\n".join(f"  {r.label}: {r.total} {r.problems}" for r in result.rows)
    return f"problems: {result.problems}\nrows:\n{rows}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_every_assignment_passes_its_audit(name):
    result = audit(load_assignment(name, SOLUTIONS), config=CONFIG)
    assert result.ok, describe(result)
    kinds = {row.kind for row in result.rows}
    assert {"stub", "reference", "constant", "correct", "wrong"} <= kinds
    stub = next(row for row in result.rows if row.kind == "stub")
    assert stub.total[0] == 0 and stub.total[1] == load_assignment(name, SOLUTIONS).max_points
    for row in result.rows:
        if row.kind in ("constant", "stub"):
            assert row.total[0] == 0, row
        if row.kind in ("reference", "correct"):
            assert row.total[0] == row.total[1], row
    assert all(use.failed_by or use.cuda_only for use in result.checks)


def test_a_constant_answer_keeps_the_dtype_and_shape_of_a_numpy_array():
    import copy

    import numpy as np
    import torch

    from autograder.audit import _CONSTANT_HELPERS

    namespace = {"_copy": copy, "_np": np, "_torch": torch}
    exec(_CONSTANT_HELPERS.format(value=1), namespace)
    array, number = namespace["_constant"]((np.zeros((2, 3), dtype=np.float32), 0.25))
    assert type(array) is np.ndarray and array.dtype == np.float32 and array.shape == (2, 3)
    assert (array == 1).all() and number == 1.0


def test_a_constant_answer_of_a_function_that_builds_a_module_or_a_function_answers_constants():
    """A function that returns a model (or a transform, itself a module) or a function answers
    with one whose outputs are constant and which has no parameters; a function that returns its
    own argument returns it as before."""
    import copy

    import numpy as np
    import torch

    from autograder.audit import _CONSTANT_HELPERS

    namespace = {"_copy": copy, "_np": np, "_torch": torch}
    exec(_CONSTANT_HELPERS.format(value=0), namespace)
    namespace["_REFERENCE"] = {
        "build": lambda n: torch.nn.Linear(3, n),
        "scaler": lambda k: (lambda x: k * x),
        "same": lambda layer: layer,
    }
    model = namespace["_constant_answer"]("build")(2)
    assert isinstance(model, torch.nn.Module) and list(model.parameters()) == []
    out = model(torch.ones(4, 3, dtype=torch.float64))
    assert out.shape == (4, 2) and out.dtype == torch.float64 and (out == 0).all()
    assert (namespace["_constant_answer"]("scaler")(3)(torch.ones(2)) == 0).all()
    layer = torch.nn.Linear(2, 2)
    assert isinstance(namespace["_constant_answer"]("same")(layer), torch.nn.Linear)


# --- the audit's own checks, on a tiny assignment -------------------------------------------

@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """solutions/tiny/ as `grade new tiny --exercise first --exercise second` writes it."""
    made = CliRunner().invoke(cli, ["--solutions", str(tmp_path / "solutions"), "new", "tiny",
                                    "--exercise", "first", "--exercise", "second"])
    assert made.exit_code == 0, made.output
    return tmp_path / "solutions" / "tiny"


def run_audit(folder: Path) -> Audit:
    return audit(load_assignment(folder.name, folder.parent), config=GradeConfig(devices=("cpu",)))


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_the_skeleton_passes_its_audit_with_advice(tiny):
    result = run_audit(tiny)
    assert result.ok, describe(result)
    # minimum variant counts are advice, not a rule
    assert any("first: 1 correct and 2 wrong variants" in line for line in result.advice)


def test_a_property_check_marked_as_a_value_check_lets_a_constant_answer_score(tiny):
    replace_in(tiny / "public_checks.py", 'points=1, kind="property")', "points=1)")
    result = run_audit(tiny)
    assert not result.ok
    constant = [p for p in result.problems if p.startswith("constant zeros: a constant answer scores 2")]
    assert constant and "first_keeps_dtype_and_device (first)" in constant[0], result.problems


def test_a_correct_variant_that_loses_points_is_a_false_negative(tiny):
    with (tiny / "variants.py").open("a") as handle:
        handle.write("\n# %% first: rounded [correct]\ndef first(x):\n    return (2 * x).round()\n")
    result = run_audit(tiny)
    assert any(p.startswith("first:rounded: false negative: correct code scores 0/10 on first")
               for p in result.problems), result.problems


def test_a_check_that_no_mistake_fails_is_reported(tiny):
    text = (tiny / "variants.py").read_text()
    start = text.index("# %% second: always_float64")
    (tiny / "variants.py").write_text(text[:start])
    result = run_audit(tiny)
    assert ("check second_keeps_dtype_and_device (second) never fails: no wrong variant trips "
            "it. Add a variant with the mistake it is there to catch, or drop it."
            in result.problems), result.problems


def test_a_wrong_variant_that_passes_its_named_check_is_reported(tiny):
    replace_in(tiny / "variants.py", "# %% first: always_float64 [wrong: first_keeps_dtype_and_device]",
               "# %% first: always_float64 [wrong: first_keeps_dtype_and_device, first_matches_reference]")
    result = run_audit(tiny)
    assert ("first:always_float64: passes checks its header says it fails: first_matches_reference"
            in result.problems), result.problems


def test_a_wrong_variant_that_breaks_another_exercise_is_reported(tiny):
    with (tiny / "variants.py").open("a") as handle:
        handle.write("\n# %% second: also_breaks_first [wrong: second_matches_reference]\n"
                     "def second(x):\n    return 3 * x\n\ndef first(x):\n    return x\n")
    result = run_audit(tiny)
    assert any(p.startswith("second:also_breaks_first: loses points outside second: first 0/10")
               for p in result.problems), result.problems


def test_the_stub_must_score_zero(tiny):
    # a reference answer left outside the solution region ships to students in the stub
    def leak(cell_source: str) -> str:
        return cell_source.replace("    ### BEGIN SOLUTION\n    return 2 * x",
                                   "    return 2 * x\n    ### BEGIN SOLUTION\n    return 2 * x")

    import nbformat

    from autograder.course import nbgrader_meta

    path = tiny / "tiny.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "first":
            cell.source = leak(cell.source)
    nbformat.write(nb, path)
    result = run_audit(tiny)
    assert any(p.startswith("stub: the untouched stub scores 10; it must score 0")
               for p in result.problems), result.problems


def test_grade_audit_prints_tables_and_exits_1_on_a_problem(tiny):
    replace_in(tiny / "public_checks.py", 'points=1, kind="property")', "points=1)")
    result = CliRunner().invoke(cli, ["--solutions", str(tiny.parent), "audit", "tiny",
                                      "--devices", "cpu"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "grade audit tiny: submissions" in result.output
    assert "grade audit tiny: checks" in result.output
    assert "problem: constant zeros" in result.output
    assert "tiny: audit 2 problems" in result.output
