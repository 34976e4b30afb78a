"""The sandbox side: run a submission's cells, then answer probe requests over a pipe.

Started by :mod:`autograder.sandbox` as ``python -I -m autograder.worker READ_FD WRITE_FD``.
Everything here is untrusted once the student's code has run: the parent treats what comes back
as data only and decides nothing from this process's word.
"""

from __future__ import annotations

import builtins
import json
import os
import struct
import sys
from typing import Any

HEADER = struct.Struct(">Q")


def read_frame(fd: int) -> bytes:
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
    data = HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def exec_cells(cells: list[dict[str, str]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute the cells in order in one fresh namespace; return it and each cell's error."""
    from autograder.probes import describe_error, register_source

    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    statuses: list[dict[str, Any]] = []
    for cell in cells:
        filename = f"<cell {cell['id']}>"
        register_source(filename, cell["source"])
        try:
            exec(compile(cell["source"], filename, "exec"), namespace)
            statuses.append({"id": cell["id"], "error": None})
        except BaseException as exc:  # noqa: BLE001 - SystemExit included: it is the cell's error
            statuses.append({"id": cell["id"], "error": describe_error(exc)})
    return namespace, statuses


def main(argv: list[str]) -> int:
    read_fd, write_fd = int(argv[1]), int(argv[2])
    import torch

    from autograder import wire
    from autograder.probes import run_probe

    torch.set_num_threads(1)
    init = json.loads(read_frame(read_fd))
    namespace, statuses = exec_cells(init["cells"])
    sys.stdout.flush()
    write_frame(write_fd, json.dumps({"cells": statuses}).encode("utf-8"))
    while True:
        try:
            request = wire.decode(read_frame(read_fd))
        except EOFError:
            return 0
        outcome = run_probe(namespace, request["probe"], request["args"], request["kwargs"])
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            payload = wire.encode(outcome)
        except Exception as exc:  # noqa: BLE001 - an unencodable value is the student's error
            payload = wire.encode({"value": None, "torch_calls": outcome["torch_calls"], "error": {
                "types": ["ProbeError"], "message": f"the result could not be sent back: {exc}",
                "traceback": ""}})
        write_frame(write_fd, payload)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
