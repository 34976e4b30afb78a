"""`grade watch` with real nbgrader submits: feedback follows each submission, a watcher killed
with SIGKILL and started again loses nothing and grades nothing twice, and the limit holds."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, SOLUTIONS, tool

from autograder.course import load_assignment, nbgrader_meta

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("watch")]

NAME = "a1_logistic"
REFERENCE = load_assignment(NAME, SOLUTIONS).reference_sources["bce"]


@pytest.fixture
def semester(tmp_path):
    course, exchange, admin, ada = (tmp_path / n for n in ("course", "exchange", "admin", "ada"))
    for folder in (exchange, admin, ada / ".jupyter"):
        folder.mkdir(parents=True)
    tool("grade", "--solutions", str(SOLUTIONS), "course", "init", str(course), "--assignment", NAME,
         "--exchange", str(exchange), cwd=ROOT, home=admin)
    tool("nbgrader", "generate_assignment", NAME, cwd=course, home=admin)
    tool("nbgrader", "release_assignment", NAME, cwd=course, home=admin)
    shutil.copy(course / "student_nbgrader_config.py", ada / ".jupyter" / "nbgrader_config.py")
    tool("nbgrader", "fetch_assignment", NAME, cwd=ada, home=ada)
    return {"course": course, "admin": admin, "ada": ada, "log": tmp_path / "watch.log"}


def submit(semester, bce_source):
    notebook = semester["ada"] / NAME / f"{NAME}.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "bce":
            cell.source = bce_source
    nbformat.write(nb, notebook)
    time.sleep(1.1)  # nbgrader's timestamps have a resolution of a second
    tool("nbgrader", "submit", NAME, "--student", "ada", cwd=semester["ada"], home=semester["ada"])


def start(semester, *extra):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(semester["admin"]),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(semester["log"], "a") as log:
        return subprocess.Popen([str(bin_dir / "grade"), "watch", NAME, "--interval", "0.5",
                                 "--devices", "cpu", *extra], cwd=semester["course"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_for(semester, text, *, count=1, limit=600.0):
    """Wait until the watcher's log holds ``text`` ``count`` times."""
    deadline = time.monotonic() + limit
    while semester["log"].read_text().count(text) < count:
        assert time.monotonic() < deadline, f"waited for {text!r}; log:\n{semester['log'].read_text()}"
        time.sleep(0.5)


def feedback_points(semester):
    """Fetch the feedback, as the student does; the points of every page fetched so far."""
    tool("nbgrader", "fetch_feedback", NAME, "--student", "ada", cwd=semester["ada"], home=semester["ada"])
    pages = sorted((semester["ada"] / NAME / "feedback").glob(f"*/{NAME}.html"))
    found = [re.search(r"Graded by <code>grade</code>: ([\d.]+) / 10 points", p.read_text()) for p in pages]
    return sorted(float(m.group(1)) for m in found if m)


def log_lines(semester, word):
    return [line for line in semester["log"].read_text().splitlines() if f" {word} " in line]


def test_feedback_follows_each_submission_across_a_kill_and_within_the_limit(semester):
    watcher = start(semester)
    try:
        submit(semester, REFERENCE)
        wait_for(semester, "feedback released to ada")
        assert feedback_points(semester) == [10.0]
        os.kill(watcher.pid, signal.SIGKILL)  # no chance to save anything more
        watcher.wait(timeout=60)
        submit(semester, REFERENCE.replace(".mean()", ".sum()"))  # while no watcher runs
        watcher = start(semester, "--max-submissions", "2")
        wait_for(semester, "feedback released to ada", count=2)
        assert feedback_points(semester) == [0.0, 10.0]
        # each submission graded once, the first not again after the restart
        assert len(log_lines(semester, "graded")) == 2 and not log_lines(semester, "already")
        submit(semester, REFERENCE)  # a third: over the limit
        wait_for(semester, "not graded: ada")
        assert len(log_lines(semester, "graded")) == 2
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
    results = semester["course"] / "grades" / NAME / "results.json"
    assert '"student": "ada"' in results.read_text()
