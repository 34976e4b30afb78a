"""`grade check` (students, in a terminal) and the errors of `grade course` for bad set-ups."""

from __future__ import annotations

import shutil

import nbformat
from click.testing import CliRunner
from conftest import ASSIGNMENTS, SOLUTIONS

from autograder.cli import cli
from autograder.course import load_assignment, nbgrader_meta

A1 = ASSIGNMENTS / "a1_logistic"


def student_copy(tmp_path, bce_source):
    folder = tmp_path / "a1_logistic"
    shutil.copytree(A1, folder)
    notebook = folder / "a1_logistic.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "bce":
            cell.source = bce_source
    nbformat.write(nb, notebook)
    return notebook


def invoke(*args):
    return CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), *map(str, args)])


def test_grade_check_reports_public_checks_of_a_wrong_notebook(tmp_path):
    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    notebook = student_copy(tmp_path, reference.replace(".mean()", ".sum()"))
    result = invoke("check", notebook, "--devices", "cpu")
    assert result.exit_code == 0, result.output
    # the sums fail the value check, so the form checks they pass are withheld
    assert "a1_logistic.ipynb: 0 / 4 points from the public checks" in result.output
    assert "FAILED  bce_matches_bceloss" in result.output and "Input: yhat" in result.output
    assert "withheld bce_is_your_own" in result.output
    assert "passed, but its points are withheld" in result.output
    # no hidden check ran; the points they grade after submission are said
    assert "hidden checks:" not in result.output.lower()
    assert "6 more points are graded by hidden checks after you submit" in result.output


def test_grade_check_of_a_correct_notebook_says_so_briefly(tmp_path):
    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    result = invoke("check", student_copy(tmp_path, reference), "--devices", "cpu")
    assert result.exit_code == 0, result.output
    assert "4 / 4 points" in result.output and "all 3 checks passed" in result.output


def test_grade_check_outside_the_assignment_folder_says_where_to_run_it(tmp_path):
    lone = tmp_path / "a1_logistic.ipynb"
    shutil.copy(A1 / "a1_logistic.ipynb", lone)
    result = invoke("check", lone)
    assert result.exit_code == 2
    assert "no public_checks.py and expected.json" in result.output


def test_course_autograde_without_a_course_names_the_command_to_run(tmp_path):
    result = invoke("course", "autograde", "a1_logistic", "--course", tmp_path)
    assert result.exit_code == 2
    assert "grade course init" in result.output


def test_course_autograde_before_generate_assignment_says_so(tmp_path):
    course = tmp_path / "course"
    assert invoke("course", "init", course, "--assignment", "a1_logistic").exit_code == 0
    assert (course / "source" / "a1_logistic" / "hidden_checks.py").is_file()
    result = invoke("course", "autograde", "a1_logistic", "--course", course)
    assert result.exit_code == 2
    assert "nbgrader generate_assignment a1_logistic" in result.output


def test_course_init_keeps_an_edited_config(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'mine'\n")
    assert invoke("course", "init", course, "--assignment", "a1_logistic").exit_code == 0
    assert "'mine'" in (course / "nbgrader_config.py").read_text()


def test_grade_check_runs_the_released_probes_of_a5(tmp_path):
    """a5's checks drive train_model through probes.py, which students get with the checks."""
    folder = tmp_path / "a5_cnn"
    shutil.copytree(ASSIGNMENTS / "a5_cnn", folder)
    assert (folder / "probes.py").is_file()
    notebook = folder / "a5_cnn.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    reference = load_assignment("a5_cnn", SOLUTIONS).reference_sources
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "train_model":
            cell.source = reference["train_model"]
    nbformat.write(nb, notebook)
    result = invoke("check", notebook, "--devices", "cpu")
    assert result.exit_code == 0, result.output
    assert "a5_cnn.ipynb: 6 / 16 points from the public checks" in " ".join(result.output.split())
    assert "train_model: 6 / 6 points, all 3 checks passed" in result.output
