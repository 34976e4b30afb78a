"""Compare a student's result with the reference's and explain any difference to the student.

Values are compared in float64 with tolerances chosen from the dtype the reference returned, so
correct code written another way (other op order, float64 inside) passes, and messages say what
differed, where, by how much, on which input, and what to try. Exercises on NumPy arrays compare
the same way: when the reference returned an ``np.ndarray``, the student must return one too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from autograder.subjects import Outcome
from autograder.wire import Opaque

TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-6, 1e-8),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}


class CheckFailed(AssertionError):
    """A check found a difference; the message is written for the student."""


def fail(message: str) -> None:
    raise CheckFailed(message)


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds (unlike ``assert``, survives ``-O``)."""
    if not condition:
        raise CheckFailed(message)


def kind(value: Any) -> str:
    """Describe ``value`` briefly: ``tensor (4, 10) float32 on cpu``, ``np.ndarray (4,) float64``,
    ``float``, ``None``."""
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')} on {value.device.type}"
    if isinstance(value, np.ndarray):
        return f"np.ndarray {tuple(value.shape)} {value.dtype}"
    if isinstance(value, np.generic):
        return f"np.{type(value).__name__}"
    if isinstance(value, Opaque):
        return f"a {value.type_name} object"
    if value is None:
        return "None"
    return type(value).__name__


def show(value: Any, limit: int = 12) -> str:
    """Render a value for a message: small tensors and arrays in full, large ones summarised."""
    if isinstance(value, np.ndarray):
        numbers = _from_numpy(value)
        return kind(value) if numbers is None else _show_numbers(numbers, kind(value), limit)
    if isinstance(value, torch.Tensor):
        return _show_numbers(value, kind(value), limit)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and len(value) > limit:
        return f"{type(value).__name__} of {len(value)} items"
    return repr(value)


def _show_numbers(value: torch.Tensor, label: str, limit: int) -> str:
    if value.numel() <= limit:
        numbers = value.detach().cpu()
        if numbers.is_floating_point():
            numbers = numbers.double()
        return f"{_fmt(numbers.tolist())} ({label})"
    flat = value.detach().cpu().double().flatten()
    finite = flat[torch.isfinite(flat)]
    span = f"min {finite.min():.4g}, max {finite.max():.4g}" if finite.numel() else "no finite values"
    return f"{label}, {span}"


def _from_numpy(array: np.ndarray) -> torch.Tensor | None:
    """``array`` as a tensor of the same dtype and shape, or None when torch has no such dtype
    (object, strings, float128)."""
    try:
        return torch.from_numpy(np.array(array))  # a copy: writable, native byte order
    except (TypeError, ValueError):
        return None


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)


def _inputs_text(inputs: dict[str, Any] | None) -> str:
    if not inputs:
        return ""
    return " Input: " + ", ".join(f"{k} = {show(v)}" for k, v in inputs.items()) + "."


def _as_tensor(got: Any) -> torch.Tensor | None:
    if isinstance(got, torch.Tensor):
        return got
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return torch.tensor(float(got), dtype=torch.float64)
    return None


def _as_number(got: Any) -> torch.Tensor | None:
    """A single number however NumPy spells it (``np.float32(2.0)``, a 0-d array), as a 0-d
    tensor; None for anything else. NumPy code makes these where Python would make a float."""
    if isinstance(got, (bool, np.bool_)):
        return None
    if isinstance(got, (int, float, np.integer, np.floating)):
        return torch.tensor(float(got), dtype=torch.float64)
    if isinstance(got, np.ndarray) and got.shape == ():
        return _from_numpy(got)
    return None


def assert_close(
    got: Any, want: Any, *, what: str, hint: str = "", inputs: dict[str, Any] | None = None,
    rtol: float | None = None, atol: float | None = None,
) -> None:
    """Fail unless ``got`` matches ``want`` (tensors, numbers, or sequences of them)."""
    suffix = _inputs_text(inputs) + (f" {hint}" if hint else "")
    if isinstance(want, (list, tuple)):
        expect(isinstance(got, (list, tuple)) and len(got) == len(want),
               f"{what}: returned {kind(got)}"
               + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else "")
               + f", expected a {type(want).__name__} of {len(want)} items.{suffix}")
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, what=f"{what}[{i}]", hint=hint, inputs=inputs, rtol=rtol, atol=atol)
        return
    if isinstance(want, np.ndarray):
        want_t = _from_numpy(want)
        if want_t is None:
            raise TypeError(f"assert_close cannot compare a reference array of dtype {want.dtype}")
        got_t: torch.Tensor | None = _array_from_student(got, want, what=what, suffix=suffix)
    else:
        want_t = _as_tensor(want) if isinstance(want, torch.Tensor) else _as_number(want)
        if want_t is None:
            raise TypeError(f"assert_close cannot compare a reference value of type {kind(want)}")
        # a number may come back as any kind of number; a tensor must come back as a tensor
        got_t = _as_tensor(got) if isinstance(want, torch.Tensor) else _as_number(got)
    if got_t is None:
        switch = (" This exercise works on torch tensors: return a torch.Tensor (torch operations "
                  "on the inputs, not NumPy)." if isinstance(got, np.ndarray)
                  and isinstance(want, torch.Tensor) else "")
        fail(f"{what}: returned {kind(got)}, expected {kind(want)}.{switch}{suffix}"
             + (" Did you forget a return statement?" if got is None else ""))
        return
    if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor):
        expect(got.device.type == want.device.type,
               f"{what}: result is on {got.device.type}, but the inputs were on {want.device.type}. "
               f"Create new tensors on the input's device (device=x.device).{suffix}")
    expect(tuple(got_t.shape) == tuple(want_t.shape),
           f"{what}: shape {tuple(got_t.shape)}, expected {tuple(want_t.shape)}.{suffix}")
    default_rtol, default_atol = TOLERANCES.get(want_t.dtype, TOLERANCES[torch.float32])
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    if got_t.is_complex() or want_t.is_complex():
        g, w = got_t.detach().cpu().to(torch.complex128), want_t.detach().cpu().to(torch.complex128)
    else:
        g, w = got_t.detach().cpu().double(), want_t.detach().cpu().double()
    close = torch.isclose(g, w, rtol=rtol, atol=atol) | ((g == w) & torch.isinf(w))
    if bool(close.all()):
        return
    bad = ~close
    n_bad, n = int(bad.sum()), close.numel()
    nan_count = int((torch.isnan(g) & ~torch.isnan(w)).sum())
    diff = torch.nan_to_num((g - w).abs().double(), nan=math.inf)
    diff = torch.where(bad, diff, torch.zeros_like(diff))
    flat_index = int(diff.flatten().argmax())
    index = _unravel(flat_index, tuple(g.shape))
    where = f" at index {index}" if index else ""
    worst = f"expected {w.flatten()[flat_index].item():.6g}, got {g.flatten()[flat_index].item():.6g}{where}"
    if n == 1:
        detail = worst
    else:
        detail = (f"{n_bad} of {n} values differ (max abs diff {diff.max().item():.2g}, "
                  f"tolerance {atol:.0e} + {rtol:.0e}*|expected|; worst: {worst})")
    if nan_count:
        detail += f"; {nan_count} NaN where a number was expected"
    dtype = str(want_t.dtype).removeprefix("torch.")
    fail(f"{what}: {detail}; shape {tuple(w.shape)}, {dtype}.{suffix}")


def _array_from_student(got: Any, want: np.ndarray, *, what: str, suffix: str) -> torch.Tensor:
    """The student's answer to an exercise on NumPy arrays, as a tensor to compare; fail unless
    it is an ndarray of numbers."""
    expected = f"expected an np.ndarray of shape {tuple(want.shape)} ({want.dtype})"
    if isinstance(got, torch.Tensor):
        raise CheckFailed(
            f"{what}: returned a torch.Tensor ({kind(got)}), {expected}. This exercise works on "
            "NumPy arrays: compute with NumPy (np.exp, @, .sum()) and return an np.ndarray, not a "
            f"tensor.{suffix}")
    if want.shape == () and not isinstance(got, np.ndarray):
        number = _as_number(got)  # a 0-d array and a NumPy or Python number are the same answer
        if number is not None:
            return number
    if isinstance(got, (list, tuple)):
        raise CheckFailed(
            f"{what}: returned a {type(got).__name__} of {len(got)} items, {expected}. Compute "
            f"with NumPy operations on the input arrays (np.asarray turns a list into an "
            f"array).{suffix}")
    if not isinstance(got, np.ndarray):
        raise CheckFailed(f"{what}: returned {kind(got)}, {expected}.{suffix}"
                          + (" Did you forget a return statement?" if got is None else ""))
    got_t = _from_numpy(got)
    if got_t is None:
        raise CheckFailed(f"{what}: returned an np.ndarray of dtype {got.dtype}, {expected}: an "
                          f"array of numbers.{suffix}")
    return got_t


def assert_equal(got: Any, want: Any, *, what: str, hint: str = "",
                 inputs: dict[str, Any] | None = None) -> None:
    """Fail unless ``got == want`` for plain values (ints, strings, lists of them) or arrays."""
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not isinstance(want, torch.Tensor):
        got = got.item()
    if isinstance(got, np.ndarray) and got.size == 1 and not isinstance(want, np.ndarray):
        got = got.item()
    got, want = (v.item() if isinstance(v, np.generic) else v for v in (got, want))
    if isinstance(want, np.ndarray):
        same = (isinstance(got, np.ndarray) and got.shape == want.shape
                and bool(np.array_equal(got, want)))
    else:
        try:
            same = bool(got == want) and (isinstance(got, bool) == isinstance(want, bool))
        except (ValueError, TypeError, RuntimeError):  # an array of many values is not one value
            same = False
    if not same:
        fail(f"{what}: got {show(got)}, expected {show(want)}."
             + _inputs_text(inputs) + (f" {hint}" if hint else ""))


TAMPERING = frozenset({"DisableTorchFunction", "DisableTorchFunctionSubclass",
                       "_disabled_torch_function_impl", "_push_on_torch_function_stack",
                       "_pop_torch_function_stack", "_set_torch_function_mode"})


def assert_no_builtin(outcome: Outcome, forbidden: Iterable[str], *, what: str, instead: str) -> None:
    """Fail if the student called any torch function in ``forbidden``, or hid its calls."""
    hidden = sorted(TAMPERING & outcome.torch_calls)
    if hidden:
        fail(f"{what} switches off PyTorch's function hooks ({', '.join(hidden)}), so the grader "
             f"cannot see which built-ins it calls; that counts as using one. {instead}")
    used = sorted(set(forbidden) & outcome.torch_calls)
    if used:
        names = ", ".join(f"{name}" for name in used)
        fail(f"{what} calls the built-in {names}, which this exercise asks you to write "
             f"yourself. {instead}")


def assert_same_kind(got: Any, like: torch.Tensor, *, what: str, hint: str = "") -> None:
    """Fail unless ``got`` is a tensor with the dtype and device of ``like``."""
    expect(isinstance(got, torch.Tensor),
           f"{what}: returned {kind(got)}, expected a tensor. {hint}".rstrip())
    expect(got.dtype == like.dtype,
           f"{what}: returned {str(got.dtype).removeprefix('torch.')} for "
           f"{str(like.dtype).removeprefix('torch.')} input; keep the input's dtype "
           f"(if you compute in float64, convert back with .to(x.dtype)). {hint}".rstrip())
    expect(got.device.type == like.device.type,
           f"{what}: returned a tensor on {got.device.type} for input on {like.device.type}; "
           f"create tensors with device=x.device. {hint}".rstrip())


def _unravel(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The index into ``shape`` of element ``flat_index`` (row-major).

    Not ``torch.unravel_index``: its argument checks import sympy, over a second the first time.
    """
    index = []
    for size in reversed(shape):
        flat_index, position = divmod(flat_index, size)
        index.append(position)
    return tuple(reversed(index))
