"""Temporary folders a killed grader leaves behind are removed by the next one, and only those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from autograder import tempdirs

PREFIX = "grade-testclaim-"


def claim_in_child(where: Path) -> subprocess.Popen[str]:
    """A process that claims a folder in ``where``, prints its path and waits."""
    code = textwrap.dedent(f"""
        import sys, tempfile, time
        tempfile.tempdir = {str(where)!r}
        from autograder import tempdirs
        claimed = tempdirs.claim({PREFIX!r})
        (claimed.path / "work.txt").write_text("half done")
        print(claimed.path, flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return child


def test_a_killed_owners_folder_is_swept_a_live_owners_and_a_young_one_are_kept(tmp_path):
    dead, alive = claim_in_child(tmp_path), claim_in_child(tmp_path)
    try:
        dead_path, alive_path = Path(dead.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert (dead_path / "work.txt").is_file()  # kill -9 removed nothing
        assert tempdirs.sweep(PREFIX, where=tmp_path) == []  # too young to be touched
        assert tempdirs.sweep(PREFIX, where=tmp_path, settle_s=0) == [dead_path]
        assert not dead_path.exists() and (alive_path / "work.txt").is_file()
        other = tmp_path / "grade-other-1"  # another kind of folder: not this sweep's business
        other.mkdir()
        assert tempdirs.sweep(PREFIX, where=tmp_path, settle_s=0) == [] and other.is_dir()
    finally:
        for child in (dead, alive):
            child.kill()
            child.wait()
    assert tempdirs.sweep(PREFIX, where=tmp_path, settle_s=0) == [alive_path]


def test_a_claimed_folder_is_held_until_removed_and_removed_whole(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    claimed = tempdirs.claim(PREFIX)
    (claimed.path / "sub").mkdir()
    (claimed.path / "sub" / "file").write_text("x")
    assert tempdirs.sweep(PREFIX, where=tmp_path, settle_s=0) == []  # held by this process
    claimed.remove()
    assert not claimed.path.exists() and claimed.fd == -1
    claimed.remove()  # twice is harmless
    with tempdirs.temporary(PREFIX) as folder:
        assert folder.is_dir() and folder.parent == tmp_path
        fds = set(os.listdir("/proc/self/fd"))
    assert not folder.exists() and len(set(os.listdir("/proc/self/fd"))) < len(fds)


def test_what_exited_owners_left_is_swept_at_once_and_only_theirs(tmp_path):
    dead, alive = claim_in_child(tmp_path), claim_in_child(tmp_path)
    try:
        dead_path, alive_path = Path(dead.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        assert dead_path.name.startswith(f"{PREFIX}{dead.pid}-")  # named after its owner
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        # young, but its owner is gone; a live owner's folder is kept even if named
        assert tempdirs.sweep_left_by(PREFIX, [dead.pid, alive.pid], where=tmp_path) == [dead_path]
        assert not dead_path.exists() and (alive_path / "work.txt").is_file()
        assert tempdirs.sweep_left_by(PREFIX, [], where=tmp_path) == []
    finally:
        for child in (dead, alive):
            child.kill()
            child.wait()


def test_what_an_owner_still_holds_at_a_normal_exit_is_removed_a_forked_childs_exit_removes_nothing(tmp_path):
    code = textwrap.dedent(f"""
        import os, sys, tempfile
        tempfile.tempdir = {str(tmp_path)!r}
        from autograder import tempdirs
        from autograder.isolation.child import exit_now
        kept, done = tempdirs.claim({PREFIX!r}), tempdirs.claim({PREFIX!r})
        (kept.path / "work.txt").write_text("its clean-up was cut short")
        done.remove()
        child = os.fork()
        if child == 0:
            sys.exit(0)  # a forked child's normal exit, atexit handlers included
        os.waitpid(child, 0)
        print(kept.path, kept.path.is_dir(), flush=True)
        if sys.argv[1] == "exit_now":
            exit_now(0)  # how graders and fork servers end
        raise KeyboardInterrupt  # how an interrupted `grade` ends
    """)
    for how in ("exit_now", "interrupt"):
        run = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True)
        path, there_after_the_fork = run.stdout.split()
        assert there_after_the_fork == "True", run.stderr
        assert not Path(path).exists(), how
    assert list(tmp_path.iterdir()) == []
