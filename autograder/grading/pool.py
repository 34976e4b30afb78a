"""Grade several submissions at once, each in a grader process of its own.

How many at once by default, and why processes: see :func:`default_workers` and
:class:`GraderPool`.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from autograder import tempdirs
from autograder.course import Assignment, CourseError
from autograder.grading.config import GradeConfig, uses_cuda
from autograder.grading.scoring import Submission, error_result, grade_submission
from autograder.isolation.child import die_with_parent
from autograder.isolation.launch import SandboxStartError
from autograder.results import SubmissionResult

SUBMISSIONS_PER_GRADER = 100
"""A grader costs about 4 s to start (python, torch, the reference, its fork server): what
grading 60 a2 submissions costs once the fork server forks ahead and overlaps exits. Measured
on 2 cores (bench/end_to_end.py --sizes 100 --workers N): 100 a2 notebooks took 5.8 s with one
grader and 9.4 s with two. Smaller batches are faster with fewer graders."""

STOP_GRACE_S = 30.0
"""How long a stopped batch waits for its graders to remove their sandboxes and exit (on a
loaded machine, with each sandbox's exit to wait for, this took over 10 s) before it kills
them. Either way it then removes the scratch folders they left."""

GRADERS_PER_GPU = 4
"""Default cap on graders sharing one GPU: each grader and each of its sandboxes holds a CUDA
context of its own (about 0.5 GiB of device memory), and they take turns on the device."""


def default_workers(submissions: int, *, devices: tuple[str, ...]) -> int:
    """Return how many submissions to grade at once on this machine.

    One per usable CPU core (the sandboxes are single-threaded), at most one per
    :data:`SUBMISSIONS_PER_GRADER` submissions, and where cuda checks run, at most
    :data:`GRADERS_PER_GPU` per visible GPU.
    """
    workers = min(_cores(), max(1, submissions // SUBMISSIONS_PER_GRADER))
    if uses_cuda(devices):
        workers = min(workers, GRADERS_PER_GPU * max(len(_visible_gpus()), 1))
    return max(workers, 1)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


@dataclass
class _Grader:
    """A grader process and this side's ends of its pipes."""

    process: subprocess.Popen[bytes]
    to_grader: Connection
    from_grader: Connection

    def close(self) -> None:
        self.to_grader.close()
        self.from_grader.close()


class GraderPool:
    """Grade several submissions at once, each grader in a process of its own.

    Why processes and not threads: a pytest run keeps process-wide state (it swaps ``sys.stdout``
    and file descriptors 1 and 2 while capturing, installs import hooks and warning filters), so
    two runs in one process corrupt each other. Each grader is trusted code like this process:
    a fresh interpreter (no inherited threads or CUDA state, and unlike multiprocessing's spawn,
    no re-import of the caller's ``__main__``) that executes the reference once and then grades
    one submission at a time in its own sandbox; results come back as JSON. A grader that dies
    costs only the submission it was grading, which gets an error result. The graders die with
    this process (``kill -9`` included), and their sandboxes with them.
    """

    def __init__(self, size: int, *, assignment: Assignment, config: GradeConfig) -> None:
        if size < 1:
            raise ValueError(f"Invalid pool size {size}: must be at least 1")
        self.size = size
        self.assignment = assignment
        self.config = config
        gpus = _visible_gpus() if config.uses_cuda else []
        self._gpus = gpus if len(gpus) > 1 else []  # spread graders over GPUs where there are several
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._finished = False
        self._processes: list[subprocess.Popen[bytes]] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> GraderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def grade(self, todo: list[Submission]) -> Iterator[tuple[int, SubmissionResult]]:
        """Yield ``(position in todo, result)`` in the order the submissions finish."""
        tasks: queue.SimpleQueue[tuple[int, Submission]] = queue.SimpleQueue()
        for task in enumerate(todo):
            tasks.put(task)
        done: queue.SimpleQueue[tuple[int, SubmissionResult] | BaseException] = queue.SimpleQueue()
        for slot in range(min(self.size, len(todo))):
            thread = threading.Thread(target=self._drive, args=(slot, tasks, done),
                                      name=f"grader-{slot}", daemon=True)
            self._threads.append(thread)
            thread.start()
        for _ in todo:
            while True:
                try:  # a timeout, so that Ctrl-C reaches this thread promptly
                    item = done.get(timeout=0.5)
                    break
                except queue.Empty:
                    continue
            if isinstance(item, BaseException):
                raise item
            yield item
        self._finished = True

    def close(self) -> None:
        """Stop: after a finished batch, let the graders exit; otherwise stop them now."""
        self._stopping.set()
        if not self._finished:
            with self._lock:
                running = [p for p in self._processes if p.poll() is None]
            for process in running:  # SIGTERM: a grader removes its sandboxes, then exits
                process.terminate()
            deadline = time.monotonic() + STOP_GRACE_S
            for process in running:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for thread in self._threads:
            thread.join(timeout=30)
        # a grader killed (here, by _finish, the OOM killer, kill -9) or stopped by a SIGTERM
        # that landed in its clean-up leaves its sandbox's scratch behind; its sandboxes died
        # with it (parent-death signal), and their folders are named after it
        with self._lock:
            gone = [p.pid for p in self._processes if p.poll() is not None]
        tempdirs.sweep_left_by("grade-scratch-", gone,
                               where=Path(os.environ.get("TMPDIR") or tempfile.gettempdir()))

    def _start(self, slot: int) -> _Grader:
        env = dict(os.environ)
        if self._gpus:  # set before the grader or its sandboxes initialise CUDA
            env["CUDA_VISIBLE_DEVICES"] = self._gpus[slot % len(self._gpus)]
        task_r, task_w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            with self._lock:
                if self._stopping.is_set():
                    raise _Stopped
                # its own session: Ctrl-C reaches only this process, which stops the graders
                # the reference runs in the grader, on the checks' small inputs, while its
                # sandbox worker waits, and then the other way round: one thread. More only
                # spin while the worker needs the core (on a busy 2-core machine a reference's
                # 20 SGD steps took 0.79 s with 2 threads, 0.11 s with 1)
                threads = 1
                process = subprocess.Popen(
                    [sys.executable, "-c", _GRADER_MAIN, _PACKAGE_ROOT, str(os.getpid()),
                     str(threads), str(task_r), str(reply_w)],
                    env=env, stdin=subprocess.DEVNULL, pass_fds=(task_r, reply_w),
                    start_new_session=True)
                self._processes.append(process)
        except BaseException:
            os.close(task_w)
            os.close(reply_r)
            raise
        finally:
            os.close(task_r)
            os.close(reply_w)
        grader = _Grader(process, Connection(task_w, readable=False),
                         Connection(reply_r, writable=False))
        grader.to_grader.send((self.assignment, self.config))
        return grader

    def _drive(self, slot: int, tasks: queue.SimpleQueue[tuple[int, Submission]],
               done: queue.SimpleQueue[tuple[int, SubmissionResult] | BaseException]) -> None:
        """Feed one grader process submissions until none are left (runs in its own thread).

        The grader process is started from this thread and ends before it: the kernel's
        parent-death signal follows the thread that started a process.
        """
        grader: _Grader | None = None
        try:
            while not self._stopping.is_set():
                try:
                    position, submission = tasks.get_nowait()
                except queue.Empty:
                    return
                if grader is None:
                    grader = self._start(slot)
                try:
                    grader.to_grader.send(submission)
                    reply = json.loads(grader.from_grader.recv_bytes())
                except (EOFError, OSError):
                    if self._stopping.is_set():
                        return
                    try:
                        code: int | None = grader.process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        grader.process.kill()
                        grader.process.wait()
                        code = None
                    message = (f"the grader process died ({_exit_text(code)}) while grading this "
                               "submission; `grade run` again grades it again")
                    done.put((position, error_result(submission, assignment=self.assignment,
                                                     message=message)))
                    grader.close()
                    grader = None
                    continue
                if reply["kind"] != "result":
                    done.put(_grading_error(submission, reply))
                    return
                done.put((position, SubmissionResult.from_dict(reply["result"])))
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the batch's thread, which raises it
            done.put(exc)
        finally:
            if grader is not None:
                _finish(grader)


class _Stopped(Exception):
    """The pool is closing: start nothing new."""


def _finish(grader: _Grader) -> None:
    try:
        grader.to_grader.send(None)
    except OSError:
        pass
    try:
        grader.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        grader.process.kill()
        grader.process.wait()
    grader.close()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "it did not exit and was killed"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _grading_error(submission: Submission, reply: dict[str, Any]) -> BaseException:
    """Rebuild in this process what ``grade_submission`` raised in a grader process."""
    kind = {"CourseError": CourseError, "SandboxStartError": SandboxStartError}.get(reply["type"])
    if kind is not None:
        return kind(reply["message"])
    return RuntimeError(f"grading {submission.student} ({submission.path}) raised "
                        f"{reply['type']}: {reply['message']}\n{reply['traceback']}")


# the same autograder as this process's, whatever the grader's working directory
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_GRADER_MAIN = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from autograder.grading.pool import serve_grader; "
                "from autograder.isolation.child import exit_now; "
                "serve_grader(sys.argv[2:]); exit_now(0)")
_TERMINATING = False


def _on_sigterm(signum: int, frame: object) -> None:
    global _TERMINATING
    _TERMINATING = True
    raise KeyboardInterrupt  # pytest stops at once on it; SystemExit would count as a failed check


def serve_grader(argv: list[str]) -> None:
    """Run a grader process of a :class:`GraderPool`: grade each submission received, until told
    to stop. ``argv`` holds the batch process's pid, torch's thread count here, then the pipe
    ends to read tasks from and to write JSON replies to."""
    die_with_parent(int(argv[0]))  # kill -9 of the batch's process takes the graders along
    signal.signal(signal.SIGTERM, _on_sigterm)
    torch.set_num_threads(int(argv[1]))
    tasks, replies = Connection(int(argv[2]), writable=False), Connection(int(argv[3]), readable=False)
    try:
        assignment, config = tasks.recv()  # from the trusted batch process: pickle is fine here
        while True:
            submission = tasks.recv()
            if submission is None:
                return
            try:
                result = grade_submission(submission, assignment=assignment, config=config)
                reply: dict[str, Any] = {"kind": "result", "result": result.to_dict()}
            except Exception as exc:  # noqa: BLE001 - sent to the batch's process, which raises it
                if _TERMINATING:
                    return
                reply = {"kind": "error", "type": type(exc).__name__, "message": str(exc),
                         "traceback": traceback.format_exc()}
            replies.send_bytes(json.dumps(reply).encode("utf-8"))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return
