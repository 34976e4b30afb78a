"""Similarity detection: a disguised copy is found, independent solutions are not, starter code
never counts, and the page says a match is a reason to look."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from conftest import ASSIGNMENTS, SOLUTIONS

from autograder.cli import cli
from autograder.course import load_assignment
from autograder.similarity import Code, compare, normalise
from autograder.similarity_page import starter_code
from autograder.variants import variants_of

A3 = load_assignment("a3_backprop", SOLUTIONS)


def disguise(source: str) -> str:
    """What a copier does: rename every local name, reorder the functions, add comments and blank
    lines, reflow a docstring."""
    names = {m for m in re.findall(r"\b([a-z_][a-z0-9_]*)\s*=", source)} | {
        p for p in re.findall(r"def \w+\(([^)]*)\)", source) for p in re.findall(r"\w+", p)}
    names -= {e for e in ("two_layer_forward", "two_layer_backward")}
    for i, name in enumerate(sorted(names, key=len, reverse=True)):
        source = re.sub(rf"\b{name}\b", f"my_var_{i}", source)
    source = re.sub(r'"""[\s\S]*?"""', '"""My own work."""', source)
    lines = []
    for line in source.splitlines():
        lines.append(line)
        if line.strip().startswith(("return", "h =", "my_var")):
            lines.append(" " * (len(line) - len(line.lstrip())) + "# step done\n")
    return "\n".join(lines)


def codes_of(sources: dict[str, dict[str, str]]) -> list[Code]:
    return [Code(student, exercise, source, normalise(source))
            for student, by_exercise in sources.items() for exercise, source in by_exercise.items()]


def a_class_with_a_copy():
    """Every correct way a3's exercises are written (variants.py), one per student, and one
    student who copied the reference and disguised it."""
    sources: dict[str, dict[str, str]] = {"ref": dict(A3.reference_sources)}
    for v in variants_of(A3):
        if v.correct:
            sources.setdefault(f"v_{v.name}", {})[v.exercise] = v.source
    sources["copier"] = {e: disguise(s) for e, s in reversed(list(A3.reference_sources.items()))}
    return sources


def test_a_disguised_copy_ranks_first_on_every_exercise():
    sources = a_class_with_a_copy()
    assert sources["copier"]["two_layer_backward"] != sources["ref"]["two_layer_backward"]
    matches = compare(codes_of(sources), starter=starter_code(
        ASSIGNMENTS / "a3_backprop" / "a3_backprop.ipynb", A3))
    for exercise in A3.reference_sources:
        best = next(m for m in matches if m.exercise == exercise)
        assert {best.a, best.b} == {"ref", "copier"}, best
        assert best.similarity >= 0.8, best


@pytest.mark.parametrize("name", ["a1_logistic", "a2_softmax", "a3_backprop", "a7_activations"])
def test_independent_correct_solutions_written_differently_rank_low(name):
    assignment = load_assignment(name, SOLUTIONS)
    codes = [Code(f"{v.exercise}:{v.name}", v.exercise, v.source, normalise(v.source))
             for v in variants_of(assignment) if v.correct]
    codes += [Code(f"{e}:reference", e, s, normalise(s)) for e, s in assignment.reference_sources.items()]
    high = [m for m in compare(codes) if m.similarity >= 0.5]
    assert high == [], [(m.a, m.b, round(m.similarity, 2)) for m in high]


def test_starter_code_is_never_a_match():
    stub = starter_code(ASSIGNMENTS / "a3_backprop" / "a3_backprop.ipynb", A3)
    assert all("NotImplementedError" in s for s in stub.values())
    untouched = {student: dict(stub) for student in ("kim", "lee", "max")}
    assert compare(codes_of(untouched), starter=stub) == []


def test_fingerprints_ignore_names_comments_and_layout_but_not_the_api():
    one = normalise("def f(x):\n    # scale\n    return torch.exp(x) * 2.0\n")
    two = normalise("def f(inputs):\n\n    return torch.exp(inputs) * 3  # other\n")
    other = normalise("def f(x):\n    return torch.log(x) * 2.0\n")
    assert [t.text for t in one] == [t.text for t in two]
    assert [t.text for t in one] != [t.text for t in other]


def test_grade_similarity_writes_the_ranked_pairs_with_the_matching_lines(tmp_path):
    folder = tmp_path / "submitted"
    folder.mkdir()
    sources = a_class_with_a_copy()
    for student in ("ref", "copier", "v_einsum", "v_float64_inside"):  # the last two: one exercise
        (folder / f"{student}.py").write_text("import torch\n\n" + "\n\n".join(sources[student].values()))
    result = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "similarity", "a3_backprop",
                                      str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert re.search(r"\d+%  two_layer_\w+: copier and ref", result.output.splitlines()[0])
    page = (tmp_path / "out" / "index.html").read_text()
    assert "A match is a reason to look, not proof of copying." in page
    assert "<mark>" in page and "copier and ref" in page
    alone = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "similarity", "a3_backprop",
                                     str(folder / "ref.py")])
    assert alone.exit_code == 2 and "need two or more" in alone.output


def test_pairs_are_counted_once():
    sources = a_class_with_a_copy()
    matches = compare(codes_of(sources))
    keys = [(m.exercise, *sorted((m.a, m.b))) for m in matches]
    assert len(keys) == len(set(keys))
    assert not any(m.a == m.b for m in matches)
