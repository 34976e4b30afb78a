"""Subjects: what a check talks to as ``student`` and ``reference``.

A check calls ``student.softmax(z)`` and ``reference.softmax(z)`` and compares. Behind the same
interface, a subject runs a probe in the sandbox
(:class:`autograder.isolation.sandbox.SandboxSubject`),
in-process (:class:`LocalSubject`), or replays answers recorded from the reference at build time
(:class:`ReplaySubject`), which is how a student's check cell compares with a reference it never
sees. Every value is passed through :mod:`autograder.wire`, so all three return the same plain data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autograder import wire
from autograder.course import Assignment, reference_namespace
from autograder.probes import Probes, load_probes, run_probe


class StudentError(Exception):
    """The student's code raised while a probe ran it."""

    def __init__(self, types: list[str], message: str, traceback: str = "") -> None:
        self.types = list(types)
        self.message = message
        self.traceback = traceback
        super().__init__(self.describe())

    def is_a(self, type_name: str) -> bool:
        return type_name in self.types

    def describe(self) -> str:
        kind = self.types[0] if self.types else "Exception"
        text = f"{kind}: {self.message}" if self.message else kind
        if kind == "ProbeError":
            text = self.message
        return text + (f"\n{self.traceback}" if self.traceback else "")


class SubjectUnavailable(Exception):
    """The subject could not answer at all: a timeout, a crash, an exhausted time budget."""


@dataclass(frozen=True)
class Outcome:
    """What one probe produced: its value, the torch functions called, and any error."""

    value: Any
    torch_calls: frozenset[str]
    error: StudentError | None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    @classmethod
    def from_data(cls, data: Any) -> Outcome:
        if not isinstance(data, dict) or set(data) != {"value", "torch_calls", "error"}:
            raise wire.WireError("reply is not an outcome")
        err = data["error"]
        error = None
        if err is not None:
            if not isinstance(err, dict):
                raise wire.WireError("reply error is not an object")
            raw_types = err.get("types")
            types = [str(t) for t in raw_types] if isinstance(raw_types, list) else ["Exception"]
            error = StudentError(
                types[:20], str(err.get("message", ""))[:2000],
                str(err.get("traceback", ""))[:4000],
            )
        calls = data["torch_calls"] if isinstance(data["torch_calls"], list) else []
        return cls(data["value"], frozenset(str(c) for c in calls), error)


class Subject:
    """Run probes against one namespace; attribute access calls a function of that namespace."""

    label = "subject"

    def run(self, probe: str, *args: Any, **kwargs: Any) -> Outcome:
        raise NotImplementedError

    def begin(self, key: str, device: str) -> None:
        """Note that the check ``key`` on ``device`` starts (used by recording and replay)."""

    def begin_exercise(self, exercise: str) -> None:
        """Note that the checks of ``exercise`` start (the sandbox may start a fresh process)."""

    def outcome(self, name: str, *args: Any, **kwargs: Any) -> Outcome:
        """Call function ``name`` and return the whole outcome, errors included."""
        return self.run("call", name, *args, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.run("call", name, *args, **kwargs).unwrap()

        call.__name__ = name
        return call


class LocalSubject(Subject):
    """Run probes in this process on a namespace (the reference, or a student's own kernel).

    With ``memo``, each answer is kept (encoded, up to :data:`MEMO_BYTES` in all) under the
    probe's name and its encoded arguments, and a repeated question is answered from it. That is
    for the reference, whose answers are a function of the arguments alone (a probe seeds what
    it draws at random): a grader process then runs the reference once per distinct check input,
    not once per submission (a11's resnet18 builds, a12's training runs).
    """

    def __init__(self, namespace: dict[str, Any], label: str, *, probes: Probes | None = None,
                 memo: bool = False) -> None:
        self.namespace = namespace
        self.label = label
        self.probes = probes
        self.memo: dict[bytes, bytes] | None = {} if memo else None
        self.memo_bytes = 0

    def run(self, probe: str, *args: Any, **kwargs: Any) -> Outcome:
        key = self._memo_key(probe, args, kwargs)
        if key is not None and self.memo is not None and key in self.memo:
            return Outcome.from_data(wire.decode(self.memo[key]))
        data = run_probe(self.namespace, probe, *private_copy((list(args), kwargs)),
                         probes=self.probes)
        encoded = wire.encode(data)
        if key is not None and self.memo is not None:
            if self.memo_bytes + len(key) + len(encoded) > MEMO_BYTES:
                self.memo.clear()
                self.memo_bytes = 0
            self.memo[key] = encoded
            self.memo_bytes += len(key) + len(encoded)
        return Outcome.from_data(wire.decode(encoded))

    def _memo_key(self, probe: str, args: Any, kwargs: Any) -> bytes | None:
        """The arguments as the memo's key; None where no memo is kept, or where an argument
        does not encode to plain data (two different models would both read as Opaque)."""
        if self.memo is None:
            return None
        key = wire.encode([probe, list(args), kwargs])
        return None if b'"__opaque__"' in key else key


MEMO_BYTES = 64 * 2**20  # per assignment; a grading server keeps one per assignment it graded


def private_copy(value: Any) -> Any:
    """``value`` with every tensor and array copied, as the sandbox's copy over the wire does.

    In this process (the reference, the student's own kernel, nbgrader's check cells) a function
    that changes its arguments in place would otherwise change the check's own tensors, and the
    other side would then be called on different inputs: a correct in-place answer lost points
    under nbgrader while `grade` gave full marks.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [private_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(private_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: private_copy(v) for k, v in value.items()}
    return value


_REFERENCES: dict[Path, tuple[tuple[Any, ...], LocalSubject]] = {}


def reference_subject(assignment: Assignment) -> LocalSubject:
    """Return the reference solution as a subject, executing it once per process and content
    (a grading server runs it again after the author edits it), its answers remembered."""
    content = (assignment.setup_source, tuple(assignment.reference_sources.items()),
               assignment.probes_source)
    kept = _REFERENCES.get(assignment.notebook)
    if kept is None or kept[0] != content:
        subject = LocalSubject(reference_namespace(assignment), "reference",
                               probes=assignment_probes(assignment), memo=True)
        kept = _REFERENCES[assignment.notebook] = (content, subject)
    return kept[1]


def assignment_probes(assignment: Assignment) -> Probes:
    """The generic probes and those of the assignment's ``probes.py``."""
    return load_probes(assignment.probes_source, str(assignment.probes_file))


class RecordingSubject(Subject):
    """Pass probes to ``inner`` and keep each outcome under the running check's key."""

    def __init__(self, inner: Subject) -> None:
        self.inner = inner
        self.label = inner.label
        self.records: dict[str, Any] = {}
        self._key, self._count = "", 0

    def begin(self, key: str, device: str) -> None:
        self._key, self._count = key, 0
        self.inner.begin(key, device)

    def run(self, probe: str, *args: Any, **kwargs: Any) -> Outcome:
        data = run_probe_data(self.inner, probe, args, kwargs)
        self.records[f"{self._key}#{self._count}"] = data
        self._count += 1
        return Outcome.from_data(wire.decode(data.encode("utf-8")))


def run_probe_data(subject: Subject, probe: str, args: Any, kwargs: Any) -> str:
    """Run a probe on a local subject and return the encoded outcome as text.

    The torch functions the reference called are left out: checks look only at the student's,
    and the recording is released to students, who need the answers and nothing more.
    """
    if not isinstance(subject, LocalSubject):
        raise TypeError("only a local subject can be recorded")
    data = run_probe(subject.namespace, probe, *private_copy((list(args), kwargs)),
                     probes=subject.probes)
    return wire.encode({**data, "torch_calls": []}).decode("utf-8")


class ReplaySubject(Subject):
    """Answer probes with outcomes recorded from the reference, moved to the check's device."""

    label = "reference"

    def __init__(self, path: Path) -> None:
        body = json.loads(path.read_text(encoding="utf-8"))
        self.records: dict[str, str] = body["records"]
        self.path = path
        self._key, self._count, self._device = "", 0, "cpu"

    def begin(self, key: str, device: str) -> None:
        self._key, self._count, self._device = key, 0, device

    def run(self, probe: str, *args: Any, **kwargs: Any) -> Outcome:
        key = f"{self._key}#{self._count}"
        self._count += 1
        if key not in self.records:
            raise SubjectUnavailable(
                f"no recorded reference answer for {key} in {self.path.name}; "
                "the checks and their recording are out of step (ask your instructor)"
            )
        data = wire.decode(self.records[key].encode("utf-8"), restore_device=False)
        return Outcome.from_data(_to_device(data, self._device))


def _to_device(value: Any, device: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value
