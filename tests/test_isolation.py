"""Nothing private is readable from the sandbox, and scratch space is bounded.

A submission tries to read the machine's secrets (shadow files, TLS private keys, the grader's
home, other users' homes, the grader's environment) and to fill the disk; the tests read the
same secrets themselves and assert that no byte of them reaches any file `grade` writes, and
that a submission that fills its scratch space gets a clear message while the rest of the batch
is graded as usual.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import SOLUTIONS

from autograder.course import load_assignment
from autograder.grading.batch import grade_batch
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission
from autograder.isolation.config import SandboxConfig

A2 = load_assignment("a2_softmax", SOLUTIONS)
BACKWARD = A2.reference_sources["softmax_backward"].replace("### BEGIN SOLUTION", "").replace(
    "### END SOLUTION", "")
CORRECT = f"""import torch

def softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)

{BACKWARD}
"""

READ_EVERYTHING = """import os, torch

TARGETS = {targets!r}

def _read(path, depth=0):
    try:
        if os.path.isdir(path):
            if depth:
                return "DIR"
            names = os.listdir(path)
            return "LIST " + repr(names) + " " + "".join(
                _read(os.path.join(path, name), 1) for name in names)
        with open(path, "rb") as handle:
            return "READ " + handle.read(1 << 16).decode("latin-1")
    except Exception as exc:
        return f"{{type(exc).__name__}}"

def _report():
    found = {{path: _read(path) for path in TARGETS}}
    try:
        pids = [pid for pid in os.listdir("/proc") if pid.isdigit()]
    except OSError as exc:
        pids, found["/proc"] = [], type(exc).__name__
    for pid in pids:
        found[f"/proc/{{pid}}/environ"] = _read(f"/proc/{{pid}}/environ")
    return found

REPORT = _report()
print(repr(REPORT))                        # stdout and stderr are kept in results.json
print(repr(REPORT), file=__import__("sys").stderr)

def softmax(z, dim=-1):
    raise RuntimeError(repr(REPORT))       # check messages and the feedback page

{backward}
"""


def secret_lines(path: Path) -> list[str]:
    """The distinctive lines of a secret file (as root the test may read it)."""
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError:
        return []
    return [line for line in text.splitlines() if len(line.strip()) >= 8]


def output_text(out: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file())


@pytest.fixture
def planted(tmp_path):
    """Secrets planted where a grader's machine keeps private things: the grader's home and
    another user's home (both removed afterwards)."""
    mark = f"grade-isolation-{random.randrange(10**9, 10**10)}"
    home_secret = Path.home() / f".{mark}"
    other_home = Path("/home") / mark
    planted = []
    try:
        home_secret.write_text(f"{mark} api token in the grader's home\n")
        planted.append(home_secret)
    except OSError:
        pass
    try:
        other_home.mkdir(parents=True)
        (other_home / "notes.txt").write_text(f"{mark} another user's private notes\n")
        planted.append(other_home / "notes.txt")
    except OSError:
        pass
    yield mark, planted
    home_secret.unlink(missing_ok=True)
    shutil.rmtree(other_home, ignore_errors=True)


@pytest.mark.skipif(not Path("/etc/shadow").exists(), reason="no /etc/shadow on this machine")
def test_no_byte_of_a_secret_reaches_any_output(tmp_path, planted):
    mark, homes = planted
    secret_env = f"{mark}-environment-secret"
    targets = ["/etc/shadow", "/etc/gshadow", "/etc/ssl/private", str(Path.home()), "/home",
               *map(str, homes)]
    submission = tmp_path / "submitted" / "nosy.py"
    submission.parent.mkdir()
    submission.write_text(READ_EVERYTHING.format(targets=targets, backward=BACKWARD))
    (tmp_path / "submitted" / "normal.py").write_text(CORRECT)
    out = tmp_path / "out"
    env = {**os.environ, "GRADER_API_KEY": secret_env}
    done = subprocess.run([sys.executable, "-m", "autograder.cli", "--solutions", str(SOLUTIONS),
                           "run", "a2_softmax", str(tmp_path / "submitted"), "--out", str(out),
                           "--devices", "cpu"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    written = output_text(out)
    # the submission ran and reported what it could read: only errors for the secrets
    assert "'/etc/shadow': 'FileNotFoundError'" in written or "'/etc/shadow': 'PermissionError'" in written
    secrets = [secret_env]
    for path in ("/etc/shadow", "/etc/gshadow", *homes):
        secrets.extend(secret_lines(Path(path)))
    private = Path("/etc/ssl/private")
    if private.is_dir():
        for key in private.iterdir():
            secrets.extend(secret_lines(key))
    leaked = [s for s in secrets if s in written]
    assert not leaked, f"{len(leaked)} secret lines reached the output, e.g. {leaked[0][:20]}..."
    assert "normal" in written and '"points": 20.0' in (out / "submissions" / "normal.json").read_text()


def test_with_landlock_off_the_mount_namespace_still_hides_them(tmp_path, planted):
    if os.geteuid() != 0:
        pytest.skip("the grader is not root: no mount namespace (Landlock alone confines reads)")
    mark, homes = planted
    targets = ["/etc/shadow", "/etc/gshadow", "/etc/ssl/private", *map(str, homes),
               str(SOLUTIONS / "a2_softmax" / "hidden_checks.py")]
    path = tmp_path / "nosy.py"
    path.write_text(READ_EVERYTHING.format(targets=targets, backward=BACKWARD))
    config = GradeConfig(devices=("cpu",), sandbox=replace(SandboxConfig(), landlock=False))
    [result] = grade_batch([Submission("nosy", path)], assignment=A2, config=config,
                           out_dir=tmp_path / "out")
    assert any("/etc holds only what Python and torch read" in p for p in result.protections)
    report = result.stdout
    for target in targets:
        assert f"'{target}': 'FileNotFoundError'" in report, (target, report[:2000])
    assert "def test_" not in output_text(tmp_path / "out")


FILL = """import os, torch

def _fill():
    written, i = 0, 0
    try:
        while True:
            with open(f"blob{{i}}.bin", "wb") as handle:
                for _ in range(8):
                    handle.write(b"x" * (1 << 20))
                    handle.flush()
                    written += 1 << 20
            i += 1
    except OSError as exc:
        print(f"WROTE {{written >> 20}} MiB, then {{type(exc).__name__}}", flush=True)
        raise

def softmax(z, dim=-1):
    if z.dim() == 1:
        _fill()
    e = torch.exp(z - z.amax(dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)

{backward}
"""


@pytest.mark.parametrize("namespaces", [True, False], ids=["tmpfs", "measured"])
def test_scratch_is_bounded_and_the_student_is_told(tmp_path, namespaces):
    """As root the cap is a tmpfs; otherwise (forced here) the grader measures scratch and stops
    the worker past the cap. Either way the student reads why, and the batch goes on."""
    if namespaces and os.geteuid() != 0:
        pytest.skip("the grader is not root: no tmpfs, the measured cap applies")
    cap = 32 << 20
    fill, normal = tmp_path / "fill.py", tmp_path / "normal.py"
    fill.write_text(FILL.format(backward=BACKWARD))
    normal.write_text(CORRECT)
    sandbox = replace(SandboxConfig(), scratch_bytes=cap, namespaces=namespaces, check_timeout_s=60)
    results = grade_batch([Submission("fill", fill), Submission("normal", normal)], assignment=A2,
                          config=GradeConfig(devices=("cpu",), sandbox=sandbox),
                          out_dir=tmp_path / "out")
    fill_result, normal_result = results
    one_d = next(c for c in fill_result.checks if c.name == "softmax_1d")
    assert not one_d.passed
    if namespaces:
        assert "No space left on device" in one_d.message
        assert "write at most 64 MiB per file and 32 MiB in all" in one_d.message
        wrote = int(fill_result.stdout.split("WROTE ")[1].split(" MiB")[0])
        assert wrote <= 32
    else:
        assert "wrote more than 32 MiB to its working directory" in one_d.message
    others = [c for c in fill_result.checks if c.exercise == "softmax_backward" and not c.skipped]
    assert all(c.passed for c in others), "the other exercise is graded as usual"
    assert normal_result.points == normal_result.max_points == 20


def test_a_gpu_the_sandbox_cannot_use_costs_no_points(tmp_path, monkeypatch):
    """The grader sees a GPU, but the confined worker cannot use it (a protection keeps the
    device out, as a lent GPU machine showed): the cuda checks are skipped with the reason and
    the cpu checks decide, so correct code keeps full marks and wrong code still loses points.

    Played here by hiding the GPU from the worker alone; on a machine without one the grader is
    told it has one.
    """
    import torch

    from autograder import plugin
    from autograder.grading.scoring import grade_submission

    torch.cuda.is_available()  # this process keeps what it saw: only the worker loses the GPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    real = plugin.cuda_skip_reason
    monkeypatch.setattr(plugin, "cuda_skip_reason",
                        lambda devices: None if "cuda" in devices else real(devices))
    config = GradeConfig(devices=("cpu", "cuda"))
    results = {}
    for name, source in (("right", CORRECT), ("wrong", CORRECT.replace("dim, keepdim", "0, keepdim"))):
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        results[name] = grade_submission(Submission(name, path), assignment=A2, config=config)
    right, wrong = results["right"], results["wrong"]
    assert right.status == "graded" and right.points == right.max_points == A2.max_points
    cuda = [c for c in right.checks if c.device == "cuda"]
    assert cuda and all(c.skipped and c.points == 0 for c in cuda)
    assert all("could not use this machine's GPU" in c.message for c in cuda), cuda[0].message
    assert any(p.startswith("cuda checks not run: the sandbox could not use the GPU")
               for p in right.protections)
    assert 0 < wrong.points < wrong.max_points


def test_a_worker_that_cannot_use_cuda_says_what_the_driver_answered():
    """Below torch's word, the driver's: on a machine without one, that its library cannot be
    loaded; on a GPU machine whose sandbox keeps the GPU out, cuInit's error by name."""
    import torch

    from autograder.isolation.worker import cuda_problem, driver_says

    if torch.cuda.is_available():
        pytest.skip("this machine's CUDA works here: nothing to explain")
    said = driver_says()
    assert said.startswith(("the CUDA driver library cannot be loaded", "the driver's cuInit"))
    assert said in cuda_problem()


NAME_A_THREAD = """import ctypes, json, os, threading

from autograder.isolation.worker import thread_naming_problem

libc = ctypes.CDLL(None, use_errno=True)
started, stop = threading.Event(), threading.Event()
thread = threading.Thread(target=lambda: (started.set(), stop.wait()))
thread.start()
started.wait()

def write(path):  # the value it already has: harmless wherever it is allowed
    try:
        with open(path, "r+") as handle:
            value = handle.read()
            handle.seek(0)
            handle.write(value)
        return "written"
    except OSError as exc:
        return exc.strerror

said = {"setname": os.strerror(libc.pthread_setname_np(ctypes.c_ulong(thread.ident), b"cuda-EvtHandlr"))}
try:
    with open(f"/proc/self/task/{thread.native_id}/comm", "w") as handle:  # O_TRUNC as well
        handle.write("cuda-EvtHandlr")
    said["truncate and write"] = "written"
except OSError as exc:
    said["truncate and write"] = exc.strerror
said["own oom_score_adj"] = write("/proc/self/oom_score_adj")
said["parent's oom_score_adj"] = write(f"/proc/{os.getppid()}/oom_score_adj")
said["diagnosis"] = thread_naming_problem()
stop.set()
thread.join()
print("SAID " + json.dumps(said))
"""


@pytest.mark.parametrize(("cuda", "namespaces", "landlock"), [
    (True, True, True), (True, True, False), (True, False, True), (False, True, True)],
    ids=["cuda-both", "cuda-namespaces-only", "cuda-landlock-only", "cpu-both"])
def test_a_cuda_worker_may_name_its_own_threads_and_write_nothing_else_in_proc(
        cuda, namespaces, landlock):
    """NVIDIA's driver (570 and later) names the threads cuInit starts through
    /proc/self/task/<tid>/comm and fails with CUDA_ERROR_OPERATING_SYSTEM where it may not: on a
    lent H200 (driver 580) no sandboxed worker could use the GPU. Each protection alone refused
    that write (a read-only /proc mount, Landlock). A CUDA worker may now name its threads, and
    still writes nothing else in /proc; a CPU worker may not even do that."""
    import json

    from autograder.isolation.sandbox import Sandbox

    if os.geteuid() != 0 and namespaces and not landlock:
        pytest.skip("the mount namespace needs root")
    config = replace(SandboxConfig(), namespaces=namespaces, landlock=landlock)
    with Sandbox([{"id": "threads", "source": NAME_A_THREAD}], config=config, uses_cuda=cuda) as box:
        box.start()
        box.close()
        errors = box.cell_errors
    lines = [line for line in box.stdout.text().splitlines() if line.startswith("SAID ")]
    assert lines, (errors, box.stderr.text())
    said = json.loads(lines[-1].removeprefix("SAID "))
    assert said["own oom_score_adj"] != "written"
    assert said["parent's oom_score_adj"] != "written"
    if cuda:
        assert said["setname"] == "Success"  # pthread_setname_np opens it read-write
        assert said["truncate and write"] == "written"
        assert said["diagnosis"] is None
    else:
        assert said["setname"] != "Success" and said["truncate and write"] != "written"
        assert "/comm: " in said["diagnosis"] and "CUDA driver" in said["diagnosis"]
