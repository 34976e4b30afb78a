"""What a worker process does to itself before it reads its first frame: one set-up, cold or warm.

A worker is started either cold (``python -I -m autograder.isolation.worker``, by the grader) or
warm (forked by the fork server, :mod:`autograder.isolation.zygote`). Both call
:func:`child_setup` with the same :class:`ChildSpec`, first thing, in the child: nothing of the
student's exists yet, and nothing here may depend on how the process was started. Landlock,
namespaces and dropped capabilities come later, in :func:`autograder.isolation.worker.serve`,
because they need the start-up frame (what to hide, what to read).

Standard library only: a cold worker runs this before it imports torch.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import json
import os
import resource
import signal
import sys
from dataclasses import dataclass, field

REQUEST_FD, REPLY_FD = 3, 4  # where a worker finds its frame pipes (stdout and stderr: 1, 2)


class StartRefused(Exception):
    """A worker that must not run the student's code (e.g. over its limits before it starts)."""


@dataclass(frozen=True)
class ChildSpec:
    """The process-level set-up of one worker, decided by the grader."""

    env: dict[str, str]
    cwd: str
    rlimits: dict[str, int] = field(default_factory=dict)  # RLIMIT_<NAME>: value, set in order
    cgroup: tuple[str, ...] = ()  # cgroup.procs files the worker joins

    def to_json(self) -> str:
        return json.dumps({"env": self.env, "cwd": self.cwd, "rlimits": self.rlimits,
                           "cgroup": list(self.cgroup)})

    @classmethod
    def from_json(cls, text: str) -> ChildSpec:
        data = json.loads(text)
        return cls(env={str(k): str(v) for k, v in dict(data["env"]).items()}, cwd=str(data["cwd"]),
                   rlimits={str(k): int(v) for k, v in dict(data["rlimits"]).items()},
                   cgroup=tuple(str(p) for p in data["cgroup"]))


def child_setup(spec: ChildSpec, fds: list[int], *, parent: int) -> None:
    """Make this process a worker: its own session, death with ``parent`` (so a ``kill -9`` of the
    grader takes it along), stdout, stderr, requests and replies from ``fds`` on fds 1-4 and every
    other fd closed, the cgroup joined, the rlimits set, the environment replaced, the scratch
    directory entered. Raise :class:`StartRefused` where the limits are already exceeded."""
    if os.getsid(0) != os.getpid():  # a cold start's Popen already made it a session leader
        os.setsid()
    die_with_parent(parent)
    _install_fds(fds)
    for path in spec.cgroup:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
    apply_rlimits(spec.rlimits)
    _check_address_space(spec.rlimits.get("AS"))
    os.environ.clear()  # clear() and update() also reach the C environment (CUDA reads it)
    os.environ.update(spec.env)
    os.chdir(spec.cwd)


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when ``parent`` dies, the pid its parent had before
    this process could have been orphaned; exit now if that has already happened."""
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def apply_rlimits(limits: dict[str, int]) -> None:
    """Set each ``RLIMIT_<NAME>`` in ``limits`` (soft and hard), in the order given."""
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))


def _install_fds(fds: list[int]) -> None:
    """Put stdout, stderr, requests and replies on fds 1-4 and close everything from fd 5 up."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, REPLY_FD + 1) for fd in fds]  # none clobbers another
    for target, fd in zip((1, 2, REQUEST_FD, REPLY_FD), high, strict=True):
        os.dup2(fd, target, inheritable=target < REQUEST_FD)
    os.closerange(REPLY_FD + 1, 1 << 30)  # close_range(2): a fork server's socket among them


def _check_address_space(limit: int | None) -> None:
    """Refuse to start under an address-space limit this process already exceeds (a warm worker
    inherits torch's mappings): a cold worker would fail to import torch there, and the student
    must not pay for it."""
    if limit is None:
        return
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmSize:") and int(line.split()[1]) * 1024 >= limit:
                raise StartRefused(f"it already maps {int(line.split()[1]) >> 10} MiB, over the "
                                   f"address-space limit of {limit >> 20} MiB")


def exit_now(code: int) -> None:
    """End this process with ``code``: run its atexit handlers, flush stdout and stderr, and skip
    the interpreter's teardown, which takes seconds once torch, scikit-learn and matplotlib are
    loaded (the fork server, the grader processes and `grade` itself all end this way)."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
