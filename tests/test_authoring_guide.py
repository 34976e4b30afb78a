"""docs/authoring.md's worked example, run exactly as written, in a fresh folder.

Every fenced block of the guide is a step: a `console` block's `$ ` lines are commands (the
lines under one are output it must print), `python file=PATH` blocks are files to write, and
`python cell=ID` blocks replace a notebook cell's source. So the guide cannot rot, and the
example needs nothing in autograder/.
"""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, tool

from autograder.course import nbgrader_meta

GUIDE = ROOT / "docs" / "authoring.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def steps(text: str) -> list[tuple[str, str, str]]:
    """The guide's steps in order: (kind, argument, body)."""
    found = []
    for language, info, body in BLOCK.findall(text):
        info = info.strip()
        if language == "console":
            found.append(("console", "", body))
        elif language == "python" and info.startswith(("file=", "cell=")):
            key, _, value = info.partition("=")
            found.append((key, value, body))
    return found


def squash(text: str) -> str:
    return " ".join(text.split())


def replace_cell(folder: Path, grade_id: str, source: str) -> None:
    for path in folder.glob("solutions/*/*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id]
        if cells:
            cells[0].source = source.rstrip("\n")
            nbformat.write(nb, path)
            return
    raise AssertionError(f"the guide edits cell {grade_id!r}, which no notebook has")


def package_mtimes() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (ROOT / "autograder").rglob("*.py")}


@pytest.mark.slow
def test_the_guides_example_runs_as_written(tmp_path):
    before = package_mtimes()
    work, home = tmp_path / "course", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    found = steps(GUIDE.read_text(encoding="utf-8"))
    assert [k for k, _, _ in found].count("console") >= 4 and any(k == "cell" for k, _, _ in found)
    ran = []
    for kind, argument, body in found:
        if kind == "file":
            path = work / argument
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
        elif kind == "cell":
            replace_cell(work, argument, body)
        else:
            command, shown = None, []
            for line in [*body.splitlines(), "$ "]:
                if line.startswith("$ "):
                    if command:
                        done = tool(*command, cwd=work, home=home, env={"COLUMNS": "200"})
                        output = squash(done.stdout + done.stderr)
                        for expected in shown:
                            assert squash(expected) in output, (command, expected, output[-3000:])
                        ran.append(command[:2])
                    command, shown = shlex.split(line[2:]), []
                elif line.strip():
                    shown.append(line)
    assert ["grade", "new"] in ran and ["grade", "build"] in ran and ["grade", "audit"] in ran
    rows = {r["student"]: r for r in csv.DictReader((work / "results" / "results.csv").open())}
    assert (rows["ana"]["points"], rows["ana"]["max_points"]) == ("10", "10")
    assert rows["bo"]["points"] == "0"
    feedback = (work / "results" / "feedback" / "bo.html").read_text()
    assert "mse_matches_reference" in feedback and "Square each difference" in feedback
    assert "((yhat - y) ** 2).mean()" not in feedback  # the formula is not shown at this level
    assert package_mtimes() == before, "the example must not need changes to autograder/"
