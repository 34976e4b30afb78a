"""Keep a grader warm between commands: `grade check` and `grade run` answer in a fraction of a second.

A `grade` command spends its first ~9 s before any check: Python and torch, the fork server with
the assignment's imports, the reference solution's run, pytest's collection. None of that depends
on the submission. The first `grade check`, `grade run`, `grade course autograde` or `grade audit`
starts a grading server in the background; that command and every later one run inside it, where
all of that is already loaded, and the `grade` process the user typed is a thin client that
forwards its arguments, working directory and terminal, prints what comes back and exits with the
command's status. Nothing else changes: the same click command runs, with the same sandbox.

- **Private.** One server per user, per installation (the package's files and their times, the
  interpreter and its site-packages) and per environment that changes grading (``CUDA_*``,
  ``TORCHGRADE_*``, library paths); any change starts a fresh server. The socket lives in a
  folder only its owner can open (``$XDG_RUNTIME_DIR/torchgrade``, else
  ``/tmp/torchgrade-<uid>``), is 0600, and the server answers only its own uid (``SO_PEERCRED``)
  and only a request that carries the token it wrote beside the socket (0600). Student code runs
  as the same user, but in a sandbox that cannot read the token (Landlock) and, as root, does not
  see the folder at all (:func:`private_folders` are hidden in its mount namespace): a
  submission cannot ask the server for anything.
- **Fresh.** What it keeps is keyed by content: an edited notebook, check file or reference is
  read again (see :func:`autograder.course.load_assignment`, :func:`autograder.subjects.reference_subject`,
  :func:`autograder.plugin.run_in_session`).
- **Short-lived.** It exits after :data:`IDLE_S` seconds without a request
  (``TORCHGRADE_SERVER_IDLE_S``), after a command that was interrupted (Ctrl-C, or the client
  went away) or raised an unexpected error, and on ``grade server stop``.
- **Optional.** ``TORCHGRADE_SERVER=off`` (or ``grade --no-server ...``) runs every command in its
  own process, as before. Where no server can be started, the command runs in its own process
  and says why.

Requests run one at a time, in the server's main thread. This module imports only the standard
library: the client never loads torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import io
import json
import os
import queue
import secrets
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

IDLE_S = 900.0
"""Seconds a server waits for the next request before it exits (``TORCHGRADE_SERVER_IDLE_S``)."""
START_TIMEOUT_S = 60.0
"""Seconds a client waits for a server it started to listen (it listens before importing anything)."""
SERVED = (("check",), ("run",), ("audit",), ("course", "autograde"))
"""The commands a server runs: those that load torch and grade."""
ENV_PREFIXES = ("TORCHGRADE_", "CUDA_", "NVIDIA_", "PYTORCH_", "OMP_", "MKL_")
ENV_NAMES = ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "PATH", "HOME")
"""Environment variables that change grading: a server serves only clients that agree on them."""
TERMINAL_NAMES = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")
"""Set from the client for each request: how its output should look."""
GROUP_OPTIONS_WITH_VALUE = ("--solutions",)

_HEADER = struct.Struct("!cI")  # kind, length


class ServerUnavailable(RuntimeError):
    """No server could be reached or started; the command runs in its own process instead."""


# -- the shared part: where, which, and the frames -------------------------------------------


def enabled() -> bool:
    return os.environ.get("TORCHGRADE_SERVER", "on").strip().lower() not in ("off", "0", "no", "false")


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("TORCHGRADE_SERVER_IDLE_S", IDLE_S)))
    except ValueError:
        return IDLE_S


def served_command(argv: list[str]) -> tuple[str, ...] | None:
    """The served command ``argv`` names (after the group's options), or None: not for a server."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--help", "-h", "--no-server"):
            return None
        if arg in GROUP_OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            if words:
                continue
            if not any(arg.startswith(f"{o}=") for o in GROUP_OPTIONS_WITH_VALUE):
                return None  # an option the group does not know: let click say so
            continue
        words.append(arg)
        if len(words) == 2:
            break
    for command in SERVED:
        if tuple(words[:len(command)]) == command:
            if command == ("run",) and any(a == "--scheduler" or a.startswith("--scheduler=") for a in argv):
                return None  # a Dask client belongs to the command, not to a server
            return command
    return None


def runtime_dir() -> Path:
    """The folder of this user's sockets, created 0700; refused if anyone else could use it."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    folder = Path(base) / "torchgrade" if base and Path(base).is_dir() else _tmp_folder()
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        raise ServerUnavailable(f"cannot create {folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ServerUnavailable(f"{folder} is not a private folder of this user (owner uid "
                                f"{info.st_uid}, mode {stat.filemode(info.st_mode)})")
    return folder


def installation_key() -> str:
    """What a server must share with its clients: the code, the interpreter and the environment."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    digest.update(f"{sys.executable}\0{os.getuid()}\0".encode())
    for path in sorted(package.rglob("*.py")):
        info = path.stat()
        digest.update(f"{path}\0{info.st_mtime_ns}\0{info.st_size}\0".encode())
    for name in ("purelib", "platlib"):
        with contextlib.suppress(OSError):
            digest.update(f"{name}\0{Path(sysconfig.get_path(name)).stat().st_mtime_ns}\0".encode())
    for name in sorted(os.environ):
        if (name.startswith(ENV_PREFIXES) and not name.startswith("TORCHGRADE_SERVER")) or name in ENV_NAMES:
            digest.update(f"{name}={os.environ[name]}\0".encode())
    return digest.hexdigest()[:20]


def private_folders() -> list[Path]:
    """The folders where servers keep sockets and tokens, as a sandbox must hide them (not made)."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    found = [Path(base) / "torchgrade"] if base else []
    found.append(_tmp_folder())
    return [folder for folder in found if folder.is_dir()]


def _tmp_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"torchgrade-{os.getuid()}"


def socket_path(key: str) -> Path:
    path = runtime_dir() / f"{key}.sock"
    if len(os.fsencode(path)) > 100:  # sun_path holds 108 bytes
        raise ServerUnavailable(f"the socket path {path} is too long for a Unix socket")
    return path


def send(conn: socket.socket, kind: bytes, payload: bytes) -> None:
    conn.sendall(_HEADER.pack(kind, len(payload)) + payload)


def receive(conn: socket.socket) -> tuple[bytes, bytes] | None:
    """The next frame, or None when the other side closed the connection."""
    header = _read_exactly(conn, _HEADER.size)
    if header is None:
        return None
    kind, length = _HEADER.unpack(header)
    payload = _read_exactly(conn, length)
    return None if payload is None else (kind, payload)


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        try:
            chunk = conn.recv(left)
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# -- the client -------------------------------------------------------------------------------


def forward(argv: list[str]) -> int | None:
    """Run ``grade argv`` in this user's grading server and return its exit status; None when it
    is not for a server (then it runs here)."""
    if not enabled() or served_command(argv) is None:
        return None
    try:
        key = installation_key()
        conn = connect(start=True, key=key)
    except ServerUnavailable as exc:
        print(f"grade: no grading server ({exc}); grading in this process", file=sys.stderr)
        return None
    with conn:
        request = {"op": "run", "argv": argv, "cwd": os.getcwd(), "terminal": _terminal()}
        try:
            send(conn, b"R", _request(socket_path(key), request))
            return _relay(conn, key)
        except KeyboardInterrupt:
            with contextlib.suppress(OSError):
                send(conn, b"I", b"")
            print("\nAborted!", file=sys.stderr)
            return 130


def _terminal() -> dict[str, Any]:
    tty = sys.stdout.isatty()
    names = {name: os.environ[name] for name in TERMINAL_NAMES if name in os.environ}
    if tty and "COLUMNS" not in names:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(sys.stdout.fileno())
            names.update(COLUMNS=str(size.columns), LINES=str(size.lines))
    return {"stdout_tty": tty, "stderr_tty": sys.stderr.isatty(), "env": names}


def _relay(conn: socket.socket, key: str) -> int:
    sinks = {b"o": sys.stdout.buffer, b"e": sys.stderr.buffer}
    while True:
        frame = receive(conn)
        if frame is None:
            print(f"grade: the grading server stopped before the command ended; its log: "
                  f"{log_path(key)}", file=sys.stderr)
            return 1
        kind, payload = frame
        if kind in sinks:
            sinks[kind].write(payload)
            sinks[kind].flush()
        elif kind == b"x":
            return int(json.loads(payload)["code"])


def log_path(key: str) -> Path:
    return runtime_dir() / f"{key}.log"


def connect(*, start: bool, key: str | None = None) -> socket.socket:
    """A connection to the server of this installation, started first if ``start``."""
    key = key or installation_key()
    path = socket_path(key)
    conn = _try_connect(path)
    if conn is not None or not start:
        if conn is None:
            raise ServerUnavailable("no server is running")
        return conn
    with open(runtime_dir() / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one client starts it; the others find it running
        conn = _try_connect(path)
        if conn is not None:
            return conn
        with open(log_path(key), "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.server", str(path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            conn = _try_connect(path)
            if conn is not None:
                return conn
            if proc.poll() is not None:
                tail = log_path(key).read_text(errors="replace")[-500:].strip()
                raise ServerUnavailable(f"it exited with status {proc.returncode}: {tail}")
            time.sleep(0.02)
        proc.kill()
        raise ServerUnavailable(f"it did not listen within {START_TIMEOUT_S:g} s")


def _request(path: Path, body: dict[str, Any]) -> bytes:
    """``body`` with the server's token, which only its user can read (and no sandbox)."""
    try:
        token = path.with_suffix(".token").read_text(encoding="ascii")
    except OSError as exc:
        raise ServerUnavailable(f"its token is unreadable: {exc.strerror}") from None
    return json.dumps({**body, "token": token}).encode()


def _try_connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    return conn


def running() -> list[dict[str, Any]]:
    """The servers of this user (any installation) that answer, each as it describes itself."""
    found = []
    try:
        folder = runtime_dir()
    except ServerUnavailable:
        return []
    for path in sorted(folder.glob("*.sock")):
        conn = _try_connect(path)
        if conn is None:
            continue
        with conn:
            reply = _ask(conn, path, {"op": "status"})
        if reply is not None:
            found.append(reply)
    return found


def stop(key: str) -> bool:
    """Ask the server ``key`` to exit; whether one answered."""
    try:
        conn = connect(start=False, key=key)
    except ServerUnavailable:
        return False
    with conn:
        return _ask(conn, socket_path(key), {"op": "stop"}) is not None


def _ask(conn: socket.socket, path: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    conn.settimeout(10)
    try:
        send(conn, b"R", _request(path, request))
        frame = receive(conn)
    except (OSError, ServerUnavailable):
        return None
    if frame is None or frame[0] != b"x":
        return None
    reply: dict[str, Any] = json.loads(frame[1])
    return reply


# -- the server -------------------------------------------------------------------------------


class _Stream(io.TextIOBase):
    """stdout or stderr of the command being served: each write goes to the client as a frame."""

    def __init__(self, conn: socket.socket, kind: bytes, lock: threading.Lock, *, tty: bool) -> None:
        self._conn, self._kind, self._lock, self._tty = conn, kind, lock, tty
        self.broken = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return self._tty

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes a stream with bytes to learn its kind
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text and not self.broken:
            with self._lock:
                try:
                    send(self._conn, self._kind, text.encode("utf-8", "replace"))
                except OSError:
                    self.broken = True  # the client left: the watcher stops the command
        return len(text)

    @property
    def buffer(self) -> BinaryIO:  # click writes bytes here
        return _BinaryStream(self)  # type: ignore[return-value]


class _BinaryStream(io.RawIOBase):
    def __init__(self, text: _Stream) -> None:
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)


class Server:
    """Accept requests on ``path``; run each command in the main thread, one at a time.

    A thread accepts connections and answers ``status`` and ``stop`` at once, even while a
    command runs; commands wait in a queue for the main thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key = path.stem
        self.started = time.time()
        self.requests = 0
        self.busy = False
        self.idle_s = idle_seconds()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._inode = -1
        self._token = secrets.token_hex(32)
        self._queue: queue.Queue[tuple[socket.socket, dict[str, Any]] | None] = queue.Queue()

    def listen(self) -> None:
        """Bind under a private name, then rename into place: a client never sees a half-made socket."""
        staging = self.path.with_name(f"{self.key}.{os.getpid()}.new")
        token = staging.with_suffix(".token")
        for path in (staging, token):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._listener.bind(str(staging))
            descriptor = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        finally:
            os.umask(old_umask)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(self._token)
        os.replace(token, self.path.with_suffix(".token"))
        os.chmod(staging, 0o600)
        self._inode = staging.stat().st_ino
        self._listener.listen(16)
        os.replace(staging, self.path)

    def serve(self) -> None:
        """Run queued commands until idle for :attr:`idle_s`, stopped, or no longer trusted."""
        threading.Thread(target=self._accept, name="autograder-server-accept", daemon=True).start()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.idle_s)
                except queue.Empty:
                    return
                if item is None:
                    return
                conn, request = item
                with conn:
                    if _gone(conn):
                        continue  # its client left while it waited
                    self.requests += 1
                    self.busy = True
                    code, healthy = self._run(conn, request)
                    self.busy = False
                    with contextlib.suppress(OSError):
                        send(conn, b"x", json.dumps({"code": code}).encode())
                if not healthy:
                    return
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening; remove the socket file unless another server has replaced it."""
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        token = self.path.with_suffix(".token")
        with contextlib.suppress(OSError):
            if token.read_text(encoding="ascii") == self._token:
                token.unlink()
        self._listener.close()

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "pid": os.getpid(), "started": self.started, "busy": self.busy,
                "requests": self.requests, "idle_s": self.idle_s, "python": sys.executable}

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed: the server is ending
            try:
                request = self._read_request(conn)
            except (OSError, ValueError):
                request = None
            if request is None:
                conn.close()
            elif request.get("op") == "run" and served_command(list(request.get("argv", []))) is None:
                with conn, contextlib.suppress(OSError):
                    send(conn, b"e", b"grade: not a command for the grading server\n")
                    send(conn, b"x", b'{"code": 2}')
            elif request.get("op") == "run":
                self._queue.put((conn, request))
            else:
                with conn, contextlib.suppress(OSError):
                    send(conn, b"x", json.dumps(self.describe()).encode())
                if request.get("op") == "stop":
                    self._queue.put(None)

    def _read_request(self, conn: socket.socket) -> dict[str, Any] | None:
        """The request of a client of this user that could read the token, or None."""
        _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         struct.calcsize("3i")))
        if uid != os.getuid():
            return None
        conn.settimeout(30)
        frame = receive(conn)
        conn.settimeout(None)
        if frame is None or frame[0] != b"R":
            return None
        request = json.loads(frame[1])
        if not isinstance(request, dict) or not hmac.compare_digest(
                str(request.get("token", "")).encode(), self._token.encode()):
            return None
        return request

    def _run(self, conn: socket.socket, request: dict[str, Any]) -> tuple[int, bool]:
        """Run the command; its exit status, and whether this process can still be trusted."""
        from autograder.cli import cli

        lock = threading.Lock()
        terminal = request.get("terminal", {})
        out = _Stream(conn, b"o", lock, tty=bool(terminal.get("stdout_tty")))
        err = _Stream(conn, b"e", lock, tty=bool(terminal.get("stderr_tty")))
        watcher = _Watcher(conn)
        code, healthy = 1, True
        with _request_env(terminal.get("env", {})), _cwd(request["cwd"]), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            watcher.start()
            try:
                cli.main(args=list(request["argv"]), prog_name="grade", standalone_mode=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if exc.code is not None and not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr)
            except KeyboardInterrupt:
                code, healthy = 130, False
            except Exception:  # noqa: BLE001 - said to the client, and this server ends
                traceback.print_exc()
                code, healthy = 1, False
            finally:
                interrupted = watcher.finish()
        return code, healthy and not interrupted and not out.broken


def _gone(conn: socket.socket) -> bool:
    """Whether the client closed its end (or sent Ctrl-C) before its command began."""
    readable, _, _ = select.select([conn], [], [], 0)
    return bool(readable)


class _Watcher:
    """Interrupt the command when its client sends Ctrl-C or goes away."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._done = False
        self.interrupted = False
        self._thread = threading.Thread(target=self._watch, name="autograder-server-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        receive(self._conn)  # Ctrl-C ("I"), or nothing: the client is gone
        with self._lock:
            if not self._done:
                self.interrupted = True
                # a real SIGINT to the main thread: it also ends a system call it is waiting in
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def finish(self) -> bool:
        """End watching; whether the command was interrupted."""
        with self._lock:
            self._done = True
            return self.interrupted


@contextlib.contextmanager
def _request_env(names: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in TERMINAL_NAMES}
    for name in TERMINAL_NAMES:
        os.environ.pop(name, None)
    os.environ.update({k: str(v) for k, v in names.items() if k in TERMINAL_NAMES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _cwd(path: str) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m autograder.server SOCKET_PATH (started by `grade`)", file=sys.stderr)
        return 2
    server = Server(Path(argv[0]))
    server.listen()
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    from autograder.isolation.child import exit_now

    exit_now(main(sys.argv[1:]))
