"""A student's set-up as the README gives it: the course's wheel in a clean virtual environment,
the course's nbgrader config in ~/.jupyter, then fetch and check without any extra flag."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT, SOLUTIONS, tool

from autograder.course import load_assignment

pytestmark = pytest.mark.slow

REFERENCE = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]


def run(*args, cwd, env=None, ok=True):
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})})
    if ok:
        assert done.returncode == 0, f"{args} failed:\n{(done.stdout + done.stderr)[-3000:]}"
    return done


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory):
    """A new virtual environment with the project's wheel installed from the file alone.

    Its other packages (torch and the rest, several GB) come from this environment through a
    .pth file, so that pip finds every dependency installed and downloads nothing; the
    autograder package itself is the wheel's copy (a .pth file in an added folder, such as
    the editable install's, is not read).
    """
    base = tmp_path_factory.mktemp("student")
    wheels = base / "wheels"
    source = base / "source"  # a copy: building writes build/ beside pyproject.toml
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".*", "build", "*.egg-info", "__pycache__", "demo", "results", "bench", "tests"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source,
        cwd=base)
    [wheel] = wheels.glob("torchgrade-*.whl")
    venv = base / "venv"
    run(getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", venv, cwd=base)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base).stdout
    (Path(site.strip()) / "course_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-index", f"{wheel}[student]",
        cwd=base)
    return venv


def test_the_wheel_installs_without_downloading_and_runs_a_check_cell(clean_venv, tmp_path):
    python = clean_venv / "bin" / "python"
    where = run(python, "-c", "import autograder; print(autograder.__file__)", cwd=tmp_path).stdout
    assert where.startswith(str(clean_venv)), where  # the wheel's copy, not the checkout's
    assert "Usage: grade" in run(clean_venv / "bin" / "grade", "--help", cwd=tmp_path).stdout
    folder = tmp_path / "a1_logistic"
    shutil.copytree(ROOT / "assignments" / "a1_logistic", folder)
    cell = "from autograder.notebook import check\ncheck('bce')\n"
    passed = run(python, "-c", f"import torch\n{REFERENCE}\n{cell}", cwd=folder)
    assert "all 3 checks passed" in passed.stdout
    failed = run(python, "-c", f"import torch\n{REFERENCE.replace('.mean()', '.sum()')}\n{cell}",
                 cwd=folder, ok=False)
    assert failed.returncode == 1 and "ChecksFailed: bce: 1 of 3 public checks failed" in failed.stderr


def test_the_student_config_from_course_init_is_all_a_student_needs(tmp_path):
    course, exchange, admin, student = (tmp_path / n for n in ("course", "exchange", "admin", "kim"))
    for folder in (exchange, admin, student):
        folder.mkdir()
    made = tool("grade", "--solutions", str(SOLUTIONS), "course", "init", str(course), "--assignment",
                "a1_logistic", "--exchange", str(exchange), cwd=ROOT, home=admin)
    assert "Students: each saves" in made.stdout and "student_nbgrader_config.py" in made.stdout
    tool("nbgrader", "generate_assignment", "a1_logistic", cwd=course, home=admin)
    tool("nbgrader", "release_assignment", "a1_logistic", cwd=course, home=admin)
    (student / ".jupyter").mkdir()
    shutil.copy(course / "student_nbgrader_config.py", student / ".jupyter" / "nbgrader_config.py")
    # the README's student commands, verbatim: no --Exchange.root, no --course
    tool("nbgrader", "fetch_assignment", "a1_logistic", cwd=student, home=student)
    assert (student / "a1_logistic" / "a1_logistic.ipynb").is_file()
    tool("nbgrader", "submit", "a1_logistic", cwd=student, home=student)
    assert list((exchange / "torchgrade" / "inbound").glob("*+a1_logistic+*"))
