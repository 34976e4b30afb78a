"""Nothing lost: a killed batch resumes, grading is repeatable, bad files fail alone."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import (
    ASSIGNMENTS,
    GOOD_BCE,
    SOLUTIONS,
    kill_batch,
    private_tmp,
    rerun_reusing,
    start_batch,
    wait_for_results,
)

from autograder.course import load_assignment, nbgrader_meta
from autograder.grading.batch import discover, grade_batch
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission
from autograder.submission import SubmissionError, extract
from autograder.variants import compose, reference_sources

CPU = GradeConfig(devices=("cpu",))
GOOD = GOOD_BCE


def test_kill_9_mid_batch_then_rerun_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    private_tmp(tmp_path, monkeypatch)
    # one grader: the cgroups checked below carry its pid
    # (several graders: tests/test_parallel.py checks the same with the graders' pids)
    command, out, grader = start_batch(tmp_path, count=5, workers=1)
    wait_for_results(out, 2)
    first = kill_batch(grader, out)
    assert 2 <= len(first) < 5, "the kill came too late to test anything"

    doc = rerun_reusing(command, out, first)  # graded before the kill: reused, not graded again
    students = [s["student"] for s in doc["submissions"]]
    assert sorted(students) == [f"s{i}" for i in range(5)]
    assert [s["points"] for s in sorted(doc["submissions"], key=lambda s: s["student"])] == [
        8.0, 10.0, 8.0, 10.0, 8.0]
    assert not list((out / "submissions").glob(".*.tmp"))
    stale = list(Path("/sys/fs/cgroup/pids").glob(f"autograder-{grader.pid}-*"))
    assert not stale, "the rerun should have swept the killed grader's cgroups"


def test_grading_twice_gives_identical_results(tmp_path):
    a1 = load_assignment("a1_logistic", SOLUTIONS)
    paths = []
    for name, source in [("good", GOOD), ("bad", GOOD.replace("(1 - y)", "y"))]:
        paths.append(tmp_path / f"{name}.py")
        paths[-1].write_text(source)
    runs = []
    for attempt in range(2):
        results = grade_batch([Submission(p.stem, p) for p in paths], assignment=a1, config=CPU,
                              out_dir=tmp_path / f"out{attempt}")
        runs.append([[(c.name, c.device, c.passed, c.points, c.message) for c in r.checks]
                     for r in results])
    assert runs[0] == runs[1]
    assert any(not passed for _, _, passed, _, _ in runs[0][1])


def test_oversized_notebook_fails_alone(tmp_path):
    a1 = load_assignment("a1_logistic", SOLUTIONS)
    huge = tmp_path / "huge.ipynb"
    with huge.open("wb") as handle:  # sparse: 600 MB on paper, nothing on disk
        handle.truncate(600 << 20)
    with pytest.raises(SubmissionError, match="over the 100 MiB limit. Clear the outputs"):
        extract(huge, a1)
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    results = grade_batch([Submission("huge", huge), Submission("good", good)], assignment=a1,
                          config=CPU, out_dir=tmp_path / "out")
    assert [r.status for r in results] == ["error", "graded"]
    assert results[1].points == 10


def test_extra_and_renamed_notebooks_in_nbgrader_layout(tmp_path):
    stub = ASSIGNMENTS / "a1_logistic" / "a1_logistic.ipynb"
    alice = tmp_path / "submitted" / "alice" / "a1_logistic"
    bob = tmp_path / "submitted" / "bob" / "a1_logistic"
    alice.mkdir(parents=True)
    bob.mkdir(parents=True)
    (alice / "a1_logistic.ipynb").write_bytes(stub.read_bytes())
    (alice / "scratch.ipynb").write_text("{}")
    (bob / "my_answers.ipynb").write_bytes(stub.read_bytes())
    found = discover([tmp_path / "submitted"], "a1_logistic")
    assert [(s.student, s.path.name) for s in found] == [
        ("alice", "a1_logistic.ipynb"), ("bob", "my_answers.ipynb")]


def test_syntax_error_in_one_cell_leaves_the_other_exercise_graded(tmp_path):
    a2 = load_assignment("a2_softmax", SOLUTIONS)
    sources = reference_sources(a2)
    sources["softmax"] = "def softmax(z, dim=-1)\n    return z\n"
    nb = compose(ASSIGNMENTS / "a2_softmax" / "a2_softmax.ipynb", sources)
    path = tmp_path / "typo.ipynb"
    nbformat.write(nb, path)
    [result] = grade_batch([Submission("typo", path)], assignment=a2, config=CPU,
                           out_dir=tmp_path / "out")
    by_name = {e.exercise: e for e in result.exercises}
    assert by_name["softmax"].points == 0
    assert "SyntaxError" in by_name["softmax"].cell_error and "line 1" in by_name["softmax"].cell_error
    assert by_name["softmax_backward"].points == by_name["softmax_backward"].max_points


def test_python_file_with_a_syntax_error_explains_itself(tmp_path):
    a1 = load_assignment("a1_logistic", SOLUTIONS)
    path = tmp_path / "broken.py"
    path.write_text("def bce(yhat, y:\n    return 0\n")
    [result] = grade_batch([Submission("broken", path)], assignment=a1, config=CPU,
                           out_dir=tmp_path / "out")
    assert result.points == 0
    assert "SyntaxError" in result.exercises[0].cell_error
    assert all("'bce' is not defined" in c.message for c in result.checks if not c.skipped)


def test_student_ids_never_escape_the_output_folder(tmp_path):
    a1 = load_assignment("a1_logistic", SOLUTIONS)
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    ids = ["../../escape", "/etc/passwd", "name with spaces", "ünï", "..", ""]
    grade_batch([Submission(i, good) for i in ids], assignment=a1, config=CPU,
                out_dir=tmp_path / "out")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert len(written) == len(ids) + 1
    assert all(p.startswith("out/") for p in written)


def test_deleted_cell_with_code_elsewhere_still_scores(tmp_path):
    a1 = load_assignment("a1_logistic", SOLUTIONS)
    nb = compose(ASSIGNMENTS / "a1_logistic" / "a1_logistic.ipynb", reference_sources(a1))
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "bce")
    cell.metadata.pop("nbgrader")
    path = tmp_path / "pasted.ipynb"
    nbformat.write(nb, path)
    [result] = grade_batch([Submission("pasted", path)], assignment=a1, config=CPU,
                           out_dir=tmp_path / "out")
    assert result.points == 10
    assert "used the cell that defines bce" in result.exercises[0].notice


def test_files_named_like_python_or_pytest_hooks_are_never_loaded(tmp_path):
    a1 = load_assignment("a1_logistic", SOLUTIONS)
    folder = tmp_path / "submitted"
    folder.mkdir()
    trap = "import os\nos.makedirs({!r}, exist_ok=True)\nraise SystemExit('loaded!')\n"
    marker = tmp_path / "was_loaded"
    for name in ("conftest.py", "torch.py", "sitecustomize.py", "usercustomize.py"):
        (folder / name).write_text(trap.format(str(marker)))
    (folder / "pytest.ini").write_text("[pytest]\naddopts = --this-breaks-pytest\n")
    (folder / "evil.pth").write_text(f"import os; os.makedirs({str(marker)!r})\n")
    (folder / "zz_good.py").write_text(GOOD)
    found = discover([folder], "a1_logistic")
    results = grade_batch(found, assignment=a1, config=CPU, out_dir=tmp_path / "out")
    by_student = {r.student: r for r in results}
    assert by_student["zz_good"].points == 10
    assert by_student["torch"].points == 0  # graded as a (wrong) submission, nothing more
    assert not marker.exists()
