"""`grade run --scheduler`: a batch graded on a Dask cluster scores as it does on this machine."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GOOD_BCE, PARTIAL_BCE, ROOT, SOLUTIONS, tool

from autograder.cli import cli
from autograder.course import load_assignment
from autograder.demo import make_class
from autograder.grading.batch import discover, grade_batch
from autograder.grading.config import GradeConfig

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402 - distributed installs it

pytestmark = pytest.mark.xdist_group("cluster")

A1 = load_assignment("a1_logistic", SOLUTIONS)
GOOD = GOOD_BCE
SUBMISSIONS = {
    "good": GOOD,
    "sum": GOOD.replace(".mean()", ".sum()"),
    "partial": PARTIAL_BCE,
    "swapped": GOOD.replace("(1 - y)", "y"),
    "typo": "def bce(yhat, y:\n    return 0\n",
    "builtin": "import torch.nn.functional as F\n\ndef bce(yhat, y):\n"
               "    return F.binary_cross_entropy(yhat, y)\n",
}


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, no GPU resource. A task whose worker dies fails at
    once (no retry on another worker), and a worker holds only the task it runs."""
    settings = {"distributed.scheduler.allowed-failures": 0,
                "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as connected:
        yield connected


def submitted(folder: Path, sources: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, source in sources.items():
        (folder / f"{name}.py").write_text(source)
    return folder


def grade(*args: object):
    return CliRunner().invoke(cli, ["--solutions", str(SOLUTIONS), "run", "a1_logistic", *map(str, args)])


@pytest.fixture(scope="module")
def cluster_run(cluster, tmp_path_factory):
    """The same submissions graded here and on the cluster (cpu and cuda asked for)."""
    root = tmp_path_factory.mktemp("cluster")
    folder = submitted(root / "submitted", SUBMISSIONS)
    local = grade_batch(discover([folder], "a1_logistic"), assignment=A1,
                        config=GradeConfig(devices=("cpu", "cuda")), out_dir=root / "local")
    result = grade(folder, "--out", root / "out", "--scheduler", cluster.scheduler_address)
    return local, result, root / "out"


def test_the_cluster_scores_as_this_machine_does(cluster_run, client):
    local, result, out = cluster_run
    assert result.exit_code == 0, result.output
    errors = sum(r.status == "error" for r in local)
    assert f"{len(SUBMISSIONS)} graded, {errors} with errors" in " ".join(result.output.split())
    doc = json.loads((out / "results.json").read_text())
    remote = doc["submissions"]
    assert [s["student"] for s in remote] == [r.student for r in local]  # input order
    assert [(s["status"], s["points"]) for s in remote] == [(r.status, r.points) for r in local]
    assert [[(e["exercise"], e["points"]) for e in s["exercises"]] for s in remote] == [
        [(e.exercise, e.points) for e in r.exercises] for r in local]
    for theirs, mine in zip(remote, local, strict=True):
        assert theirs["path"] == mine.path and theirs["sha256"] == mine.sha256
        assert [(c["name"], c["passed"], c["message"]) for c in theirs["checks"] if c["device"] == "cpu"] \
            == [(c.name, c.passed, c.message) for c in mine.checks if c.device == "cpu"]
        on_disk = json.loads((out / "submissions" / f"{theirs['student']}.json").read_text())
        assert on_disk["points"] == theirs["points"]
    workers = set(client.scheduler_info(n_workers=-1)["workers"])
    assert {s["environment"]["dask_worker"] for s in remote} <= workers
    by_student = {s["student"]: s for s in remote}
    assert by_student["good"]["points"] == 10 and by_student["builtin"]["points"] < 10
    assert "SyntaxError" in by_student["typo"]["exercises"][0]["cell_error"]


def test_without_a_gpu_worker_cuda_checks_say_why_they_did_not_run(cluster_run):
    _, result, out = cluster_run
    assert "cuda checks not run: no worker of the Dask cluster" in " ".join(result.output.split())
    doc = json.loads((out / "results.json").read_text())
    assert "--resources GPU=1" in doc["environment"]["dask"]["cuda_skipped"]
    assert doc["environment"]["dask"]["gpu_workers"] == 0
    cuda = [c for s in doc["submissions"] for c in s["checks"] if c["device"] == "cuda"]
    assert cuda and all(c["skipped"] for c in cuda)
    assert all("declares a GPU resource" in c["message"] for c in cuda)


def test_a_rerun_on_the_cluster_reuses_finished_results(cluster_run, cluster):
    _, _, out = cluster_run
    files = sorted((out / "submissions").glob("*.json"))
    before = {p.name: p.stat().st_mtime_ns for p in files}
    # a result without the file's digest (its worker was lost, on a loaded machine) is graded again
    finished = {p.name for p in files if json.loads(p.read_text())["sha256"]}
    assert len(finished) >= len(SUBMISSIONS) // 2
    result = grade(out.parent / "submitted", "--out", out, "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    after = {p.name: p.stat().st_mtime_ns for p in (out / "submissions").glob("*.json")}
    assert set(after) == set(before)
    assert {n: after[n] for n in finished} == {n: before[n] for n in finished}


def test_a_worker_without_the_assignment_says_so(cluster, tmp_path):
    folder = submitted(tmp_path / "submitted", {"good": GOOD})
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    result = grade(folder, "--out", tmp_path / "out", "--devices", "cpu",
                   "--scheduler", cluster.scheduler_address, "--worker-solutions", empty)
    assert result.exit_code == 0, result.output
    [entry] = json.loads((tmp_path / "out" / "results.json").read_text())["submissions"]
    assert entry["status"] == "error" and entry["points"] == 0
    assert "has no assignment 'a1_logistic'" in entry["error"] and str(empty) in entry["error"]
    assert "--worker-solutions" in entry["error"]


def test_a_worker_with_other_checks_refuses_to_grade(cluster, tmp_path):
    copy = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS / "a1_logistic", copy / "a1_logistic")
    with (copy / "a1_logistic" / "public_checks.py").open("a") as handle:
        handle.write("\n# edited on the worker\n")
    folder = submitted(tmp_path / "submitted", {"good": GOOD})
    result = grade(folder, "--out", tmp_path / "out", "--devices", "cpu",
                   "--scheduler", cluster.scheduler_address, "--worker-solutions", copy)
    assert result.exit_code == 0, result.output
    [entry] = json.loads((tmp_path / "out" / "results.json").read_text())["submissions"]
    assert entry["status"] == "error"
    assert "differs from the ones this batch was started with" in entry["error"]


def test_a_worker_killed_mid_task_costs_only_that_submission(cluster, client, tmp_path):
    # six tasks for two worker threads: Dask queues them on the scheduler and hands each
    # worker one at a time (worker-saturation 1.0), so the killed worker holds only a_slow
    sources = {"a_slow": "import time\ntime.sleep(120)\n" + GOOD, "b_good": GOOD,
               "c_partial": SUBMISSIONS["partial"], "d_good": GOOD, "e_swapped": SUBMISSIONS["swapped"],
               "f_good": GOOD}
    folder = submitted(tmp_path / "submitted", sources)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder.cli", "--solutions", str(SOLUTIONS), "run",
               "a1_logistic", str(folder), "--out", str(out), "--devices", "cpu",
               "--scheduler", cluster.scheduler_address]
    batch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, victim = time.monotonic() + 120, None
    while victim is None and time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any("-a_slow-" in str(key) for key in keys):
                victim = worker
        time.sleep(0.2)
    assert victim is not None, "the slow submission never started"
    time.sleep(3)  # well inside its two minutes of sleep
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    output, _ = batch.communicate(timeout=300)
    assert batch.returncode == 0, output
    by_student = {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}
    assert list(by_student) == list(sources)
    assert by_student["a_slow"]["status"] == "error"
    assert "the Dask worker grading this submission died" in by_student["a_slow"]["error"]
    assert [s["points"] for s in list(by_student.values())[1:]] == [10, 8, 10, 0, 10]
    assert not by_student["a_slow"]["sha256"], "an error result is graded again by the next run"


def wait_for_gpu_workers(client, *, timeout_s: float) -> list[str]:
    """The addresses of the workers that declare a GPU resource, once there is one."""
    deadline = time.monotonic() + timeout_s
    while True:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        found = [a for a, w in workers.items() if (w.get("resources") or {}).get("GPU", 0) >= 1]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_gpu_work_goes_only_to_workers_with_a_gpu_resource(cluster, client, tmp_path):
    before = set(client.scheduler_info(n_workers=-1)["workers"])
    gpu_worker = subprocess.Popen(
        [sys.executable, "-m", "dask", "worker", cluster.scheduler_address, "--nthreads", "1",
         "--resources", "GPU=1", "--no-dashboard", "--name", "with-gpu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # wait for this worker by its resource, not by a count: a worker another test killed may
        # rejoin first, and on a busy machine the new one can take a while
        found = wait_for_gpu_workers(client, timeout_s=180)
        assert len(found) == 1, f"the GPU worker never joined: {found}"
        gpu = found[0]
        folder = submitted(tmp_path / "submitted", {"good": GOOD, "partial": SUBMISSIONS["partial"]})
        result = grade(folder, "--out", tmp_path / "out", "--scheduler", cluster.scheduler_address)
        assert result.exit_code == 0, result.output
        doc = json.loads((tmp_path / "out" / "results.json").read_text())
        assert doc["environment"]["dask"]["gpu_workers"] == 1
        assert doc["environment"]["dask"]["cuda_skipped"] is None
        assert [s["environment"]["dask_worker"] for s in doc["submissions"]] == [gpu, gpu]
        assert [s["points"] for s in doc["submissions"]] == [10, 8]
    finally:
        gpu_worker.terminate()
        gpu_worker.wait(timeout=60)
    deadline = time.monotonic() + 60
    while len(client.scheduler_info(n_workers=-1)["workers"]) > len(before) and time.monotonic() < deadline:
        time.sleep(0.2)


def test_without_distributed_the_cli_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    (tmp_path / "good.py").write_text(GOOD)
    result = grade(tmp_path / "good.py", "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:1")
    assert result.exit_code == 1
    assert "pip install 'torchgrade[cluster]'" in result.output


@pytest.mark.slow
def test_course_autograde_on_the_cluster_fills_the_gradebook(cluster, tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    tool("grade", "--solutions", str(SOLUTIONS), "course", "init", str(course), "--assignment",
         "a1_logistic", cwd=ROOT, home=tmp_path)
    tool("nbgrader", "generate_assignment", "a1_logistic", cwd=course, home=tmp_path)
    demo = make_class(SOLUTIONS, tmp_path / "demo")
    for student in ("ada", "jo", "lea"):
        shutil.copytree(demo / student / "a1_logistic", course / "submitted" / student / "a1_logistic")
    result = CliRunner().invoke(cli, ["course", "autograde", "a1_logistic", "--course", str(course),
                                      "--devices", "cpu", "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    graded = json.loads((course / "grades" / "a1_logistic" / "results.json").read_text())
    assert graded["environment"]["dask"]["scheduler"] == cluster.scheduler_address
    totals = {s["student"]: s["points"] for s in graded["submissions"]}
    assert set(totals) == {"ada", "jo", "lea"} and totals["ada"] == 10
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "torchgrade") as gb:
        for student, points in totals.items():
            assert gb.find_grade("bce_check", "a1_logistic", "a1_logistic", student).auto_score == points
