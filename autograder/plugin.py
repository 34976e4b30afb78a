"""The pytest plugin that runs check files against one student and one reference.

It provides the ``student``, ``reference`` and ``device`` fixtures, parametrizes ``device`` over
the configured devices (``cuda`` skipped with its reason when absent), and turns each test's
outcome into a :class:`~autograder.results.CheckRun` with a message written for the student.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import queue
import sys
import threading
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from autograder.checks import render_hints
from autograder.compare import CheckFailed
from autograder.course import PROBE_FILE, CourseError
from autograder.probes import load_module
from autograder.results import CheckRun
from autograder.settings import DEFAULT_HINTS
from autograder.subjects import StudentError, Subject, SubjectUnavailable

HIDDEN_FILE = "hidden_checks.py"
PUBLIC_MODULE, PROBES_MODULE = "public_checks", "probes"


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


def author_message(exc: BaseException, item: pytest.Item) -> str:
    """Say what went wrong for the check's author, with the line of the check file it came from."""
    if isinstance(exc, CheckFailed):
        return f"it fails with the message students would get: {exc}"
    if isinstance(exc, StudentError):
        return f"the code under test raised {exc.describe()}"
    if isinstance(exc, SubjectUnavailable):
        return f"the code under test could not answer: {exc}"
    where = ""
    check_file = str(getattr(item, "path", ""))
    frames = [tb for tb in _frames(exc) if tb.tb_frame.f_code.co_filename == check_file]
    if frames:
        where = f" at line {frames[-1].tb_lineno}"
    return f"the check itself raised {type(exc).__name__}{where}: {exc}"


def _frames(exc: BaseException) -> Iterator[types.TracebackType]:
    tb = exc.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


@dataclass
class CheckPlugin:
    """Fixtures and result collection for one run of the checks."""

    student: Subject
    reference: Subject
    devices: tuple[str, ...] = ("cpu", "cuda")
    problems: dict[str, str] = field(default_factory=dict)
    only: frozenset[str] | None = None  # exercises to run (default: all)
    kinds: frozenset[str] | None = None  # kinds of check to run (default: all)
    hints: str = DEFAULT_HINTS
    author: bool = False  # messages for the checks' author (grade build), not for a student
    # why the student's sandbox cannot use the GPU that this process sees (its cuda checks are
    # then skipped with that reason: the machine's problem must never cost a student points)
    cuda_unreachable: str | None = None
    runs: list[CheckRun] = field(default_factory=list)
    locations: dict[str, tuple[str, int]] = field(default_factory=dict)  # group -> file, line

    @property
    def shape(self) -> tuple[Any, ...]:
        """What decides which checks are collected, and how (a session is kept per shape)."""
        return (self.devices, self.only, self.kinds, self.cuda_unreachable)

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "points(n): points a check is worth")
        config.addinivalue_line("markers", "exercise(name): the exercise a check belongs to")
        config.addinivalue_line("markers", "kind(name): value or property")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "device" not in metafunc.fixturenames:
            return
        reason = cuda_skip_reason(self.devices)
        if reason is None and self.cuda_unreachable:
            reason = ("not run: the grading sandbox could not use this machine's GPU "
                      f"({self.cuda_unreachable}); your cpu checks decide your points")
        params = [pytest.param("cpu", id="cpu")]
        params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.skip(reason=reason))
                      if reason else pytest.param("cuda", id="cuda"))
        metafunc.parametrize("device", params)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.only is not None or self.kinds is not None:
            keep = [i for i in items if (self.only is None or _exercise(i) in self.only)
                    and (self.kinds is None or _kind(i) in self.kinds)]
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
            exc = call.excinfo.value
            message = author_message(exc, item) if self.author else student_message(exc)
        marker = item.get_closest_marker("points")
        weight = float(marker.args[0]) if marker and marker.args else 1.0
        hidden = item.path.name == HIDDEN_FILE
        group = _group(item, hidden=hidden)
        code = getattr(getattr(item, "function", None), "__code__", None)
        if code is not None:
            self.locations[group] = (code.co_filename, code.co_firstlineno)
        self.runs.append(CheckRun(
            name=item.originalname.removeprefix("test_"),  # type: ignore[attr-defined]
            exercise=_exercise(item), device=_device(item), hidden=hidden,
            passed=report.passed, skipped=report.skipped, points=0.0, max_points=0.0,
            message=render_hints(message, self.hints), duration_s=round(report.duration, 4),
            group=group, weight=weight,
            kind=_kind(item),
        ))


def _exercise(item: pytest.Item) -> str:
    marker = item.get_closest_marker("exercise")
    return str(marker.args[0]) if marker and marker.args else "unknown"


def _kind(item: pytest.Item) -> str:
    marker = item.get_closest_marker("kind")
    return str(marker.args[0]) if marker and marker.args else "value"


def _device(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    return str(callspec.params.get("device", "cpu")) if callspec else "cpu"


def _group(item: pytest.Item, *, hidden: bool) -> str:
    callspec = getattr(item, "callspec", None)
    params = {k: v for k, v in (callspec.params.items() if callspec else []) if k != "device"}
    suffix = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    name = item.originalname  # type: ignore[attr-defined]
    return f"{'hidden:' if hidden else ''}{name}[{suffix}]"


def run_checks(files: list[Path], plugin: CheckPlugin, *, fresh: bool = False) -> list[CheckRun]:
    """Run the check ``files`` with ``plugin``; return the check runs in order.

    pytest imports a check file once per process; a file whose content changed since (an author
    edits between two runs in one grading server) is imported again, and with ``fresh`` every file.
    """
    digests = {str(f.resolve()): _digest(f) for f in files}
    if fresh or any(_IMPORTED.get(path) != digest for path, digest in digests.items()):
        _forget_modules(files)
    _IMPORTED.update(digests)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), check_imports(files[0].parent):
        code = pytest.main([*_pytest_args(files), "-q", "--no-header", "--tb=no"], plugins=[plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise CourseError(f"pytest could not run {_names(files)} (exit {int(code)}):\n"
                          f"{sink.getvalue()[-3000:]}")
    return plugin.runs


_IMPORTED: dict[str, str] = {}  # check file -> digest of what run_checks last imported


def _pytest_args(files: list[Path]) -> list[str]:
    return [str(f) for f in files] + [
        "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", "-p", "no:cov",
        # these end each session with gc.collect() calls that cost ~0.9 s with torch loaded:
        # most of a submission's grading time for the quick assignments
        "-p", "no:unraisableexception", "-p", "no:threadexception",
        "-p", "no:junitxml", "-p", "no:pastebin", "-p", "no:doctest", "-p", "no:faulthandler",
        "-p", "no:logging", "--capture=no",
        "--noconftest", "-c", os.devnull,
        # rooted at / so that importlib mode names each check module by its absolute path:
        # two copies of a1_logistic/public_checks.py must never share a cached module
        "--rootdir", files[0].resolve().anchor, "--import-mode=importlib",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]


def _names(files: list[Path]) -> str:
    return ", ".join(f.name for f in files)


class CheckSession:
    """Run the same check files against one student after another, in one pytest session.

    Starting pytest, registering its plugins and collecting the checks costs about as much as
    running a quick assignment's checks. A session pays it once: pytest runs in a thread of its
    own, collects the checks, and waits; each :meth:`run` hands it a :class:`CheckPlugin` (a
    student, the reference, where the runs go), and it runs every collected check with that
    plugin, each fixture set up and torn down as in a session of its own. The thread only runs
    checks: the caller's thread starts and stops the sandboxes, and waits for each run.

    What shapes collection (the plugin's :attr:`~CheckPlugin.shape`) is fixed by the first
    plugin; a later one must agree. Use from one thread.
    """

    def __init__(self, files: list[Path]) -> None:
        self.files = list(files)
        self._relay = _Relay()
        self._shape: tuple[Any, ...] | None = None
        self._thread: threading.Thread | None = None
        self._failure = ""

    def __enter__(self) -> CheckSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, plugin: CheckPlugin) -> list[CheckRun]:
        """Run every check with ``plugin``; return its check runs in order."""
        shape = plugin.shape
        if self._thread is None:
            self._start(plugin, shape)
        elif shape != self._shape:
            raise ValueError(f"this session collected its checks for {self._shape}, not {shape}")
        if self._failure:
            raise CourseError(self._failure)
        self._relay.jobs.put(plugin)
        self._wait()
        return plugin.runs

    def close(self, *, wait: bool = True) -> None:
        """End the pytest session (its fixtures are already torn down after each run).

        Without ``wait``, a run still going on (the caller was interrupted) ends in the
        background, its thread with it.
        """
        if self._thread is not None and self._thread.is_alive():
            self._relay.jobs.put(None)
            if wait:
                self._thread.join(timeout=30)

    def _start(self, plugin: CheckPlugin, shape: tuple[Any, ...]) -> None:
        self._shape, self._relay.template = shape, plugin
        _forget_modules(self.files)  # collect what the files say now, not an earlier import
        self._thread = threading.Thread(target=self._serve, name="checks", daemon=True)
        with contextlib.ExitStack() as collecting:  # the imports are needed only while pytest collects
            try:
                collecting.enter_context(check_imports(self.files[0].parent))
            except Exception as exc:  # noqa: BLE001 - the author's file: said on every run
                self._failure = (f"pytest could not run {_names(self.files)}: importing the check "
                                 f"files raised {type(exc).__name__}: {exc}")
                raise CourseError(self._failure) from exc
            self._thread.start()
            self._wait()

    def _serve(self) -> None:
        """The session's thread: pytest collects, then runs each plugin the caller sends."""
        try:
            # no terminal reporter: nothing is printed, so nothing else's output is touched
            code = pytest.main([*_pytest_args(self.files), "-p", "no:terminal"], plugins=[self._relay])
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self._relay.replies.put(exc)
            return
        if not self._relay.serving:  # pytest ended before its run loop: say why, once
            detail = "\n".join(self._relay.errors)[-3000:]
            self._failure = f"pytest could not run {_names(self.files)} (exit {int(code)}):\n{detail}"
            self._relay.replies.put(None)

    def _wait(self) -> None:
        assert self._thread is not None
        while True:
            try:  # a timeout, so that Ctrl-C reaches the caller's thread promptly
                reply = self._relay.replies.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._relay.replies.empty():
                    raise RuntimeError("the pytest session's thread ended without a reply") from None
        if reply is not None:
            raise reply


_SHARED: dict[tuple[Any, ...], CheckSession] = {}


def run_in_session(files: list[Path], plugin: CheckPlugin) -> list[CheckRun]:
    """Like :func:`run_checks`, in a :class:`CheckSession` kept for the next call with the same
    files (same contents) and collection settings: a grader pays for pytest's start once.

    One session is kept per process: another key ends it. Use from one thread.
    """
    key = (tuple(str(f.resolve()) for f in files), tuple(_digest(f) for f in files),
           plugin.shape)
    session = _SHARED.get(key)
    if session is None:
        for old in _SHARED.values():
            old.close()
        _SHARED.clear()
        session = _SHARED[key] = CheckSession(files)
    try:
        return session.run(plugin)
    except BaseException:
        session.close(wait=False)  # never reuse a session whose run went wrong; never wait for it
        _SHARED.pop(key, None)
        raise


def _digest(file: Path) -> str:
    try:
        return hashlib.sha1(file.read_bytes()).hexdigest()
    except OSError:
        return ""


class _Relay:
    """The pytest plugin of a :class:`CheckSession`: passes each hook to the current plugin."""

    def __init__(self) -> None:
        self.template: CheckPlugin | None = None  # the first plugin: it shapes collection
        self.current: CheckPlugin | None = None
        self.jobs: queue.SimpleQueue[CheckPlugin | None] = queue.SimpleQueue()
        self.replies: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self.errors: list[str] = []
        self.serving = False

    def _plugin(self) -> CheckPlugin:
        plugin = self.current or self.template
        assert plugin is not None
        return plugin

    def pytest_configure(self, config: pytest.Config) -> None:
        self._plugin().pytest_configure(config)
        # --tb=no, which belongs to the terminal reporter left out: without it, pytest renders
        # each failure's traceback with its source (tens of ms each) for nobody to read
        config.option.tbstyle = "no"

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        self._plugin().pytest_generate_tests(metafunc)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        self._plugin().pytest_collection_modifyitems(config, items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(report.longreprtext)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if self.errors:
            return True  # the session ends; the caller reports the errors
        self.serving = True
        self.replies.put(None)  # collected: ready for the first plugin
        while (plugin := self.jobs.get()) is not None:
            self.current = plugin
            try:
                for i, item in enumerate(session.items):
                    # the last item's teardown takes down every fixture: the next run starts afresh
                    nextitem = session.items[i + 1] if i + 1 < len(session.items) else None
                    item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                reply: BaseException | None = None
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                reply = exc
            self.current = None  # let go of the student's sandbox
            self.replies.put(reply)
        return True

    @pytest.fixture(name="student")
    def student_fixture(self, request: pytest.FixtureRequest) -> Subject:
        plugin = self._plugin()
        return plugin._begin(request, plugin.student)

    @pytest.fixture(name="reference")
    def reference_fixture(self, request: pytest.FixtureRequest) -> Subject:
        plugin = self._plugin()
        return plugin._begin(request, plugin.reference)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        return (yield from self._plugin().pytest_runtest_makereport(item, call))


@contextlib.contextmanager
def check_imports(directory: Path) -> Iterator[None]:
    """Let the check files in ``directory`` import ``public_checks`` and ``probes``, their own.

    While the checks run, those two names in ``sys.modules`` are this assignment's files (each
    loaded once per process and content, under a private name), so ``from public_checks import
    own_bce`` in hidden_checks.py never finds another assignment's file; the previous entries
    are put back afterwards.
    """
    saved = {name: sys.modules.get(name) for name in (PUBLIC_MODULE, PROBES_MODULE)}
    try:
        probes = directory / PROBE_FILE
        if probes.is_file():
            sys.modules[PROBES_MODULE] = load_module(probes.read_text(encoding="utf-8"), str(probes))
        else:
            sys.modules.pop(PROBES_MODULE, None)
        public = directory / f"{PUBLIC_MODULE}.py"
        if public.is_file():
            sys.modules[PUBLIC_MODULE] = _module_at(public)
        else:
            sys.modules.pop(PUBLIC_MODULE, None)
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def _module_at(file: Path) -> types.ModuleType:
    """Import ``file`` once per process and content, under a private name."""
    text = file.read_bytes()
    digest = hashlib.sha1(str(file.resolve()).encode("utf-8") + b"\0" + text).hexdigest()[:16]
    key = f"_autograder_checks_{digest}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, file)
    if spec is None or spec.loader is None:
        raise CourseError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[key]
        raise
    return module


def _forget_modules(files: list[Path]) -> None:
    """Drop the modules imported from ``files`` from ``sys.modules``."""
    wanted = {f.resolve() for f in files}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and Path(file).resolve() in wanted:
            del sys.modules[name]
