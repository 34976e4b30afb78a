"""Hidden checks for a6_numpy: run by `grade`, never shipped to students."""

import numpy as np
import scipy.special
import torch
from torch.nn import functional as F

from autograder.checks import assert_close, check, oracle

from public_checks import (  # helpers shared with the public checks
    SIGMOID_HINT,
    STABLE_HINT,
    call,
    compare_grad,
    compare_step,
    logits,
    number,
    problem,
)


def logistic_grad_by_autograd(X, y, w, b):
    """(dw, db) by autograd through PyTorch's mean BCE on logits, in float64."""
    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(float(b), dtype=torch.float64, requires_grad=True)
    z = torch.as_tensor(X, dtype=torch.float64) @ w_t + b_t
    F.binary_cross_entropy_with_logits(z, torch.as_tensor(y, dtype=torch.float64)).backward()
    return w_t.grad.numpy(), b_t.grad.item()


def gd_step_by_autograd(X, y, w, b, lr):
    dw, db = logistic_grad_by_autograd(X, y, w, b)
    return w - lr * dw, b - lr * db


# grade build checks that the reference agrees with these on every value check's inputs
oracle("sigmoid", scipy.special.expit)
oracle("logistic_grad", logistic_grad_by_autograd)
oracle("gd_step", gd_step_by_autograd)


# --- sigmoid ------------------------------------------------------------------------------------

@check("sigmoid", points=0.5)
def test_sigmoid_any_shape(student, reference):
    for shape in [(7,), (2, 3, 4), (1, 1)]:
        a = logits(*shape, seed=700 + len(shape))
        assert_close(call(student, "sigmoid", a), call(reference, "sigmoid", a),
                     what=f"sigmoid(a) for a float64 array a of shape {shape}", inputs={"a": a},
                     hint="Work element by element, whatever the shape: no loops over a's first "
                          "dimension, no flattening without reshaping back. " + SIGMOID_HINT)
    a = np.array(-0.75)
    number(call(student, "sigmoid", a), call(reference, "sigmoid", a),
           what="sigmoid(a) for a 0-dimensional array a = np.array(-0.75)", hint=SIGMOID_HINT)


@check("sigmoid", points=0.5)
def test_sigmoid_python_float(student, reference):
    for a in (0.5, -2.0, 1000.0, -1000.0):
        number(call(student, "sigmoid", a), call(reference, "sigmoid", a),
               what=f"sigmoid({a}) for a Python float",
               hint="A plain float has no shape and cannot be indexed: np.asarray(a) turns it "
                    "into a 0-dimensional array that NumPy operations accept. math.exp overflows "
                    "(OverflowError) where np.exp would only warn. " + SIGMOID_HINT)


@check("sigmoid", points=1)
def test_sigmoid_float32(student, reference):
    a = np.concatenate([logits(3, 6, seed=711, dtype=np.float32, scale=4.0),
                        np.array([[-100, -90, -50, 50, 90, 100]], dtype=np.float32)])
    assert_close(call(student, "sigmoid", a), call(reference, "sigmoid", a),
                 what="sigmoid(a) for a float32 array a of shape (4, 6) with |a| up to 100 "
                      "(exp(89) is already inf in float32)", inputs={"a": a}, hint=STABLE_HINT)


# --- logistic_grad ------------------------------------------------------------------------------

@check("logistic_grad", points=1)
def test_logistic_grad_many_shapes(student, reference):
    cases = [(1, 1, False), (1, 4, False), (5, 1, False), (4, 4, False), (40, 7, True)]
    for i, (n, d, int_labels) in enumerate(cases):
        X, y, w, b = problem(n, d, seed=720 + i, int_labels=int_labels)
        labels = "integer labels y" if int_labels else "float64"
        compare_grad(call(student, "logistic_grad", X, y, w, b), call(reference, "logistic_grad", X, y, w, b),
                     what=f"logistic_grad(X, y, w, b) with X of shape {X.shape}, {labels}",
                     inputs={"X": X, "y": y, "w": w, "b": b}, dtype=np.float64)


@check("logistic_grad", points=1)
def test_logistic_grad_float32(student, reference):
    X, y, w, b = problem(10, 5, seed=731, dtype=np.float32, scale=2.0)
    compare_grad(call(student, "logistic_grad", X, y, w, b), call(reference, "logistic_grad", X, y, w, b),
                 what="logistic_grad(X, y, w, b) with float32 X, y, w of shape (10, 5), (10,), (5,)",
                 inputs={"X": X, "y": y, "w": w, "b": b}, dtype=np.float32)


@check("logistic_grad", points=1)
def test_logistic_grad_confident_predictions(student, reference):
    X, y, w, b = problem(6, 3, seed=741)
    w = w * 400.0  # logits of several hundred to about a thousand, both signs
    compare_grad(call(student, "logistic_grad", X, y, w, b), call(reference, "logistic_grad", X, y, w, b),
                 what=f"logistic_grad(X, y, w, b) with logits X w + b as large as "
                      f"{np.abs(X @ w + b).max():.0f} (p is 0 or 1 to machine precision)",
                 inputs={"X": X, "y": y, "w": w, "b": b}, dtype=np.float64)


# --- gd_step ------------------------------------------------------------------------------------

@check("gd_step", points=1)
def test_gd_step_float32_and_shapes(student, reference):
    cases = [(1, 1, np.float64, False, 0.1), (12, 5, np.float32, False, 1.0),
             (30, 2, np.float64, True, 0.05)]
    for i, (n, d, dtype, int_labels, lr) in enumerate(cases):
        X, y, w, b = problem(n, d, seed=750 + i, dtype=dtype, int_labels=int_labels)
        labels = ", integer labels y" if int_labels else ""
        compare_step(call(student, "gd_step", X, y, w, b, lr), call(reference, "gd_step", X, y, w, b, lr),
                     what=f"gd_step(X, y, w, b, lr={lr}) with {np.dtype(dtype).name} X of shape "
                          f"{X.shape}{labels}",
                     inputs={"X": X, "y": y, "w": w, "b": b}, dtype=dtype)
