"""Length-prefixed frames: how the grader and a worker talk over their two pipes.

Each frame is an 8-byte big-endian length, then that many bytes (JSON from :mod:`autograder.wire`
or a start-up message). The worker reads and writes whole frames with these functions; the
grader reads with a deadline and a size cap (:class:`autograder.isolation.sandbox.Sandbox`), since
what the worker writes is untrusted.
"""

from __future__ import annotations

import os
import select
import struct
import time
from collections.abc import Callable

HEADER = struct.Struct(">Q")


def read_frame(fd: int) -> bytes:
    """Read one frame from ``fd``; raise EOFError if the other side hung up."""
    header = _read_exact(fd, HEADER.size)
    return _read_exact(fd, HEADER.unpack(header)[0])


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("channel closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, payload: bytes) -> None:
    """Write ``payload`` to ``fd`` as one frame."""
    data = HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FrameError(Exception):
    """No whole frame came: the sender exited, missed the deadline, or sent too much."""


class Closed(FrameError):
    def __init__(self) -> None:
        super().__init__("the process exited")


class TimedOut(FrameError):
    def __init__(self, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g} s")


class TooLarge(FrameError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the result was {size} bytes, over the limit of {limit}")


def receive_frame(fd: int, *, timeout: float, max_bytes: int,
                  poll: Callable[[], None] | None = None) -> bytes:
    """Read one frame from an untrusted sender within ``timeout`` seconds, refusing frames over
    ``max_bytes``. ``poll`` runs about every 0.25 s while nothing arrives (it may raise, e.g. to
    stop a worker over a limit)."""
    deadline = time.monotonic() + timeout

    def read_exact(n: int) -> bytes:
        chunks, left = [], n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise TimedOut(timeout)
            if not select.select([fd], [], [], min(wait, 0.25))[0]:
                if poll is not None:
                    poll()
                continue
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise Closed
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    size = HEADER.unpack(read_exact(HEADER.size))[0]
    if size > max_bytes:
        raise TooLarge(size, max_bytes)
    return read_exact(size)
