"""A fork server ("zygote"): one warm process per grader that forks sandbox workers.

A cold worker spends seconds starting Python and importing torch before it runs one line of the
student's. The zygote pays that once: it is ``python -I -m autograder.isolation.zygote`` with the sandbox's
scrubbed environment, it imports torch, numpy and the worker's modules, and then it only forks
(importing, before a fork, the modules a spawn request names that it has not imported yet: an
assignment's setup-cell imports, so one server serves every assignment of a batch or a demo).
It never initialises CUDA and never runs a torch op, so it has one thread and no OpenMP pool
when it forks; a CUDA run's child initialises CUDA itself, after the fork.

Protocol. The grader and the zygote share a ``SOCK_SEQPACKET`` socket pair; every message is one
JSON packet and every request gets exactly one reply, carrying the request's ``id`` (a reply
left unread by a grader thread interrupted mid-request is recognised and skipped). The grader's
side is one lock around send-and-receive, so any number of grader threads may share one zygote;
the zygote itself stays single-threaded::

    zygote -> grader   {"ready": true, "pid": P}                 once, after the imports
    grader -> zygote   {"op": "spawn", "id", "spec", "preload"} + 5 fds
                       (SCM_RIGHTS): the child's stdout, stderr, request pipe, reply pipe, and a
                       status pipe
    zygote -> grader   {"id", "pid": P} or {"id", "error": "..."}
    grader -> zygote   {"op": "reap", "id", "pid": P}    ->   {"id", "ok": true}

The grader creates every pipe; the zygote forks, closes its copies of the first four and keeps
the status pipe. When the child exits, the zygote writes its status there (a signed 32-bit
``returncode``, negative for a signal, as :class:`subprocess.Popen` reports it) and closes it. It
learns of the exit with ``waitid(WNOWAIT)``, so the child stays a zombie until the grader sends
``reap``: like a ``Popen`` child, its pid (and so its process group id) cannot be reused while the
grader may still signal it.

Forking ahead. Between requests the zygote keeps one child already forked (a :class:`_Spare`),
waiting on a socket pair of its own; a spawn request is handed to it with the four fds, and a
new spare is forked once the reply is sent. A fork copies the page tables of torch's image
(about 12 ms on the 2-core development machine), so this moves that cost from the grader's
wait to the time the previous worker runs. A spare forked before a request's imports is sent
away (it exits when its socket closes, and is reaped) and the request gets a fresh fork.

The child, before anything of the student's runs, calls
:func:`autograder.isolation.child.child_setup` with the request's spec, exactly as a cold worker
does (the zygote's pid is the parent it dies with, so a ``kill -9`` of the grader takes down both
levels; the control socket and other children's status pipes are among the fds it closes); then
:func:`autograder.isolation.worker.serve` reads the start-up frame, applies Landlock, namespaces
and dropped capabilities, and runs the cells.

Memory. A cgroup charges a page to the group of the process that first touched it. Torch's pages
were touched by the zygote, which lives in the grader's cgroup, so a warm child's memory group is
charged only for what it touches after joining: the pages it writes (each copy-on-write copy,
including objects whose reference counts change) and the memory it allocates. Measured on a
fresh worker: a few MiB charged to a warm one, about 0.3 GiB to a cold one (its own import of
torch). The cgroup limit is therefore a limit on the student's own memory on top of the shared
torch image, where a cold worker's limit also covers its copy of that image: a warm worker may
hold about 0.3 GiB more before the limit bites, and the shared image (about 0.5 GiB resident in
the zygote) is the grader's to pay, once. The address-space limit (RLIMIT_AS) and resident-memory
polling count the inherited mappings exactly as they count a cold worker's, so they are
unchanged.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from autograder.isolation.child import ChildSpec

STATUS = struct.Struct(">i")
MAX_PACKET = 1 << 20
SPAWN_FDS = 5  # stdout, stderr, requests, replies (all four for the child), status (kept here)
REPLY_TIMEOUT_S = 30.0
MAX_TROUBLES = 5  # per grader process: a fork server that keeps failing is not worth relaunching


class ZygoteUnavailable(RuntimeError):
    """The fork server could not start, refused, or has died: start this worker cold."""


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _thread_names() -> str:
    """This process's threads by name (e.g. ``python3, cuda-EvtHandlr``): which one is extra."""
    names = []
    for task in sorted(os.listdir("/proc/self/task")):
        try:
            with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as handle:
                names.append(handle.read().strip())
        except OSError:
            names.append(f"task {task}")
    return ", ".join(names)


# --- the zygote process ---------------------------------------------------------------------

class _Server:
    """The zygote's single-threaded loop: fork on request, report exits, reap when told."""

    def __init__(self, control: socket.socket, wake: int) -> None:
        self.control = control
        self.wake = wake
        self.running: dict[int, int] = {}  # child pid -> its status pipe
        self.exited: set[int] = set()  # reported, left a zombie until the grader says reap
        self.reap_on_exit: set[int] = set()  # the grader is done with these: reap when they exit
        self.spare: _Spare | None = None
        self.discarded: set[int] = set()  # spares sent away: reaped when they have exited
        self.poisoned = ""  # why it forks no more (CUDA's driver initialised here)

    def loop(self) -> int:
        while True:
            if self.spare is None:
                self.spare = _Spare.fork(self.control)
            ready = select.select([self.control.fileno(), self.wake], [], [])[0]
            if self.wake in ready:
                while _drain(self.wake):
                    pass
                self.collect()
            if self.control.fileno() in ready:
                try:
                    packet, fds, _, _ = socket.recv_fds(self.control, MAX_PACKET, SPAWN_FDS + 1)
                except ConnectionError:
                    packet, fds = b"", []
                if not packet:  # the grader closed the socket or died: take the children along
                    self.shutdown()
                    return 0
                request: dict[str, Any] = {}
                try:
                    request = json.loads(packet)
                    reply = self.handle(request, fds)
                except Exception as exc:  # noqa: BLE001 - one bad request must not end the server
                    for fd in fds:
                        _close(fd)
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                reply["id"] = request.get("id") if isinstance(request, dict) else None
                try:
                    self.control.send(json.dumps(reply).encode("utf-8"))
                except OSError:
                    self.shutdown()
                    return 0

    def handle(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        if request.get("op") == "reap":
            pid = int(request["pid"])
            if pid in self.exited:
                os.waitpid(pid, 0)
                self.exited.discard(pid)
            elif pid in self.running:
                self.reap_on_exit.add(pid)
            return {"ok": True}
        if request.get("op") != "spawn" or len(fds) != SPAWN_FDS:
            raise ValueError(f"not a spawn request with {SPAWN_FDS} fds: {request.get('op')!r}, "
                             f"{len(fds)} fds")
        if self.poisoned:
            raise RuntimeError(self.poisoned)
        imported = len(sys.modules)
        _preload([str(m) for m in request.get("preload", [])])
        if len(sys.modules) != imported and cuda_driver_initialised():
            self.poisoned = (f"importing {request.get('preload')} initialised CUDA's driver in the "
                             "fork server: a worker forked from here could not use the GPU")
            raise RuntimeError(self.poisoned)
        spare, self.spare = self.spare, None
        handed = spare.hand_over(request, fds[:-1]) if spare is not None else None
        if handed is not None:
            pid = handed
        else:  # no spare, or one forked before this request's imports
            if spare is not None:
                self.discarded.add(spare.pid)
            threads = _threads()
            if threads != 1:  # a thread would be missing in the child, holding whatever lock it held
                raise RuntimeError(f"the fork server has {threads} threads; it forks only with one")
            sys.stdout.flush()
            sys.stderr.flush()
            me = os.getpid()
            pid = os.fork()
            if pid == 0:
                _become_worker(request, fds[:-1], self.control, me)
        for fd in fds[:-1]:
            os.close(fd)
        self.running[pid] = fds[-1]
        return {"pid": pid}

    def collect(self) -> None:
        """Report every child that has exited; leave it a zombie (WNOWAIT) unless released."""
        for pid in list(self.discarded):
            if os.waitpid(pid, os.WNOHANG)[0]:
                self.discarded.discard(pid)
        for pid in list(self.running):
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is None:
                continue
            code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            status = self.running.pop(pid)
            try:
                os.write(status, STATUS.pack(code))
            except OSError:
                pass  # the grader gave up on this child already
            os.close(status)
            if pid in self.reap_on_exit:
                os.waitpid(pid, 0)
                self.reap_on_exit.discard(pid)
            else:
                self.exited.add(pid)

    def shutdown(self) -> None:
        spare = [self.spare.pid] if self.spare is not None else []
        for pid in [*self.running, *self.exited, *spare]:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass


class _Spare:
    """A child forked ahead of the next spawn request, waiting for it on a socket of its own: a
    fork copies the page tables of torch's image (about 12 ms here), which then happens while
    the previous worker runs, not while the grader waits for the next. It holds nothing of a
    student's until it is handed a request, and then sets itself up as any worker does."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.modules = frozenset(sys.modules)  # what it has imported

    @classmethod
    def fork(cls, control: socket.socket) -> _Spare | None:
        if _threads() != 1:
            return None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()  # else it would never see the server close its end
            _wait_as_spare(theirs, control, me)
        theirs.close()
        return cls(pid, ours)

    def hand_over(self, request: dict[str, Any], fds: list[int]) -> int | None:
        """Give it ``request`` and the child's four ``fds``; return its pid, or None where it is
        out of date (imports made since it was forked) or gone. Either way its socket closes."""
        try:
            if not set(sys.modules) <= self.modules:
                return None
            socket.send_fds(self.sock, [json.dumps(request).encode("utf-8")], fds)
            return self.pid
        except OSError:
            return None
        finally:
            self.sock.close()


def _wait_as_spare(sock: socket.socket, control: socket.socket, zygote: int) -> NoReturn:
    """In a spare child: wait for a spawn request, then become that worker; exit without one."""
    try:
        signal.set_wakeup_fd(-1)  # the server's wakeup pipe is not this process's
        packet, fds, _, _ = socket.recv_fds(sock, MAX_PACKET, SPAWN_FDS)
        sock.detach()  # closed by child_setup, as every fd but the child's own four
    except BaseException:  # noqa: BLE001 - a spare must never return into the server's loop
        os._exit(1)
    if not packet or len(fds) != SPAWN_FDS - 1:
        os._exit(0)
    _become_worker(json.loads(packet), fds, control, zygote)


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _become_worker(request: dict[str, Any], fds: list[int], control: socket.socket,
                   zygote: int) -> NoReturn:
    """In the forked child: become a sandbox worker exactly as a cold start would, with ``fds``
    as its stdout, stderr, requests and replies. Never returns."""
    code = 1
    try:
        control.detach()  # closed by child_setup; the object must never close a reused number
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from autograder.isolation import child, worker

        try:
            child.child_setup(child.ChildSpec.from_json(json.dumps(request["spec"])), fds,
                              parent=zygote)
        except child.StartRefused as exc:
            _say(f"the warm worker refused to start: {exc}\n")
            os._exit(1)
        _forget_cached_state()
        code = worker.serve(child.REQUEST_FD, child.REPLY_FD)
    except SystemExit as exc:  # the student's sys.exit() in a probe: exit as a cold worker would
        code = _exit_code(exc)
    except BaseException:  # noqa: BLE001 - the child must never return into the server's loop
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)


def _forget_cached_state() -> None:
    """Drop what the zygote's modules cached that a fresh process would compute anew."""
    import tempfile

    tempfile.tempdir = None  # the next call reads TMPDIR (the scratch directory)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # a fresh process seeds numpy's global generator from the OS


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    _say(f"{exc.code}\n")
    return 1


def _say(text: str) -> None:
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


DYNAMO_IMPORT = "torch._dynamo"
"""What a process's first ``torch.optim`` optimiser, or its first ``torch.func`` transform
(``grad``, ``vjp``, ``jacrev``; not ``vmap``), imports: sympy and about 900 modules, 0.8 s on
the 2-core development machine (torch 2.14)."""
DYNAMO_USERS = ("optim", "torch.func", "functorch", "torch.compile")
"""Words in a worker's cells or probes that make the fork server import :data:`DYNAMO_IMPORT`
before it forks: an a2 softmax_backward written with ``torch.func.vjp`` took 0.9 s to grade
where the others took 0.06 s."""


def _preload(modules: list[str]) -> None:
    """Import ``modules`` (a setup cell's imports) here, before forking, where not imported yet;
    one that fails to import is left for the worker to import, or fail on, itself."""
    import importlib

    for name in modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the worker will import it and report the error
            continue


GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/kfd")  # NVIDIA's control device; AMD's (ROCm)


def _may_have_gpu() -> bool:
    """Whether this machine may have a GPU, judged without asking CUDA (which would initialise
    its driver here, and a driver initialised before a fork is one the children cannot use)."""
    return any(os.path.exists(node) for node in GPU_DEVICE_NODES)


def cuda_driver_initialised() -> bool:
    """Whether CUDA's driver has been initialised in this process; never initialises it. Its
    library is loaded only by CUDA's first use, and before ``cuInit`` it answers
    ``cuCtxGetCurrent`` with CUDA_ERROR_NOT_INITIALIZED (3)."""
    import ctypes

    with open("/proc/self/maps", encoding="utf-8", errors="replace") as handle:
        if "libcuda.so" not in handle.read():
            return False
    current = ctypes.c_void_p()
    return int(ctypes.CDLL("libcuda.so.1").cuCtxGetCurrent(ctypes.byref(current))) != 3


def _warm_kernels() -> None:
    """Run each kind of op the checks use once (conv, pooling, linear, loss, backward, SGD), so
    that every forked worker inherits initialised CPU kernels instead of paying their first-use
    cost: it made a5's training checks ~5x slower in a fresh worker than in a warmed process.
    Uses no random numbers, so the workers' RNG state is that of a fresh process; single-threaded
    (OMP_NUM_THREADS=1), so no thread pool exists at fork time (serve() checks).

    The optimiser step runs only where ``torch._dynamo`` is already imported (asked for by
    :func:`autograder.isolation.launch.preload_for`): a process's first optimiser imports it,
    0.8 s that a2's `grade check` would otherwise wait for and never use.

    On a machine that may have a GPU there is no backward pass (the optimiser gets gradients
    made by hand): autograd's first backward counts the GPUs, which initialises CUDA's driver,
    and starts a thread for each, so the children could use neither the GPU nor autograd (a
    lent H200's fork server refused to serve: "2 threads after importing torch")."""
    import torch
    import torch.nn.functional as F

    backward = not _may_have_gpu()
    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(-1, 1, 2 * 1 * 8 * 8, dtype=dtype).reshape(2, 1, 8, 8)
        w = torch.full((4, 1, 3, 3), 0.1, dtype=dtype, requires_grad=True)
        v = torch.full((3, 4 * 3 * 3), 0.01, dtype=dtype, requires_grad=True)
        h = F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)
        h = F.dropout(h, p=0.0, training=True)
        logits = F.linear(torch.tanh(h[:, :, :3, :3].flatten(1)), v)
        loss = F.cross_entropy(logits, torch.tensor([0, 2])) + F.mse_loss(logits, logits.detach() * 0)
        if backward:
            loss.backward()
        else:
            for parameter in (w, v):
                parameter.grad = torch.full_like(parameter, 0.01)
        if DYNAMO_IMPORT in sys.modules:
            optimizer = torch.optim.SGD([w, v], lr=0.1, momentum=0.9)
            optimizer.step()
            optimizer.zero_grad()


def serve(control: socket.socket, preload: list[str]) -> int:
    """Import what every worker needs (and ``preload``), say ready, then serve spawn and reap
    requests."""
    import numpy  # noqa: F401 - imported here so that no child pays for it
    import torch  # noqa: F401

    from autograder import probes, wire  # noqa: F401
    from autograder.isolation import child, confine, worker  # noqa: F401

    _preload(preload)
    _warm_kernels()

    threads = _threads()
    if threads != 1:
        control.send(json.dumps({"ready": False, "error": f"{threads} threads after importing "
                                 f"torch ({_thread_names()}; is OMP_NUM_THREADS=1 set?)"
                                 }).encode("utf-8"))
        return 1
    if cuda_driver_initialised():
        control.send(json.dumps({"ready": False, "error": "CUDA's driver was initialised while "
                                 "importing torch and the setup cell's modules: a worker forked "
                                 "from here could not use the GPU"}).encode("utf-8"))
        return 1
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # the wakeup fd needs a handler
    signal.set_wakeup_fd(wake_w)
    control.send(json.dumps({"ready": True, "pid": os.getpid()}).encode("utf-8"))
    return _Server(control, wake_r).loop()


def main(argv: list[str]) -> int:
    from autograder.isolation.child import die_with_parent

    die_with_parent(os.getppid())
    return serve(socket.socket(fileno=int(argv[1])), [str(m) for m in json.loads(argv[2])])


# --- the grader's side ------------------------------------------------------------------------

class Zygote:
    """The grader's handle on one fork server. :meth:`spawn` may be called from any thread."""

    def __init__(self, env: dict[str, str], preload: tuple[str, ...] = ()) -> None:
        self.env = env
        self.preload = preload
        self.stderr = bytearray()  # the last few KiB the server wrote, for error messages
        self.dead: str | None = None  # why it stopped, once someone has been told
        self.owner = os.getpid()  # a forked copy of the grader must launch its own
        self._lock = threading.Lock()
        self._requests = 0
        self._launched = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._holder: threading.Thread | None = None
        self._launch_error: OSError | None = None
        self._sock, self._their_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float) -> None:
        """Launch the server and wait until it has imported torch; raise ZygoteUnavailable."""
        self._holder = threading.Thread(target=self._hold, name="autograder-zygote", daemon=True)
        self._holder.start()
        self._launched.wait()
        self._their_end.close()
        if self._launch_error is not None:
            raise ZygoteUnavailable(f"the fork server could not be launched: {self._launch_error}")
        try:
            hello = self._receive(timeout_s, "importing torch")
        except ZygoteUnavailable as exc:
            self._die(str(exc))
            raise
        if not hello.get("ready"):
            self._die(f"the fork server refused to serve: {hello.get('error')}")
            raise ZygoteUnavailable(self.dead)

    def _hold(self) -> None:
        """Launch the server from this long-lived thread, then relay its error output.

        PR_SET_PDEATHSIG fires when the *thread* that started a process ends: started from a
        grader thread that finishes its batch, the server would be killed with that thread.
        """
        fd = self._their_end.fileno()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "autograder.isolation.zygote", str(fd),
                 json.dumps(list(self.preload))], pass_fds=(fd,),
                env=self.env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self._launch_error = exc
            return
        finally:
            self._launched.set()
        stream = self._proc.stderr
        if stream is not None:
            for chunk in iter(lambda: os.read(stream.fileno(), 4096), b""):
                self.stderr += chunk
                del self.stderr[:-4096]
            stream.close()
        self._proc.wait()

    def spawn(self, spec: ChildSpec, fds: list[int], *, preload: tuple[str, ...] = ()) -> ForkedWorker:
        """Fork a worker set up by ``spec`` whose stdout, stderr, requests and replies are ``fds``
        (the caller keeps its copies and closes them), after importing ``preload`` here."""
        status_r, status_w = os.pipe()
        try:
            request = {"op": "spawn", "spec": json.loads(spec.to_json()), "preload": list(preload)}
            reply = self._request(request, [*fds, status_w])
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
        if "pid" not in reply:
            os.close(status_r)
            raise ZygoteUnavailable(f"the fork server refused: {reply.get('error')}")
        return ForkedWorker(int(reply["pid"]), status_r, self)

    def reap(self, pid: int) -> None:
        """Tell the server the grader is done with ``pid``: its zombie may go."""
        try:
            self._request({"op": "reap", "pid": pid}, [])
        except ZygoteUnavailable:
            pass  # a dead server's children are reaped by init

    def _request(self, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        with self._lock:
            if self.dead is not None:
                raise ZygoteUnavailable(self.dead)
            self._requests += 1
            ident = self._requests
            try:
                packet = json.dumps({**message, "id": ident}).encode("utf-8")
                if fds:
                    socket.send_fds(self._sock, [packet], fds)
                else:
                    self._sock.send(packet)
                while True:
                    reply = self._receive(REPLY_TIMEOUT_S, "answering a request")
                    if reply.get("id") == ident:
                        return reply
            except (OSError, ZygoteUnavailable) as exc:
                self._die(str(exc) if isinstance(exc, ZygoteUnavailable)
                          else f"the fork server is gone ({exc}; {self._exit()})")
                raise ZygoteUnavailable(self.dead) from None

    def _receive(self, timeout_s: float, doing: str) -> dict[str, Any]:
        if not select.select([self._sock], [], [], timeout_s)[0]:
            raise ZygoteUnavailable(f"the fork server timed out after {timeout_s:g} s {doing}")
        packet = self._sock.recv(MAX_PACKET)
        if not packet:
            raise ZygoteUnavailable(f"the fork server died while {doing} ({self._exit()})")
        reply = json.loads(packet)
        if not isinstance(reply, dict):
            raise ZygoteUnavailable(f"the fork server sent {type(reply).__name__}, not a reply")
        return reply

    def _exit(self) -> str:
        if self._proc is None:
            return "never started"
        try:
            code = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "still running"
        if self._holder is not None and self._holder is not threading.current_thread():
            self._holder.join(timeout=1)  # it relays the last of the server's error output
        tail = self.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return how + (f": {tail[0][:200]}" if tail else "")

    def notice_death(self) -> None:
        """Record that the server has died (a worker lost with it said so): relaunch next time."""
        global _troubles
        with self._lock:
            if self.dead is None:
                self.dead = f"the fork server died ({self._exit()})"
                _troubles += 1

    def _die(self, reason: str) -> None:
        global _troubles
        if self.dead is None:
            _troubles += 1
        self.dead = reason
        self._sock.close()
        if self.alive() and self._proc is not None:
            self._proc.kill()

    def close(self) -> None:
        """Hang up: the server kills the children it still has and exits."""
        with self._lock:
            if self.dead is None:
                self.dead = "stopped"
            self._sock.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


class ForkedWorker:
    """A worker the fork server forked for this grader: its exit status comes over a pipe."""

    def __init__(self, pid: int, status_fd: int, server: Zygote) -> None:
        self.pid = pid
        self.server = server
        self._status = status_fd
        self._code: int | None = None

    def wait(self, timeout: float) -> int | None:
        """Return its exit status as ``Popen.returncode`` gives it, or None: still running after
        ``timeout`` seconds, or unknown because the fork server died (and took it along)."""
        if self._code is None and self._status >= 0:
            if not select.select([self._status], [], [], timeout)[0]:
                return None
            data = os.read(self._status, STATUS.size)  # empty: the fork server died
            if len(data) == STATUS.size:
                self._code = STATUS.unpack(data)[0]
            os.close(self._status)
            self._status = -1
        return self._code

    def release(self) -> None:
        """After the kill: wait for the exit, then let the server reap it. Until now its zombie
        kept its pid, and so its process group id, from being reused by another process."""
        self.wait(5)
        self.server.reap(self.pid)
        if self._status >= 0:
            os.close(self._status)
            self._status = -1


_LOCK = threading.Lock()
_server: Zygote | None = None
_troubles = 0  # launches that failed and servers that died
_registered = False  # stop() is registered to run at exit
_last_failure = ""


def shared(*, env: dict[str, str], startup_timeout_s: float, preload: tuple[str, ...] = ()) -> Zygote:
    """Return this process's fork server, launching it on first use (importing ``preload``
    before it says it is ready).

    Raise :class:`ZygoteUnavailable` when it cannot start, or when it has died since the last
    request (that start goes cold and says so; the next one launches a new server).
    """
    global _server, _last_failure, _registered
    with _LOCK:
        server = _server
        if server is not None and server.owner != os.getpid():
            server = _server = None  # inherited through os.fork(): the parent's, not ours
        if server is not None and server.dead is None and server.alive():
            return server
        if server is not None:
            _server = None
            if server.dead is None:  # nobody has been told yet: this start is the one that hears
                server.notice_death()
                _last_failure = server.dead or ""
                raise ZygoteUnavailable(server.dead)
            _last_failure = server.dead
        if _troubles >= MAX_TROUBLES:
            raise ZygoteUnavailable(f"the fork server failed or died {_troubles} times, so it is "
                                    f"not launched again; the last time: {_last_failure}")
        if not _registered:
            atexit.register(stop)
            _registered = True
        server = Zygote(env, preload)
        try:
            server.start(startup_timeout_s)
        except ZygoteUnavailable as exc:
            _last_failure = str(exc)
            raise
        _server = server
        return server


def running() -> Zygote | None:
    """The live fork server, if there is one (for tests and diagnostics)."""
    return _server


def stop() -> None:
    """Stop the fork server (at interpreter exit); the next :func:`shared` launches a new one."""
    global _server
    if not _LOCK.acquire(timeout=1.0):
        return  # a launch is under way (a warm-up): that server dies with its holder thread
    try:
        server, _server = _server, None
    finally:
        _LOCK.release()
    if server is not None and server.owner == os.getpid():
        server.close()


if __name__ == "__main__":
    from autograder.isolation.child import exit_now

    exit_now(main(sys.argv))
