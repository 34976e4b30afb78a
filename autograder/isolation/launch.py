"""Start workers: warm from the fork server where it can, cold otherwise, and nowhere else.

A :class:`Launcher` serves one submission. It decides each worker's process set-up (a
:class:`~autograder.isolation.child.ChildSpec`: environment, scratch directory, rlimits, cgroup),
starts the worker, sends the start-up frame and waits for the worker's word that it is confined.
It is the one place that falls back from warm to cold: when the fork server is unavailable, when
a warm worker fails before running any student code, and after the fork server died under a
running worker (the submission's later workers then all start cold). What it hands back, a
:class:`Worker`, is a confined process whose pipes the sandbox talks to.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from autograder import tempdirs
from autograder.isolation import cgroup, frames, zygote
from autograder.isolation.child import ChildSpec
from autograder.isolation.config import SandboxConfig
from autograder.isolation.zygote import DYNAMO_IMPORT, DYNAMO_USERS

WARM_NOTE = ("warm start: forked from the fork server (torch preloaded, shared copy-on-write; the "
             "cgroup memory limit counts only the pages this worker touches itself)")


class SandboxStartError(RuntimeError):
    """The worker failed before running any student code: a problem of the machine or the
    configuration (e.g. a memory limit too small to import torch), never the student's."""


class ChannelBroken(Exception):
    """The worker stopped, or sent something unreadable, before it said it was confined."""


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


class Process(Protocol):
    """A started worker process, however it was started."""

    pid: int

    def wait(self, timeout: float) -> int | None:
        """Its exit status as ``Popen.returncode`` gives it, or None if unknown after ``timeout``."""

    def release(self) -> None:
        """After it was killed: let its pid (and so its process group id) be reused."""


class ColdProcess:
    """A worker the grader started itself, ``python -I -m autograder.isolation.worker``."""

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


@dataclass
class Worker:
    """A started worker: its process, its pipes, its scratch directory and cgroup, and what the
    grader should say about how it was started."""

    process: Process
    to_child: int
    from_child: int
    scratch: tempdirs.Claimed
    cgroup: cgroup.Cgroup | None
    note: str | None  # how it was started, where that is worth reporting
    streams: list[Any] = field(default_factory=list)
    pumps: list[threading.Thread] = field(default_factory=list)
    confinement: list[str] = field(default_factory=list)  # what the worker says is in force
    scratch_capped: bool = False  # it mounted a size-limited tmpfs on its scratch directory
    cuda_problem: str | None = None  # a CUDA run whose confined worker cannot use the GPU: why
    released: bool = False  # killed and reaped: its pid may be reused

    @property
    def pid(self) -> int:
        return self.process.pid

    def end(self) -> None:
        """End a worker that has answered its last request, without waiting for its exit.

        Closing its request pipe tells it to close its stdout and stderr; once both are closed,
        all it printed has been read, and it is killed. Its exit (the kernel tears down its copy
        of torch's address space, 10-20 ms; a CUDA context takes longer) and the clean-up of
        :meth:`kill` then run in the background, beside the next worker's start
        (:func:`wait_for_exits` waits for them). Where the output stays open (a process of the
        student's holds it, or the student's code took over the worker's loop), or where its
        cgroup holds other processes (the student's, a ``setsid`` daemon included), the worker
        and they are killed and waited for, as by :meth:`kill`.
        """
        try:
            if self.to_child >= 0:
                os.close(self.to_child)
                self.to_child = -1
            deadline = time.monotonic() + END_GRACE_S
            for pump in self.pumps:
                pump.join(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:  # interrupted: kill it here and now
            self.kill()
            raise
        left = set(self.cgroup.pids_in()) - {self.process.pid} if self.cgroup is not None else set()
        if left or any(pump.is_alive() for pump in self.pumps):  # processes of the student's
            self.kill()  # (a setsid daemon included): gone before the submission's result is
            return
        self._signal()
        _EXITS.start(self.kill)

    def _signal(self) -> None:
        if self.released:  # its pid, and so its process group id, may be another's by now
            return
        for kill in (os.killpg, os.kill):  # the group, and the worker if it has none yet
            try:
                kill(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """Kill the worker and everything it started; close its pipes; remove its scratch.
        Interrupted (Ctrl-C, or SIGTERM in a grader process), it still kills and removes."""
        try:
            self._signal()
            if self.cgroup is not None:  # also reaches descendants that left the group
                self.cgroup.kill_all()
            self.process.release()
            self.released = True
            for fd in (self.to_child, self.from_child):
                if fd >= 0:
                    os.close(fd)
            self.to_child = self.from_child = -1
            for pump in self.pumps:
                pump.join(timeout=5)
            for stream in self.streams:
                stream.close()
            self.pumps, self.streams = [], []
        finally:
            self._signal()
            if self.cgroup is not None:
                self.cgroup.kill_all()
                self.cgroup.remove()
                self.cgroup = None
            self.scratch.remove()


END_GRACE_S = 1.0  # how long Worker.end waits for a worker to close its output


class _Exits:
    """The workers ended by :meth:`Worker.end` that are still exiting, each in a thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, kill: Callable[[], None]) -> None:
        def run() -> None:
            try:
                kill()
            except Exception as exc:  # noqa: BLE001 - a clean-up that failed must not stop grading
                print(f"autograder: a worker's clean-up failed: {exc}", file=sys.stderr)

        thread = threading.Thread(target=run, name="autograder-worker-exit", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()


_EXITS = _Exits()


def wait_for_exits() -> None:
    """Wait until every worker ended by :meth:`Worker.end` is gone and cleaned up (a batch's
    last step, and this process's at exit)."""
    _EXITS.wait()


atexit.register(wait_for_exits)


LOADER_VARIABLES = ("LD_LIBRARY_PATH",)
"""Kept from the grader's environment: where the machine's CUDA driver (``libcuda.so``) may be
found. The loader reads it once, when a process starts, so the fork server needs it too: its
children initialise CUDA after the fork and can no longer learn a library path."""


def base_env() -> dict[str, str]:
    """The variables every worker and the fork server get; of the grader's own, only the
    library path (:data:`LOADER_VARIABLES`)."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",  # read when torch loads: also keeps the fork server one thread
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",  # numpy's BLAS: read before OMP_NUM_THREADS
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
        **{name: os.environ[name] for name in LOADER_VARIABLES if os.environ.get(name)},
    }


def zygote_env() -> dict[str, str]:
    return {**base_env(), "CUDA_VISIBLE_DEVICES": ""}  # it must never touch a GPU anyway


def setup_imports(cells: list[dict[str, str]]) -> tuple[str, ...]:
    """The modules the instructor's setup cell imports (never a student's cell): the fork server
    imports them once, so no worker pays for matplotlib or scikit-learn again."""
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


def preload_for(cells: list[dict[str, str]], probes_source: str = "") -> tuple[str, ...]:
    """What the fork server imports before it forks a worker for ``cells``: the setup cell's
    imports, and :data:`DYNAMO_IMPORT` where the cells or the probes mention what imports it
    (:data:`DYNAMO_USERS`: an optimiser, ``torch.func``): a worker that uses one then does not
    pay for it, and one that does not (a1's bce, a2's softmax) is not kept waiting for it."""
    modules = setup_imports(cells)
    texts = [*(c.get("source", "") for c in cells), probes_source]
    if any(word in text for text in texts for word in DYNAMO_USERS):
        modules += (DYNAMO_IMPORT,)
    return modules


def warm_up(config: SandboxConfig, *, preload: tuple[str, ...] = ()) -> None:
    """Launch the fork server in the background now (importing ``preload`` too), so that it
    boots while this process does other work (importing torch, running the reference) and the
    first worker need not wait for it.

    Optional: the first warm start launches it anyway. Never raises; a launch that fails here is
    tried again (and reported) by the first start.
    """
    running = zygote.running()
    if not config.warm or (running is not None and running.alive()):
        return

    def launch() -> None:
        try:
            zygote.shared(env=zygote_env(), startup_timeout_s=config.startup_timeout_s,
                          preload=preload)
        except zygote.ZygoteUnavailable:
            pass

    threading.Thread(target=launch, name="autograder-warm-up", daemon=True).start()


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


def _pump(stream: Any, sink: CapturedOutput) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        sink.feed(chunk)


class Launcher:
    """Start the workers of one submission; see the module's docstring."""

    def __init__(self, config: SandboxConfig, *, uses_cuda: bool, preload: tuple[str, ...] = (),
                 stdout: CapturedOutput, stderr: CapturedOutput) -> None:
        self.config = config
        self.uses_cuda = uses_cuda
        self.preload = preload
        self.sinks = (stdout, stderr)
        self.cold_reason: str | None = None  # why this submission's workers start cold
        self.nproc: int | None = None  # RLIMIT_NPROC, where no cgroup counts processes

    def start(self, message: dict[str, Any]) -> Worker:
        """Launch a worker, send it its start-up ``message`` (the cells, the probes, how to
        confine itself; its scratch directory is added here) and return it once it says it is
        confined.

        Raise :class:`SandboxStartError` when no worker gets that far: nothing of the student's
        ran, so the failure is the machine's or the configuration's.
        """
        if self.config.warm and self.cold_reason is None:
            worker = self._launch(warm=True)
            try:
                return self._confirm(worker, message)
            except ChannelBroken as exc:
                if worker.note != WARM_NOTE:  # the fork server was unavailable: it was cold
                    raise _start_error(exc) from None
                self.cold_reason = (f"the warm worker failed before running any student code "
                                    f"({exc}); this submission's workers were started cold")
        worker = self._launch(warm=False)
        try:
            return self._confirm(worker, message)
        except ChannelBroken as exc:
            raise _start_error(exc) from None

    def lost_with_server(self, worker: Worker) -> bool:
        """Whether ``worker`` died because its fork server did (never the student's doing);
        if so, this submission's later workers start cold."""
        process = worker.process
        if not isinstance(process, zygote.ForkedWorker) or process.server.alive():
            return False
        process.server.notice_death()
        self.cold_reason = ("the fork server died while this submission was graded; its later "
                            "workers were started cold")
        return True

    def _spec(self, scratch: Path, group: cgroup.Cgroup | None) -> ChildSpec:
        env = {**base_env(), "HOME": str(scratch), "TMPDIR": str(scratch)}
        if not self.uses_cuda:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        limits = {}
        if self.nproc is not None:  # no cgroup: cap processes per user (root is exempt)
            limits["NPROC"] = self.nproc
        config = self.config
        limits.update(CORE=0, CPU=config.cpu_seconds, FSIZE=config.max_file_bytes,
                      NOFILE=config.max_open_files)
        if config.memory_bytes is not None and not self.uses_cuda:  # CUDA maps huge ranges
            limits["AS"] = config.memory_bytes
        procs = tuple(str(p) for p in group.procs_files()) if group is not None else ()
        return ChildSpec(env=env, cwd=str(scratch), rlimits=limits, cgroup=procs)

    def _launch(self, *, warm: bool) -> Worker:
        config = self.config
        claimed: tempdirs.Claimed | None = None
        group: cgroup.Cgroup | None = None
        pipes: list[tuple[int, int]] = []  # requests, replies, stdout, stderr: (read, write)
        try:  # whatever stops this (Ctrl-C and SIGTERM included) leaves nothing behind
            claimed = tempdirs.claim("grade-scratch-")
            self.nproc = None
            if os.geteuid() != 0 and not (config.cgroup and cgroup.available()):
                self.nproc = _user_processes() + config.max_processes
            group = (cgroup.create(max_pids=config.max_processes, memory_bytes=config.memory_bytes)
                     if config.cgroup else None)
            spec = self._spec(claimed.path, group)
            for _ in range(4):
                pipes.append(os.pipe())
            (to_child_r, to_child), (from_child, from_child_w), (out_r, out_w), (err_r, err_w) = pipes
            theirs = [out_w, err_w, to_child_r, from_child_w]
            process, note = self._fork(spec, theirs) if warm else (None, None)
            if process is None:
                process = self._spawn(spec, theirs)
        except BaseException:
            for fd in (fd for pair in pipes for fd in pair):
                os.close(fd)
            if group is not None:
                group.remove()
            if claimed is not None:
                claimed.remove()
            raise
        for fd in theirs:  # the worker has them now
            os.close(fd)
        streams = [open(out_r, "rb"), open(err_r, "rb")]  # noqa: SIM115 - closed by Worker.kill
        pumps = [threading.Thread(target=_pump, args=(stream, sink), daemon=True)
                 for stream, sink in zip(streams, self.sinks, strict=True)]
        for pump in pumps:
            pump.start()
        return Worker(process=process, to_child=to_child, from_child=from_child, scratch=claimed,
                      cgroup=group, note=note, streams=streams, pumps=pumps)

    def _fork(self, spec: ChildSpec, theirs: list[int]) -> tuple[Process | None, str]:
        """Ask the fork server for a worker; None (and why) where it cannot give one."""
        try:
            server = zygote.shared(env=zygote_env(), startup_timeout_s=self.config.startup_timeout_s,
                                   preload=self.preload)
            return server.spawn(spec, theirs, preload=self.preload), WARM_NOTE
        except zygote.ZygoteUnavailable as exc:
            return None, f"fork server unavailable ({exc}): this worker was started cold"

    def _spawn(self, spec: ChildSpec, theirs: list[int]) -> ColdProcess:
        out_w, err_w, to_child_r, from_child_w = theirs
        # no preexec_fn (unsafe in a process with threads): the worker sets itself up, first thing
        return ColdProcess(subprocess.Popen(
            [sys.executable, "-I", "-m", "autograder.isolation.worker", spec.to_json(),
             str(to_child_r), str(from_child_w)],
            cwd=spec.cwd, env=spec.env, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
            pass_fds=(to_child_r, from_child_w), start_new_session=True,
        ))

    def _confirm(self, worker: Worker, message: dict[str, Any]) -> Worker:
        """Send the start-up frame and wait for the worker's word that it is confined."""
        try:
            confine = {**message.get("confine", {}), "scratch": str(worker.scratch.path)}
            try:
                frames.write_frame(worker.to_child, json.dumps({**message, "confine": confine}).encode())
            except BrokenPipeError:
                pass  # it is gone already: the read below says how
            data = frames.receive_frame(worker.from_child, timeout=self.config.startup_timeout_s,
                                        max_bytes=self.config.max_message_bytes)
            ready = json.loads(data)
            if not isinstance(ready, dict):
                raise ValueError(f"a {type(ready).__name__}, not a ready message")
        except frames.FrameError as exc:
            how = f" ({describe_exit(worker.process.wait(5))})" if isinstance(exc, frames.Closed) else ""
            worker.kill()
            raise ChannelBroken(f"{exc} while starting the sandbox{how}; its error output ends "
                                f"with: {self._stderr_tail()}") from None
        except ValueError as exc:
            worker.kill()
            raise ChannelBroken(f"{exc}; its error output ends with: {self._stderr_tail()}") from None
        except BaseException:  # Ctrl-C or SIGTERM while it starts: nothing may be left behind
            worker.kill()
            raise
        worker.confinement = [str(n) for n in ready.get("confinement", [])][:10]
        worker.scratch_capped = ready.get("scratch_capped") is True
        problem = ready.get("cuda_problem")
        worker.cuda_problem = str(problem)[:600] if problem else None
        return worker

    def _stderr_tail(self) -> str:
        return self.sinks[1].text()[-600:].strip() or "(nothing)"


def describe_exit(code: int | None) -> str:
    """A worker's exit status, as a student can read it."""
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


def _start_error(exc: ChannelBroken) -> SandboxStartError:
    return SandboxStartError(
        f"the sandbox worker failed before running any student code ({exc}). "
        "Check --memory-gib (importing torch needs about 4 GiB of address space) and "
        "that `python -I -m autograder.isolation.worker` runs on this machine.")
