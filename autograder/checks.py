"""What a check file imports: the ``check`` marker, input builders and comparisons.

A check is a pytest test taking the fixtures ``student``, ``reference`` and ``device``::

    @check("softmax", points=2)
    def test_softmax_large_logits(student, reference, device):
        z = torch.tensor([[1000.0, 0.0, -1000.0]], device=device)
        assert_close(student.softmax(z), reference.softmax(z), what="softmax(z) with |z| = 1000")

Inputs are built on the grading side from fixed seeds with NumPy's PCG64 generator, whose
stream is stable across NumPy and PyTorch versions, so recorded reference answers stay valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
import torch

from autograder.compare import (  # noqa: F401 - re-exported for check files
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
from autograder.subjects import Outcome, StudentError  # noqa: F401

F = TypeVar("F", bound=Callable[..., Any])


def check(exercise: str, points: float = 1.0) -> Callable[[F], F]:
    """Mark a test as a check of ``exercise`` worth ``points``."""
    if points <= 0:
        raise ValueError(f"Invalid points {points} for a check of {exercise}: must be positive")

    def mark(fn: F) -> F:
        return pytest.mark.points(points)(pytest.mark.exercise(exercise)(fn))  # type: ignore[no-any-return]

    return mark


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
