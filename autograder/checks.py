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

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
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


def sibling(path: str, name: str = "public_checks") -> ModuleType:
    """Import the check module ``name`` beside ``path``, so hidden checks reuse public helpers.

    Public checks stand alone (students get only them); hidden checks import their helpers with
    ``public = sibling(__file__)``. The module is cached by absolute path under a private name,
    so it never collides with pytest's own import of the file or with another assignment's.
    """
    file = Path(path).resolve().with_name(f"{name}.py")
    key = "_autograder_sibling_" + hashlib.sha1(str(file).encode("utf-8")).hexdigest()[:16]
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module
