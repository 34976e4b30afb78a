"""How long the commands take from the shell, `grade` beside `nbgrader autograde`, in one run.

    .venv/bin/python bench/end_to_end.py                    # a2_softmax: 1, 10 and 100 notebooks
    .venv/bin/python bench/end_to_end.py --sizes 1,10 --nbgrader-max 10

Each row is the wall time of a whole command, as an instructor types it (Python's start, imports,
the reference, the fork server and the grading all included), on N notebooks of one assignment
(the demo class first, then generated students: correct code, realistic mistakes, stubs):

- ``grade run A submitted/ --devices cpu`` on the N notebooks;
- ``grade course autograde A`` and ``nbgrader autograde A`` on the same N notebooks in one nbgrader
  course (nbgrader only up to --nbgrader-max notebooks: it takes seconds per notebook);
- ``grade check`` of one notebook (what a student types), and ``grade --help``.

The `grade` commands are timed twice: alone (``TORCHGRADE_SERVER=off``: each pays Python, torch,
the fork server and the reference) and in a warm grading server (`grade server --help`), as a
user's second and later commands run. The server's own first commands (its start, then the
assignment's first `grade run`, which runs the reference) are timed and shown apart.

From these: the ratio nbgrader / grade at each size, and the time per added notebook (the
difference between two sizes, over the difference in notebooks). Printed, and written to
``bench/out/end_to_end.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from autograder.demo import class_of, make_class  # noqa: E402

MODES = {"alone": "off", "server": "on"}


def timed(*command: str, cwd: Path, home: Path, mode: str = "alone") -> float:
    """Wall seconds of ``command`` (a program of this environment); fail loudly if it fails."""
    env = {**os.environ, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "TORCHGRADE_SERVER": MODES[mode], "XDG_RUNTIME_DIR": str(home.parent / "run")}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 and command[:2] != ("nbgrader", "autograde"):  # nbgrader: 1 if any failed
        raise SystemExit(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return seconds


def notebooks(assignment: str, count: int, work: Path) -> list[tuple[str, Path]]:
    """``count`` submitted notebooks of ``assignment``: (student, path)."""
    folder = work / "class"
    if not folder.exists():
        make_class(ROOT / "solutions", folder, students=class_of(count))
    found = sorted(folder.glob(f"*/{assignment}/{assignment}.ipynb"))[:count]
    return [(path.parent.parent.name, path) for path in found]


def course_with(assignment: str, subs: list[tuple[str, Path]], work: Path, home: Path) -> Path:
    course = work / f"course-{len(subs)}"
    timed("grade", "--solutions", str(ROOT / "solutions"), "course", "init", str(course),
          "--assignment", assignment, cwd=work, home=home)
    timed("nbgrader", "generate_assignment", assignment, cwd=course, home=home)
    for student, path in subs:
        target = course / "submitted" / student / assignment
        target.mkdir(parents=True)
        shutil.copy(path, target / f"{assignment}.ipynb")
    return course


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="a2_softmax")
    parser.add_argument("--sizes", default="1,10,100", help="notebooks per run")
    parser.add_argument("--nbgrader-max", type=int, default=10,
                        help="run nbgrader autograde only up to this many notebooks")
    parser.add_argument("--workers", type=int, default=None,
                        help="pass --workers to grade run (default: grade's own choice)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = Path(tempfile.mkdtemp(prefix="grade-e2e-", dir="/tmp"))  # short: the socket's path
    home = work / "home"
    home.mkdir()
    (work / "run").mkdir(mode=0o700)
    rows: list[dict[str, float | int | None]] = []
    first: dict[str, float] = {}
    try:
        subs = notebooks(args.assignment, max(sizes), work)
        help_s = timed("grade", "--help", cwd=work, home=home)
        released = ROOT / "assignments" / args.assignment
        student = work / "student"
        shutil.copytree(released, student)
        shutil.copy(subs[0][1], student / f"{args.assignment}.ipynb")
        check = ("grade", "check", f"{args.assignment}.ipynb", "--devices", "cpu")
        check_s = timed(*check, cwd=student, home=home)
        first["server_start_with_check_s"] = timed(*check, cwd=student, home=home, mode="server")
        warm_check_s = timed(*check, cwd=student, home=home, mode="server")
        print(f"grade --help: {help_s:.2f} s; grade check of one notebook: {check_s:.2f} s alone, "
              f"{first['server_start_with_check_s']:.2f} s starting the server, {warm_check_s:.2f} s "
              "in the warm server", flush=True)
        for size in sizes:
            batch = work / f"submitted-{size}"
            batch.mkdir()
            for name, path in subs[:size]:
                shutil.copy(path, batch / f"{name}.ipynb")
            run = ("grade", "--solutions", str(ROOT / "solutions"), "run", args.assignment,
                   str(batch), "--devices", "cpu", "--rerun",
                   *(("--workers", str(args.workers)) if args.workers else ()))
            run_s = timed(*run, "--out", str(work / f"out-{size}"), cwd=work, home=home)
            if not first.get("server_first_run_s"):  # the server runs the reference once
                first["server_first_run_s"] = timed(*run, "--out", str(work / "out-first"),
                                                    cwd=work, home=home, mode="server")
            warm_run_s = timed(*run, "--out", str(work / f"out-server-{size}"), cwd=work, home=home,
                               mode="server")
            course = course_with(args.assignment, subs[:size], work, home)
            # nbgrader first: it skips submissions that autograded/ already holds
            theirs_s = (timed("nbgrader", "autograde", args.assignment, cwd=course, home=home)
                        if size <= args.nbgrader_max else None)
            autograde = ("grade", "course", "autograde", args.assignment, "--devices", "cpu", "--rerun")
            ours_s = timed(*autograde, cwd=course, home=home)
            warm_ours_s = timed(*autograde, cwd=course, home=home, mode="server")
            rows.append({"notebooks": size, "grade_run_s": round(run_s, 2),
                         "grade_run_server_s": round(warm_run_s, 2),
                         "grade_course_autograde_s": round(ours_s, 2),
                         "grade_course_autograde_server_s": round(warm_ours_s, 2),
                         "nbgrader_autograde_s": None if theirs_s is None else round(theirs_s, 2)})
            ratio = (f"; nbgrader / grade run {theirs_s / run_s:.1f}x alone, "
                     f"{theirs_s / warm_run_s:.1f}x in the server") if theirs_s else ""
            print(f"{size:4d} notebooks: grade run {run_s:6.1f} s alone, {warm_run_s:6.2f} s in the "
                  f"server; grade course autograde {ours_s:6.1f} s alone, {warm_ours_s:6.2f} s in "
                  f"the server; nbgrader autograde "
                  f"{'-' if theirs_s is None else f'{theirs_s:.1f} s'}{ratio}", flush=True)
        print(f"the server's first grade run of {args.assignment} (the reference runs once): "
              f"{first['server_first_run_s']:.2f} s", flush=True)
    finally:
        timed("grade", "server", "stop", cwd=work, home=home, mode="server")
        shutil.rmtree(work, ignore_errors=True)
    marginal = []
    for low, high in zip(rows, rows[1:], strict=False):
        span = int(high["notebooks"] or 0) - int(low["notebooks"] or 0)
        line = {"from": low["notebooks"], "to": high["notebooks"]}
        for key in ("grade_run_s", "grade_run_server_s"):
            line[f"{key}_per_notebook"] = round((float(high[key] or 0) - float(low[key] or 0)) / span, 3)
        if low["nbgrader_autograde_s"] is not None and high["nbgrader_autograde_s"] is not None:
            line["nbgrader_s_per_notebook"] = round((float(high["nbgrader_autograde_s"])
                                                     - float(low["nbgrader_autograde_s"])) / span, 3)
        marginal.append(line)
        print(f"per added notebook, {low['notebooks']} -> {high['notebooks']}: grade run "
              f"{line['grade_run_s_per_notebook']:.3f} s alone, "
              f"{line['grade_run_server_s_per_notebook']:.3f} s in the server"
              + (f", nbgrader autograde {line['nbgrader_s_per_notebook']:.3f} s"
                 if "nbgrader_s_per_notebook" in line else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "end_to_end.json").write_text(json.dumps({
        "assignment": args.assignment, "cores": os.cpu_count(), "grade_help_s": round(help_s, 2),
        "grade_check_s": round(check_s, 2), "grade_check_server_s": round(warm_check_s, 2),
        "server_first": {k: round(v, 2) for k, v in first.items()},
        "rows": rows, "per_added_notebook": marginal},
        indent=1) + "\n")


if __name__ == "__main__":
    main()
