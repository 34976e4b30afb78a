"""Warm workers: forked from the fork server, confined like cold ones, and as hard to break."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GOOD_BCE, SOLUTIONS

from autograder.course import load_assignment
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission, grade_submission
from autograder.isolation import zygote
from autograder.isolation.config import SandboxConfig
from autograder.isolation.launch import WARM_NOTE, warm_up
from autograder.isolation.sandbox import Sandbox
from autograder.subjects import SubjectUnavailable

pytestmark = pytest.mark.xdist_group("warm")  # one fork server for the module, killed on purpose

FAST = SandboxConfig(check_timeout_s=3.0, startup_timeout_s=60.0, output_limit_bytes=200)
PROBES = """
import ctypes, os, resource, signal, sys, time

def double(x):
    return x * 2

def info():
    libc = ctypes.CDLL(None)
    deathsig = ctypes.c_int()
    libc.prctl(2, ctypes.byref(deathsig), 0, 0, 0)  # PR_GET_PDEATHSIG
    fds = []
    for fd in range(1024):  # fstat needs no path access, so Landlock cannot hide an fd from it
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            pass
    return {"pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "cwd": os.getcwd(),
            "env": dict(os.environ), "deathsig": deathsig.value, "fds": fds,
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "address_space": resource.getrlimit(resource.RLIMIT_AS)[0]}

def fd_targets():
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the directory listing's own fd, closed by now
    return found

def read(path):
    with open(path, "rb") as handle:
        return len(handle.read())

def hang():
    while True:
        pass

def leave():
    os._exit(3)

def suicide():
    os.kill(os.getpid(), signal.SIGKILL)

def hog():
    block = bytearray(2 << 30)
    block[::4096] = b"x" * len(block[::4096])
    return len(block)

def bomb():
    hog = []
    while True:
        hog.append(bytearray(256 << 20))
"""
CELLS = [{"id": "probes", "source": PROBES}]


def call(box: Sandbox, name: str, *args: object) -> object:
    outcome = box.run("call", [name, *args], {})
    assert outcome.error is None, outcome.error
    return outcome.value


def server_pid() -> int:
    server = zygote.running()
    assert server is not None and server.pid is not None and server.alive()
    return server.pid


def launched_server_pid() -> int:
    """The fork server's pid, launching it (by starting a warm worker) if need be."""
    server = zygote.running()
    if server is None or not server.alive():
        with Sandbox(CELLS, config=FAST) as box:
            box.start()
    return server_pid()


# --- same results -------------------------------------------------------------------------------

GOOD = GOOD_BCE
SUBMISSIONS = {
    "good": GOOD,
    "summed": GOOD.replace(".mean()", ".sum()"),
    "builtin": "import torch.nn.functional as F\n\ndef bce(yhat, y):\n"
               "    return F.binary_cross_entropy(yhat, y)\n",
    "exits": "import os\n\ndef bce(yhat, y):\n    os._exit(4)\n",
    "typo": "def bce(yhat, y:\n    return 0\n",
}


def test_warm_and_cold_workers_grade_alike(tmp_path: Path) -> None:
    a1 = load_assignment("a1_logistic", SOLUTIONS)
    sandbox = replace(FAST, check_timeout_s=30.0)
    graded = {}
    for warm in (True, False):
        config = GradeConfig(devices=("cpu",), sandbox=replace(sandbox, warm=warm))
        for name, source in SUBMISSIONS.items():
            path = tmp_path / f"{name}.py"
            path.write_text(source)
            result = grade_submission(Submission(name, path), assignment=a1, config=config)
            assert (WARM_NOTE in result.protections) == warm, result.protections
            graded[name, warm] = (result.points, [(c.name, c.device, c.passed, c.points, c.message)
                                                  for c in result.checks])
    for name in SUBMISSIONS:
        assert graded[name, True] == graded[name, False], name
    assert graded["good", True][0] == 10 and graded["summed", True][0] < 10
    assert any("exit code 4" in check[4] for check in graded["exits", True][1])


# --- isolation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_warm_and_cold_workers_are_set_up_and_confined_alike(warm: bool) -> None:
    os.environ["GRADER_SECRET"] = "hunter2"
    try:
        with Sandbox(CELLS, config=replace(FAST, warm=warm), deny=(SOLUTIONS.parent,)) as box:
            box.start()
            got = call(box, "info")
            assert isinstance(got, dict)
            worker = box._worker
            assert worker is not None
            members = worker.cgroup.pids_in() if worker.cgroup is not None else None
            scratch = str(worker.scratch.path)
            blocked = box.run("call", ["read", str(SOLUTIONS / "a1_logistic" / "a1_logistic.ipynb")], {})
            notes = "\n".join(box.confinement)
    finally:
        del os.environ["GRADER_SECRET"]
    if warm:
        assert WARM_NOTE in notes
        assert got["ppid"] == server_pid(), "forked by the fork server"
    else:
        assert WARM_NOTE not in notes and got["ppid"] == os.getpid(), "started by this process"
    assert got["sid"] == got["pid"], "its own session"
    assert got["deathsig"] == signal.SIGKILL
    assert got["fds"] == [0, 1, 2, 3, 4], "stdin, stdout, stderr and the two frame pipes only"
    assert got["cwd"] == scratch and "grade-scratch-" in scratch
    assert "GRADER_SECRET" not in got["env"] and got["env"]["HOME"] == scratch
    assert got["env"]["TMPDIR"] == scratch and got["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert got["nofile"] == FAST.max_open_files and got["address_space"] == FAST.memory_bytes
    if members is not None:
        assert got["pid"] in members, "it joined its cgroup"
    assert "Landlock ABI" in notes
    # refused by Landlock; as root, the denied folder is not even mounted in the worker's view
    expected = "FileNotFoundError" if os.geteuid() == 0 else "PermissionError"
    assert blocked.error is not None and blocked.error.is_a(expected), blocked.error


def test_the_fork_servers_control_socket_is_not_inherited() -> None:
    """Without Landlock the worker may read /proc/self/fd: no socket there, the server's least."""
    with Sandbox(CELLS, config=replace(FAST, landlock=False)) as box:
        targets = call(box, "fd_targets")
        server = server_pid()
        theirs = {os.readlink(f"/proc/{server}/fd/{fd}") for fd in os.listdir(f"/proc/{server}/fd")}
    sockets = {t for t in theirs if t.startswith("socket:")}
    assert sockets, "the server holds its control socket"
    assert isinstance(targets, dict)
    assert not sockets & set(targets.values())
    assert not [t for t in targets.values() if t.startswith("socket:")], targets


def test_one_server_preloads_each_assignments_setup_imports() -> None:
    """Workers of two assignments with different setup cells both find their modules imported
    by the same fork server before they start (it used to keep the first caller's list)."""
    server = launched_server_pid()
    for module in ("colorsys", "wave"):  # stdlib modules nothing else here imports
        early = f"import sys\nSEEN = {module!r} in sys.modules\ndef preloaded():\n    return SEEN\n"
        cells = [{"id": "early", "source": early},
                 {"id": "setup", "source": f"import {module}\n"}, *CELLS]
        with Sandbox(cells, config=FAST) as box:
            assert call(box, "preloaded") is True, module
            assert call(box, "info")["ppid"] == server  # type: ignore[index]


# --- one child's trouble stays its own --------------------------------------------------------------

def test_hang_exit_and_kill_in_one_worker_leave_the_server_serving() -> None:
    server = launched_server_pid()
    # torch maps about 3.2 GiB: with 4 GiB of address space the bomb stops after < 1 GiB
    with Sandbox(CELLS, config=replace(FAST, memory_bytes=4 << 30)) as box:
        with pytest.raises(SubjectUnavailable, match="timed out after 3 s"):
            call(box, "hang")
        with pytest.raises(SubjectUnavailable, match="exited while running the check .exit code 3"):
            call(box, "leave")
        with pytest.raises(SubjectUnavailable, match="killed by SIGKILL: killed, perhaps over the memory"):
            call(box, "suicide")
        outcome = box.run("call", ["bomb"], {})  # RLIMIT_AS counts the inherited mappings too
        assert outcome.error is not None and outcome.error.is_a("MemoryError")
        assert call(box, "double", 4) == 8
        assert WARM_NOTE in box.confinement
    assert server_pid() == server
    with Sandbox(CELLS, config=FAST) as box:
        assert call(box, "info")["ppid"] == server  # type: ignore[index]


def test_memory_cgroup_kill_is_reported_and_the_next_worker_is_warm() -> None:
    config = replace(FAST, memory_bytes=1 << 30, check_timeout_s=30.0)
    with Sandbox(CELLS, config=config, uses_cuda=True) as box:  # no RLIMIT_AS: the cgroup acts
        box.start()
        worker = box._worker
        if worker is None or worker.cgroup is None or worker.cgroup.memory is None:
            pytest.skip("no memory cgroup on this machine")
        with pytest.raises(SubjectUnavailable, match="killed by SIGKILL: killed, perhaps over the memory"):
            call(box, "hog")
        assert call(box, "double", 2) == 4
        assert call(box, "info")["ppid"] == server_pid()  # type: ignore[index]


# --- the fork server itself -----------------------------------------------------------------------

def _kill_server() -> None:
    pid = launched_server_pid()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while zygote.running() is not None and zygote.running().alive() and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.01)


def test_a_killed_fork_server_means_a_cold_start_with_a_note_then_a_new_server() -> None:
    old = launched_server_pid()
    _kill_server()
    with Sandbox(CELLS, config=FAST) as box:
        box.start()
        notes = "\n".join(box.confinement)
        assert call(box, "double", 3) == 6
        assert call(box, "info")["ppid"] == os.getpid()  # type: ignore[index]
    assert "fork server unavailable (the fork server died (killed by SIGKILL))" in notes, notes
    assert "started cold" in notes and WARM_NOTE not in notes
    with Sandbox(CELLS, config=FAST) as box:
        assert call(box, "info")["ppid"] not in (old, os.getpid())  # type: ignore[index]
        assert WARM_NOTE in box.confinement


def test_a_worker_killed_with_its_fork_server_reruns_the_check_cold() -> None:
    with Sandbox(CELLS, config=FAST) as box:
        assert call(box, "info")["ppid"] == server_pid()  # type: ignore[index]
        _kill_server()
        assert call(box, "double", 5) == 10  # not the student's failure: run again, cold
        assert box.failures == 0
        assert call(box, "info")["ppid"] == os.getpid()  # type: ignore[index]
        assert any("fork server died" in note for note in box.confinement), box.confinement
    with Sandbox(CELLS, config=FAST) as box:  # and the next submission gets a new server
        box.start()
        assert WARM_NOTE in box.confinement


def test_the_server_outlives_the_thread_that_launched_it() -> None:
    """PR_SET_PDEATHSIG follows the launching *thread*: a finished grader thread must not
    take the fork server with it."""
    zygote.stop()
    seen: list[int] = []

    def grade_one() -> None:
        with Sandbox(CELLS, config=FAST) as box:
            seen.append(call(box, "info")["ppid"])  # type: ignore[index]

    thread = threading.Thread(target=grade_one)
    thread.start()
    thread.join()
    time.sleep(0.2)
    assert seen == [server_pid()]


def test_threads_starting_sandboxes_at_once_each_get_a_working_worker() -> None:
    server = launched_server_pid()
    results: dict[int, tuple[object, object]] = {}
    errors: list[BaseException] = []

    def grade_one(i: int) -> None:
        try:
            with Sandbox(CELLS, config=FAST) as box:
                results[i] = (call(box, "double", i), call(box, "info"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=grade_one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == list(range(6))
    assert all(doubled == 2 * i for i, (doubled, _) in results.items())
    infos = [info for _, info in results.values()]
    assert all(info["ppid"] == server for info in infos)  # type: ignore[index]
    assert len({info["pid"] for info in infos}) == 6  # type: ignore[index]
    assert len({info["cwd"] for info in infos}) == 6  # type: ignore[index]


def test_a_reply_left_unread_is_skipped() -> None:
    """A grader thread interrupted between request and reply (SIGTERM) leaves a reply behind."""
    server = launched_server_pid()
    running = zygote.running()
    assert running is not None
    running._sock.send(json.dumps({"op": "reap", "pid": 1, "id": -1}).encode())
    with Sandbox(CELLS, config=FAST) as box:
        assert call(box, "info")["ppid"] == server  # type: ignore[index]
        assert WARM_NOTE in box.confinement


def test_warm_up_launches_the_server_in_the_background() -> None:
    zygote.stop()
    warm_up(FAST)
    deadline = time.monotonic() + 60
    while zygote.running() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    server = server_pid()
    with Sandbox(CELLS, config=FAST) as box:
        assert call(box, "info")["ppid"] == server  # type: ignore[index]


GRADER = """
import json, sys, time
from autograder.isolation import zygote
from autograder.isolation.sandbox import Sandbox
from autograder.isolation.config import SandboxConfig

box = Sandbox([{"id": "a", "source": "import os\\ndef pid():\\n    return os.getpid()"}],
              config=SandboxConfig())
worker = box.run("call", ["pid"], {}).value
print(json.dumps({"server": zygote.running().pid, "worker": worker}), flush=True)
if sys.argv[1] == "hang":
    time.sleep(600)
box.close()
"""


def _gone(pid: int) -> bool:
    """No such process, or a zombie nobody has reaped yet (it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.mark.parametrize("how", ["exit", "kill -9"])
def test_the_server_and_its_workers_end_with_the_grader(tmp_path: Path, how: str) -> None:
    script = tmp_path / "grader.py"
    script.write_text(GRADER)
    grader = subprocess.Popen([sys.executable, str(script), "hang" if how == "kill -9" else "exit"],
                              stdout=subprocess.PIPE, text=True,  # what kill -9 leaves: in tmp_path
                              env={**os.environ, "TMPDIR": str(tmp_path)})
    assert grader.stdout is not None
    pids = json.loads(grader.stdout.readline())
    assert not _gone(pids["server"])
    deadline = time.monotonic() + 60  # and the child it forks ahead, once it has
    while not (spare := _live_children(pids["server"]) - {pids["worker"]}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(spare) == 1, spare
    pids["spare"] = spare.pop()
    if how == "kill -9":
        assert not _gone(pids["worker"])
        grader.kill()
    assert grader.wait(timeout=60) == (-signal.SIGKILL if how == "kill -9" else 0)
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {name: _gone(pid) for name, pid in pids.items()} == {"server": True, "worker": True,
                                                                 "spare": True}


def test_cold_config_never_uses_the_server() -> None:
    with Sandbox(CELLS, config=replace(FAST, warm=False)) as box:
        assert call(box, "info")["ppid"] == os.getpid()  # type: ignore[index]
        assert WARM_NOTE not in box.confinement


def test_the_fork_server_imports_the_optimisers_machinery_only_for_who_builds_one():
    """A process's first optimiser or torch.func transform imports torch._dynamo (0.8 s): the
    fork server imports it ahead for a worker whose cells or probes use one, and keeps a2's
    checks from waiting."""
    from autograder.isolation.launch import DYNAMO_IMPORT, preload_for

    setup = {"id": "setup", "source": "import torch\nfrom sklearn.datasets import load_digits"}
    softmax = {"id": "softmax", "source": "def softmax(z, dim=-1):\n    return z.softmax(dim)"}
    fit = {"id": "fit", "source": "def fit(model):\n    opt = torch.optim.SGD(model.parameters(), 0.1)"}
    assert preload_for([setup, softmax]) == ("torch", "sklearn.datasets")
    assert preload_for([setup, fit]) == ("torch", "sklearn.datasets", DYNAMO_IMPORT)
    probes = "optimizer = torch.optim.SGD(model.parameters(), lr=lr)"
    assert preload_for([setup, softmax], probes)[-1] == DYNAMO_IMPORT
    vjp = {"id": "softmax_backward", "source": "def softmax_backward(q, g, dim=-1):\n"
           "    _, pullback = torch.func.vjp(lambda z: z.softmax(dim), q.log())\n"
           "    return pullback(g)[0]"}
    assert preload_for([setup, vjp])[-1] == DYNAMO_IMPORT


def _live_children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found.update(int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:
            pass
    return {child for child in found if not _gone(child)}


def _spare_of(server: int) -> int:
    """The one child of the fork server that is no worker: the one forked ahead."""
    from autograder.isolation.launch import wait_for_exits

    wait_for_exits()  # the workers of earlier tests are gone
    deadline = time.monotonic() + 60
    while len(children := _live_children(server)) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(children) == 1, children
    return children.pop()


def test_the_next_worker_was_forked_ahead_of_its_request() -> None:
    """The fork server keeps one child forked ahead, holding nothing of a student's (a fork
    copies torch's page tables, ~12 ms, which then overlap the previous worker): the next worker
    is that child, and another takes its place. One forked before an import a request needs is
    sent away and reaped, and a fresh fork serves the request."""
    server = launched_server_pid()
    spare = _spare_of(server)
    with Sandbox(CELLS, config=FAST) as box:
        assert call(box, "info")["pid"] == spare  # type: ignore[index]
    stale = _spare_of(server)
    assert stale != spare
    cells = [{"id": "setup", "source": "import tabnanny\n"}, *CELLS]  # new to the server
    with Sandbox(cells, config=FAST) as box:
        assert call(box, "info")["pid"] != stale  # type: ignore[index]
    assert _spare_of(server) not in (spare, stale)
    assert _gone(stale)


@pytest.mark.parametrize("gpu", [False, True], ids=["no-gpu", "gpu-device-node"])
def test_the_fork_servers_warm_up_runs_no_backward_where_a_gpu_may_be(gpu, tmp_path, monkeypatch):
    """Autograd's first backward counts the GPUs, which initialises CUDA's driver, and starts a
    thread per GPU: a fork server that did so on a lent H200 refused to serve (2 threads), and
    its children could have used neither the GPU nor autograd. Where a GPU device node exists,
    the warm-up gives the optimiser gradients made by hand instead."""
    import torch

    node = tmp_path / "nvidiactl"
    if gpu:
        node.touch()
    monkeypatch.setattr(zygote, "GPU_DEVICE_NODES", (str(node),))
    calls = []
    real = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        calls.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    zygote._warm_kernels()
    assert bool(calls) is not gpu
