"""Item analysis (`grade report`): numbers checked against hand and NumPy computations."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from autograder.analysis import analyse, normalise_message, point_biserial, upper_lower
from autograder.cli import cli
from autograder.results import CheckRun, ExerciseResult, SubmissionResult, batch_document


def submission(student, runs, *, error=None):
    """A graded a2-like submission from ``runs``: (name, passed, points, message) on cpu."""
    checks = [CheckRun(name=name, exercise="softmax", device="cpu", hidden=name.startswith("h_"),
                       passed=passed, skipped=False, points=points if passed else 0.0,
                       max_points=points, message=message, duration_s=0.01)
              for name, passed, points, message in runs]
    earned = sum(c.points for c in checks)
    return SubmissionResult(student=student, assignment="a2_softmax", path=f"{student}.ipynb", sha256="",
                            status="error" if error else "graded", error=error, points=earned,
                            max_points=10.0, exercises=[ExerciseResult("softmax", earned, 10.0)],
                            checks=checks)


def class_of_ten():
    """Skill 0..9: `values` is passed by the top six; `noise` by the bottom three (a bad check);
    `easy` by all; hidden `h_dims` by the top four."""
    results = []
    for skill in range(10):
        results.append(submission(f"s{skill}", [
            ("values", skill >= 4, 4.0, f"softmax(z): expected 0.{skill}5, got 1.{skill}"),
            ("noise", skill <= 2, 1.0, "rows do not sum to 1 (sum 3.5)"),
            ("easy", True, 1.0, ""),
            ("h_dims", skill >= 6, 3.0, "wrong along dim 0"),
        ]))
    return results


def test_point_biserial_is_pearsons_r_of_the_item_and_the_rest_score():
    passed = [True, False, True, True, False, False, True]
    scores = [7.0, 2.0, 5.0, 9.0, 4.0, 1.0, 3.0]
    assert point_biserial(passed, scores) == pytest.approx(np.corrcoef(passed, scores)[0, 1])
    assert point_biserial([True] * 4, [1.0, 2.0, 3.0, 4.0]) is None  # the item does not vary


def test_upper_lower_compares_the_top_and_bottom_27_percent():
    scores = [float(s) for s in range(10)]  # k = ceil(2.7) = 3
    assert upper_lower([s >= 5 for s in range(10)], scores) == 1.0
    assert upper_lower([s in (0, 1, 9) for s in range(10)], scores) == pytest.approx((1 - 2) / 3)


def test_analysis_flags_the_check_that_strong_students_fail_and_the_one_everyone_passes():
    checks = {c.name: c for c in analyse(class_of_ten()).checks}
    assert checks["values"].pass_rate == 0.6 and checks["values"].flag == ""
    # rest scores: s0-s2 2 (noise, easy), s3-s5 1, s6-s9 4; bottom 27% s3, s4, s5 pass 2 of 3,
    # top 27% s7, s8, s9 pass 3 of 3
    assert checks["values"].point_biserial > 0.4 and checks["values"].upper_lower == pytest.approx(1 / 3)
    assert checks["noise"].point_biserial < 0 and "look at the check" in checks["noise"].flag
    assert checks["easy"].point_biserial is None and "everyone passed" in checks["easy"].flag
    assert checks["h_dims"].hidden and checks["h_dims"].flag == ""
    # the corrected item-total: each check is correlated with the points of the others
    values = [s >= 4 for s in range(10)]
    rest = [r.points - (4.0 if ok else 0.0) for r, ok in zip(class_of_ten(), values, strict=True)]
    assert checks["values"].point_biserial == pytest.approx(np.corrcoef(values, rest)[0, 1])


def test_failure_messages_are_grouped_with_the_numbers_taken_out():
    assert normalise_message("expected 0.25, got -1.5e-3\nInput: z") == "expected #, got #"
    assert normalise_message("softmax_1d on float32 (3, 3)") == "softmax_1d on float32 (#, #)"
    values = next(c for c in analyse(class_of_ten()).checks if c.name == "values")
    [(message, count, students)] = values.failures
    assert (message, count, students) == ("softmax(z): expected #, got #", 4, ["s0", "s1", "s2", "s3"])


def test_limits_are_found_in_the_sandboxs_own_words():
    results = [submission("slow", [("values", False, 4.0, "timed out after 30 s")]),
               submission("big", [("values", False, 4.0, "memory limit 6 GiB exceeded (resident)")]),
               submission("ok", [("values", True, 4.0, "")])]
    hits = {(h.student, h.kind) for h in analyse(results).limits}
    assert hits == {("slow", "time"), ("big", "memory")}


def test_grade_report_writes_the_page_the_pngs_and_the_csvs(tmp_path):
    for name, results in (("a1_logistic", class_of_ten()), ("a2_softmax", class_of_ten()[:6])):
        folder = tmp_path / "grades" / name
        folder.mkdir(parents=True)
        for r in results:
            r.assignment = name
        (folder / "results.json").write_text(json.dumps(batch_document(name, results, {})))
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "grades" / "a1_logistic"),
                                      str(tmp_path / "grades" / "a2_softmax" / "results.json"),
                                      "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "report"
    page = (out / "index.html").read_text()
    for png in ("a1_logistic-scores.png", "a1_logistic-checks.png", "a2_softmax-checks.png", "trend.png"):
        assert f'src="{png}"' in page and (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "strong submissions fail it more often" in page and "s0, s1, s2, s3" in page
    with open(out / "checks.csv", newline="") as handle:
        rows = {(r["assignment"], r["check"]): r for r in csv.DictReader(handle)}
    assert rows["a1_logistic", "values"]["pass_rate"] == "0.600"
    assert rows["a1_logistic", "easy"]["point_biserial"] == ""
    with open(out / "scores.csv", newline="") as handle:
        scores = list(csv.DictReader(handle))
    column = "a2_softmax (of 10)"
    assert len(scores) == 10 and scores[0][column] != "" and scores[-1][column] == ""


def test_grade_report_without_results_says_what_it_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 2 and "grades/*/results.json" in result.output
    (tmp_path / "broken.json").write_text("{")
    result = CliRunner().invoke(cli, ["report", "broken.json"])
    assert result.exit_code == 2 and "not a results.json that grade wrote" in result.output


def test_a_withheld_property_check_counts_as_passed_it_did_what_it_measures():
    results = class_of_ten()
    for r in results[:3]:  # their values are wrong, so the dtype check's points are withheld
        r.checks.append(CheckRun(name="dtype", exercise="softmax", device="cpu", hidden=False,
                                 passed=True, skipped=False, points=0.0, max_points=1.0,
                                 message="passed, but its points are withheld", duration_s=0.0,
                                 withheld=True))
    dtype = next(c for c in analyse(results).checks if c.name == "dtype")
    assert (dtype.ran, dtype.passed, dtype.failures) == (3, 3, [])


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """An nbgrader course whose gradebook holds a1 (exercises bce 6 + grad 4 points) for six
    students, s0 weakest, s5 strongest, and an a2 no one submitted; s2's grad cell was
    regraded by hand from 0 to 4 (a manual score overrides nbgrader's automatic one)."""
    from conftest import SOLUTIONS

    from autograder.integrations.nbgrader_course import gradebook, layout

    folder = tmp_path_factory.mktemp("graded") / "course"
    made = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "course", "init", str(folder),
                                    "--assignment", "a1_logistic"])
    assert made.exit_code == 0, made.output
    with gradebook(layout(folder)) as gb:
        for name in ("a1", "a2"):
            gb.add_assignment(name)
            gb.add_notebook(name, name)
            gb.add_grade_cell("bce_check", name, name, max_score=6.0, cell_type="code")
            gb.add_grade_cell("grad_check", name, name, max_score=4.0, cell_type="code")
        for skill in range(6):
            gb.add_student(f"s{skill}")
            gb.add_submission("a1", f"s{skill}")
            bce, grad = (6.0 if skill >= 2 else 3.0 * skill), (4.0 if skill >= 4 else 0.0)
            gb.find_grade("bce_check", "a1", "a1", f"s{skill}").auto_score = bce
            gb.find_grade("grad_check", "a1", "a1", f"s{skill}").auto_score = grad
        gb.find_grade("grad_check", "a1", "a1", "s2").manual_score = 4.0
        gb.db.commit()
    return folder


@pytest.mark.xdist_group("gradebook_report")
def test_grade_report_reads_the_gradebook_of_a_course_graded_by_nbgrader(graded_course, monkeypatch):
    monkeypatch.chdir(graded_course)
    result = CliRunner().invoke(cli, ["report"])  # no grades/*/results.json: the gradebook
    assert result.exit_code == 0, result.output
    assert "from the gradebook of ." in result.output
    with open(graded_course / "report" / "checks.csv", newline="") as handle:
        rows = {r["exercise"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"bce", "grad"}  # a2, with no submission, is left out
    assert rows["bce"]["assignment"] == "a1" and rows["bce"]["check"] == "bce_check"
    assert rows["bce"]["ran"] == "6" and rows["bce"]["passed"] == "4"
    assert rows["grad"]["passed"] == "3"  # s2's manual 4 of 4, s4, s5
    # s1 earned 3 of 6 on bce, s0 none: two kinds of failure, each with its students
    assert rows["bce"]["top_failure"] in {"no points", "part of its points"}
    page = (graded_course / "report" / "index.html").read_text()
    assert "part of its points" in page and "no points" in page
    with open(graded_course / "report" / "scores.csv", newline="") as handle:
        scores = {r["student"]: r["a1 (of 10)"] for r in csv.DictReader(handle)}
    assert scores == {"s0": "0", "s1": "3", "s2": "10", "s3": "6", "s4": "10", "s5": "10"}


@pytest.mark.xdist_group("gradebook_report")
def test_grade_report_gradebook_option_and_its_errors(graded_course, tmp_path, monkeypatch):
    out = tmp_path / "elsewhere"
    result = CliRunner().invoke(cli, ["report", "--gradebook", str(graded_course), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "a1-scores.png").read_bytes()[:4] == b"\x89PNG"
    result = CliRunner().invoke(cli, ["report", "--gradebook", str(graded_course), str(out)])
    assert result.exit_code == 2 and "not both" in result.output
    result = CliRunner().invoke(cli, ["report", "--gradebook", str(tmp_path)])
    assert result.exit_code == 2 and "grade course init" in result.output
