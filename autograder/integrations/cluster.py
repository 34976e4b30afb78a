"""Grade a batch on a Dask cluster: the same grading and sandbox, on other machines.

Each task carries what a worker needs and nothing it might lack: the submission's bytes and file
name (workers need not share a filesystem), the student id, the assignment's name, a
fingerprint of what decides scores (reference notebook, check files, project version), and the
:class:`~autograder.grading.GradeConfig`. The worker grades with its own copy of the course (the
same project installed there) through :func:`~autograder.grading.grade_submission`, and sends
the result back as JSON text.

GPU routing: cuda checks run only on workers that declare a ``GPU`` resource
(``dask worker ADDRESS --nthreads 1 --resources GPU=1``). When the devices include cuda and
such a worker exists, every task asks for ``GPU=1`` (its cpu checks run on that worker too: a
submission is graded in one sandbox); otherwise the batch is graded on cpu and each skipped cuda
check says why.

Failures never stop the batch and never lose a submission: a task that raises, or whose workers
keep dying (Dask's ``distributed.scheduler.allowed-failures``, 3 by default), or that is lost
with the scheduler, becomes that submission's error result, and ``grade run`` grades it again.

``distributed`` is imported here only, and only when a cluster is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from autograder import tempdirs
from autograder.course import Assignment, CourseError, find_solutions_dir, load_assignment
from autograder.grading.batch import stream_batch
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission, environment, error_result, grade_submission
from autograder.results import SubmissionResult, safe_name
from autograder.settings import COURSE_FILE

GPU = "GPU"
GPU_HINT = "start GPU workers with `dask worker SCHEDULER --nthreads 1 --resources GPU=1`"
CONNECT_TIMEOUT_S = 30.0
WORKER_WAIT_S = 60.0


class ClusterError(Exception):
    """The cluster cannot be used at all: ``distributed`` is missing, or no scheduler answers."""


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise ClusterError("--scheduler needs Dask's 'distributed' package, here and on the "
                           "workers: pip install 'torchgrade[cluster]'") from None
    return distributed


# --- the worker's side ----------------------------------------------------------------------

@dataclass(frozen=True)
class GradeTask:
    """One submission to grade on a worker, carried whole."""

    student: str
    filename: str
    data: bytes
    assignment: str
    fingerprint: str
    config: GradeConfig
    solutions: tuple[str, ...] = ()  # solutions/ folders to try on the worker, in order
    fallback: bool = True  # then the worker's own ./solutions or the one beside its package


# pytest keeps process-wide state, so a worker process grades one submission at a time even
# when it runs several tasks at once (start workers with --nthreads 1 to match)
_GRADING = threading.Lock()


def grade_task(task: GradeTask) -> str:
    """Grade one submission on this worker; return its result as JSON text."""
    with _GRADING:
        assignment = _assignment_here(task)
        with tempdirs.temporary("grade-task-") as folder:
            path = folder / (Path(task.filename).name or "submission.ipynb")
            path.write_bytes(task.data)
            result = grade_submission(Submission(task.student, path), assignment=assignment,
                                      config=task.config)
    result.environment["dask_worker"] = _worker_address()
    return json.dumps(result.to_dict())


def fingerprint(assignment: Assignment) -> str:
    """Hash what decides scores: the reference notebook, the check files, the project's version."""
    digest = hashlib.sha256(_project_version().encode("utf-8") + b"\0")
    for path in (assignment.notebook, assignment.public_checks, assignment.hidden_checks,
                 assignment.probes_file, assignment.directory.parent / COURSE_FILE):
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
        digest.update(b"\0")
    return digest.hexdigest()


def _project_version() -> str:
    try:
        return metadata.version("torchgrade")
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def _assignment_here(task: GradeTask) -> Assignment:
    """Find the task's assignment on this worker, and make sure it is the same one."""
    tried: list[str] = []
    folders = [Path(s) for s in task.solutions]
    if task.fallback:
        try:
            folders.append(find_solutions_dir())
        except CourseError:
            tried.append("./solutions and beside the autograder package")
    where = f"Dask worker {_worker_address()}"
    for folder in folders:
        if not (folder / task.assignment / f"{task.assignment}.ipynb").is_file():
            tried.append(str(folder))
            continue
        assignment = load_assignment(task.assignment, folder.resolve())
        if fingerprint(assignment) != task.fingerprint:
            raise CourseError(
                f"{where}: its copy of {task.assignment} in {folder} (reference or checks) or "
                "its version of the project differs from the ones this batch was started with, "
                "so it could give other scores. Install the same course and project everywhere.")
        return assignment
    raise CourseError(
        f"{where} has no assignment '{task.assignment}' (looked in {', '.join(tried)}). Install "
        "the course on every worker, or name its solutions/ folder there with --worker-solutions.")


def _worker_address() -> str:
    try:
        return str(_distributed().get_worker().address)
    except (ClusterError, ValueError):  # not in a worker (called directly, e.g. in a test)
        return "(not a Dask worker)"


# --- the client's side ----------------------------------------------------------------------

@dataclass(frozen=True)
class CudaPlan:
    """Where cuda checks run on this cluster."""

    devices: tuple[str, ...]  # the devices the tasks ask for
    resources: dict[str, float] | None  # what each task needs from its worker
    skipped: str | None  # why cuda checks do not run, when they were asked for and do not


class Cluster:
    """A connection to a Dask scheduler, able to grade a batch on its workers."""

    def __init__(self, client: Any, distributed: ModuleType) -> None:
        self.client = client
        self._distributed = distributed

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def workers(self) -> dict[str, dict[str, Any]]:
        return dict(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def plan(self, devices: tuple[str, ...]) -> CudaPlan:
        """Route cuda checks to GPU workers, or say why they will not run."""
        if "cuda" not in devices:
            return CudaPlan(devices, None, None)
        gpus = [a for a, w in self.workers().items() if (w.get("resources") or {}).get(GPU, 0) >= 1]
        if gpus:
            return CudaPlan(devices, {GPU: 1}, None)
        cpu_only = tuple(d for d in devices if d != "cuda") or ("cpu",)
        return CudaPlan(cpu_only, None, f"not run: no worker of the Dask cluster at {self.address} "
                                        f"declares a {GPU} resource ({GPU_HINT})")

    def grade_batch(
        self, submissions: list[Submission], *, assignment: Assignment, config: GradeConfig,
        out_dir: Path, on_result: Callable[[SubmissionResult], None] | None = None,
        rerun: bool = False, solutions: tuple[str, ...] = (), fallback: bool = True,
    ) -> list[SubmissionResult]:
        """Grade on the cluster; write and report results as :func:`grade_batch` does.

        ``solutions`` are the folders a worker tries for the assignment, in order, before its
        own default when ``fallback``.
        """
        plan = self.plan(config.devices)
        task_config = replace(config, devices=plan.devices)
        workers = self.workers()
        info = {**environment(), "dask": {
            "scheduler": self.address, "workers": len(workers),
            "gpu_workers": sum((w.get("resources") or {}).get(GPU, 0) >= 1 for w in workers.values()),
            "cuda_skipped": plan.skipped,
        }}
        common = {"assignment": assignment.name, "fingerprint": fingerprint(assignment),
                  "config": task_config, "solutions": solutions, "fallback": fallback}

        def grade(todo: list[Submission]) -> Iterator[tuple[int, SubmissionResult]]:
            for position, result in self._grade(todo, assignment, common, plan):
                result.path = str(todo[position].path)
                if plan.skipped:
                    for run in result.checks:
                        if run.device == "cuda" and run.skipped:
                            run.message = plan.skipped
                yield position, result

        return stream_batch(submissions, assignment=assignment.name, out_dir=out_dir, grade=grade,
                            on_result=on_result, rerun=rerun, environment_info=info)

    def _grade(self, todo: list[Submission], assignment: Assignment, common: dict[str, Any],
               plan: CudaPlan) -> Iterator[tuple[int, SubmissionResult]]:
        futures: dict[Any, int] = {}
        try:
            tasks, keys, positions = [], [], []
            for position, submission in enumerate(todo):
                try:
                    data = submission.path.read_bytes()
                except OSError as exc:
                    message = f"cannot read {submission.path.name}: {exc.strerror}"
                    yield position, error_result(submission, assignment=assignment, message=message)
                    continue
                tasks.append(GradeTask(student=submission.student, filename=submission.path.name,
                                       data=data, **common))
                keys.append(f"grade-{assignment.name}-{safe_name(submission.student)}-{uuid.uuid4().hex[:8]}")
                positions.append(position)
            # one graph update for the whole batch: the scheduler then queues the tasks and
            # hands each worker the next as it frees up, instead of assigning all at once
            submitted = self.client.map(grade_task, tasks, key=keys, resources=plan.resources,
                                        pure=False) if tasks else []
            futures = dict(zip(submitted, positions, strict=True))
            pending = dict(futures)
            try:
                for future in self._distributed.as_completed(list(futures), loop=self.client.loop):
                    position = pending.pop(future)
                    yield position, self._collect(future, todo[position], assignment)
            except (OSError, TimeoutError, asyncio.CancelledError) as exc:  # the scheduler is gone
                lost = (f"lost contact with the Dask scheduler at {self.address} before this "
                        f"submission came back ({type(exc).__name__}: {exc}); `grade run` again "
                        "grades it again")
                for position in list(pending.values()):
                    yield position, error_result(todo[position], assignment=assignment, message=lost)
        finally:  # a batch stopped early (Ctrl-C) leaves nothing running on the cluster
            with contextlib.suppress(Exception):  # a scheduler that is gone runs nothing
                self.client.cancel(list(futures), force=True)

    def _collect(self, future: Any, submission: Submission, assignment: Assignment) -> SubmissionResult:
        """Turn a finished task into a result: its own, or an error result saying what failed."""
        if future.status == "finished":
            try:
                return SubmissionResult.from_dict(json.loads(future.result()))
            except (ValueError, TypeError, KeyError) as exc:
                message = f"the Dask worker sent back something that is not a result: {exc}"
                return error_result(submission, assignment=assignment, message=message)
        try:
            failure: BaseException | None = future.exception()
        except BaseException as exc:  # noqa: BLE001 - cancelled: the exception is the reason
            failure = exc
        return error_result(submission, assignment=assignment, message=_failure_text(failure))


def _failure_text(failure: BaseException | None) -> str:
    if isinstance(failure, CourseError):  # raised by the worker: it names itself
        return str(failure)
    name = type(failure).__name__
    text = str(failure).split(". Inspecting worker logs")[0]
    if name == "KilledWorker":
        return (f"the Dask worker grading this submission died ({text}); `grade run` again "
                "grades it again")
    return f"grading on the Dask cluster failed ({name}: {text}); `grade run` again grades it again"


def connect(address: str, *, wait_s: float = WORKER_WAIT_S) -> Cluster:
    """Connect to the scheduler at ``address`` and wait until at least one worker is there."""
    distributed = _distributed()
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        client.wait_for_workers(1, timeout=wait_s)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterError(f"no worker joined the Dask scheduler at {address} within "
                           f"{wait_s:g} s ({exc}); start workers first") from None
    return Cluster(client, distributed)
