"""The limits of a sandbox, in one place, and how they read in a report."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True)
class SandboxConfig:
    """Limits for one submission's worker process. The `grade` options take their defaults from
    here."""

    check_timeout_s: float = 30.0
    startup_timeout_s: float = 90.0
    submission_timeout_s: float = 600.0
    memory_bytes: int | None = 6 * GIB
    cpu_seconds: int = 900
    max_file_bytes: int = 64 * MIB
    scratch_bytes: int | None = 256 * MIB  # all files of a submission together
    max_open_files: int = 512
    max_message_bytes: int = 64 * MIB
    output_limit_bytes: int = 8 << 10
    max_restarts: int = 5
    max_processes: int = 64
    landlock: bool = True
    namespaces: bool = True  # as root: own mount (scratch tmpfs, hidden /etc) and network ns
    cgroup: bool = True
    warm: bool = True  # fork workers from a fork server; False: start each with python -I


def protections(config: SandboxConfig, *, uses_cuda: bool) -> list[str]:
    """Name the protections a worker started with ``config`` has on this machine."""
    active = [
        "separate process (python -I, scrubbed environment, scratch directory)",
        "plain-data result channel (JSON, no pickle)",
        f"wall-clock timeout per check ({config.check_timeout_s:g} s) with process-group kill",
        f"CPU time limit ({config.cpu_seconds} s)",
        f"file size limit ({config.max_file_bytes // MIB} MiB)",
        *([f"scratch limit ({config.scratch_bytes / MIB:g} MiB for all files together)"]
          if config.scratch_bytes is not None else []),
        f"open files limit ({config.max_open_files})",
        "no core dumps",
    ]
    if config.memory_bytes is not None and not uses_cuda:
        active.append(f"address space limit ({config.memory_bytes / GIB:g} GiB)")
    elif config.memory_bytes is not None and not config.cgroup:
        active.append(f"resident memory polled ({config.memory_bytes / GIB:g} GiB)")
    return active
