"""LMS export: Canvas and Moodle CSVs from nbgrader's gradebook, scored as `nbgrader export` scores."""

from __future__ import annotations

import csv
import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SOLUTIONS

from autograder.cli import cli
from autograder.course import CourseError
from autograder.integrations.lms import read_mapping
from autograder.integrations.nbgrader_course import gradebook, layout

ADA, BEN, CY = "ada", "ben", "cy"


@pytest.fixture
def course(tmp_path):
    """A course whose gradebook holds a1 (10 points) and a2 (20): ada on time, ben late with
    nbgrader's penalty of 2 on a1 and no a2, cy (not in the mapping) on time."""
    folder = tmp_path / "course"
    made = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "course", "init", str(folder),
                                    "--assignment", "a1_logistic"])
    assert made.exit_code == 0, made.output
    due = datetime.datetime(2026, 11, 1, 12, 0)
    with gradebook(layout(folder)) as gb:
        for name, points in (("a1", 10.0), ("a2", 20.0)):
            gb.add_assignment(name, duedate=due)
            gb.add_notebook(name, name)
            gb.add_grade_cell("check", name, name, max_score=points, cell_type="code")
        gb.add_student(ADA, first_name="Ada", last_name="Lovelace")
        gb.add_student(BEN, first_name="Ben", last_name="Okri")
        gb.add_student(CY)
        submitted = [(ADA, "a1", 9.0, 0.0), (ADA, "a2", 17.5, 0.0), (BEN, "a1", 7.0, 2.0),
                     (CY, "a1", 1.0, 0.0), (CY, "a2", 0.5, 0.0)]
        for student, name, score, penalty in submitted:
            gb.add_submission(name, student, timestamp=due + datetime.timedelta(hours=penalty))
            gb.find_grade("check", name, name, student).auto_score = score
            gb.find_submission_notebook(name, name, student).late_submission_penalty = penalty
        gb.db.commit()
    return folder


def mapping(tmp_path, text):
    path = tmp_path / "ids.csv"
    path.write_text(text)
    return path


def rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_canvas_csv_has_the_penalised_scores_and_lists_who_is_left_out(course, tmp_path):
    ids = mapping(tmp_path, "nbgrader_id,lms_id,section\nada,1001,A\nben,1002,B\nzoe,1003,A\n")
    result = CliRunner().invoke(cli, ["course", "lms", "canvas", "--mapping", str(ids),
                                      "--course", str(course)])
    assert result.exit_code == 0, result.output
    rows = rows_of(course / "canvas_grades.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "a1", "a2"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", "20"]
    assert rows[2] == ["Lovelace, Ada", "1001", "ada", "", "A", "9", "17.5"]
    assert rows[3] == ["Okri, Ben", "1002", "ben", "", "B", "5", "0"]  # 7 less 2 late; a2 missing
    assert rows[4] == ["zoe", "1003", "zoe", "", "A", "", ""]
    assert "NOT in the file, not in ids.csv: cy" in result.output
    assert "in ids.csv but not in the gradebook (empty grades): zoe" in result.output


def test_the_scores_are_those_of_nbgrader_export(course, tmp_path):
    from nbgrader.plugins.export import CsvExportPlugin

    theirs = tmp_path / "nbgrader.csv"
    with gradebook(layout(course)) as gb:
        CsvExportPlugin(to=str(theirs)).export(gb)
    with open(theirs, newline="") as handle:
        expected = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(handle)}
    ids = mapping(tmp_path, "nbgrader_id,lms_id\nada,a@x\nben,b@x\ncy,c@x\n")
    result = CliRunner().invoke(cli, ["course", "lms", "moodle", "--mapping", str(ids), "--course",
                                      str(course), "--out", str(tmp_path / "moodle.csv")])
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "moodle.csv")
    assert rows[0] == ["email", "a1", "a2"]
    ours = {(student, a): float(v) for student, row in zip(("ada", "ben", "cy"), rows[1:], strict=True)
            for a, v in zip(("a1", "a2"), row[1:], strict=True)}
    assert ours == expected and ours["ben", "a1"] == 5.0
    assert "NOT in the file" not in result.output


@pytest.mark.parametrize(("text", "message"), [
    ("student,lms_id\nada,1\n", "needs the columns nbgrader_id, lms_id"),
    ("nbgrader_id,lms_id\nada,1\nada,2\n", "ids.csv:3: nbgrader_id 'ada' appears twice"),
    ("nbgrader_id,lms_id\nada,1\nben,1\n", "ids.csv:3: lms_id '1' is already line 2's"),
    ("nbgrader_id,lms_id\nada,\n", "ids.csv:2: nbgrader_id and lms_id must both be given"),
])
def test_a_bad_mapping_is_refused_naming_the_line(tmp_path, text, message):
    with pytest.raises(CourseError, match=message.replace("(", r"\(")):
        read_mapping(mapping(tmp_path, text))
