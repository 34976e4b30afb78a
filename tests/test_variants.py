"""The grader graded like a product: for every exercise of every assignment, the reference
scores full marks, the stub scores zero, each correct variant written another way scores full
marks, and each realistic mistake fails the checks it names (and so loses points).

Variants of different exercises share a submission (the k-th variant of each exercise), so the
whole matrix costs a few sandboxes per assignment.
"""

from __future__ import annotations

import nbformat
import pytest
from conftest import ASSIGNMENT_NAMES, ASSIGNMENTS, SOLUTIONS

from autograder.course import load_assignment
from autograder.grading import GradeConfig, Submission, grade_batch
from autograder.results import SubmissionResult
from autograder.variants import Variant, compose, reference_sources, variants_of

CONFIG = GradeConfig(devices=("cpu", "cuda"))


def _variants(name: str) -> list[Variant]:
    return variants_of(load_assignment(name, SOLUTIONS))


def _grouped(name: str, *values: object) -> object:
    """Keep an assignment's tests on one xdist worker, so its batch is graded once."""
    return pytest.param(*values, marks=pytest.mark.xdist_group(name), id="-".join(map(str, values)))


ALL_VARIANTS = [(name, v) for name in ASSIGNMENT_NAMES for v in _variants(name)]
NAMES = [_grouped(name, name) for name in ASSIGNMENT_NAMES]
VARIANT_PARAMS = [
    pytest.param(name, v, marks=pytest.mark.xdist_group(name), id=f"{name}-{v.label}")
    for name, v in ALL_VARIANTS
]


@pytest.fixture(scope="session")
def graded(tmp_path_factory: pytest.TempPathFactory):
    """Grade reference, stub and all variants of an assignment once; cache by assignment."""
    cache: dict[str, dict[str, SubmissionResult]] = {}

    def get(name: str) -> dict[str, SubmissionResult]:
        if name in cache:
            return cache[name]
        assignment = load_assignment(name, SOLUTIONS)
        stub = ASSIGNMENTS / name / f"{name}.ipynb"
        work = tmp_path_factory.mktemp(name)
        submissions = [Submission("reference", assignment.notebook), Submission("stub", stub)]
        by_exercise: dict[str, list[Variant]] = {}
        for variant in _variants(name):
            by_exercise.setdefault(variant.exercise, []).append(variant)
        rounds = max((len(v) for v in by_exercise.values()), default=0)
        owner: dict[str, str] = {}
        for k in range(rounds):
            sources = reference_sources(assignment)
            for exercise, variants in by_exercise.items():
                if k < len(variants):
                    sources[exercise] = variants[k].source
                    owner[variants[k].label] = f"round{k}"
            path = work / f"round{k}.ipynb"
            nbformat.write(compose(stub, sources), path)
            submissions.append(Submission(f"round{k}", path))
        results = grade_batch(submissions, assignment=assignment, config=CONFIG, out_dir=work / "out")
        by_student = {r.student: r for r in results}
        cache[name] = {"reference": by_student["reference"], "stub": by_student["stub"],
                       **{label: by_student[student] for label, student in owner.items()}}
        return cache[name]

    return get


def _exercise(result: SubmissionResult, exercise: str):
    return next(e for e in result.exercises if e.exercise == exercise)


@pytest.mark.parametrize("name", NAMES)
def test_reference_scores_full_marks(graded, name):
    result = graded(name)["reference"]
    assignment = load_assignment(name, SOLUTIONS)
    failures = [f"{c.name}[{c.device}]: {c.message}" for c in result.checks
                if not c.passed and not c.skipped]
    assert not failures, failures
    assert result.points == result.max_points == assignment.max_points
    for exercise in assignment.exercises:
        assert _exercise(result, exercise.name).max_points == exercise.points, (
            f"check points of {exercise.name} do not add up to its check cell's points")


@pytest.mark.parametrize("name", NAMES)
def test_stub_scores_zero_with_a_clear_message(graded, name):
    result = graded(name)["stub"]
    assert result.status == "graded"
    assert result.points == 0
    ran = [c for c in result.checks if not c.skipped]
    assert ran and not any(c.passed for c in ran)
    assert all("NotImplementedError" in c.message for c in ran), [c.message for c in ran]


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_enough_variants_per_exercise(name):
    assignment = load_assignment(name, SOLUTIONS)
    variants = _variants(name)
    for exercise in assignment.exercises:
        mine = [v for v in variants if v.exercise == exercise.name]
        assert sum(v.correct for v in mine) >= 3, f"{exercise.name}: fewer than 3 correct variants"
        assert sum(not v.correct for v in mine) >= 4, f"{exercise.name}: fewer than 4 wrong variants"


@pytest.mark.parametrize(("name", "variant"), VARIANT_PARAMS)
def test_variant_scores_as_declared(graded, name, variant):
    result = graded(name)[variant.label]
    exercise = _exercise(result, variant.exercise)
    checks = [c for c in result.checks if c.exercise == variant.exercise and not c.skipped]
    failed = {c.name: c.message for c in checks if not c.passed}
    if variant.correct:
        assert not failed, f"false negative on correct code: {failed}"
        assert exercise.points == exercise.max_points
        return
    assert exercise.points < exercise.max_points
    missing = [name for name in variant.must_fail if name not in failed]
    assert not missing, f"expected these checks to fail: {missing}; failed: {sorted(failed)}"
    for check_name, message in failed.items():
        assert len(message) > 20, f"{check_name}: message too terse to act on: {message!r}"
        assert "internal error" not in message, f"{check_name}: {message}"
