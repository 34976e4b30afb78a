"""How to grade, in one frozen dataclass whose defaults the CLI shows; whether cuda checks run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from autograder.isolation.config import SandboxConfig

DEVICES = ("cpu", "cuda")


def uses_cuda(devices: Iterable[str]) -> bool:
    """Whether cuda checks run: asked for, and a GPU is there. Every caller asks here."""
    from autograder.plugin import cuda_skip_reason

    return cuda_skip_reason(devices) is None


@dataclass(frozen=True)
class GradeConfig:
    """How to grade: devices, sandbox limits, and which checks to include."""

    devices: tuple[str, ...] = DEVICES
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    include_hidden: bool = True

    @property
    def uses_cuda(self) -> bool:
        return uses_cuda(self.devices)
