"""What students see: public checks in full, hidden checks only counted, nothing unescaped."""

from __future__ import annotations

from autograder.report import feedback_page, html_table, text_table
from autograder.results import CheckRun, ExerciseResult, SubmissionResult


def run(name, *, hidden=False, passed=True, skipped=False, device="cpu", message="", points=1.0):
    return CheckRun(name=name, exercise="softmax", device=device, hidden=hidden, passed=passed,
                    skipped=skipped, points=points if passed else 0.0, max_points=points,
                    message=message, duration_s=0.01)


RUNS = [
    run("softmax_1d"),
    run("softmax_1d", device="cuda", skipped=True, message="no CUDA device on this machine",
        points=0.0),
    run("softmax_matches_reference", passed=False, message="expected 0.25, got 0.5. Input: z = [1, 2]"),
    run("softmax_secret_dim0_case", hidden=True, passed=False, message="SECRET INPUT z = [9, 9, 9]"),
    run("softmax_secret_extremes", hidden=True, points=2.0),
]


def test_text_table_shows_public_failures_in_full_and_hidden_checks_as_counts():
    text = text_table(RUNS, title="softmax")
    assert "softmax: 3 / 5 points" in text
    assert "FAILED  softmax_matches_reference" in text and "expected 0.25, got 0.5" in text
    assert "hidden checks: 1 of 2 passed, 2/3 points" in text
    assert "secret" not in text.lower()
    assert "1 skipped: no CUDA device on this machine" in text


def test_html_table_shows_the_same_and_hides_the_same():
    page = html_table(RUNS, title="softmax")
    assert "softmax_matches_reference" in page and "expected 0.25, got 0.5" in page
    assert "hidden checks: 1 of 2 passed, 2/3 points" in " ".join(page.split())
    assert "secret" not in page.lower()


def test_everything_passed_is_said_briefly():
    passed = [run("softmax_1d"), run("softmax_secret", hidden=True)]
    assert text_table(passed, title="softmax") == "softmax: 2 / 2 points, all 2 checks passed."
    later = "2 more points are graded by hidden checks after you submit"
    assert text_table(passed, title="softmax", hidden_points=2) == (
        f"softmax: 2 / 2 points, all 2 checks passed. · {later}.")
    assert later in " ".join(html_table(passed, title="softmax", hidden_points=2).split())
    assert "all 2 checks passed" in html_table(passed, title="softmax")
    assert "<table>" not in html_table(passed, title="softmax")


def test_feedback_page_escapes_what_students_control():
    result = SubmissionResult(
        student="<script>alert(1)</script>", assignment="a2_softmax", path="x.ipynb", sha256="",
        status="graded", error=None, points=3.0, max_points=10.0,
        exercises=[ExerciseResult("softmax", 3.0, 10.0, cell_error="<img src=x onerror=alert(1)>")],
        checks=RUNS,
    )
    page = feedback_page(result)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img" not in page
    assert "3 / 10 points" in page and "softmax_matches_reference" in page
    assert "secret" not in page.lower()


def visible(page):
    import html
    import re

    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def result_of(*, error=None, exercises, checks):
    return SubmissionResult(student="ana", assignment="a2_softmax", path="ana.ipynb", sha256="",
                            status="error" if error else "graded", error=error,
                            points=sum(e.points for e in exercises),
                            max_points=sum(e.max_points for e in exercises),
                            exercises=exercises, checks=checks)


def test_a_feedback_page_says_once_which_checks_did_not_run():
    backward = [CheckRun(**{**vars(r), "exercise": "softmax_backward"}) for r in RUNS]
    page = visible(feedback_page(result_of(
        exercises=[ExerciseResult("softmax", 3.0, 5.0), ExerciseResult("softmax_backward", 3.0, 5.0)],
        checks=[*RUNS, *backward])))
    assert page.count("no CUDA device on this machine") == 1
    assert "2 checks not run: no CUDA device on this machine" in page
    assert page.count("hidden checks: 1 of 2 passed, 2/3 points") == 2  # one line per exercise
    assert "skipped" not in page


def test_a_broken_submission_is_shown_once_without_empty_sections():
    error = "ana.ipynb is not a valid notebook: broken JSON at line 68. Was it truncated?"
    page = visible(feedback_page(result_of(
        error=error, checks=[],
        exercises=[ExerciseResult("softmax", 0.0, 8.0, problem=error),
                   ExerciseResult("softmax_backward", 0.0, 12.0, problem=error)])))
    assert page.count("broken JSON") == 1
    assert "softmax 0 / 8" in page and "softmax_backward 0 / 12" in page
    assert page.endswith("softmax_backward 0 / 12")  # no sections (headings) after the table


def test_feedback_pages_can_be_handed_out(tmp_path):
    from autograder.report import write_feedback_pages

    write_feedback_pages([result_of(exercises=[ExerciseResult("softmax", 3.0, 5.0)], checks=RUNS)],
                         tmp_path)
    assert (tmp_path / "feedback" / "ana.html").stat().st_mode & 0o777 == 0o644
