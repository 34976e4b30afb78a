"""Shared fixtures: the course material and a cache of graded variant submissions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import available, load_assignment

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"
ASSIGNMENT_NAMES = available(SOLUTIONS)

def tool(*args: str, cwd: Path, home: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command of this environment (`grade`, `nbgrader`) as a user with ``home``; unless
    ``ok`` is False, assert that it succeeded. nbgrader runs `alembic` from PATH."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)
    if ok:
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}"
    return done


# a correct bce as a .py submission (a1_logistic), for tests about grading rather than checks
GOOD_BCE = """import torch

def bce(yhat, y):
    p = yhat.clamp(1e-7, 1 - 1e-7)
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()
"""


@pytest.fixture(scope="session")
def solutions() -> Path:
    return SOLUTIONS


@pytest.fixture(scope="session")
def a1():
    return load_assignment("a1_logistic", SOLUTIONS)
