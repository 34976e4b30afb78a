"""The sandbox side: run a submission's cells, then answer probe requests over a pipe.

Started by :mod:`autograder.isolation.launch` as ``python -I -m autograder.isolation.worker SPEC
READ_FD WRITE_FD`` (a cold start), or forked by the fork server in
:mod:`autograder.isolation.zygote` (a warm start). Both set themselves up with
:func:`autograder.isolation.child.child_setup`, then run :func:`serve`. Everything here is
untrusted once the student's code has run: the parent treats what comes back as data only and
decides nothing from this process's word.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
from typing import Any

from autograder.isolation.child import REPLY_FD, REQUEST_FD, ChildSpec, StartRefused, child_setup
from autograder.isolation.frames import read_frame, write_frame


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


SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/dev", "/proc/cpuinfo",
               "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu")
CUDA_READ = ("/proc", "/sys", "/run/nvidia-persistenced", "/var/run/nvidia-persistenced")


def read_paths(*, cuda: bool, deny: list[str]) -> list[str]:
    """Paths the student's code may read: the interpreter, its packages, system libraries.

    A path that contains a denied one (the solutions, the results) is never allowed, whatever
    the installation layout.
    """
    import site

    import autograder
    from autograder.isolation.confine import ETC_READ

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(os.path.abspath(autograder.__file__)), *site.getsitepackages(),
             *(p for p in sys.path if p and os.path.isdir(p)), *SYSTEM_READ,
             *(os.path.join("/etc", name) for name in ETC_READ)}
    if cuda:
        paths.update(CUDA_READ)
    denied = [os.path.realpath(d) for d in deny]
    return sorted(p for p in paths if not any(
        os.path.commonpath([os.path.realpath(p), d]) == os.path.realpath(p) for d in denied))


def confine_self(spec: dict[str, Any]) -> tuple[list[str], bool]:
    """Enter namespaces (as root), apply Landlock and drop root capabilities; return what is now
    in force, in words, and whether the scratch directory is capped in size here."""
    from autograder.isolation import confine

    notes, capped = [], False
    deny = [str(d) for d in spec.get("deny", [])]
    cuda = bool(spec.get("cuda"))  # NVIDIA's driver names its threads: see confine.OWN_THREADS
    read = read_paths(cuda=cuda, deny=deny)
    if spec.get("namespaces", True) and spec.get("scratch"):
        isolation = confine.isolate_namespaces(str(spec["scratch"]), read=read, hide=deny,
                                               scratch_bytes=spec.get("scratch_bytes"),
                                               own_threads=cuda)
        notes.extend(isolation.notes)
        capped = isolation.scratch_capped
    if spec.get("landlock"):
        result = confine.apply_landlock(read=read, write=[spec["scratch"]], own_threads=cuda)
        notes.append(result.detail if result.active else f"no Landlock: {result.detail}")
    dropped = confine.drop_capabilities()
    if dropped:
        notes.append(dropped)
    return notes, capped


GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-uvm")


def cuda_problem() -> str | None:
    """Why this confined process cannot use CUDA, or None when it can.

    Asked after confinement and before any student code, so the answer is the machine's word,
    not the student's: it names torch's own complaint and each GPU device file that cannot be
    opened, which tells an instructor which protection keeps the GPU out.
    """
    import warnings

    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if torch.cuda.is_available():
            return None
    said: list[str | None] = [str(w.message).split(" (Triggered internally")[0].strip()
                              for w in caught]
    for path in GPU_DEVICES:
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CLOEXEC))
        except OSError as exc:
            said.append(f"{path}: {exc.strerror}")
    said.extend([thread_naming_problem(), driver_says()])
    return "; ".join(s for s in said if s) or "torch.cuda.is_available() is False"


def thread_naming_problem() -> str | None:
    """Why this process may not name a thread of its own, as NVIDIA's driver (570 and later)
    does in ``cuInit`` (a refusal there is CUDA_ERROR_OPERATING_SYSTEM); None when it may."""
    import threading

    from autograder.isolation.confine import OWN_THREADS

    started, stop = threading.Event(), threading.Event()

    def idle() -> None:
        started.set()
        stop.wait()

    thread = threading.Thread(target=idle, daemon=True)
    thread.start()
    started.wait()
    path = f"{OWN_THREADS}/{thread.native_id}/comm"
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write("cuda-probe")
    except OSError as exc:
        return f"{path}: {exc.strerror} (the CUDA driver names its threads there)"
    finally:
        stop.set()
        thread.join()
    return None


def driver_says() -> str:
    """What the CUDA driver itself answers, below torch: whether ``libcuda.so.1`` loads, and
    ``cuInit``'s result by name (CUDA_ERROR_NO_DEVICE, CUDA_ERROR_OPERATING_SYSTEM, ...)."""
    import ctypes

    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        return f"the CUDA driver library cannot be loaded ({exc})"
    code = driver.cuInit(0)
    if code == 0:
        count = ctypes.c_int(-1)
        driver.cuDeviceGetCount(ctypes.byref(count))
        return f"the driver's cuInit succeeded and counts {count.value} device(s)"
    name, text = ctypes.c_char_p(), ctypes.c_char_p()
    driver.cuGetErrorName(code, ctypes.byref(name))
    driver.cuGetErrorString(code, ctypes.byref(text))
    return (f"the driver's cuInit(0) returned {code} "
            f"({(name.value or b'?').decode()}: {(text.value or b'').decode()})")


def main(argv: list[str]) -> int:
    """Cold start: ``python -I -m autograder.isolation.worker SPEC READ_FD WRITE_FD``."""
    try:
        child_setup(ChildSpec.from_json(argv[1]), [1, 2, int(argv[2]), int(argv[3])],
                    parent=os.getppid())
    except StartRefused as exc:
        print(f"the worker refused to start: {exc}", file=sys.stderr)
        return 1
    return serve(REQUEST_FD, REPLY_FD)


def serve(read_fd: int, write_fd: int) -> int:
    """Confine this process, run the cells, then answer probes until the parent hangs up.

    The caller has already given the process its own session, its cgroup, its limits, its
    environment and its scratch directory: nothing of the student's has run yet.
    """
    import torch

    from autograder import wire
    from autograder.probes import load_probes, run_probe, set_disk_limits

    torch.set_num_threads(1)
    init = json.loads(read_frame(read_fd))
    spec = init.get("confine", {})
    confinement, capped = confine_self(spec)
    set_disk_limits(scratch_bytes=spec.get("scratch_bytes"), file_bytes=spec.get("file_bytes"))
    # the assignment's own probes: trusted course material, run before any student code
    course_probes = init.get("probes") or {}
    probes = load_probes(str(course_probes.get("source", "")),
                         str(course_probes.get("filename", "probes.py")))
    gpu = cuda_problem() if spec.get("cuda") else None
    # ready, before any student code: a worker that dies earlier is the machine's fault
    write_frame(write_fd, json.dumps({"ready": True, "confinement": confinement,
                                      "scratch_capped": capped, "cuda_problem": gpu}).encode("utf-8"))
    namespace, statuses = exec_cells(init["cells"])
    sys.stdout.flush()
    write_frame(write_fd, json.dumps({"cells": statuses}).encode("utf-8"))
    while True:
        try:
            request = wire.decode(read_frame(read_fd))
        except EOFError:  # the grader is done: closing stdout and stderr tells it that all the
            sys.stdout.flush()  # output has arrived, without waiting for this process to exit
            sys.stderr.flush()
            os.close(1)
            os.close(2)
            return 0
        outcome = run_probe(namespace, request["probe"], request["args"], request["kwargs"],
                            probes=probes)
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
