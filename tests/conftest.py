"""Shared fixtures: the course material and a cache of graded variant submissions."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.course import available, load_assignment

# Every `grade` the suite starts runs in its own process, as it does under a test's control;
# tests/test_server.py turns the grading server on where it tests it.
os.environ["TORCHGRADE_SERVER"] = "off"
# Two xdist workers share the machine's cores (two on CI) with the kernels, nbgrader and `grade`
# processes they start: one BLAS/OpenMP thread each. With more, their spinning threads contend
# for the cores and a notebook's training cell on a busy machine took 5 to 15 times as long.
# Set before torch is imported here (it reads them once); every process started inherits them.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread in the test process too, whatever OMP_NUM_THREADS says (as in the
    sandbox): the oracle tests run tiny layers and statistics many times, and several threads on
    shared cores spend most of their time waiting for each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def variant_subject(assignment, label: str, source: str | None = None, **functions):
    """``assignment``'s reference as a subject, with an exercise replaced by ``source`` (a
    variant's code) or by ``functions``."""
    from autograder.course import reference_namespace
    from autograder.subjects import LocalSubject, assignment_probes

    namespace = reference_namespace(assignment)
    if source is not None:
        exec(compile(source, f"<variant {label}>", "exec"), namespace)
    namespace.update(functions)
    return LocalSubject(namespace, label, probes=assignment_probes(assignment))


def import_checks(assignment, filename: str, name: str, *, public=None):
    """Import one of ``assignment``'s check files under a module name of its own.

    ``hidden_checks.py`` imports its helpers as ``public_checks``: pass the module imported
    from ``public_checks.py`` as ``public`` and it is that name only while the file runs.
    """
    spec = importlib.util.spec_from_file_location(name, assignment.directory / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    saved = sys.modules.get("public_checks")
    if public is not None:
        sys.modules["public_checks"] = public
    try:
        spec.loader.exec_module(module)
    finally:
        if public is not None:
            if saved is None:
                sys.modules.pop("public_checks", None)
            else:
                sys.modules["public_checks"] = saved
    return module


def pytest_configure(config: pytest.Config) -> None:
    """Refuse ``--dist loadgroup`` where it would silently split the groups.

    pytest-xdist keeps an ``xdist_group`` on one worker by rewriting each test's id; pytest 9.2
    no longer reads the attribute xdist 3.8 writes. The groups were split without a word: a
    group's module fixtures (the nbgrader semester, the hostile batch, the Dask cluster) were
    built on both workers, and tests meant to run apart (one fork server, killed on purpose) ran
    side by side. constraints.txt pins a pair that works.
    """
    if config.getoption("dist", "no") != "loadgroup":
        return
    from importlib.metadata import version

    def release(name: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version(name).split(".")[:3] if part.isdigit())

    if release("pytest") >= (9, 2) and release("pytest-xdist") <= (3, 8, 0):
        raise pytest.UsageError(
            f"pytest {version('pytest')} with pytest-xdist {version('pytest-xdist')} ignores "
            "xdist_group under --dist loadgroup; install the versions in constraints.txt "
            "(make setup)")


ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"
ASSIGNMENT_NAMES = available(SOLUTIONS)

def tool(*args: str, cwd: Path, home: Path, ok: bool = True,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command of this environment (`grade`, `nbgrader`) as a user with ``home`` (and
    ``env`` on top); unless ``ok`` is False, assert that it succeeded. nbgrader runs `alembic`
    from PATH."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           **(env or {})}
    done = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)
    if ok:
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}"
    return done


def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``tmp_path/tmp`` the temporary folder of this test's processes and graders (their
    sandboxes' scratch goes there, and whatever a kill leaves stays there); return it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def start_batch(tmp_path: Path, *, count: int, workers: int
                ) -> tuple[list[str], Path, subprocess.Popen[bytes]]:
    """Start `grade run a1_logistic` in a session of its own on ``count`` .py submissions, right
    (10 points) and right but for the clamp (8 points) in turn; return the command, its --out
    folder and the process."""
    folder = tmp_path / "submitted"
    folder.mkdir()
    for i in range(count):
        (folder / f"s{i}.py").write_text(GOOD_BCE if i % 2 else PARTIAL_BCE)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder.cli", "--solutions", str(SOLUTIONS), "run",
               "a1_logistic", str(folder), "--out", str(out), "--devices", "cpu",
               "--workers", str(workers)]
    batch = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    return command, out, batch


def wait_for_results(out: Path, count: int, timeout_s: float = 300) -> None:
    """Wait until a batch writing to ``out`` has written ``count`` per-submission results."""
    deadline = time.monotonic() + timeout_s
    while len(list((out / "submissions").glob("*.json"))) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_batch(batch: subprocess.Popen[bytes], out: Path) -> dict[str, int]:
    """SIGKILL ``batch``'s process group; return the results it had written (name -> mtime),
    each checked to be whole JSON."""
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    written = {p.name: p.stat().st_mtime_ns for p in (out / "submissions").glob("*.json")}
    for name in written:
        json.loads((out / "submissions" / name).read_text())  # never half-written
    return written


def rerun_reusing(command: list[str], out: Path, written: dict[str, int]) -> dict:
    """Run ``command`` again; assert it worked and left ``written`` untouched (reused, not graded
    again); return its results.json."""
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    for name, mtime in written.items():
        assert (out / "submissions" / name).stat().st_mtime_ns == mtime
    return json.loads((out / "results.json").read_text())


# a correct bce as a .py submission (a1_logistic), for tests about grading rather than checks
GOOD_BCE = """import torch

def bce(yhat, y):
    p = yhat.clamp(1e-7, 1 - 1e-7)
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()
"""
# right values, but log(0) = -inf at exact 0s and 1s: loses one check of form, 8 of 10 points
# (a submission whose values are wrong scores 0, like one that could not be graded)
PARTIAL_BCE = GOOD_BCE.replace("p = yhat.clamp(1e-7, 1 - 1e-7)", "p = yhat")


@pytest.fixture(scope="session")
def solutions() -> Path:
    return SOLUTIONS


@pytest.fixture(scope="session")
def a1():
    return load_assignment("a1_logistic", SOLUTIONS)
