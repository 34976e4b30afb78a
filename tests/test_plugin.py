"""A pytest session kept for one student after another grades each as a fresh run would."""

from __future__ import annotations

import textwrap

import pytest

from autograder.course import CourseError
from autograder.plugin import CheckPlugin, CheckSession, run_checks, run_in_session
from autograder.subjects import LocalSubject

CHECKS = '''
from pathlib import Path

import pytest

LOG = Path(__file__).with_suffix(".log")


@pytest.fixture(scope="session")
def session_fixture():
    with LOG.open("a") as log:
        log.write("setup\\n")
    yield
    with LOG.open("a") as log:
        log.write("teardown\\n")


@pytest.mark.exercise("double")
@pytest.mark.points(2)
def test_double(student, reference, session_fixture):
    assert student.double(3) == reference.double(3), "double(3) is not 6"


@pytest.mark.exercise("double")
def test_double_of_zero(student, reference):
    assert student.double(0) == reference.double(0), "double(0) is not 0"
'''

STUDENTS = {
    "right": "def double(x):\n    return 2 * x\n",
    "wrong": "def double(x):\n    return x + 2\n",
    "raises": "def double(x):\n    raise ValueError('no')\n",
    "also_right": "def double(x):\n    return x + x\n",
}


def _subject(source: str, label: str) -> LocalSubject:
    namespace: dict[str, object] = {}
    exec(source, namespace)  # trusted test code
    return LocalSubject(namespace, label)


def _plugin(source: str) -> CheckPlugin:
    return CheckPlugin(student=_subject(source, "student"),
                       reference=_subject(STUDENTS["right"], "reference"), devices=("cpu",))


def _outcomes(runs):
    return [(r.name, r.passed, r.message) for r in runs]


@pytest.fixture
def checks(tmp_path):
    path = tmp_path / "public_checks.py"
    path.write_text(CHECKS)
    return path


def test_each_student_gets_what_a_run_of_their_own_gives(checks):
    with CheckSession([checks]) as session:
        in_session = {name: _outcomes(session.run(_plugin(source))) for name, source in STUDENTS.items()}
    alone = {name: _outcomes(run_checks([checks], _plugin(source))) for name, source in STUDENTS.items()}
    assert in_session == alone
    assert [passed for _, passed, _ in in_session["right"]] == [True, True]
    assert in_session["wrong"][0][1:] == (False, "double(3) is not 6")
    assert in_session["wrong"][1][1:] == (False, "double(0) is not 0")
    assert "ValueError" in in_session["raises"][0][2]


def test_every_fixture_is_set_up_afresh_for_each_student(checks):
    with CheckSession([checks]) as session:
        for source in STUDENTS.values():
            session.run(_plugin(source))
    log = checks.with_suffix(".log").read_text().split()
    assert log == ["setup", "teardown"] * len(STUDENTS)


@pytest.mark.parametrize("name", ["public_checks.py", "more_checks.py"])  # imported first, or by pytest
def test_checks_that_cannot_be_collected_say_why_on_every_run(tmp_path, name):
    broken = tmp_path / name
    broken.write_text("def test_x(student:\n    pass\n")
    with CheckSession([broken]) as session:
        for _ in range(2):
            with pytest.raises(CourseError, match="SyntaxError"):
                session.run(_plugin(STUDENTS["right"]))


def test_a_plugin_that_collects_differently_is_refused(checks):
    with CheckSession([checks]) as session:
        session.run(_plugin(STUDENTS["right"]))
        other = _plugin(STUDENTS["right"])
        other.devices = ("cpu", "cuda")
        with pytest.raises(ValueError, match="collected its checks"):
            session.run(other)


def test_the_kept_session_sees_an_edited_check_file(checks):
    assert [r.passed for r in run_in_session([checks], _plugin(STUDENTS["wrong"]))] == [False, False]
    checks.write_text(CHECKS + textwrap.dedent('''
        @pytest.mark.exercise("double")
        def test_double_is_callable(student):
            assert student.double(1) is not None
    '''))
    runs = run_in_session([checks], _plugin(STUDENTS["wrong"]))
    assert [r.name for r in runs] == ["double", "double_of_zero", "double_is_callable"]
    assert [r.passed for r in runs] == [False, False, True]
