"""Shared fixtures: the course material and a cache of graded variant submissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.course import available, load_assignment

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"
ASSIGNMENT_NAMES = available(SOLUTIONS)

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
