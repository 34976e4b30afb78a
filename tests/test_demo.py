"""The demo class: deterministic, and a covering sample of it misses no pick of the whole class."""

from __future__ import annotations

import pytest
from conftest import ASSIGNMENT_NAMES, SOLUTIONS

from autograder.course import load_assignment
from autograder.demo import SLIPS, STUDENTS, covering, make_class, picks


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_covering_students_make_every_pick_the_class_makes(name):
    assignment = load_assignment(name, SOLUTIONS)
    everyone = picks(assignment)
    sample = covering(assignment)
    # smaller than the class, unless every student makes a pick no one else makes (a7's seven
    # exercises with many variants each): then no student can be left out
    own_pick = {s for s, row in everyone.items()
                if set(row.items()) - {item for t, r in everyone.items() if t != s for item in r.items()}}
    assert set(sample) <= set(STUDENTS)
    assert len(sample) < len(STUDENTS) or own_pick == set(STUDENTS)
    assert all(sample[s] == STUDENTS[s] for s in sample)
    wanted = {item for row in everyone.values() for item in row.items()}
    assert {item for s in sample for item in everyone[s].items()} == wanted
    assert {s for s, a in SLIPS if a == name} <= set(sample)
    kinds = {pick for row in everyone.values() for pick in row.values()}
    assert "reference" in kinds and len(kinds) > 2  # the class is varied: there is something to cover


def test_the_class_is_the_same_every_time(tmp_path):
    first, second = make_class(SOLUTIONS, tmp_path / "one"), make_class(SOLUTIONS, tmp_path / "two")
    files = sorted(p.relative_to(first) for p in first.rglob("*.ipynb"))
    assert len(files) == len(STUDENTS) * len(ASSIGNMENT_NAMES)
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.ipynb"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


@pytest.mark.parametrize("name", ASSIGNMENT_NAMES)
def test_a_limited_sample_keeps_the_slips_and_takes_the_richest_students_first(name):
    assignment = load_assignment(name, SOLUTIONS)
    everyone, full = picks(assignment), covering(assignment)
    slips = {s for s, a in SLIPS if a == name}
    for limit in (1, 3, 6):
        sample = covering(assignment, limit=limit)
        assert slips <= set(sample) and len(set(sample) - slips) <= limit
        if len(full) <= len(slips) + limit:
            assert sample == full  # the limit only matters where the whole cover does not fit
    first = covering(assignment, limit=1)
    covered_by_slips = {item for s in slips for item in everyone[s].items()}
    gain = {s: len(set(everyone[s].items()) - covered_by_slips) for s in everyone}
    extra = set(first) - slips
    assert not extra or gain[extra.pop()] == max(gain.values())
