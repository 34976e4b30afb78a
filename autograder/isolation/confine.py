"""Confine the worker with Landlock before it runs student code (Linux 5.13+, no root needed).

The worker calls :func:`apply_landlock` after importing torch and before executing any cell.
From then on the process and everything it starts may read only the interpreter, its
packages and system libraries, may write only its scratch directory, may not open or accept
TCP connections (ABI 4+), and may not signal processes or reach abstract Unix sockets outside
the sandbox (ABI 6+). It cannot read ``solutions/``, the hidden checks, other submissions,
results or the gradebook. Where the kernel lacks Landlock, the worker says so and grading goes on.
"""

from __future__ import annotations

import ctypes
import os
import platform
import stat
from collections.abc import Sequence
from dataclasses import dataclass

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # same on x86_64 and arm64
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE = 1 << 13, 1 << 14
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE
READ_ONLY = EXECUTE | READ_FILE | READ_DIR

OWN_THREADS = "/proc/self/task"
"""Where a process names its threads (``<tid>/comm``). NVIDIA's driver (570 and later) names the
threads ``cuInit`` starts and fails with CUDA_ERROR_OPERATING_SYSTEM where it may not, so a CUDA
worker may write below its own ``/proc/<pid>/task`` and nowhere else in ``/proc``. What it can
write there concerns only itself: the kernel refuses a thread of another process."""
_PINNED: list[int] = []  # fds that keep the dentries of rules alive (see apply_landlock)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass(frozen=True)
class LandlockResult:
    """What was enforced, in words for the results file."""

    abi: int
    active: bool
    detail: str


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """Return the kernel's Landlock ABI version, or 0 where Landlock is unavailable."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        return 0
    result = _libc().syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                             ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(int(result), 0)


def _handled_fs(abi: int) -> int:
    handled = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        handled |= REFER
    if abi >= 3:
        handled |= TRUNCATE
    return handled  # IOCTL_DEV (ABI 5) is left unhandled: CUDA drives the GPU through ioctls


def apply_landlock(*, read: list[str], write: list[str], devices: tuple[str, ...] = ("/dev",),
                   own_threads: bool = False) -> LandlockResult:
    """Restrict this process to reading ``read`` and writing ``write``; deny TCP and scopes.
    With ``own_threads``, it may also write the files of its own threads (:data:`OWN_THREADS`)."""
    abi = abi_version()
    if abi <= 0:
        return LandlockResult(0, False, "Landlock not available on this kernel")
    libc = _libc()
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled_access_fs=handled,
                        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        return LandlockResult(abi, False, f"Landlock ruleset refused: {os.strerror(ctypes.get_errno())}")
    try:
        threads = [OWN_THREADS] if own_threads else []
        for paths, access in ((read, READ_ONLY), (write, handled),
                              (list(devices), READ_ONLY | WRITE_FILE),
                              (threads, READ_ONLY | WRITE_FILE | TRUNCATE)):
            for path in paths:
                _allow(libc, ruleset, path, access & handled)
        if own_threads:  # a rule belongs to an inode: were this procfs dentry dropped under
            # memory pressure, its next lookup would make a new inode, outside the rule
            _PINNED.append(os.open(OWN_THREADS, os.O_PATH | os.O_CLOEXEC))
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return LandlockResult(abi, False, "could not set no_new_privs")
        if libc.syscall(SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            return LandlockResult(abi, False,
                                  f"Landlock restrict failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    parts = ["files: read-only interpreter and system paths, write scratch only"
             + (" and its own threads' names (for the CUDA driver)" if own_threads else "")]
    if abi >= 4:
        parts.append("no TCP bind or connect")
    if abi >= 6:
        parts.append("no signals or abstract Unix sockets outside the sandbox")
    return LandlockResult(abi, True, f"Landlock ABI {abi} ({'; '.join(parts)})")


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine does not have
    try:
        if not os.path.isdir(path):
            access &= FILE_ONLY
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        if libc.syscall(SYS_ADD_RULE, ruleset, ctypes.c_int(RULE_PATH_BENEATH),
                        ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"Landlock rule for {path} refused")
    finally:
        os.close(fd)


PR_CAPBSET_DROP = 24
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> str | None:
    """As root, give up every capability (and the power to regain them); describe the result.

    The worker stays uid 0, so it can still read the interpreter wherever root installed it, but
    without capabilities it cannot mount, load modules, ignore file permissions, kill other
    users' processes or raise its limits. Returns None when not running as root.
    """
    if os.geteuid() != 0:
        return None
    libc = _libc()
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.syscall(126 if platform.machine() == "x86_64" else 91, ctypes.byref(header), data) != 0:
        return f"could not drop capabilities: {os.strerror(ctypes.get_errno())}"
    return "root capabilities dropped (uid 0 without privileges)"


CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
_STATVFS_TO_MS = {2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME,
                  4096: MS_RELATIME}


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 4:
                points.append(fields[4].encode().decode("unicode_escape"))
    return points


ETC_READ = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf",
            "passwd", "group", "hosts", "host.conf", "resolv.conf", "gai.conf", "protocols", "services",
            "os-release", "mime.types", "fonts", "alternatives", "ssl/certs", "ca-certificates",
            "ca-certificates.conf", "matplotlibrc", "nvidia")
"""What the worker may see of ``/etc``: what the loader, Python, torch, matplotlib and CUDA read.
Nothing private: no shadow or gshadow, no ``ssl/private``, no ssh host keys, no sudoers."""
PRIVATE_ROOTS = ("/root", "/home")  # hidden but for the interpreter's own paths inside them


@dataclass
class Isolation:
    """What :func:`isolate_namespaces` achieved, in words, and whether scratch is capped."""

    notes: list[str]
    scratch_capped: bool = False


def isolate_namespaces(scratch: str, *, read: Sequence[str] = (), hide: Sequence[str] = (),
                       scratch_bytes: int | None = None, own_threads: bool = False) -> Isolation:
    """As root, enter private mount and network namespaces and build the worker's view of files.

    In the new mount namespace: scratch is a tmpfs of ``scratch_bytes`` (all its files together;
    a bind of itself where no cap is asked); ``/etc`` holds only :data:`ETC_READ`; ``/root`` and
    ``/home`` hold only the paths of ``read`` inside them (the interpreter, where it lives
    there); each path of ``hide`` (the solutions) is an empty directory; and every mount but
    scratch is read-only, and but :data:`OWN_THREADS` with ``own_threads``. In the network
    namespace there is no network, UDP included. This is a boundary of its own, not only a
    backup of Landlock: what is not mounted cannot be read.
    """
    if os.geteuid() != 0:
        return Isolation([])
    libc = _libc()
    done = Isolation([])
    if libc.unshare(CLONE_NEWNET) == 0:
        done.notes.append("own network namespace (no network, UDP included)")
    if libc.unshare(CLONE_NEWNS) != 0:
        return done
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return done
    if scratch_bytes is not None and _mount_tmpfs(libc, scratch, scratch_bytes, mode=0o700):
        done.scratch_capped = True
        done.notes.append(f"scratch is a tmpfs of {scratch_bytes / 2**20:g} MiB (all files together)")
    elif libc.mount(scratch.encode(), scratch.encode(), None, MS_BIND, None) != 0:
        return done
    os.chdir(scratch)  # enter scratch through the new, writable mount
    hidden = _hide(libc, read=[*read, scratch], hide=list(hide))
    if hidden:
        done.notes.append(hidden)
    writable = {scratch}
    threads = os.path.realpath(OWN_THREADS)  # /proc/<pid>/task: its own mount stays writable
    if own_threads and libc.mount(threads.encode(), threads.encode(), None, MS_BIND, None) == 0:
        writable.add(threads)
    failed = 0
    for point in _mount_points():
        if point in writable:
            continue
        try:
            flags = os.statvfs(point).f_flag
        except OSError:
            continue
        keep = sum(ms for st, ms in _STATVFS_TO_MS.items() if flags & st)
        if libc.mount(None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, None) != 0:
            failed += 1
    done.notes.append("own mount namespace, every mount read-only but scratch"
                      + (" and its own threads' names (for the CUDA driver)"
                         if threads in writable else "")
                      + (f" ({failed} mounts could not be made read-only)" if failed else ""))
    return done


def _mount_tmpfs(libc: ctypes.CDLL, target: str, size: int, *, mode: int) -> bool:
    options = f"size={max(size, 4096)},mode={mode:o}".encode()
    return libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) == 0


def _hide(libc: ctypes.CDLL, *, read: list[str], hide: list[str]) -> str:
    """Replace ``/etc``, the private roots and ``hide`` by tmpfs views; describe what was done."""
    done = []
    keep_etc = [os.path.join("/etc", name) for name in ETC_READ]
    if _overlay(libc, "/etc", [p for p in keep_etc if os.path.lexists(p)]):
        done.append("/etc holds only what Python and torch read")
    for root in PRIVATE_ROOTS:
        inside = [p for p in read if _below(p, root)]  # scratch is among them when below root
        if os.path.isdir(root) and not any(p == root for p in read) and _overlay(libc, root, inside):
            done.append(f"{root} hidden" + (" but for the interpreter" if inside else ""))
    for path in hide:
        if os.path.isdir(path) and _mount_tmpfs(libc, path, 4096, mode=0o755):
            done.append(f"{path} hidden")
    return "; ".join(done)


def _below(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _overlay(libc: ctypes.CDLL, root: str, keep: list[str]) -> bool:
    """Mount an empty tmpfs on ``root``, then put each of ``keep`` (paths below it) back: a
    symlink as the same link, a file or directory by a bind mount of the original."""
    links, held = {}, []
    for path in sorted(keep):  # reach the originals through fds: the tmpfs is about to cover them
        try:
            if os.path.islink(path):
                links[path] = os.readlink(path)
            else:
                held.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC)))
        except OSError:
            continue
    try:
        if not _mount_tmpfs(libc, root, 1 << 20, mode=0o755):
            return False
        for path, target in links.items():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(target, path)
        for path, fd in held:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "ab").close()  # noqa: SIM115 - an empty file to bind the original on
            libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None)
        return True
    finally:
        for _, fd in held:
            os.close(fd)
