"""Temporary folders that a grader killed with ``kill -9`` does not leave behind.

A sandbox's scratch folder, a Dask task's copy of a submission and an audit's notebooks live in
the system's temporary folder and are removed when their work ends. A process that is killed
outright removes nothing, so each folder is *claimed*: its owner holds an ``flock`` on it for
as long as it uses it, and the kernel drops the lock when the owner dies, however it dies. The
first claim of each kind in a process removes the folders of that kind no one holds any more.
A lock, not a process id, tells a live owner from a dead one: graders in other PID namespaces
(containers sharing ``/tmp``) would see each other's ids as dead.

A folder its owner still holds when it exits normally (an interrupt cut its clean-up short) is
removed at exit, after the workers' exits (:func:`remove_held`).

Each folder's name carries its owner's pid, ``<prefix><pid>-…``, so that whoever waited for
that owner to die can remove what it left at once (:func:`sweep_left_by`): a process stopped
by a signal can leave its folder behind at any point of its clean-up, not only when killed.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_SWEPT: set[str] = set()
SETTLE_S = 60.0
"""A folder younger than this is never swept: its owner may be between creating and locking it."""


@dataclass
class Claimed:
    """A folder this process created and holds."""

    path: Path
    fd: int
    owner: int = field(default_factory=os.getpid)

    def remove(self) -> None:
        """Remove the folder and everything in it, then let go of it."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        _HELD.pop(self.path, None)


_HELD: dict[Path, Claimed] = {}


def remove_held() -> None:
    """Remove every folder this process claimed and still holds (at exit: it is done with
    them all). A forked child leaves its parent's alone."""
    for claimed in list(_HELD.values()):
        if claimed.owner == os.getpid():
            claimed.remove()


atexit.register(remove_held)  # registered before launch's wait for the workers' exits: runs after it


def _held(path: Path) -> bool:
    """Whether some live process holds ``path`` (or it cannot be looked at)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # drops the lock taken just now, if any
    return False


def sweep(prefix: str, *, where: Path | None = None, settle_s: float = SETTLE_S) -> list[Path]:
    """Remove this user's ``prefix*`` folders that no live process holds; return them."""
    removed = []
    for path in Path(where or tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        mine = path.is_dir() and not path.is_symlink() and info.st_uid == os.geteuid()
        if mine and time.time() - info.st_mtime >= settle_s and not _held(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def sweep_left_by(prefix: str, pids: list[int], *, where: Path | None = None) -> list[Path]:
    """Remove the ``prefix`` folders that the processes ``pids``, all of which this process
    has seen exit, created and did not remove; return them.

    No settling time: none of those owners can still be between creating a folder and holding
    it. A folder held all the same (by a new process that reused one of the pids) is kept; only
    such a process caught in the microseconds between creating and locking could lose one.
    """
    removed = []
    for pid in pids:
        removed += sweep(f"{prefix}{pid}-", where=where, settle_s=0)
    return removed


def claim(prefix: str) -> Claimed:
    """Create a fresh folder ``<tmp>/<prefix><pid>-…`` and hold it until :meth:`Claimed.remove`."""
    if prefix not in _SWEPT:
        _SWEPT.add(prefix)
        sweep(prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)  # not inherited by children (PEP 446)
    fcntl.flock(fd, fcntl.LOCK_EX)
    claimed = _HELD[path] = Claimed(path, fd)
    return claimed


@contextlib.contextmanager
def temporary(prefix: str) -> Iterator[Path]:
    """Like ``tempfile.TemporaryDirectory``, claimed: removed by a later grader if this one dies."""
    claimed = claim(prefix)
    try:
        yield claimed.path
    finally:
        claimed.remove()
