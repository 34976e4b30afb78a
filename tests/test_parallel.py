"""Several submissions at once: the same results as one at a time, streamed, in input order."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from conftest import (
    ASSIGNMENTS,
    GOOD_BCE,
    PARTIAL_BCE,
    SOLUTIONS,
    kill_batch,
    private_tmp,
    rerun_reusing,
    start_batch,
    wait_for_results,
)

from autograder.cli import cli
from autograder.course import load_assignment
from autograder.grading import pool as grading
from autograder.grading.batch import grade_batch
from autograder.grading.config import GradeConfig
from autograder.grading.pool import default_workers
from autograder.grading.scoring import Submission
from autograder.results import SubmissionResult
from autograder.variants import compose, reference_sources, variants_of

pytestmark = pytest.mark.xdist_group("parallel")

A1 = load_assignment("a1_logistic", SOLUTIONS)
STUB = ASSIGNMENTS / "a1_logistic" / "a1_logistic.ipynb"
CONFIG = GradeConfig(devices=("cpu", "cuda"))
CPU = GradeConfig(devices=("cpu",))
GOOD = GOOD_BCE
SLOW = "import time\ntime.sleep({seconds})\n" + GOOD  # a .py submission is one cell, run at start


def variant_submissions(folder: Path) -> list[Submission]:
    """The reference, the stub and four variants of bce (one correct, three wrong) as notebooks."""
    folder.mkdir(parents=True, exist_ok=True)
    by_name = {v.name: v for v in variants_of(A1)}
    found = [Submission("reference", A1.notebook), Submission("stub", STUB)]
    for name in ("torch_where", "sum_instead_of_mean", "no_clamp", "builtin_bce"):
        path = folder / f"{name}.ipynb"
        nbformat.write(compose(STUB, {**reference_sources(A1), "bce": by_name[name].source}), path)
        found.append(Submission(name, path))
    return found


def without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "duration_s"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def scratch_left(scratch: Path) -> dict[str, list[str]]:
    """The sandbox scratch folders under ``scratch``, and what is in each."""
    return {p.name: sorted(f.name for f in p.iterdir()) for p in scratch.glob("grade-scratch-*")}


def graders_of(pid: int) -> list[int]:
    """The grader processes a batch in process ``pid`` started."""
    return [p for p in descendants(pid) if b"serve_grader" in _cmdline(p)]


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has exited)."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.append(pid)
    return running


def wait_until_gone(pids: list[int], timeout_s: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def test_two_workers_grade_exactly_as_one(tmp_path):
    submissions = variant_submissions(tmp_path / "submitted")
    docs, tables, callers = [], [], set()

    def on_result(result: SubmissionResult) -> None:
        callers.add(threading.get_ident())

    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        results = grade_batch(submissions, assignment=A1, config=CONFIG, out_dir=out,
                              on_result=on_result, workers=workers)
        assert [r.student for r in results] == [s.student for s in submissions]
        docs.append(without_timings(json.loads((out / "results.json").read_text())))
        tables.append((out / "results.csv").read_text())
        for result in results:
            on_disk = json.loads((out / "submissions" / f"{result.student}.json").read_text())
            assert without_timings(on_disk) == without_timings(result.to_dict())
    assert docs[0] == docs[1]
    assert tables[0] == tables[1]
    assert callers == {threading.get_ident()}, "on_result runs in the caller's thread"
    points = {s["student"]: s["points"] for s in docs[0]["submissions"]}
    assert points["reference"] == points["torch_where"] == 10 and points["stub"] == 0
    assert all(points[name] < 10 for name in ("sum_instead_of_mean", "no_clamp", "builtin_bce"))


def test_results_keep_the_input_order_whatever_finishes_first(tmp_path):
    paths = []
    for name, source in [("a_slow", SLOW.format(seconds=6)), ("b_quick", GOOD),
                         ("c_quick", PARTIAL_BCE)]:
        paths.append(tmp_path / f"{name}.py")
        paths[-1].write_text(source)
    finished: list[str] = []
    results = grade_batch([Submission(p.stem, p) for p in paths], assignment=A1, config=CPU,
                          out_dir=tmp_path / "out", workers=2,
                          on_result=lambda r: finished.append(r.student))
    assert finished.index("a_slow") > finished.index("b_quick"), "streamed as each finishes"
    assert sorted(finished) == ["a_slow", "b_quick", "c_quick"]
    assert [r.student for r in results] == ["a_slow", "b_quick", "c_quick"]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [s["student"] for s in doc["submissions"]] == ["a_slow", "b_quick", "c_quick"]
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [(r["student"], r["points"]) for r in rows] == [("a_slow", "10"), ("b_quick", "10"),
                                                            ("c_quick", "8")]


def test_a_killed_batch_keeps_what_finished_and_leaves_no_process_behind(tmp_path, monkeypatch):
    private_tmp(tmp_path, monkeypatch)
    command, out, batch = start_batch(tmp_path, count=6, workers=2)
    wait_for_results(out, 2)
    started = {pid: _cmdline(pid) for pid in descendants(batch.pid)}  # graders, sandboxes, ...
    first = kill_batch(batch, out)
    assert 2 <= len(first) < 6, "the kill came too late to test anything"
    assert sum(b"serve_grader" in cmdline for cmdline in started.values()) == 2
    # graders and sandboxes run in sessions of their own: the kernel's death signal ends them
    assert wait_until_gone(list(started)) == [], "graders and sandboxes die with the batch"

    doc = rerun_reusing(command, out, first)  # graded before the kill: reused, not graded again
    assert [s["student"] for s in doc["submissions"]] == [f"s{i}" for i in range(6)]
    assert [s["points"] for s in doc["submissions"]] == [8.0, 10.0] * 3
    for pid in started:
        stale = list(Path("/sys/fs/cgroup/pids").glob(f"autograder-{pid}-*"))
        assert not stale, "the rerun should have swept the killed graders' cgroups"


def test_a_grader_that_dies_costs_only_its_submission(tmp_path, monkeypatch):
    scratch = private_tmp(tmp_path, monkeypatch)
    paths = []
    for name, source in [("a_slow", SLOW.format(seconds=60)), ("b_slow", SLOW.format(seconds=60)),
                         ("c_good", GOOD), ("d_partial", PARTIAL_BCE)]:
        paths.append(tmp_path / f"{name}.py")
        paths[-1].write_text(source)
    me = os.getpid()
    killed: list[int] = []

    def kill_both_graders_mid_submission() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            graders = graders_of(me)
            # both graders busy: each has started the sandbox of its (slow) submission, in a
            # scratch folder named after the grader
            if len(graders) == 2 and all(list(scratch.glob(f"grade-scratch-{g}-*")) for g in graders):
                time.sleep(1)
                killed.extend(descendants(graders[0]) + descendants(graders[1]))
                for pid in graders:
                    os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_both_graders_mid_submission)
    killer.start()
    results = grade_batch([Submission(p.stem, p) for p in paths], assignment=A1, config=CPU,
                          out_dir=tmp_path / "out", workers=2)
    killer.join()
    by_student = {r.student: r for r in results}
    for slow in ("a_slow", "b_slow"):
        assert by_student[slow].status == "error"
        assert "the grader process died (killed by SIGKILL)" in by_student[slow].error
        assert by_student[slow].points == 0 and not by_student[slow].sha256  # graded again next time
    assert (by_student["c_good"].points, by_student["d_partial"].points) == (10, 8)
    assert wait_until_gone(killed) == [], "a dead grader's sandbox dies with it"
    assert graders_of(me) == []
    assert scratch_left(scratch) == {}, "the batch removed what the dead graders left"


def stop_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 before: Callable[[Path], None] = lambda folder: None) -> Path:
    """Grade a good and two hour-long submissions with two graders; once a slow one's sandbox
    runs, call ``before`` with its scratch folder and stop (Ctrl-C). Return where scratch goes."""
    scratch = private_tmp(tmp_path, monkeypatch)  # where the graders' sandboxes make scratch dirs
    paths = []
    # an hour asleep, and a start allowed two: only a batch that stops its graders ends soon
    config = replace(CPU, sandbox=replace(CPU.sandbox, startup_timeout_s=7200))
    for name, source in [("a_good", GOOD), ("b_slow", SLOW.format(seconds=3600)),
                         ("c_slow", SLOW.format(seconds=3600))]:
        paths.append(tmp_path / f"{name}.py")
        paths[-1].write_text(source)

    def stop(result: SubmissionResult) -> None:
        deadline = time.monotonic() + 60
        while not (found := list(scratch.glob("grade-scratch-*"))) and time.monotonic() < deadline:
            time.sleep(0.1)  # until a slow submission's sandbox is running
        assert found
        before(found[0])
        raise KeyboardInterrupt  # what Ctrl-C does in the caller's thread

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        grade_batch([Submission(p.stem, p) for p in paths], assignment=A1, config=config,
                    out_dir=tmp_path / "out", workers=2, on_result=stop)
    # a bound no load reaches (a stopped batch ends within a minute even on a busy machine)
    assert time.monotonic() - started < 1800, "the slow submissions were waited for"
    assert graders_of(os.getpid()) == []
    return scratch


def test_stopping_early_stops_the_graders_and_cleans_up(tmp_path, monkeypatch):
    scratch = stop_a_batch(tmp_path, monkeypatch)
    assert scratch_left(scratch) == {}, "graders removed their sandboxes' scratch"
    assert json.loads((tmp_path / "out" / "submissions" / "a_good.json").read_text())["points"] == 10


def test_a_grader_killed_mid_batch_leaves_no_scratch_once_the_batch_stops(tmp_path, monkeypatch):
    killed = []

    def kill_its_grader(folder: Path) -> None:
        owner = int(folder.name.removeprefix("grade-scratch-").split("-")[0])
        assert owner in graders_of(os.getpid())  # a grader's sandbox, named after the grader
        os.kill(owner, signal.SIGKILL)  # it removes nothing; its sandbox dies with it
        killed.append(owner)

    scratch = stop_a_batch(tmp_path, monkeypatch, kill_its_grader)
    assert killed
    assert scratch_left(scratch) == {}, "the batch removed what its graders left"


def test_workers_must_be_a_positive_number(tmp_path):
    sub = tmp_path / "dave.py"
    sub.write_text(GOOD)
    base = ["--solutions", str(SOLUTIONS), "run", "a1_logistic", str(sub), "--out", str(tmp_path)]
    for args, message in [(["--workers", "0"], "0 is not in the range x>=1"),
                          (["--workers", "two"], "'two' is not a valid integer"),
                          (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
                           "with --scheduler the cluster's workers grade"),
                          (["--worker-solutions", "/srv/solutions"], "--worker-solutions needs --scheduler")]:
        result = CliRunner().invoke(cli, base + args)
        assert result.exit_code == 2, result.output
        assert message in result.output
    with pytest.raises(ValueError, match="Invalid workers 0"):
        grade_batch([Submission("dave", sub)], assignment=A1, config=CPU, out_dir=tmp_path, workers=0)


def test_default_workers_follow_cores_submissions_and_gpus(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    assert default_workers(1, devices=("cpu",)) == 1
    assert default_workers(grading.SUBMISSIONS_PER_GRADER - 1, devices=("cpu",)) == 1
    assert default_workers(2 * grading.SUBMISSIONS_PER_GRADER, devices=("cpu",)) == min(2, cores)
    assert default_workers(10_000, devices=("cpu",)) == cores
    monkeypatch.setattr(grading, "uses_cuda", lambda devices: True)  # as if cuda ran
    monkeypatch.setattr(grading.os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(grading, "_visible_gpus", lambda: ["0"])
    assert default_workers(10_000, devices=("cpu", "cuda")) == grading.GRADERS_PER_GPU
    monkeypatch.setattr(grading, "_visible_gpus", lambda: ["0", "1"])
    assert default_workers(10_000, devices=("cpu", "cuda")) == 2 * grading.GRADERS_PER_GPU
    assert default_workers(3 * grading.SUBMISSIONS_PER_GRADER, devices=("cpu", "cuda")) == 3


def test_cli_grades_in_parallel_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "SUBMISSIONS_PER_GRADER", 1)  # so that 2 submissions get 2 graders
    folder = tmp_path / "submitted"
    folder.mkdir()
    for i in range(2):
        (folder / f"s{i}.py").write_text(GOOD)
    result = CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "run", "a1_logistic",
                                      str(folder), "--out", str(tmp_path / "out"), "--devices", "cpu"])
    assert result.exit_code == 0, result.output
    expected = min(2, len(os.sched_getaffinity(0)))
    assert f"({expected} at a time)" in result.output
    assert "2 graded, 0 with errors" in result.output
