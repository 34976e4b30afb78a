"""One submission's sandbox: send probe requests to its worker, enforce time, memory and scratch.

The worker runs the submission in an empty scratch directory with a scrubbed environment and
resource limits, in its own session and cgroup; :mod:`autograder.isolation.launch` starts it
(warm or cold) and :mod:`autograder.isolation.worker` is its side. Each probe has a wall-clock
deadline; a worker that misses it, crashes or goes over a limit is killed with its whole group and
a fresh one is started for the next check, so one hang costs one check. Failures are counted per
exercise: after ``max_restarts`` of them the exercise's remaining checks are not run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from autograder import wire
from autograder.isolation import frames
from autograder.isolation.config import GIB, MIB, SandboxConfig
from autograder.isolation.launch import (
    CapturedOutput,
    Launcher,
    SandboxStartError,
    Worker,
    describe_exit,
    preload_for,
)
from autograder.server import private_folders
from autograder.subjects import Outcome, Subject, SubjectUnavailable

CUDA_POISON = ("CUDA error", "device-side assert", "CUBLAS_STATUS", "cuDNN error")
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


class WorkerLost(SubjectUnavailable):
    """The worker died with its fork server: not the student's doing; the step runs again cold."""


class _OverLimit(Exception):
    """The worker went over a limit polled from here (resident memory, scratch)."""


class Sandbox:
    """One submission's worker process; restarted after a timeout or crash.

    ``stdout`` and ``stderr`` collect what every worker of the submission printed; they are
    complete once the current worker has ended (:meth:`recycle`, :meth:`close`): a reply can
    arrive before the output printed ahead of it has been read from its pipe.
    """

    def __init__(self, cells: list[dict[str, str]], *, config: SandboxConfig,
                 uses_cuda: bool = False, deny: tuple[Path, ...] = (),
                 probes: dict[str, str] | None = None) -> None:
        self.cells = cells
        self.config = config
        self.uses_cuda = uses_cuda
        self.stdout = CapturedOutput(config.output_limit_bytes)
        self.stderr = CapturedOutput(config.output_limit_bytes)
        self.launcher = Launcher(config, uses_cuda=uses_cuda,
                                 preload=preload_for(cells, (probes or {}).get("source", "")),
                                 stdout=self.stdout, stderr=self.stderr)
        # the grading servers' sockets and tokens too: student code must not reach a server
        hidden = [*deny, *private_folders()]
        confine = {"landlock": config.landlock, "cuda": uses_cuda, "deny": [str(p) for p in hidden],
                   "namespaces": config.namespaces, "scratch_bytes": config.scratch_bytes,
                   "file_bytes": config.max_file_bytes}
        # the assignment's probes.py ({"filename", "source"}): trusted, loaded before the cells
        self._start_message = {"cells": cells, "confine": confine, "probes": probes or {}}
        self.confinement: list[str] = []
        self.cuda_problem: str | None = None  # set on a CUDA run whose worker cannot reach the GPU
        self.cell_errors: dict[str, dict[str, Any]] = {}
        self.started_at = time.monotonic()
        self.starts = 0
        self.failures = 0
        self.exercise: str | None = None
        self._worker: Worker | None = None
        self._broken: str | None = None  # the code could not even be loaded
        self._exhausted: str | None = None  # this exercise used up its timeouts and crashes

    # -- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        """Start a worker and load the cells. Raise SandboxStartError if no worker could start,
        SubjectUnavailable if loading the cells failed (timed out, crashed)."""
        while True:
            try:
                self._start_once()
                return
            except WorkerLost:  # the launcher starts the next worker cold: this cannot repeat
                self.starts -= 1

    def _start_once(self) -> None:
        self.starts += 1
        worker = self._worker = self.launcher.start(self._start_message)
        if self.starts == 1:
            self.confinement = list(worker.confinement)
            self.cuda_problem = worker.cuda_problem  # asked only on CUDA runs
            if worker.cgroup is not None:
                self.confinement.extend(worker.cgroup.describe())
            elif self.launcher.nproc is not None:
                self.confinement.append(
                    f"no cgroup: at most {self.config.max_processes} more processes for this user "
                    "(RLIMIT_NPROC); processes that call setsid() may outlive the submission")
            else:
                self.confinement.append("no cgroup and running as root: no process count limit")
        note = self.launcher.cold_reason if worker.note is None else worker.note
        if note is not None and note not in self.confinement:
            self.confinement.append(note)
        try:
            reply = json.loads(self._receive(self.config.startup_timeout_s, "loading your code"))
            statuses = list(reply.get("cells", []))
        except (ValueError, TypeError, AttributeError) as exc:
            self._kill()
            raise SubjectUnavailable(f"the sandbox sent a malformed start-up reply: {exc}") from None
        if self.starts == 1:
            for status in statuses:
                if isinstance(status, dict) and status.get("error"):
                    self.cell_errors[str(status.get("id"))] = status["error"]

    def _kill(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.kill()

    def close(self) -> None:
        self._kill()

    def end(self) -> None:
        """Close after the last check: the output is complete on return, and the worker's exit
        runs in the background (:meth:`~autograder.isolation.launch.Worker.end`)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.end()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- limits -----------------------------------------------------------------------------

    def _receive(self, timeout: float, doing: str) -> bytes:
        """One frame from the worker within ``timeout``; on a timeout, a crash or a limit, kill
        it and raise SubjectUnavailable (WorkerLost if it died with its fork server)."""
        worker = self._worker
        if worker is None:
            raise SubjectUnavailable(f"no worker while {doing}")
        try:
            return frames.receive_frame(worker.from_child, timeout=timeout,
                                        max_bytes=self.config.max_message_bytes, poll=self._poll)
        except frames.Closed:
            raise self._exited(f"while {doing}") from None
        except frames.TooLarge as exc:
            raise self._fail(str(exc)) from None
        except (frames.FrameError, _OverLimit) as exc:
            raise self._fail(f"{exc} while {doing}") from None

    def _exited(self, when: str) -> SubjectUnavailable:
        """The worker's pipe closed: say why, and whether it is the student's failure."""
        worker = self._worker
        code = worker.process.wait(5) if worker is not None else None
        if code is None and worker is not None and self.launcher.lost_with_server(worker):
            self._kill()
            return WorkerLost("the fork server that started it died; the check is run again on "
                              "a cold worker")
        return self._fail(f"the process exited {when} ({describe_exit(code)})")

    def _fail(self, message: str) -> SubjectUnavailable:
        """Kill the worker after a timeout or crash; the next check gets a fresh one."""
        self._kill()
        self.failures += 1
        if self.failures > self.config.max_restarts:
            self._exhausted = (f"not run: the previous {self.failures} checks of this exercise "
                               f"timed out or crashed (the last: {message})")
        return SubjectUnavailable(message)

    def _poll(self) -> None:
        """While waiting: stop a worker over the limits no kernel mechanism enforces here."""
        worker = self._worker
        if worker is None:
            return
        limit = self.config.memory_bytes
        if self.uses_cuda and limit is not None and worker.cgroup is None:
            # CUDA runs have no address-space limit: poll resident memory
            if _resident_bytes(worker.pid) > limit:
                raise _OverLimit(f"memory limit {limit / GIB:g} GiB exceeded (resident)")
        scratch = self.config.scratch_bytes
        if scratch is not None and not worker.scratch_capped:  # no tmpfs caps it (not root)
            used, files = scratch_usage(worker.scratch.path, stop_at=scratch)
            if used > scratch:
                raise _OverLimit(f"your code wrote more than {scratch / MIB:g} MiB to its working "
                                 "directory (the limit for all its files together)")
            if files > MAX_SCRATCH_FILES:
                raise _OverLimit(f"your code created more than {MAX_SCRATCH_FILES} files in its "
                                 "working directory (the limit)")

    def remaining_s(self) -> float:
        return self.config.submission_timeout_s - (time.monotonic() - self.started_at)

    # -- requests ---------------------------------------------------------------------------

    def run(self, probe: str, args: list[Any], kwargs: dict[str, Any]) -> Outcome:
        """Run ``probe`` on the student's namespace with plain-data arguments; return what came
        back. Raise SubjectUnavailable when the worker timed out, crashed or is used up."""
        if self._broken:
            raise SubjectUnavailable(self._broken)
        if self._exhausted:
            raise SubjectUnavailable(self._exhausted)
        if self.remaining_s() <= 0:
            self._kill()
            raise SubjectUnavailable(
                f"the submission used its whole time budget of {self.config.submission_timeout_s:g} s"
            )
        request = wire.encode({"probe": probe, "args": args, "kwargs": kwargs})
        while True:
            try:
                data = self._request(request)
                break
            except WorkerLost:  # the launcher starts the next worker cold: this cannot repeat
                continue
        try:
            return Outcome.from_data(wire.decode(data, max_bytes=self.config.max_message_bytes))
        except wire.WireError as exc:
            raise self._fail(f"the sandbox sent back something that is not a result: {exc}") from None

    def _request(self, request: bytes) -> bytes:
        if self._worker is None:
            try:
                self._start()
            except SandboxStartError as exc:  # it started before: count it against the check
                raise self._fail(str(exc)) from None
        worker = self._worker
        if worker is None:  # pragma: no cover - _start sets it or raises
            raise SubjectUnavailable("no worker")
        try:
            frames.write_frame(worker.to_child, request)
        except BrokenPipeError:
            raise self._exited("before the check could be sent") from None
        return self._receive(min(self.config.check_timeout_s, self.remaining_s()), "running the check")

    def recycle(self) -> None:
        """End the current worker; the next check starts a fresh one (not counted as a failure)."""
        self._kill()

    def begin_exercise(self, exercise: str) -> None:
        """On CUDA runs, give each exercise a fresh process: a device-side assert in one
        exercise poisons the CUDA context for everything after it."""
        if exercise != self.exercise:
            self.failures, self._exhausted = 0, None  # one exercise's crashes never cost another
            if self.uses_cuda and self.exercise is not None:
                self.end()
        self.exercise = exercise

    def start(self) -> None:
        """Start the worker now, so that errors in the student's cells are known up front.
        Raise SandboxStartError when no worker can start at all (the machine's problem)."""
        try:
            self._start()
        except SubjectUnavailable as exc:
            self._broken = f"your code could not be loaded: {exc}"


def _resident_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


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
