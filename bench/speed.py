"""How fast `grade` is, with the numbers in its output.

    .venv/bin/python bench/speed.py                       # 20, 200 and 1000 submissions
    .venv/bin/python bench/speed.py --sizes 20,200 --nbgrader-sample 2

A size N is N submissions spread evenly over the assignments in solutions/ (an equal share for each,
the demo class first, then generated students with a spread of skill, so a mix
of correct code, realistic mistakes and untouched stubs). For each size and each worker count the
whole batch is graded in this process with ``grade_batch`` (sandbox, warm workers, results
written) and timed. A sampler reads /proc every 0.1 s for the peak resident memory of the grading
processes.

In the same run:
- the floor: the same checks in one process, the student's cells exec'd directly (no sandbox,
  no worker), per submission;
- the anchor: ``nbgrader autograde`` of a sample of the same submissions (it runs every cell of
  the notebook in a fresh kernel, as nbgrader does);
- the ratios the targets are stated in.
Results are printed and written to ``bench/out/speed.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.course import available, load_assignment  # noqa: E402
from autograder.demo import class_of, make_class  # noqa: E402
from autograder.grading.batch import discover, grade_batch  # noqa: E402
from autograder.grading.config import GradeConfig  # noqa: E402
from autograder.grading.scoring import check_files, environment  # noqa: E402
from autograder.plugin import CheckPlugin, run_checks  # noqa: E402
from autograder.subjects import LocalSubject, assignment_probes, reference_subject  # noqa: E402
from autograder.submission import SubmissionError, extract  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Run:
    size: int
    workers: int
    seconds: float
    per_submission_s: float
    submissions_per_s: float
    peak_rss_one_process_mib: float
    peak_rss_all_mib: float
    by_assignment: dict[str, tuple[int, float]]  # name -> (submissions, seconds of its batch)


class PeakMemory:
    """Sample the resident memory of this process's descendants (not this process) from /proc."""

    def __init__(self) -> None:
        self.one, self.total = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.1):
            parents, rss = {}, {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                    parents[int(entry)] = int(fields[1])
                    rss[int(entry)] = int(fields[21]) * PAGE
                except (OSError, IndexError, ValueError):
                    continue
            tree = []
            for pid in rss:
                parent = parents.get(pid)
                while parent and parent != me:
                    parent = parents.get(parent)
                if parent == me:
                    tree.append(rss[pid])
            if tree:
                self.one, self.total = max(self.one, max(tree)), max(self.total, sum(tree))


def make_submissions(size: int, names: list[str], solutions: Path, work: Path) -> Path:
    per_assignment = max(1, math.ceil(size / len(names)))
    folder = work / f"class-{size}"
    if not folder.exists():
        make_class(solutions, folder, students=class_of(per_assignment))
    return folder


def grade_all(folder: Path, names: list[str], solutions: Path, size: int, config: GradeConfig,
              workers: int, out: Path) -> Run:
    per_assignment = max(1, math.ceil(size / len(names)))
    batches = [(name, discover([folder], name)[:per_assignment]) for name in names]
    total = sum(len(found) for _, found in batches)
    by_assignment = {}
    with PeakMemory() as memory:
        started = time.perf_counter()
        for name, found in batches:
            begun = time.perf_counter()
            grade_batch(found, assignment=load_assignment(name, solutions), config=config,
                        out_dir=out / f"{size}-{workers}" / name, rerun=True, workers=workers)
            by_assignment[name] = (len(found), round(time.perf_counter() - begun, 2))
        seconds = time.perf_counter() - started
    return Run(size=total, workers=workers, seconds=round(seconds, 2),
               per_submission_s=round(seconds / total, 4),
               submissions_per_s=round(total / seconds, 2),
               peak_rss_one_process_mib=round(memory.one / 2**20, 1),
               peak_rss_all_mib=round(memory.total / 2**20, 1), by_assignment=by_assignment)


def floor(folder: Path, names: list[str], solutions: Path, per_assignment: int,
          devices: tuple[str, ...]) -> float:
    """Seconds per submission for the same checks run in this process, without any sandbox."""
    seconds, count = 0.0, 0
    for name in names:
        assignment = load_assignment(name, solutions)
        reference = reference_subject(assignment)
        probes = assignment_probes(assignment)
        for submission in discover([folder], name)[:per_assignment]:
            started = time.perf_counter()
            try:
                cells = extract(submission.path, assignment).cells
            except SubmissionError:
                cells = []
            namespace: dict[str, Any] = {"__name__": "__main__"}
            for cell in cells:
                try:
                    exec(compile(cell["source"], f"<{cell['id']}>", "exec"), namespace)
                except Exception:  # noqa: BLE001 - a student's broken cell, as in the sandbox
                    pass
            plugin = CheckPlugin(student=LocalSubject(namespace, "student", probes=probes),
                                 reference=reference, devices=devices)
            run_checks(check_files(assignment, include_hidden=True), plugin)
            seconds += time.perf_counter() - started
            count += 1
    return seconds / count


def nbgrader_anchor(folder: Path, names: list[str], per_assignment: int, work: Path) -> float:
    """Seconds per submission of ``nbgrader autograde`` on a sample of the same submissions."""
    course = work / "nbgrader-course"
    shutil.rmtree(course, ignore_errors=True)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": str(work)}

    def run(*args: str, cwd: Path) -> None:
        subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, check=False,
                       capture_output=True)

    run("grade", "course", "init", str(course), cwd=ROOT)
    count, seconds = 0, 0.0
    for name in names:
        run("nbgrader", "generate_assignment", name, cwd=course)
        for submission in discover([folder], name)[:per_assignment]:
            target = course / "submitted" / submission.student / name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(submission.path, target / f"{name}.ipynb")
            count += 1
        started = time.perf_counter()
        run("nbgrader", "autograde", name, cwd=course)
        seconds += time.perf_counter() - started
    return seconds / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,200,1000", help="total submissions per run")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--devices", default="cpu", help="cpu, or cpu,cuda on a GPU machine")
    parser.add_argument("--floor-sample", type=int, default=8, help="submissions per assignment")
    parser.add_argument("--nbgrader-sample", type=int, default=4,
                        help="submissions per assignment for nbgrader autograde (0: skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    devices = tuple(args.devices.split(","))
    solutions = ROOT / "solutions"
    names = available(solutions)
    config = replace(GradeConfig(), devices=devices)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="grade-bench-"))
    print(f"machine: {os.cpu_count()} cores; {environment()}", flush=True)
    runs: list[Run] = []
    try:
        for size in sizes:
            folder = make_submissions(size, names, solutions, work)
            for workers in worker_counts:
                run = grade_all(folder, names, solutions, size, config, workers, work / "results")
                runs.append(run)
                print(f"{run.size:5d} submissions, {workers} worker(s): {run.seconds:8.1f} s, "
                      f"{run.per_submission_s:.3f} s each, {run.submissions_per_s:.2f}/s, peak RSS "
                      f"{run.peak_rss_one_process_mib:.0f} MiB (largest process), "
                      f"{run.peak_rss_all_mib:.0f} MiB (all)", flush=True)
        sample = make_submissions(sizes[0], names, solutions, work)
        floor_s = floor(sample, names, solutions, args.floor_sample, devices)
        print(f"floor (same checks in one process, no sandbox): {floor_s:.3f} s per submission",
              flush=True)
        anchor_s = (nbgrader_anchor(sample, names, args.nbgrader_sample, work)
                    if args.nbgrader_sample else float("nan"))
        print(f"anchor (nbgrader autograde): {anchor_s:.2f} s per submission", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = summarise(runs, floor_s, anchor_s)
    for line in report["lines"]:
        print(line)
    (args.out / "speed.json").write_text(json.dumps({
        "environment": environment(), "cores": os.cpu_count(), "devices": devices,
        "runs": [asdict(r) for r in runs], "floor_s": floor_s, "nbgrader_s": anchor_s,
        "ratios": report["ratios"]}, indent=1) + "\n")


def summarise(runs: list[Run], floor_s: float, anchor_s: float) -> dict[str, Any]:
    largest = max(r.size for r in runs)
    at = {(r.size, r.workers): r for r in runs}
    one = at.get((largest, 1))
    two = at.get((largest, 2))
    ratios: dict[str, float] = {}
    lines = [f"--- at {largest} submissions ---"]
    if one:
        ratios["nbgrader_over_grade_1_worker"] = anchor_s / one.per_submission_s
        ratios["overhead_above_floor_s"] = one.per_submission_s - floor_s
        lines.append(f"nbgrader autograde / grade (1 worker): {ratios['nbgrader_over_grade_1_worker']:.1f}x "
                     "(target >= 50x)")
        lines.append(f"grade (1 worker) - floor: {ratios['overhead_above_floor_s']:+.3f} s per submission "
                     "(target <= 0.1 s)")
    if one and two:
        ratios["speedup_2_workers"] = one.seconds / two.seconds
        ratios["nbgrader_over_grade_2_workers"] = anchor_s / two.per_submission_s
        lines.append(f"2 workers / 1 worker: {ratios['speedup_2_workers']:.2f}x (target >= 1.8x)")
        lines.append(f"nbgrader autograde / grade (2 workers): "
                     f"{ratios['nbgrader_over_grade_2_workers']:.1f}x")
    slopes: dict[int, float] = {}
    for workers in sorted({r.workers for r in runs}):
        mine = sorted((r for r in runs if r.workers == workers), key=lambda r: r.size)
        if len(mine) >= 2:
            # time = fixed + slope * n: a linear batch has a flat slope across sizes
            a, b = mine[0], mine[-1]
            slope = (b.seconds - a.seconds) / (b.size - a.size)
            fixed = a.seconds - slope * a.size
            ratios[f"slope_s_{workers}_workers"] = slopes[workers] = slope
            ratios[f"fixed_s_{workers}_workers"] = fixed
            lines.append(f"{workers} worker(s): time = {fixed:.1f} s + {slope:.3f} s x submissions; "
                         "per submission at each size: "
                         + ", ".join(f"{r.size}: {r.per_submission_s:.3f} s" for r in mine))
    one_worker = [r for r in runs if r.workers == 1 and r.size == largest]
    if one_worker:
        # the batch's fixed cost (grader start, the reference's first run) is included; the first
        # batch of the process also pays the fork server's start
        lines.append(f"1 worker, per assignment, at {largest} submissions (its batch time / its count):")
        for name, (count, seconds) in one_worker[0].by_assignment.items():
            ratios[f"per_submission_s_{name}"] = seconds / count
            lines.append(f"  {name:20s} {seconds / count:6.3f} s ({count} in {seconds:.1f} s)")
    if 1 in slopes and 2 in slopes and slopes[2] > 0:
        # each batch (one per assignment) starts its graders: a fixed cost the slope leaves out
        ratios["speedup_2_workers_marginal"] = slopes[1] / slopes[2]
        lines.append(f"2 workers / 1 worker, per added submission (slope): "
                     f"{ratios['speedup_2_workers_marginal']:.2f}x (target >= 1.8x)")
    return {"ratios": ratios, "lines": lines}


if __name__ == "__main__":
    main()
