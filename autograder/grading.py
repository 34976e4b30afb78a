"""Grade submissions: extract, start the sandbox, run the checks, score, write results.

This module decides scores. It never imports, execs or unpickles a student's code: the code goes
to :mod:`autograder.sandbox` as text and only plain data comes back.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from autograder.course import Assignment, CourseError
from autograder.plugin import CheckPlugin, cuda_skip_reason, run_checks
from autograder.results import (
    ExerciseResult,
    SubmissionResult,
    batch_document,
    read_submission,
    score_runs,
    write_atomic,
    write_csv,
    write_submission,
)
from autograder.sandbox import Sandbox, SandboxConfig, SandboxStartError, SandboxSubject, protections
from autograder.subjects import Subject, reference_subject
from autograder.submission import SubmissionError, extract

SUFFIXES = (".ipynb", ".py")


@dataclass(frozen=True)
class GradeConfig:
    """How to grade: devices, sandbox limits, and which checks to include."""

    devices: tuple[str, ...] = ("cpu", "cuda")
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    include_hidden: bool = True


@dataclass(frozen=True)
class Submission:
    """A file to grade and the student it belongs to."""

    student: str
    path: Path


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def check_files(assignment: Assignment, *, include_hidden: bool) -> list[Path]:
    files = [assignment.public_checks]
    if include_hidden and assignment.hidden_checks.is_file():
        files.append(assignment.hidden_checks)
    return files


def grade_submission(submission: Submission, *, assignment: Assignment, config: GradeConfig,
                     reference: Subject | None = None) -> SubmissionResult:
    """Grade one file; problems with the file become the result's ``error``, never an exception.

    ``reference`` defaults to the reference solution run in this process; ``grade check`` passes
    the answers recorded in ``expected.json`` instead (with ``include_hidden`` off).
    """
    started = time.monotonic()
    uses_cuda = cuda_skip_reason(config.devices) is None
    result = SubmissionResult(
        student=submission.student, assignment=assignment.name, path=str(submission.path),
        sha256="", status="graded", error=None, points=0.0, max_points=assignment.max_points,
        environment=environment(), protections=protections(config.sandbox, uses_cuda=uses_cuda),
    )
    try:
        extraction = extract(submission.path, assignment)
    except SubmissionError as exc:
        result.status, result.error = "error", str(exc)
        result.exercises = [ExerciseResult(e.name, 0.0, e.points, problem=str(exc))
                            for e in assignment.exercises]
        result.duration_s = round(time.monotonic() - started, 3)
        return result
    result.sha256 = extraction.sha256
    probes = {"filename": str(assignment.probes_file), "source": assignment.probes_source}
    with Sandbox(extraction.cells, config=config.sandbox, uses_cuda=uses_cuda,
                 deny=(assignment.directory.parent,), probes=probes) as sandbox:
        sandbox.start()
        result.protections.extend(sandbox.confinement)
        plugin = CheckPlugin(student=SandboxSubject(sandbox, names=extraction.names),
                             reference=reference or reference_subject(assignment),
                             devices=config.devices, problems=dict(extraction.problems),
                             hints=assignment.hints)
        runs = run_checks(check_files(assignment, include_hidden=config.include_hidden), plugin)
        result.stdout, result.stderr = sandbox.stdout.text(), sandbox.stderr.text()
        cell_errors = {
            exercise: _cell_error_text(cell_id, err)
            for cell_id, err in sandbox.cell_errors.items()
            for exercise in extraction.cell_exercises.get(cell_id, [])
        }
        setup_error = sandbox.cell_errors.get("setup")
    score_runs(runs)
    result.checks = runs
    for exercise in assignment.exercises:
        mine = [r for r in runs if r.exercise == exercise.name]
        result.exercises.append(ExerciseResult(
            exercise=exercise.name,
            points=round(sum(r.points for r in mine), 6),
            max_points=round(sum(r.max_points for r in mine), 6) or exercise.points,
            problem=extraction.problems.get(exercise.name),
            notice=extraction.notices.get(exercise.name),
            cell_error=cell_errors.get(exercise.name),
        ))
    if setup_error:
        result.status, result.error = "error", "the setup cell failed: " + setup_error["message"]
    result.points = round(sum(e.points for e in result.exercises), 6)
    result.max_points = round(sum(e.max_points for e in result.exercises), 6)
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _cell_error_text(cell_id: str, error: dict[str, Any]) -> str:
    kind = (error.get("types") or ["Exception"])[0]
    text = f"running the cell '{cell_id}' raised {kind}: {error.get('message', '')}"
    return text + (f"\n{error['traceback']}" if error.get("traceback") else "")


# --- batches --------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(student: str) -> str:
    """Return a file name for ``student`` that cannot leave the output directory."""
    ascii_name = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).strip("._") or "student"
    digest = hashlib.sha1(student.encode("utf-8")).hexdigest()[:8]
    return cleaned[:60] if cleaned == student else f"{cleaned[:60]}-{digest}"


def discover(paths: Iterable[Path], assignment: str) -> list[Submission]:
    """Find submissions among files and folders, reading nbgrader's ``submitted/`` layout.

    A folder holding ``<student>/<assignment>/*.ipynb`` (nbgrader) gives one submission per
    student; any other folder gives one per ``.ipynb``/``.py`` file in it, named by file stem.
    """
    found: list[Submission] = []
    for path in paths:
        if path.is_file():
            found.append(Submission(student=path.stem, path=path))
            continue
        nbgrader_style = sorted(path.glob(f"*/{assignment}/*.ipynb")) + sorted(
            path.glob(f"*/{assignment}/*.py"))
        if nbgrader_style:
            by_student: dict[str, list[Path]] = {}
            for file in nbgrader_style:
                by_student.setdefault(file.parent.parent.name, []).append(file)
            for student, files in sorted(by_student.items()):
                preferred = [f for f in files if f.stem == assignment] or files
                found.append(Submission(student=student, path=preferred[0]))
            continue
        for file in sorted(path.iterdir()):
            if file.suffix in SUFFIXES and file.is_file() and not file.name.startswith("."):
                found.append(Submission(student=file.stem, path=file))
    return found


BatchGrader = Callable[[list[Submission]], Iterator[tuple[int, SubmissionResult]]]
"""Grade a list of submissions, yielding ``(position in the list, result)`` as each finishes."""


def grade_batch(
    submissions: list[Submission], *, assignment: Assignment, config: GradeConfig, out_dir: Path,
    on_result: Callable[[SubmissionResult], None] | None = None, rerun: bool = False,
    workers: int = 1,
) -> list[SubmissionResult]:
    """Grade each submission, writing ``out_dir/submissions/<student>.json`` as each finishes.

    A result already on disk for the same file contents is reused unless ``rerun``, so a batch
    interrupted part-way finishes where it stopped. With ``workers`` above 1, that many
    submissions are graded at once, each in a grader process of its own (see :class:`GraderPool`);
    the returned list and the batch files keep the order of ``submissions`` whatever the order
    in which they finish.
    """
    if workers < 1:
        raise ValueError(f"Invalid workers {workers}: must be at least 1")

    def grade(todo: list[Submission]) -> Iterator[tuple[int, SubmissionResult]]:
        if workers == 1 or len(todo) < 2:
            for position, submission in enumerate(todo):
                yield position, grade_submission(submission, assignment=assignment, config=config)
            return
        with GraderPool(min(workers, len(todo)), assignment=assignment, config=config) as pool:
            yield from pool.grade(todo)

    return stream_batch(submissions, assignment=assignment.name, out_dir=out_dir, grade=grade,
                        on_result=on_result, rerun=rerun)


def stream_batch(
    submissions: list[Submission], *, assignment: str, out_dir: Path, grade: BatchGrader,
    on_result: Callable[[SubmissionResult], None] | None = None, rerun: bool = False,
    environment_info: dict[str, Any] | None = None,
) -> list[SubmissionResult]:
    """Reuse what is done, ``grade`` the rest, and write each result the moment it arrives.

    ``on_result`` is called in this thread for every submission: reused ones first, then graded
    ones in the order they finish. ``results.json`` and ``results.csv`` follow ``submissions``.
    """
    per_submission = out_dir / "submissions"
    for leftover in per_submission.glob(".*.tmp"):  # from a batch killed mid-write
        leftover.unlink(missing_ok=True)
    results: list[SubmissionResult | None] = [None] * len(submissions)
    todo: list[int] = []
    for index, submission in enumerate(submissions):
        previous = None if rerun else read_submission(_target(out_dir, submission))
        if previous is not None and previous.sha256 and previous.sha256 == _sha256(submission.path):
            results[index] = previous
            if on_result is not None:
                on_result(previous)
        else:
            todo.append(index)
    for position, result in grade([submissions[i] for i in todo]):
        index = todo[position]
        write_submission(_target(out_dir, submissions[index]), result)
        results[index] = result
        if on_result is not None:
            on_result(result)
    missing = [s.student for s, r in zip(submissions, results, strict=True) if r is None]
    if missing:  # a grader that skips a submission is a bug: never write a batch without it
        raise RuntimeError(f"no result came back for {', '.join(missing)}")
    done = [r for r in results if r is not None]
    document = batch_document(assignment, done, environment_info or environment())
    write_atomic(out_dir / "results.json", json.dumps(document, indent=1) + "\n")
    write_csv(out_dir / "results.csv", done)
    return done


def error_result(submission: Submission, *, assignment: Assignment, message: str) -> SubmissionResult:
    """Return zero points for ``submission``, saying why it could not be graded."""
    return SubmissionResult(
        student=submission.student, assignment=assignment.name, path=str(submission.path),
        sha256="", status="error", error=message, points=0.0, max_points=assignment.max_points,
        exercises=[ExerciseResult(e.name, 0.0, e.points, problem=message) for e in assignment.exercises],
        environment=environment(),
    )


def _target(out_dir: Path, submission: Submission) -> Path:
    return out_dir / "submissions" / f"{safe_name(submission.student)}.json"


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


# --- grading in parallel ----------------------------------------------------------------------

SUBMISSIONS_PER_GRADER = 50
"""A grader costs seconds to start (python, torch, the reference, its fork server): about what
grading 50 submissions costs (bench/speed.py). Smaller batches are faster with fewer graders."""

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
    if cuda_skip_reason(devices) is None:
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
        gpus = _visible_gpus() if cuda_skip_reason(config.devices) is None else []
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
            for process in running:  # SIGTERM: a grader removes its sandbox, then exits
                process.terminate()
            for process in running:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        for thread in self._threads:
            thread.join(timeout=30)

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
                # the reference runs in the grader: share the cores rather than each take all
                threads = max(_cores() // self.size, 1)
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
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
_GRADER_MAIN = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from autograder.grading import serve_grader; serve_grader(sys.argv[2:])")
_TERMINATING = False


def _on_sigterm(signum: int, frame: object) -> None:
    global _TERMINATING
    _TERMINATING = True
    raise KeyboardInterrupt  # pytest stops at once on it; SystemExit would count as a failed check


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when the batch's process dies (kill -9 included)."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's close() has to do
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def serve_grader(argv: list[str]) -> None:
    """Run a grader process of a :class:`GraderPool`: grade each submission received, until told
    to stop. ``argv`` holds the batch process's pid, torch's thread count here, then the pipe
    ends to read tasks from and to write JSON replies to."""
    _die_with_parent(int(argv[0]))
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
