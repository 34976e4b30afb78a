"""The pytest plugin that runs check files against one student and one reference.

It provides the ``student``, ``reference`` and ``device`` fixtures, parametrizes ``device`` over
the configured devices (``cuda`` skipped with its reason when absent), and turns each test's
outcome into a :class:`~autograder.results.CheckRun` with a message written for the student.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from autograder.compare import CheckFailed
from autograder.course import CourseError
from autograder.results import CheckRun
from autograder.subjects import StudentError, Subject, SubjectUnavailable

HIDDEN_FILE = "hidden_checks.py"


def cuda_skip_reason(devices: Iterable[str]) -> str | None:
    """Why cuda checks will not run here, or None when they will."""
    if "cuda" not in devices:
        return "cuda not requested (--devices)"
    if not torch.cuda.is_available():
        return "no CUDA device on this machine"
    return None


def student_message(exc: BaseException) -> str:
    """Turn what a check raised into a message a student can act on."""
    if isinstance(exc, CheckFailed | SubjectUnavailable):
        return str(exc)
    if isinstance(exc, StudentError):
        if exc.is_a("ProbeError"):
            return exc.message
        if exc.is_a("NotImplementedError") and not exc.message:
            return "not implemented yet: the stub still raises NotImplementedError()."
        return f"your code raised {exc.describe()}"
    if isinstance(exc, AssertionError):
        return str(exc).split("\nassert ")[0]
    return f"internal error in this check ({type(exc).__name__}: {exc}); tell your instructor."


@dataclass
class CheckPlugin:
    """Fixtures and result collection for one run of the checks."""

    student: Subject
    reference: Subject
    devices: tuple[str, ...] = ("cpu", "cuda")
    problems: dict[str, str] = field(default_factory=dict)
    only: frozenset[str] | None = None
    runs: list[CheckRun] = field(default_factory=list)

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "points(n): points a check is worth")
        config.addinivalue_line("markers", "exercise(name): the exercise a check belongs to")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "device" not in metafunc.fixturenames:
            return
        reason = cuda_skip_reason(self.devices)
        params = [pytest.param("cpu", id="cpu")]
        params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.skip(reason=reason))
                      if reason else pytest.param("cuda", id="cuda"))
        metafunc.parametrize("device", params)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.only is not None:
            keep = [i for i in items if _exercise(i) in self.only]
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep
        # one exercise at a time (public then hidden), so a CUDA run restarts once per exercise
        order = list(dict.fromkeys(_exercise(i) for i in items))
        items.sort(key=lambda i: order.index(_exercise(i)))

    def _begin(self, request: pytest.FixtureRequest, subject: Subject) -> Subject:
        item = request.node
        exercise = _exercise(item)
        if exercise in self.problems:
            raise CheckFailed(self.problems[exercise])
        subject.begin_exercise(exercise)
        subject.begin(_group(item, hidden=False), _device(item))
        return subject

    @pytest.fixture(name="student")
    def student_fixture(self, request: pytest.FixtureRequest) -> Subject:
        return self._begin(request, self.student)

    @pytest.fixture(name="reference")
    def reference_fixture(self, request: pytest.FixtureRequest) -> Subject:
        return self._begin(request, self.reference)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome: Any = yield
        report = outcome.get_result()
        if call.when == "teardown" or (call.when == "setup" and report.passed):
            return
        message = ""
        if report.skipped:
            longrepr = report.longrepr
            message = longrepr[2].removeprefix("Skipped: ") if isinstance(longrepr, tuple) else "skipped"
        elif report.failed and call.excinfo is not None:
            message = student_message(call.excinfo.value)
        marker = item.get_closest_marker("points")
        weight = float(marker.args[0]) if marker and marker.args else 1.0
        self.runs.append(CheckRun(
            name=item.originalname.removeprefix("test_"),  # type: ignore[attr-defined]
            exercise=_exercise(item), device=_device(item),
            hidden=Path(str(item.fspath)).name == HIDDEN_FILE,
            passed=report.passed, skipped=report.skipped, points=0.0, max_points=0.0,
            message=message, duration_s=round(report.duration, 4),
            group=_group(item, hidden=Path(str(item.fspath)).name == HIDDEN_FILE), weight=weight,
        ))


def _exercise(item: pytest.Item) -> str:
    marker = item.get_closest_marker("exercise")
    return str(marker.args[0]) if marker and marker.args else "unknown"


def _device(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return str(callspec.params.get("device", "cpu")) if callspec else "cpu"


def _group(item: pytest.Item, *, hidden: bool) -> str:
    callspec = getattr(item, "callspec", None)
    params = {k: v for k, v in (callspec.params.items() if callspec else []) if k != "device"}
    suffix = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    name = item.originalname  # type: ignore[attr-defined]
    return f"{'hidden:' if hidden else ''}{name}[{suffix}]"


def run_checks(files: list[Path], plugin: CheckPlugin) -> list[CheckRun]:
    """Run the check ``files`` with ``plugin``; return the check runs in order."""
    args = [str(f) for f in files] + [
        "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", "-p", "no:cov",
        # these end each session with gc.collect() calls that cost ~0.9 s with torch loaded:
        # most of a submission's grading time for the quick assignments
        "-p", "no:unraisableexception", "-p", "no:threadexception",
        "-p", "no:junitxml", "-p", "no:pastebin", "-p", "no:doctest", "-p", "no:faulthandler",
        "-p", "no:logging", "--capture=no",
        "--noconftest", "-q", "--no-header", "--tb=no", "-c", os.devnull,
        # rooted at / so that importlib mode names each check module by its absolute path:
        # two copies of a1_logistic/public_checks.py must never share a cached module
        "--rootdir", files[0].resolve().anchor, "--import-mode=importlib",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        code = pytest.main(args, plugins=[plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        names = ", ".join(f.name for f in files)
        raise CourseError(f"pytest could not run {names} (exit {int(code)}):\n{sink.getvalue()[-3000:]}")
    return plugin.runs

