"""How fast `grade similarity` is on a large class, and whether it still finds planted copies.

    .venv/bin/python bench/similarity.py                  # 1000 a3_backprop notebooks
    .venv/bin/python bench/similarity.py --students 200 --assignment a2_softmax

Writes N notebooks of the released assignment. A real class writes N different programs, so
each student's exercise cells are a program of their own: the exercise's signature, then 8 to 20
statements drawn at random from torch-like operations on the arguments and earlier results (as
varied as students' code, and as alike in idioms), and for one student in ten the reference or
a variant from variants.py (with every local name renamed). Then copies are planted: a few
students take another student's code, rename every name again and add comments. Times the
whole command's work in this process (reading every notebook, fingerprinting, comparing,
writing the page), and says where each planted copy ranks among the pairs of its exercise.
Printed, and written to ``bench/out/similarity.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from autograder.course import load_assignment, nbgrader_meta  # noqa: E402
from autograder.grading.scoring import Submission  # noqa: E402
from autograder.similarity_page import similarity_report  # noqa: E402
from autograder.variants import variants_of  # noqa: E402

KEEP = {"torch", "np", "nn", "F", "math", "self", "super", "True", "False", "None"}
FUNCTIONS = ["torch.exp", "torch.tanh", "torch.sigmoid", "torch.log1p", "torch.relu", "torch.abs",
             "torch.sqrt", "torch.clamp_min", "torch.softmax", "torch.cumsum", "torch.outer"]
METHODS = ["sum", "mean", "amax", "std", "t", "reshape", "unsqueeze", "squeeze", "clone", "detach",
           "pow", "mul", "add", "sub", "div", "matmul", "norm", "flatten"]
OPERATORS = ["+", "-", "*", "/", "@"]


def program(signature: str, rng: random.Random) -> str:
    """A function body of random torch-like statements over the arguments and earlier results."""
    params = [p.split("=")[0].strip() for p in re.findall(r"\((.*)\)", signature)[0].split(",") if p.strip()]
    names, lines = list(params), [signature]
    for i in range(rng.randint(8, 20)):
        a, b = rng.choice(names), rng.choice(names)
        kind = rng.random()
        if kind < 0.3:
            expression = f"{rng.choice(FUNCTIONS)}({a})"
        elif kind < 0.6:
            expression = f"{a}.{rng.choice(METHODS)}({rng.choice(['', 'dim=0', '-1', '1', 'keepdim=True'])})"
        elif kind < 0.9:
            expression = f"({a} {rng.choice(OPERATORS)} {b}) {rng.choice(OPERATORS)} {rng.randint(1, 9)}"
        else:
            expression = f"torch.where({a} > {rng.randint(0, 3)}, {a}, {b})"
        target = f"t{i}"
        lines.append(f"    {target} = {expression}")
        names.append(target)
    lines.append(f"    return {names[-1]}")
    return "\n".join(lines) + "\n"


def rename(source: str, rng: random.Random, keep: set[str]) -> str:
    """Every assigned or parameter name replaced by a random one."""
    names = set(re.findall(r"\b([A-Za-z_]\w*)\s*=[^=]", source))
    for params in re.findall(r"def \w+\(([^)]*)\)", source):
        names |= set(re.findall(r"[A-Za-z_]\w*", params))
    for name in sorted(names - keep - KEEP, key=len, reverse=True):
        source = re.sub(rf"(?<![.\w]){name}\b", f"{rng.choice('abcdefghxyz')}{rng.randrange(10**6)}", source)
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="a3_backprop")
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    rng = random.Random(0)
    solutions = ROOT / "solutions"
    assignment = load_assignment(args.assignment, solutions)
    released = ROOT / "assignments" / args.assignment / f"{args.assignment}.ipynb"
    keep = {name for e in assignment.exercises for name in e.defines}
    pool = {e.name: [assignment.reference_sources[e.name]] for e in assignment.exercises}
    for v in variants_of(assignment):
        if v.device is None:
            pool[v.exercise].append(v.source)
    work = Path(tempfile.mkdtemp(prefix="grade-similarity-"))
    template = nbformat.read(released, as_version=4)
    chosen: dict[str, dict[str, str]] = {}
    signatures = {e: source.splitlines()[0] for e, source in assignment.reference_sources.items()}
    own = []  # students whose code is their own program (the others share a variant's)
    for i in range(args.students):
        textbook = rng.random() < 0.1
        chosen[f"s{i:04d}"] = {
            e: rename(rng.choice(sources) if textbook else program(signatures[e], rng), rng, keep)
            for e, sources in pool.items()}
        if not textbook:
            own.append(f"s{i:04d}")
    planted = []
    for c in range(args.copies):  # a copy of code that ten others share is no evidence: own code
        victim, copier = own[2 * c], own[2 * c + 1]
        chosen[copier] = {e: "# my solution\n" + rename(s, rng, keep) for e, s in chosen[victim].items()}
        planted.append((victim, copier))
    submissions = []
    try:
        for student, sources in chosen.items():
            nb = nbformat.from_dict(template)
            for cell in nb.cells:
                grade_id = nbgrader_meta(cell).get("grade_id")
                if grade_id in sources:
                    cell.source = sources[grade_id]
            path = work / f"{student}.ipynb"
            nbformat.write(nb, path)
            submissions.append(Submission(student=student, path=path))
        started = time.perf_counter()
        page, matches, unreadable = similarity_report(submissions, assignment, released=released,
                                                      out=work / "report", threshold=0.5)
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ranks: dict[str, dict[str, float] | None] = {}
    for victim, copier in planted:
        for exercise in pool:
            pairs = [m for m in matches if m.exercise == exercise]
            found = next((m for m in pairs if {m.a, m.b} == {victim, copier}), None)
            # pairs more similar than the copy: those an instructor reads first (ties are not)
            ranks[f"{copier} copied {victim}, {exercise}"] = None if found is None else {
                "similarity": round(found.similarity, 3),
                "more_similar_pairs": sum(m.similarity > found.similarity for m in pairs)}
    strong = [m for m in matches if m.similarity >= 0.5]
    print(f"{args.students} notebooks of {args.assignment}: {seconds:.1f} s "
          f"({1000 * seconds / args.students:.1f} ms each), {len(matches)} pairs share any code, "
          f"{len(strong)} at or above 50%")
    found = [r for r in ranks.values() if r is not None]
    missing = [k for k, r in ranks.items() if r is None]
    print(f"planted copies ({len(ranks)} copier-exercise pairs): found {len(found)}, similarity "
          f"{min((r['similarity'] for r in found), default=0):.0%} at least, at most "
          f"{max((r['more_similar_pairs'] for r in found), default=0):.0f} pairs of the exercise more "
          "similar" + (f"; NOT FOUND: {missing}" if missing else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "similarity.json").write_text(json.dumps({
        "assignment": args.assignment, "students": args.students, "seconds": round(seconds, 2),
        "pairs": len(matches), "pairs_at_50": len(strong), "planted_ranks": ranks,
        "unreadable": len(unreadable)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
