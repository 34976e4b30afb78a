"""A cgroup per worker, where the machine lets us make one: a process cap, a memory cap, and a
way to kill every process the submission started, daemons that called setsid() included.

Uses the cgroup v1 ``pids`` and ``memory`` controllers (a child of this process's own group).
Where they are missing or not writable (not root, cgroup v2 without delegation), :func:`create`
returns None and the sandbox falls back to rlimits and killing its process group.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
_COUNTER = itertools.count()
_SWEPT: set[str] = set()  # controllers already swept by this process


def _own_path(controller: str) -> str | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path
    except OSError:
        return None
    return None


@dataclass
class Cgroup:
    """The worker's pids (and memory) groups."""

    pids: Path
    memory: Path | None
    max_pids: int
    memory_bytes: int | None

    def add(self, pid: int) -> None:
        for path in self.procs_files():
            path.write_text(str(pid))

    def procs_files(self) -> list[Path]:
        """The files a process writes its own pid to, to join the group (a warm worker does)."""
        return [group / "cgroup.procs" for group in (self.pids, self.memory) if group is not None]

    def pids_in(self) -> list[int]:
        try:
            return [int(p) for p in (self.pids / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self, *, timeout_s: float = 5.0) -> None:
        """SIGKILL every process in the group until it is empty.

        ``cgroup.kill`` (Linux 5.14) kills the whole group at once, a process forked meanwhile
        included; each pid is also killed by name, for older kernels. The group usually empties
        within a millisecond, so the pause between looks starts at half of one and doubles up to
        10 ms (a fixed 10 ms cost every submission about 20 ms of wall time).
        """
        deadline = time.monotonic() + timeout_s
        pause = 0.0005
        while time.monotonic() < deadline:
            pids = self.pids_in()
            if not pids:
                return
            try:
                (self.pids / "cgroup.kill").write_text("1")
            except OSError:
                pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(pause)
            pause = min(2 * pause, 0.01)

    def remove(self) -> None:
        for group in (self.pids, self.memory):
            if group is not None:
                try:
                    group.rmdir()
                except OSError:
                    pass

    def describe(self) -> list[str]:
        found = [f"cgroup: at most {self.max_pids} processes, all killed at the end"]
        if self.memory is not None and self.memory_bytes is not None:
            found.append(f"cgroup: memory limit {self.memory_bytes / 2**30:g} GiB (resident)")
        return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(base: Path) -> None:
    """Empty and remove groups left behind by a grader that was killed (kill -9)."""
    for group in base.glob("autograder-*-*"):
        owner = group.name.split("-")[1]
        if owner.isdigit() and not _alive(int(owner)):
            stale = Cgroup(pids=group, memory=None, max_pids=0, memory_bytes=None)
            stale.kill_all()
            stale.remove()


def available() -> bool:
    """Whether this process can make cgroups (cgroup v1 pids controller, writable)."""
    base = _own_path("pids")
    return base is not None and os.access(ROOT / "pids" / base.lstrip("/"), os.W_OK)


def create(*, max_pids: int, memory_bytes: int | None) -> Cgroup | None:
    """Make a fresh group for one worker, or return None where cgroups cannot be used."""
    pids_base = _own_path("pids")
    if pids_base is None or not os.access(ROOT / "pids" / pids_base.lstrip("/"), os.W_OK):
        return None
    for controller in ("pids", "memory"):
        own = _own_path(controller)
        if own is not None and controller not in _SWEPT:
            _SWEPT.add(controller)
            sweep(ROOT / controller / own.lstrip("/"))
    name = f"autograder-{os.getpid()}-{next(_COUNTER)}"
    pids = ROOT / "pids" / pids_base.lstrip("/") / name
    try:
        pids.mkdir()
        (pids / "pids.max").write_text(str(max_pids))
    except OSError:
        return None
    memory = None
    memory_base = _own_path("memory")
    if memory_bytes is not None and memory_base is not None:
        candidate = ROOT / "memory" / memory_base.lstrip("/") / name
        try:
            candidate.mkdir()
            (candidate / "memory.limit_in_bytes").write_text(str(memory_bytes))
            memory = candidate
        except OSError:
            memory = None
    return Cgroup(pids=pids, memory=memory, max_pids=max_pids,
                  memory_bytes=memory_bytes if memory is not None else None)
