"""`grade run` from the outside: inputs it accepts, files it writes, exit codes."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from click.testing import CliRunner
from conftest import ASSIGNMENTS, SOLUTIONS

from autograder.cli import cli

STUB = ASSIGNMENTS / "a1_logistic" / "a1_logistic.ipynb"
REFERENCE = SOLUTIONS / "a1_logistic" / "a1_logistic.ipynb"


def grade(*args):
    return CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "run", *map(str, args)])


@pytest.fixture(scope="module")
def nbgrader_run(tmp_path_factory):
    """A submitted/ folder in nbgrader's layout: two students, one broken file."""
    root = tmp_path_factory.mktemp("course")
    for student, source in [("alice", REFERENCE), ("bob", STUB)]:
        target = root / "submitted" / student / "a1_logistic"
        target.mkdir(parents=True)
        shutil.copy(source, target / "a1_logistic.ipynb")
    broken = root / "submitted" / "carol" / "a1_logistic"
    broken.mkdir(parents=True)
    (broken / "a1_logistic.ipynb").write_text('{"cells": [')
    out = root / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("COLUMNS", raising=False)  # output to a pipe, as from a script
        result = grade("a1_logistic", root / "submitted", "--out", out)
    return result, out


def test_run_exits_zero_and_prints_a_table(nbgrader_run):
    result, _ = nbgrader_run
    assert result.exit_code == 0, result.output
    assert "alice" in result.output and "10/10" in result.output
    assert "3 graded, 1 with errors" in result.output
    # not a terminal: wide enough that the table keeps its right border and carol's whole problem
    rows = [line for line in result.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert rows and all(line.rstrip()[-1] in "┓┃┩│┘" for line in rows), result.output
    carol = next(line for line in rows if "carol" in line)
    assert "not a valid notebook" in carol and "…" not in carol, carol


def test_results_json_follows_the_documented_schema(nbgrader_run):
    _, out = nbgrader_run
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema"] == 1 and doc["assignment"] == "a1_logistic"
    assert {"torch", "python"} <= doc["environment"].keys()
    by_student = {s["student"]: s for s in doc["submissions"]}
    assert set(by_student) == {"alice", "bob", "carol"}
    alice = by_student["alice"]
    assert alice["points"] == alice["max_points"] == 10
    assert alice["exercises"][0] == {"exercise": "bce", "points": 10.0, "max_points": 10.0,
                                     "problem": None, "notice": None, "cell_error": None}
    check = alice["checks"][0]
    assert {"name", "exercise", "device", "hidden", "passed", "skipped", "points", "max_points",
            "message", "duration_s"} <= check.keys()
    assert {c["device"] for c in alice["checks"]} == {"cpu", "cuda"}
    assert any(c["hidden"] for c in alice["checks"]) and any(not c["hidden"] for c in alice["checks"])
    assert alice["protections"]
    carol = by_student["carol"]
    assert carol["status"] == "error" and "broken JSON" in carol["error"]
    assert by_student["bob"]["points"] == 0


def test_csv_has_one_row_per_submission(nbgrader_run):
    _, out = nbgrader_run
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert rows[0]["points"] == "10" and rows[0]["bce"] == "10"


def test_per_submission_files_are_reused_on_rerun(nbgrader_run):
    _, out = nbgrader_run
    before = (out / "submissions" / "alice.json").stat().st_mtime_ns
    result = grade("a1_logistic", out.parent / "submitted", "--out", out)
    assert result.exit_code == 0
    assert (out / "submissions" / "alice.json").stat().st_mtime_ns == before


def test_single_python_file(tmp_path):
    sub = tmp_path / "dave.py"
    sub.write_text("import torch\n\ndef bce(yhat, y):\n    p = yhat.clamp(1e-7, 1 - 1e-7)\n"
                   "    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()\n")
    result = grade("a1_logistic", sub, "--out", tmp_path / "out", "--devices", "cpu")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["submissions"][0]["student"] == "dave"
    assert doc["submissions"][0]["points"] == 10


def test_odd_student_ids_stay_inside_the_output_folder(tmp_path):
    submitted = tmp_path / "submitted"
    for student in ["..", "with space", "ünïcödé"]:
        folder = submitted / student / "a1_logistic"
        if student == "..":
            folder = submitted / "dotdot..%2F" / "a1_logistic"
        folder.mkdir(parents=True)
        shutil.copy(STUB, folder / "a1_logistic.ipynb")
    out = tmp_path / "out"
    result = grade("a1_logistic", submitted, "--out", out, "--devices", "cpu")
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert len(written) == 4 and all(not p.startswith("..") for p in written)
    assert all(p.startswith("submissions/") or p == "results.json" for p in written)


@pytest.mark.parametrize(("args", "message"), [
    (["nope", STUB], "unknown assignment 'nope'"),
    (["a1_logistic", STUB, "--devices", "tpu"], "use a comma-separated list of cpu, cuda"),
    (["a1_logistic", STUB, "--check-timeout", "0"], "Should be positive"),
])
def test_bad_usage_exits_2_with_a_clear_message(args, message):
    result = grade(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_empty_folder_is_a_usage_error(tmp_path):
    result = grade("a1_logistic", tmp_path)
    assert result.exit_code == 2 and "no .ipynb or .py submissions found" in result.output


def test_broken_check_file_stops_with_a_clear_error(tmp_path):
    solutions = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS / "a1_logistic", solutions / "a1_logistic")
    (solutions / "a1_logistic" / "hidden_checks.py").write_text("def test_x(:\n")
    result = CliRunner().invoke(cli, ["--solutions", str(solutions), "run", "a1_logistic", str(STUB),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "the checks of a1_logistic are broken" in result.output
    assert "hidden_checks.py" in result.output


def test_a_sandbox_that_cannot_start_stops_the_batch_without_blaming_students(tmp_path):
    result = grade("a1_logistic", REFERENCE, "--out", tmp_path / "out", "--devices", "cpu",
                   "--memory-gib", "0.5")
    assert result.exit_code == 1
    assert "grading stopped" in result.output
    assert "failed before running any student code" in result.output
    assert "--memory-gib" in result.output


def test_demo_grades_the_class_with_the_default_limits(tmp_path, monkeypatch):
    import autograder.cli as cli_module

    monkeypatch.setattr(cli_module, "available", lambda solutions: ["a1_logistic"])  # one, quickly
    result = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "demo", "--out", str(tmp_path),
                                      "--devices", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "results" / "a1_logistic" / "results.json").read_text())
    assert len(doc["submissions"]) == 12 and any(s["points"] == 10 for s in doc["submissions"])
    protections = doc["submissions"][0]["protections"]
    assert "wall-clock timeout per check (30 s) with process-group kill" in protections
    assert "scratch limit (256 MiB for all files together)" in protections
    assert "address space limit (6 GiB)" in protections
