"""Probes: the trusted code that drives a namespace (the student's or the reference's).

A probe receives the names a submission defined and plain-data arguments built by a check,
calls the student's functions, and returns plain data. The same probe runs on the reference, so
the two results can be compared. Probes run inside the sandbox for students, and in-process for
the reference and for the student's own check cell; they never decide a score.

The core keeps the generic probes, ``call`` and ``call_backward``. An exercise that needs its
own driver (build a network and load weights into it, run a training loop on a fixed model)
gets it from a ``probes.py`` beside its assignment's checks::

    from autograder.probes import ProbeError, probe

    @probe
    def net_forward(ns, layers, weights, x):
        net = ns.call("Net", layers)          # the student's code runs recorded
        ...
        with ns.recording():                  # so does anything that calls into it
            return net(x).detach()

``probes.py`` is trusted course material, not a secret: it is sent to the sandbox as text and
run there before any of the student's code, and it is released with the public checks (the
student's check cell runs the same probes in the student's kernel).

Student calls run under :class:`CallRecorder`, a ``TorchFunctionMode`` that records the name of
every torch function called, so a check can tell whether "implement it yourself" was honoured
(``F.softmax``, ``Tensor.softmax`` and ``nn.Softmax`` all record ``softmax``).
"""

from __future__ import annotations

import errno
import hashlib
import linecache
import sys
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch.overrides import TorchFunctionMode

CELL_PREFIX = "<cell "
MOVE_METHODS = frozenset({"to", "cuda", "cpu"})
_MARK = "__autograder_probe__"

F = TypeVar("F", bound=Callable[..., Any])
Probes = dict[str, Callable[..., Any]]


class ProbeError(Exception):
    """The student's code did not have the shape the probe needs (a missing attribute, ...)."""


class CallRecorder(TorchFunctionMode):
    """Record the names of torch functions called, and which watched tensors were moved."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self._watched: dict[int, torch.Tensor] = {}
        self.moved: set[int] = set()

    def watch(self, tensor: torch.Tensor) -> torch.Tensor:
        self._watched[id(tensor)] = tensor
        return tensor

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = getattr(func, "__name__", "")
        if name == "__get__":  # property access such as .shape or .device
            name = getattr(getattr(func, "__self__", None), "__name__", "")
        name = name.split(".")[0]  # an aten overload such as _softmax.default counts as _softmax
        self.names.add(name)
        if name in MOVE_METHODS and args and id(args[0]) in self._watched:
            self.moved.add(id(args[0]))
        return func(*args, **(kwargs or {}))


class Namespace:
    """What a probe drives: the names a submission (or the reference) defined, and a recorder.

    ``ns["Net"]`` is the student's ``Net`` (a :class:`ProbeError` naming it when it is missing);
    ``ns.call("bce", yhat, y)`` calls it with the recorder on; code that calls into the
    student's objects later (``net(x)``, an optimizer step) runs inside ``with ns.recording():``.
    """

    def __init__(self, names: dict[str, Any], recorder: CallRecorder) -> None:
        self.names = names
        self.recorder = recorder

    def __getitem__(self, name: str) -> Any:
        if name not in self.names:
            raise ProbeError(f"'{name}' is not defined. Did you rename it or delete its cell?")
        return self.names[name]

    @contextmanager
    def recording(self) -> Iterator[CallRecorder]:
        """Record the torch functions called inside the block as the student's."""
        with self.recorder:
            yield self.recorder

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the student's ``name(*args, **kwargs)``, recording the torch functions it calls."""
        fn = self[name]
        with self.recording():
            return fn(*args, **kwargs)

    def watch(self, tensor: torch.Tensor) -> torch.Tensor:
        """Note ``tensor``, so that :attr:`moved` counts it if the student moves it."""
        return self.recorder.watch(tensor)

    @property
    def moved(self) -> int:
        """How many watched tensors the student moved with ``.to``, ``.cuda`` or ``.cpu``."""
        return len(self.recorder.moved)


def probe(fn: F) -> F:
    """Register ``fn(ns, *args, **kwargs)`` as a probe; checks run it as ``subject.run("name", ...)``."""
    setattr(fn, _MARK, fn.__name__)
    return fn


def register_source(filename: str, source: str) -> None:
    """Make ``source`` visible to tracebacks under ``filename``."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


_DISK_LIMITS = ""  # said with every "disk full" or "file too large" error, once the worker knows


def set_disk_limits(*, scratch_bytes: int | None, file_bytes: int | None) -> None:
    """Name the sandbox's write limits in the errors that hitting them raises."""
    global _DISK_LIMITS
    parts = []
    if file_bytes:
        parts.append(f"{file_bytes / 2**20:g} MiB per file")
    if scratch_bytes:
        parts.append(f"{scratch_bytes / 2**20:g} MiB in all")
    _DISK_LIMITS = (f" (the grader lets your code write at most {' and '.join(parts)}, in its "
                    "working directory only)") if parts else ""


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Return the exception as plain data, with a traceback of the student's lines only."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(CELL_PREFIX)]
    lines = [
        f'  {f.filename.removeprefix("<").removesuffix(">")}, line {f.lineno}, in {f.name}'
        + (f"\n    {f.line.strip()}" if f.line else "")
        for f in frames[-6:]
    ]
    message = str(exc)[:2000]
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        message += _DISK_LIMITS
    return {
        "types": [t.__name__ for t in type(exc).__mro__],
        "message": message,
        "traceback": "\n".join(lines),
    }


# ---------------------------------------------------------------------------------------------
# The generic probes, available to every assignment.

@probe
def call(ns: Namespace, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``name(*args, **kwargs)`` and return its result."""
    return ns.call(name, *args, **kwargs)


@probe
def call_backward(ns: Namespace, name: str, args: list[Any], wrt: list[int]) -> dict[str, Any]:
    """Call ``name(*args)`` with ``args[i]`` requiring grad for i in ``wrt``; back-propagate."""
    args = [a.detach().clone().requires_grad_(True) if i in wrt else a for i, a in enumerate(args)]
    out = ns.call(name, *args)
    if not isinstance(out, torch.Tensor):
        raise ProbeError(f"{name} returned {type(out).__name__}, not a tensor")
    result: dict[str, Any] = {"value": out.detach(), "has_graph": out.grad_fn is not None}
    if out.grad_fn is None:
        result["grads"] = [None for _ in wrt]
        return result
    out.sum().backward()
    result["grads"] = [args[i].grad for i in wrt]
    return result


GENERIC: Probes = {"call": call, "call_backward": call_backward}


def probes_in(module: types.ModuleType) -> Probes:
    """The generic probes, and those ``module`` registers with :func:`probe`."""
    found = dict(GENERIC)
    for value in vars(module).values():
        name = getattr(value, _MARK, None)
        if isinstance(name, str) and callable(value):
            found[name] = value
    return found


def load_module(source: str, filename: str) -> types.ModuleType:
    """Execute an assignment's ``probes.py`` text as a module of its own, cached by content.

    The module is registered in ``sys.modules`` under a name made from the text's hash, so that
    classes defined there can be pickled and two assignments' probe files never share one.
    """
    key = "_autograder_probes_" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]
    module = sys.modules.get(key)
    if module is None:
        module = types.ModuleType(key)
        module.__file__ = filename
        register_source(filename, source)
        sys.modules[key] = module
        try:
            exec(compile(source, filename, "exec"), vars(module))
        except BaseException:
            del sys.modules[key]
            raise
    return module


def load_probes(source: str, filename: str = "probes.py") -> Probes:
    """The probes of an assignment whose ``probes.py`` holds ``source`` ("" for none)."""
    return probes_in(load_module(source, filename)) if source else dict(GENERIC)


def run_probe(ns: dict[str, Any], probe: str, args: list[Any], kwargs: dict[str, Any],
              *, probes: Probes | None = None) -> dict[str, Any]:
    """Run one probe and return an outcome: value, torch calls made, and error if any."""
    registry = GENERIC if probes is None else probes
    recorder = CallRecorder()
    try:
        if probe not in registry:
            known = ", ".join(sorted(registry))
            raise ProbeError(f"no probe named '{probe}' (known: {known}); the checks and probes.py "
                             "are out of step, tell your instructor")
        value = registry[probe](Namespace(ns, recorder), *args, **kwargs)
        error = None
    except Exception as exc:  # the student's exception is data here, not a grader failure
        value, error = None, describe_error(exc)
    return {"value": value, "torch_calls": sorted(recorder.names), "error": error}
