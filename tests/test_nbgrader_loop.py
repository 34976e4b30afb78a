"""The semester loop with real nbgrader commands, in a temporary course and exchange.

instructor: `grade course init` -> nbgrader generate_assignment, release_assignment
students (own HOME each): nbgrader fetch_assignment, fill in, `grade check`, nbgrader submit
instructor: nbgrader collect -> `grade course autograde` -> gradebook -> nbgrader export,
generate_feedback, release_feedback; students: nbgrader fetch_feedback.
"""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, SOLUTIONS, tool

from autograder.course import load_assignment, nbgrader_meta
from autograder.variants import variants_of

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("nbgrader_loop")]

NAME = "a2_softmax"
HIDDEN_NAMES = re.findall(r"^def test_(\w+)", (SOLUTIONS / NAME / "hidden_checks.py").read_text(), re.M)


def command(*args: str, cwd: Path, home: Path) -> str:
    done = tool(*args, cwd=cwd, home=home)
    return done.stdout + done.stderr


def visible_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", text, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def solution_sources() -> dict[str, str]:
    assignment = load_assignment(NAME, SOLUTIONS)
    sources = dict(assignment.reference_sources)
    wrong = {v.name: v.source for v in variants_of(assignment) if not v.correct}
    return {
        "ada": sources,  # everything right
        # passes softmax's public checks but ignores dim (hidden checks catch it),
        # and gets softmax_backward wrong everywhere
        "ben": {"softmax": wrong["ignores_dim"], "softmax_backward": wrong["grad_times_q"]},
        "cara": sources,  # right, but deletes cells (below)
    }


def fill_in(notebook: Path, student: str, sources: dict[str, str]) -> None:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in sources:
            cell.source = sources[grade_id]
    if student == "cara":
        # deletes the softmax cell after pasting its code at the end, and deletes a check cell
        nb.cells = [c for c in nb.cells
                    if nbgrader_meta(c).get("grade_id") not in ("softmax", "softmax_backward_check")]
        nb.cells.append(nbformat.v4.new_code_cell(sources["softmax"]))
    nbformat.write(nb, notebook)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    base = tmp_path_factory.mktemp("semester")
    course, exchange, admin = base / "course", base / "exchange", base / "home-instructor"
    for folder in (exchange, admin):
        folder.mkdir()
    log = [command("grade", "--solutions", str(SOLUTIONS), "course", "init", str(course),
                   "--assignment", NAME, "--exchange", str(exchange), cwd=ROOT, home=admin)]
    log.append(command("nbgrader", "generate_assignment", NAME, cwd=course, home=admin))
    log.append(command("nbgrader", "release_assignment", NAME, cwd=course, home=admin))
    sources = solution_sources()
    homes = {}
    for student in sources:
        home = homes[student] = base / f"home-{student}"
        home.mkdir()
        log.append(command("nbgrader", "fetch_assignment", NAME, "--course", "torchgrade",
                           f"--Exchange.root={exchange}", cwd=home, home=home))
        fill_in(home / NAME / f"{NAME}.ipynb", student, sources[student])
        log.append(command("nbgrader", "submit", NAME, "--course", "torchgrade", "--student", student,
                           f"--Exchange.root={exchange}", cwd=home, home=home))
    log.append(command("grade", "check", f"{NAME}.ipynb", "--devices", "cpu", cwd=homes["ada"] / NAME,
                       home=homes["ada"]))
    log.append(command("nbgrader", "collect", NAME, cwd=course, home=admin))
    log.append(command("grade", "--solutions", str(SOLUTIONS), "course", "autograde", NAME,
                       "--devices", "cpu", cwd=course, home=admin))
    log.append(command("nbgrader", "export", cwd=course, home=admin))
    log.append(command("nbgrader", "generate_feedback", NAME, cwd=course, home=admin))
    log.append(command("nbgrader", "release_feedback", NAME, cwd=course, home=admin))
    for student, home in homes.items():
        log.append(command("nbgrader", "fetch_feedback", NAME, "--course", "torchgrade",
                           "--student", student, f"--Exchange.root={exchange}", cwd=home, home=home))
    return {"course": course, "exchange": exchange, "homes": homes, "log": log}


def our_results(course: Path) -> dict[str, dict[str, str]]:
    with open(course / "grades" / NAME / "results.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def test_release_never_contains_the_hidden_checks(loop):
    released = {p.name for p in (loop["course"] / "release" / NAME).iterdir()}
    assert released == {f"{NAME}.ipynb", "public_checks.py", "expected.json"}
    fetched = loop["homes"]["ben"] / NAME
    assert not (fetched / "hidden_checks.py").exists()
    assert "check_all" not in (fetched / f"{NAME}.ipynb").read_text()


def test_grade_check_in_a_terminal_reports_the_public_checks(loop):
    output = next(entry for entry in loop["log"] if "points from the public checks" in entry)
    assert f"{NAME}.ipynb: " in output and "checks passed" in output


def test_gradebook_holds_every_check_cell_score_and_needs_no_manual_grading(loop):
    from nbgrader.api import Gradebook

    results = our_results(loop["course"])
    assignment = load_assignment(NAME, SOLUTIONS)
    with Gradebook(f"sqlite:///{loop['course'] / 'gradebook.db'}", "torchgrade") as gb:
        for student in ("ada", "ben", "cara"):
            submission = gb.find_submission(NAME, student)
            assert not submission.needs_manual_grade
            for exercise in assignment.exercises:
                grade = gb.find_grade(f"{exercise.name}_check", NAME, NAME, student)
                assert grade.auto_score == pytest.approx(float(results[student][exercise.name]))
                assert not grade.needs_manual_grade
            assert submission.score == pytest.approx(float(results[student]["points"]))
    assert results["ada"]["points"] == "20" and results["cara"]["points"] == "20"
    assert 0 < float(results["ben"]["softmax"]) < 10 and float(results["ben"]["softmax_backward"]) < 5


def test_nbgrader_export_totals_equal_grades_csv(loop):
    with open(loop["course"] / "grades.csv", newline="") as handle:
        exported = {row["student_id"]: row for row in csv.DictReader(handle)}
    ours = our_results(loop["course"])
    assert set(exported) == set(ours) == {"ada", "ben", "cara"}
    for student, row in exported.items():
        assert float(row["score"]) == pytest.approx(float(ours[student]["points"]))
        assert float(row["max_score"]) == pytest.approx(float(ours[student]["max_points"]))


def fetched_feedback(home: Path) -> str:
    pages = sorted((home / NAME / "feedback").glob("*/*.html"))
    assert len(pages) == 1, pages
    return visible_text(pages[0])


def test_feedback_shows_public_checks_in_full_and_hidden_checks_only_as_counts(loop):
    text = fetched_feedback(loop["homes"]["ben"])
    assert "softmax_backward_matches_reference" in text and "expected" in text and "Input:" in text
    assert re.search(r"hidden checks: \d+ of \d+ passed, [\d.]+/[\d.]+ points", text)
    assert text.count("checks not run: no CUDA device") <= 1  # said once, at the top
    hidden_source = (SOLUTIONS / NAME / "hidden_checks.py").read_text()
    for name in HIDDEN_NAMES:
        assert name not in text
    for line in hidden_source.splitlines():
        if len(line.strip()) > 30:
            assert line.strip() not in text
    assert "check_all" not in text and "HIDDEN TESTS" not in text


def test_each_student_receives_only_their_own_feedback(loop):
    ada, ben = fetched_feedback(loop["homes"]["ada"]), fetched_feedback(loop["homes"]["ben"])
    assert "20 / 20 points" in ada
    assert "20 / 20 points" not in ben and "FAILED" in ben


def test_a_deleted_check_cell_is_put_back_in_the_feedback(loop):
    text = fetched_feedback(loop["homes"]["cara"])
    assert "softmax_backward (graded)" in text and "softmax (graded)" in text


def test_per_student_feedback_pages_from_grade(loop):
    page = visible_text(loop["course"] / "grades" / NAME / "feedback" / "ben.html")
    assert "softmax_backward_matches_reference" in page and "hidden checks:" in page
    assert not any(name in page for name in HIDDEN_NAMES)


def test_grading_one_student_again_keeps_everyone_in_results_json_and_csv(loop):
    before = our_results(loop["course"])
    admin = loop["course"].parent / "home-instructor"
    out = command("grade", "--solutions", str(SOLUTIONS), "course", "autograde", NAME, "--student", "ben",
                  "--rerun", "--devices", "cpu", cwd=loop["course"], home=admin)
    assert "1 graded into the gradebook" in out
    document = json.loads((loop["course"] / "grades" / NAME / "results.json").read_text())
    assert sorted(s["student"] for s in document["submissions"]) == ["ada", "ben", "cara"]
    after = our_results(loop["course"])
    assert {s: r["points"] for s, r in after.items()} == {s: r["points"] for s, r in before.items()}
