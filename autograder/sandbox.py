"""The parent side of the sandbox: start, feed, time and kill the process running student code.

One worker process runs one submission, in an empty scratch directory with a scrubbed
environment and resource limits, in its own session and cgroup. It is forked from the fork server
of :mod:`autograder.zygote`, which has torch imported already (a warm start), or, with
``warm=False`` or when the fork server is unavailable, started as ``python -I -m autograder.worker``
(a cold start, seconds slower). Each probe has a wall-clock deadline; a worker that misses it is
killed with its whole group and a fresh one is started for the next check, so one hang costs one
check.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autograder import cgroup, wire, zygote
from autograder.subjects import Outcome, Subject, SubjectUnavailable
from autograder.worker import HEADER, apply_rlimits, write_frame

GIB = 1 << 30
CUDA_POISON = ("CUDA error", "device-side assert", "CUBLAS_STATUS", "cuDNN error")
WARM_NOTE = ("warm start: forked from the fork server (torch preloaded, shared copy-on-write; the "
             "cgroup memory limit counts only the pages this worker touches itself)")


@dataclass(frozen=True)
class SandboxConfig:
    """Limits for one submission's worker process."""

    check_timeout_s: float = 30.0
    startup_timeout_s: float = 90.0
    submission_timeout_s: float = 600.0
    memory_bytes: int | None = 6 * GIB
    cpu_seconds: int = 900
    max_file_bytes: int = 64 << 20
    scratch_bytes: int | None = 256 << 20  # all files of a submission together
    max_open_files: int = 512
    max_message_bytes: int = 64 << 20
    output_limit_bytes: int = 8 << 10
    max_restarts: int = 5
    max_processes: int = 64
    landlock: bool = True
    namespaces: bool = True  # as root: own mount (scratch tmpfs, hidden /etc) and network ns
    cgroup: bool = True
    warm: bool = True  # fork workers from a fork server; False: start each with python -I


class SandboxStartError(RuntimeError):
    """The worker failed before running any student code: a problem of the machine or the
    configuration (e.g. a memory limit too small to import torch), never the student's."""


@dataclass
class CapturedOutput:
    """Keep the first and last ``limit`` bytes of a stream, counting what was dropped."""

    limit: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def feed(self, data: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.limit
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if self.dropped:
            return f"{head}\n[... {self.dropped} bytes of output not shown ...]\n{tail}"
        return head + tail


MAX_SCRATCH_FILES = 10_000


def scratch_usage(root: Path, *, stop_at: int) -> tuple[int, int]:
    """Bytes on disk and entries under ``root``; stops counting once past ``stop_at`` bytes or
    :data:`MAX_SCRATCH_FILES` entries (a student's directory may be hostile)."""
    used, files, stack = 0, 0, [str(root)]
    while stack and used <= stop_at and files <= MAX_SCRATCH_FILES:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            files += 1
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            used += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return used, files


def _pump(stream: Any, sink: CapturedOutput) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        sink.feed(chunk)


def _user_processes() -> int:
    """Count this user's processes (RLIMIT_NPROC counts them all, not just the sandbox's)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def _rlimits(config: SandboxConfig, uses_cuda: bool, nproc: int | None) -> dict[str, int]:
    """The worker's ``RLIMIT_<NAME>`` values, in the order they are set."""
    limits = {}
    if nproc is not None:  # no cgroup: cap processes per user (root is exempt from this limit)
        limits["NPROC"] = nproc
    limits.update(CORE=0, CPU=config.cpu_seconds, FSIZE=config.max_file_bytes,
                  NOFILE=config.max_open_files)
    if config.memory_bytes is not None and not uses_cuda:  # CUDA reserves huge virtual ranges
        limits["AS"] = config.memory_bytes
    return limits


def _base_env() -> dict[str, str]:
    """The variables every worker and the fork server get; nothing of the grader's own."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",  # read when torch loads: also keeps the fork server one thread
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _zygote_env(preload: tuple[str, ...] = ()) -> dict[str, str]:
    env = {**_base_env(), "CUDA_VISIBLE_DEVICES": ""}  # it must never touch a GPU anyway
    if preload:
        env[zygote.PRELOAD_VARIABLE] = ",".join(preload)
    return env


def setup_imports(cells: list[dict[str, str]]) -> tuple[str, ...]:
    """The modules the instructor's setup cell imports (never a student's cell): the fork server
    imports them once, so no worker pays for matplotlib or scikit-learn again."""
    import ast

    modules: list[str] = []
    for cell in cells:
        if cell.get("id") != "setup":
            continue
        try:
            tree = ast.parse(cell.get("source", ""))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    return tuple(dict.fromkeys(modules))


def warm_up(config: SandboxConfig) -> None:
    """Launch the fork server in the background now, so the first worker need not wait for it.

    Optional: the first warm start launches it anyway. Never raises; a launch that fails here is
    tried again (and reported) by the first start.
    """
    if not config.warm:
        return

    def launch() -> None:
        try:
            zygote.shared(env=_zygote_env(), startup_timeout_s=config.startup_timeout_s)
        except zygote.ZygoteUnavailable:
            pass

    threading.Thread(target=launch, name="autograder-warm-up", daemon=True).start()


class _ColdWorker:
    """A worker the grader started itself, ``python -I -m autograder.worker``."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def release(self) -> None:
        self.popen.wait()


class _NotReady(Exception):
    """The worker stopped or failed before running any student code."""


def _start_error(exc: _NotReady) -> SandboxStartError:
    return SandboxStartError(
        f"the sandbox worker failed before running any student code ({exc}). "
        "Check --memory-gib (importing torch needs about 4 GiB of address space) and "
        "that `python -I -m autograder.worker` runs on this machine.")


def protections(config: SandboxConfig, *, uses_cuda: bool) -> list[str]:
    """Name the protections a worker started with ``config`` has on this machine."""
    active = [
        "separate process (python -I, scrubbed environment, scratch directory)",
        "plain-data result channel (JSON, no pickle)",
        f"wall-clock timeout per check ({config.check_timeout_s:g} s) with process-group kill",
        f"CPU time limit ({config.cpu_seconds} s)",
        f"file size limit ({config.max_file_bytes >> 20} MiB)",
        *([f"scratch limit ({config.scratch_bytes / 2**20:g} MiB for all files together)"]
          if config.scratch_bytes is not None else []),
        f"open files limit ({config.max_open_files})",
        "no core dumps",
    ]
    if config.memory_bytes is not None and not uses_cuda:
        active.append(f"address space limit ({config.memory_bytes / GIB:g} GiB)")
    elif config.memory_bytes is not None and not config.cgroup:
        active.append(f"resident memory polled ({config.memory_bytes / GIB:g} GiB)")
    return active


class Sandbox:
    """One submission's worker process; restarted after a timeout or crash."""

    def __init__(self, cells: list[dict[str, str]], *, config: SandboxConfig,
                 uses_cuda: bool = False, deny: tuple[Path, ...] = (),
                 probes: dict[str, str] | None = None) -> None:
        self.cells = cells
        self.probes = probes or {}  # the assignment's probes.py: {"filename", "source"}
        self.deny = [str(p) for p in deny]
        self.confinement: list[str] = []
        self._cgroup: cgroup.Cgroup | None = None
        self.config = config
        self.uses_cuda = uses_cuda
        self.stdout = CapturedOutput(config.output_limit_bytes)
        self.stderr = CapturedOutput(config.output_limit_bytes)
        self.cell_errors: dict[str, dict[str, Any]] = {}
        self.started_at = time.monotonic()
        self.starts = 0
        self.failures = 0
        self.exercise: str | None = None
        self._proc: _ColdWorker | zygote.ForkedWorker | None = None
        self._scratch: Path | None = None
        self._to_child = self._from_child = -1
        self._streams: list[Any] = []
        self._pumps: list[threading.Thread] = []
        self._nproc: int | None = None
        self._launch_note: str | None = None  # how the current worker was started, if noteworthy
        self._cold_reason: str | None = None  # why this submission's workers start cold
        self._lost_server = False  # the last worker died because the fork server did
        self._broken: str | None = None  # the code could not even be loaded
        self._scratch_capped = False  # the worker mounted a size-limited tmpfs on its scratch
        self._exhausted: str | None = None  # this exercise used up its timeouts and crashes

    # -- lifecycle --------------------------------------------------------------------------

    def _env(self, scratch: Path) -> dict[str, str]:
        env = {**_base_env(), "HOME": str(scratch), "TMPDIR": str(scratch)}
        if not self.uses_cuda:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        return env

    def _launch(self, *, warm: bool) -> None:
        """Start a worker: forked by the fork server if ``warm`` and it can, else cold."""
        config = self.config
        self._scratch = Path(tempfile.mkdtemp(prefix="grade-scratch-"))
        self._nproc = None
        if os.geteuid() != 0 and not (config.cgroup and cgroup.available()):
            self._nproc = _user_processes() + config.max_processes
        limits = _rlimits(config, self.uses_cuda, self._nproc)
        if config.cgroup:
            self._cgroup = cgroup.create(max_pids=config.max_processes,
                                         memory_bytes=config.memory_bytes)
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._streams = [open(out_r, "rb"), open(err_r, "rb")]  # noqa: SIM115 - closed in _kill
        theirs = [out_w, err_w, to_child_r, from_child_w]
        self._launch_note, self._lost_server = None, False
        try:
            self._proc = self._fork(theirs, limits) if warm else None
            if self._proc is None:
                self._proc = self._spawn(theirs, limits)
                if self._cgroup is not None:
                    # the worker is still importing torch: it runs nothing of the student's before this
                    self._cgroup.add(self._proc.pid)
        finally:
            for fd in theirs:
                os.close(fd)
        self._pumps = [threading.Thread(target=_pump, args=(stream, sink), daemon=True)
                       for stream, sink in zip(self._streams, (self.stdout, self.stderr), strict=True)]
        for pump in self._pumps:
            pump.start()

    def _fork(self, theirs: list[int], limits: dict[str, int]) -> zygote.ForkedWorker | None:
        """Ask the fork server for a worker; None (and a note) where it cannot give one."""
        if self._scratch is None:
            return None
        spec = {"env": self._env(self._scratch), "cwd": str(self._scratch), "rlimits": limits,
                "cgroup": [str(p) for p in self._cgroup.procs_files()] if self._cgroup else []}
        try:
            server = zygote.shared(env=_zygote_env(setup_imports(self.cells)),
                                   startup_timeout_s=self.config.startup_timeout_s)
            worker = server.spawn(spec, theirs)
        except zygote.ZygoteUnavailable as exc:
            self._launch_note = f"fork server unavailable ({exc}): this worker was started cold"
            return None
        self._launch_note = WARM_NOTE
        return worker

    def _spawn(self, theirs: list[int], limits: dict[str, int]) -> _ColdWorker:
        out_w, err_w, to_child_r, from_child_w = theirs
        return _ColdWorker(subprocess.Popen(
            [sys.executable, "-I", "-m", "autograder.worker", str(to_child_r), str(from_child_w)],
            cwd=self._scratch, env=self._env(self._scratch or Path("/")), stdin=subprocess.DEVNULL,
            stdout=out_w, stderr=err_w, pass_fds=(to_child_r, from_child_w),
            start_new_session=True, preexec_fn=lambda: apply_rlimits(limits),
        ))

    def _await_ready(self) -> dict[str, Any]:
        """Send the start-up frame and wait for the worker's word that it is confined."""
        confine = {"landlock": self.config.landlock, "scratch": str(self._scratch),
                   "cuda": self.uses_cuda, "deny": self.deny, "namespaces": self.config.namespaces,
                   "scratch_bytes": self.config.scratch_bytes,
                   "file_bytes": self.config.max_file_bytes}
        try:
            start = {"cells": self.cells, "confine": confine, "probes": self.probes}
            write_frame(self._to_child, json.dumps(start).encode("utf-8"))
        except BrokenPipeError:
            pass  # it is gone already: the read below says how
        try:
            ready = json.loads(self._receive(self.config.startup_timeout_s, "starting the sandbox"))
            if not isinstance(ready, dict):
                raise ValueError(f"a {type(ready).__name__}, not a ready message")
        except (SubjectUnavailable, ValueError) as exc:
            self._kill()
            raise _NotReady(f"{exc}; its error output ends with: "
                            f"{self.stderr.text()[-600:].strip() or '(nothing)'}") from None
        return ready

    def _launch_until_ready(self) -> dict[str, Any]:
        """Start a worker and wait until it is confined: warm where possible, else cold."""
        if self.config.warm and self._cold_reason is None:
            failures, exhausted = self.failures, self._exhausted
            self._launch(warm=True)
            try:
                return self._await_ready()
            except _NotReady as exc:
                if self._launch_note != WARM_NOTE:  # the fork server was unavailable: it was cold
                    raise _start_error(exc) from None
                # nothing of the student's ran, so it is not theirs to pay for: go the cold way
                self.failures, self._exhausted = failures, exhausted
                self._cold_reason = (f"the warm worker failed before running any student code "
                                     f"({exc}); this submission's workers were started cold")
        self._launch(warm=False)
        try:
            return self._await_ready()
        except _NotReady as exc:
            raise _start_error(exc) from None

    def _start(self) -> None:
        self.starts += 1
        ready = self._launch_until_ready()
        if self._launch_note is None and self._cold_reason is not None:
            self._launch_note = self._cold_reason
        self._scratch_capped = ready.get("scratch_capped") is True
        if self.starts == 1:
            self.confinement = [str(n) for n in ready.get("confinement", [])][:10]
            if self._cgroup is not None:
                self.confinement.extend(self._cgroup.describe())
            elif self._nproc is not None:
                self.confinement.append(
                    f"no cgroup: at most {self.config.max_processes} more processes for this user "
                    "(RLIMIT_NPROC); processes that call setsid() may outlive the submission")
            else:
                self.confinement.append("no cgroup and running as root: no process count limit")
        if self._launch_note is not None and self._launch_note not in self.confinement:
            self.confinement.append(self._launch_note)
        try:
            reply = json.loads(self._receive(self.config.startup_timeout_s, "loading your code"))
        except (ValueError, TypeError) as exc:
            self._kill()
            raise SubjectUnavailable(f"the sandbox sent a malformed start-up reply: {exc}") from None
        except SubjectUnavailable:
            if not self._retry_after_lost_server():
                raise
            self.starts -= 1
            self._start()
            return
        if self.starts == 1:
            for status in reply.get("cells", []):
                if status.get("error"):
                    self.cell_errors[str(status["id"])] = status["error"]

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for kill in (os.killpg, os.kill):  # the group, and the worker if it has none yet
                try:
                    kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self._cgroup is not None:  # also reaches descendants that left the group
                self._cgroup.kill_all()
            proc.release()
        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                os.close(fd)
        self._to_child = self._from_child = -1
        for pump in self._pumps:
            pump.join(timeout=5)
        for stream in self._streams:
            stream.close()
        self._pumps, self._streams = [], []
        if self._cgroup is not None:
            self._cgroup.kill_all()
            self._cgroup.remove()
            self._cgroup = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def close(self) -> None:
        self._kill()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------

    def _receive(self, timeout: float, doing: str) -> bytes:
        deadline = time.monotonic() + timeout
        header = self._read_exact(HEADER.size, deadline, timeout, doing)
        size = HEADER.unpack(header)[0]
        if size > self.config.max_message_bytes:
            raise self._fail(
                f"the result was {size} bytes, over the limit of {self.config.max_message_bytes}"
            )
        return self._read_exact(size, deadline, timeout, doing)

    def _fail(self, message: str) -> SubjectUnavailable:
        """Kill the worker after a timeout or crash; the next check gets a fresh one."""
        self._kill()
        if self._lost_server:  # the caller retries on a cold worker: not the student's failure
            return SubjectUnavailable(message)
        self.failures += 1
        if self.failures > self.config.max_restarts:
            self._exhausted = (f"not run: the previous {self.failures} checks of this exercise "
                               f"timed out or crashed (the last: {message})")
        return SubjectUnavailable(message)

    def _over_memory(self) -> bool:
        """Poll resident memory where no cgroup limits it (CUDA runs have no address limit)."""
        limit = self.config.memory_bytes
        if limit is None or self._cgroup is not None or self._proc is None:
            return False
        try:
            status = Path(f"/proc/{self._proc.pid}/status").read_text()
        except OSError:
            return False
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 > limit
        return False

    def _over_scratch(self) -> str | None:
        """Where no tmpfs caps scratch (not root), measure it: what was exceeded, if anything."""
        limit = self.config.scratch_bytes
        if limit is None or self._scratch_capped or self._scratch is None:
            return None
        used, files = scratch_usage(self._scratch, stop_at=limit)
        if used > limit:
            return (f"your code wrote more than {limit / 2**20:g} MiB to its working directory "
                    "(the limit for all its files together)")
        if files > MAX_SCRATCH_FILES:
            return (f"your code created more than {MAX_SCRATCH_FILES} files in its working "
                    "directory (the limit)")
        return None

    def _read_exact(self, n: int, deadline: float, timeout: float, doing: str) -> bytes:
        chunks, left = [], n
        while left:
            wait = deadline - time.monotonic()
            ready = (select.select([self._from_child], [], [], min(max(wait, 0), 0.25))[0]
                     if wait > 0 else [])
            if not ready and wait > 0:
                if self.uses_cuda and self._over_memory():
                    limit = (self.config.memory_bytes or 0) / GIB
                    raise self._fail(f"memory limit {limit:g} GiB exceeded (resident) while {doing}")
                over = self._over_scratch()
                if over:
                    raise self._fail(f"{over} while {doing}")
                continue
            if not ready:
                raise self._fail(f"timed out after {timeout:g} s while {doing}")
            chunk = os.read(self._from_child, min(left, 1 << 20))
            if not chunk:
                raise self._fail(f"the process exited while {doing} ({self._exit_reason()})")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _exit_reason(self) -> str:
        proc = self._proc
        code = proc.wait(timeout=5) if proc is not None else None
        if code is None and isinstance(proc, zygote.ForkedWorker) and not proc.server.alive():
            # its death signal fired: the fork server died, not because of the student's code
            proc.server.notice_death()
            self._lost_server = True
            self._cold_reason = ("the fork server died while this submission was graded; its "
                                 "later workers were started cold")
        self._kill()
        if self._lost_server:
            return "the fork server that started it died; the check is run again on a cold worker"
        if code is None:
            return "unknown exit"
        if code < 0:
            name = signal.Signals(-code).name
            hint = {"SIGKILL": ": killed, perhaps over the memory limit",
                    "SIGXCPU": ": CPU time limit reached",
                    "SIGXFSZ": ": file size limit reached",
                    "SIGSEGV": ": crashed", "SIGABRT": ": aborted"}.get(name, "")
            return f"killed by {name}{hint}"
        return f"exit code {code}"

    def remaining_s(self) -> float:
        return self.config.submission_timeout_s - (time.monotonic() - self.started_at)

    def run(self, probe: str, args: list[Any], kwargs: dict[str, Any]) -> Outcome:
        if self._broken:
            raise SubjectUnavailable(self._broken)
        if self._exhausted:
            raise SubjectUnavailable(self._exhausted)
        remaining = self.remaining_s()
        if remaining <= 0:
            self._kill()
            raise SubjectUnavailable(
                f"the submission used its whole time budget of {self.config.submission_timeout_s:g} s"
            )
        request = wire.encode({"probe": probe, "args": args, "kwargs": kwargs})
        while True:
            if self._proc is None:
                try:
                    self._start()
                except SandboxStartError as exc:  # it started before: count it against the check
                    raise self._fail(str(exc)) from None
            timeout = min(self.config.check_timeout_s, self.remaining_s())
            try:
                try:
                    write_frame(self._to_child, request)
                except BrokenPipeError:
                    raise self._fail(f"the process had exited ({self._exit_reason()})") from None
                data = self._receive(timeout, "running the check")
                break
            except SubjectUnavailable:
                if not self._retry_after_lost_server():
                    raise
        try:
            return Outcome.from_data(wire.decode(data, max_bytes=self.config.max_message_bytes))
        except wire.WireError as exc:
            raise self._fail(f"the sandbox sent back something that is not a result: {exc}") from None

    def _retry_after_lost_server(self) -> bool:
        """Whether the worker just died with the fork server: then run the step again, once,
        on a cold worker (``_cold_reason`` is set, so this cannot repeat)."""
        lost, self._lost_server = self._lost_server, False
        return lost

    def recycle(self) -> None:
        """End the current worker; the next check starts a fresh one (not counted as a failure)."""
        self._kill()

    def begin_exercise(self, exercise: str) -> None:
        """On CUDA runs, give each exercise a fresh process: a device-side assert in one
        exercise poisons the CUDA context for everything after it."""
        if exercise != self.exercise:
            self.failures, self._exhausted = 0, None  # one exercise's crashes never cost another
            if self.uses_cuda and self.exercise is not None:
                self._kill()
        self.exercise = exercise

    def start(self) -> None:
        """Start the worker now, so that errors in the student's cells are known up front."""
        try:
            self._start()
        except SubjectUnavailable as exc:
            self._broken = f"your code could not be loaded: {exc}"


class SandboxSubject(Subject):
    """The student, as seen from the grader: every call goes to the sandbox."""

    label = "student"

    def __init__(self, sandbox: Sandbox, *, names: dict[str, frozenset[str]] | None = None) -> None:
        self.sandbox = sandbox
        self.names = names or {}
        self._static: frozenset[str] = frozenset()

    def begin_exercise(self, exercise: str) -> None:
        self.sandbox.begin_exercise(exercise)
        self._static = self.names.get(exercise, frozenset())

    def run(self, probe: str, *args: Any, **kwargs: Any) -> Outcome:
        outcome = self.sandbox.run(probe, list(args), kwargs)
        # what the source names, seen from here, joins what the untrusted recorder reported
        outcome = replace(outcome, torch_calls=outcome.torch_calls | self._static)
        if outcome.error is not None and any(
                mark in outcome.error.message for mark in CUDA_POISON):
            self.sandbox.recycle()  # the CUDA context is unusable now: start afresh
        return outcome
