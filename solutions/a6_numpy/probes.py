"""Probes for a6_numpy: drive the student's NumPy functions where a plain call shows too little.

- ``call_watched`` calls a function on copies of its arguments and reports, beside the result,
  which array arguments the call changed in place and which floating-point warnings NumPy raised
  (an ``exp`` that overflowed on the way to a right answer, say).
- ``descend`` runs many steps of the student's ``gd_step`` and reports the loss along the way.

Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel).
"""

import warnings

import numpy as np

from autograder.probes import ProbeError, probe


def _unchanged(before, after):
    return (before.shape == after.shape and before.dtype == after.dtype
            and bool(np.array_equal(before, after, equal_nan=True)))


@probe
def call_watched(ns, name, *args):
    """Call ``name(*args)`` on copies of the arguments, with NumPy's overflow warnings on.

    Returns ``{"value": the result, "changed": positions of the array arguments the call
    modified, "warnings": the warnings raised, as "Category: message"}``.
    """
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    with warnings.catch_warnings(record=True) as caught, \
            np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("always")
        value = ns.call(name, *copies)
    changed = [i for i, (a, c) in enumerate(zip(args, copies, strict=True))
               if isinstance(a, np.ndarray) and not _unchanged(a, c)]
    raised = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return {"value": value, "changed": changed, "warnings": raised}


def _number(value, step, what):
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.number):
        return float(value.reshape(()))
    raise ProbeError(f"at step {step}, gd_step returned {what} of type {type(value).__name__}"
                     f"{'' if not hasattr(value, 'shape') else f' with shape {tuple(value.shape)}'}; "
                     "b_new must be a single number (a float)")


def _mean_bce(X, y, w, b):
    with np.errstate(all="ignore"):  # a diverging student's loss is inf or nan, said quietly
        z = X @ w + b
        return float(np.mean(np.logaddexp(0.0, z) - y * z))  # log(1 + e^z) - y z, no overflow


@probe
def descend(ns, X, y, w, b, lr, steps):
    """Run ``steps`` steps of ``gd_step`` from ``(w, b)``; return the mean BCE before the first
    step and after each one, and the final ``w`` and ``b``."""
    losses = [_mean_bce(X, y, w, b)]
    for step in range(1, steps + 1):
        result = ns.call("gd_step", X.copy(), y.copy(), w.copy(), b, lr)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ProbeError(f"at step {step}, gd_step returned {type(result).__name__}; it must "
                             "return the pair (w_new, b_new)")
        w, b = result
        if not isinstance(w, np.ndarray) or w.shape != X.shape[1:]:
            kind = type(w).__name__ + (f" of shape {tuple(w.shape)}" if hasattr(w, "shape") else "")
            raise ProbeError(f"at step {step}, gd_step returned w_new as {kind}; it must be an "
                             f"np.ndarray of shape {X.shape[1:]}, like w (this exercise works "
                             "on NumPy arrays, not torch tensors)")
        b = _number(b, step, "b_new")
        losses.append(_mean_bce(X, y, w, b))
    return {"losses": np.array(losses), "w": w, "b": b}
