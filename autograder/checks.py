"""The author's module: everything a check file imports.

A check is a pytest test in ``public_checks.py`` (released to students) or ``hidden_checks.py``
(never released), marked with :func:`check` and taking any of three fixtures:

- ``student``: the submission. ``student.softmax(z)`` calls the student's function in the
  sandbox and returns its value (re-raising the student's error as :class:`StudentError`);
  ``student.outcome("softmax", z)`` returns the whole :class:`Outcome` (value, the torch
  functions called, the error); ``student.run("net_forward", ...)`` runs a probe (see
  :mod:`autograder.probes`).
- ``reference``: the reference solution, with the same interface.
- ``device``: ``"cpu"`` or ``"cuda"``; every check runs once per device (cuda is skipped, with
  the reason, where there is no GPU). Build inputs on it; never branch on it.

::

    from autograder.checks import assert_close, check, hint, randn

    HINT = hint("Subtract the maximum along dim before exp.",
                formula="e = exp(z - z.amax(dim, keepdim=True)); return e / e.sum(dim, keepdim=True)")

    @check("softmax", points=2)
    def test_softmax_large_logits(student, reference, device):
        z = randn(4, 10, seed=1, scale=1000.0, device=device)
        assert_close(student.softmax(z), reference.softmax(z), what="softmax(z) with |z| ~ 1000",
                     inputs={"z": z}, hint=HINT)

Points and kinds. The points of an exercise's checks (one parametrised instance counts once)
add up to the points of its check cell; ``grade build`` refuses them otherwise. A check is a
*value* check (the default: it compares values with the reference) or a *property* check
(``kind="property"``: dtype, device, "your own code", structure). A property check earns its
points on a device only when every value check of its exercise passed on that device, so a
wrong answer earns nothing for its form.

Hidden checks reuse the public checks' helpers with a plain import, ``from public_checks import
own_bce``; check files import helpers of the assignment's ``probes.py`` the same way, ``from
probes import ProbeCNN``. Inputs are built on the grading side from fixed seeds with NumPy's
PCG64 generator, whose stream is stable across NumPy and PyTorch versions, so recorded reference
answers stay valid. The guide is ``docs/authoring.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch

from autograder.compare import (
    CheckFailed,
    assert_close,
    assert_equal,
    assert_no_builtin,
    assert_same_kind,
    expect,
    fail,
    kind,
    show,
)
from autograder.subjects import Outcome, StudentError

__all__ = [
    "KINDS", "CheckFailed", "Outcome", "StudentError", "assert_close", "assert_equal",
    "assert_no_builtin", "assert_same_kind", "check", "expect", "fail", "hint", "kind", "oracle",
    "rand", "randint", "randn", "show", "student_raises",
]

F = TypeVar("F", bound=Callable[..., Any])
KINDS = ("value", "property")

# A formula-level hint travels inside the message between these two characters (Unicode private
# use: they never occur in real text). The plugin keeps or drops it by the assignment's level.
FORMULA_OPEN, FORMULA_CLOSE = "\ue000", "\ue001"


def check(exercise: str, points: float = 1.0, *, kind: str = "value") -> Callable[[F], F]:
    """Mark a test as a check of ``exercise`` worth ``points``, of ``kind`` "value" or "property".

    A parametrised check is worth ``points`` per instance.
    """
    if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
        raise ValueError(f"Invalid points {points!r} for a check of {exercise}: must be a positive number")
    if kind not in KINDS:
        raise ValueError(f"Invalid kind {kind!r} for a check of {exercise}: use 'value' or 'property'")

    def mark(fn: F) -> F:
        marked = pytest.mark.exercise(exercise)(fn)
        return pytest.mark.points(float(points))(pytest.mark.kind(kind)(marked))  # type: ignore[no-any-return]

    return mark


def hint(concept: str, *, formula: str | None = None) -> str:
    """A hint for a failed check: ``concept`` always, ``formula`` only where the course shows it.

    ``concept`` points at the idea and the symptom; ``formula`` gives the answer away (an
    expression to type in). Which one students see is the ``hints`` setting of
    ``solutions/course.toml``; at the default level ``"concept"`` the formula never reaches
    them, and ``grade build`` removes it from the public checks it releases.
    """
    if not formula:
        return concept
    return f"{concept}{FORMULA_OPEN}{formula}{FORMULA_CLOSE}"


def render_hints(message: str, level: str) -> str:
    """Resolve the formula hints in ``message`` for hint ``level`` ("concept" or "formula")."""
    out, rest = [], message
    while FORMULA_OPEN in rest:
        before, _, after = rest.partition(FORMULA_OPEN)
        formula, _, rest = after.partition(FORMULA_CLOSE)
        out.append(before)
        if level == "formula":
            out.append(f" {formula.strip()}" if before and not before.endswith(" ") else formula.strip())
    out.append(rest)
    return "".join(out)


_ORACLES: dict[tuple[str, str], dict[str, Callable[..., Any]]] = {}


def oracle(exercise: str, function: Callable[..., Any] | None = None, /,
           **functions: Callable[..., Any]) -> None:
    """Declare an independent implementation of ``exercise`` that the reference must agree with.

    ``oracle("mse", torch.nn.functional.mse_loss)`` for an exercise that defines one function,
    ``oracle("two_layer", two_layer_forward=..., two_layer_backward=...)`` for several. At
    ``grade build`` the oracle plays the student in every value check of the exercise, on the
    checks' own generated inputs; a reference that disagrees is refused. Call it at the top level
    of a check file.
    """
    caller = sys._getframe(1).f_globals.get("__file__")
    if not caller:
        raise ValueError("oracle() must be called at the top level of a check file")
    if function is not None:
        functions = {"": function, **functions}
    if not functions or not all(callable(f) for f in functions.values()):
        raise ValueError(f"oracle({exercise!r}, ...) needs one or more functions")
    _ORACLES[(str(Path(caller).resolve()), exercise)] = functions


def forget_oracles(files: list[Path]) -> None:
    """Forget the oracles ``files`` declared (before they are imported again)."""
    wanted = {str(f.resolve()) for f in files}
    for key in [k for k in _ORACLES if k[0] in wanted]:
        del _ORACLES[key]


def oracles(files: list[Path]) -> dict[str, dict[str, Callable[..., Any]]]:
    """The oracles the check ``files`` declared (once imported), by exercise."""
    wanted = {str(f.resolve()) for f in files}
    return {exercise: fns for (file, exercise), fns in _ORACLES.items() if file in wanted}


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32, device: str = "cpu",
          scale: float = 1.0) -> torch.Tensor:
    """Normal samples of ``shape`` times ``scale``."""
    data = _rng(seed).standard_normal(shape) * scale
    return torch.tensor(data, dtype=torch.float64).to(dtype=dtype, device=device)


def rand(*shape: int, seed: int, low: float = 0.0, high: float = 1.0,
         dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    """Uniform samples in ``[low, high)``."""
    data = _rng(seed).uniform(low, high, shape)
    return torch.tensor(data, dtype=torch.float64).to(dtype=dtype, device=device)


def randint(*shape: int, seed: int, high: int, dtype: torch.dtype = torch.int64,
            device: str = "cpu") -> torch.Tensor:
    """Integers in ``[0, high)``."""
    data = _rng(seed).integers(0, high, shape)
    return torch.tensor(data, dtype=dtype, device=device)


def student_raises(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> StudentError | None:
    """Call ``fn`` (a subject's function); return the student's error, or None if none was raised."""
    try:
        fn(*args, **kwargs)
    except StudentError as exc:
        return exc
    return None
