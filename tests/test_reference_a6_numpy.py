"""The a6_numpy reference against independent oracles: scipy.special.expit for the sigmoid,
PyTorch autograd of the mean BCE for the gradient and the step, on many seeds, shapes and
dtypes, extremes included; plus the contract's promises (no overflow warning, inputs left
unchanged, db a float) and the training that the notebook runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.special
import torch
from torch.nn import functional as F

from autograder.course import load_assignment, reference_namespace

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
DTYPES = [np.float32, np.float64]
SIZES = [(1, 1), (1, 5), (6, 1), (4, 4), (7, 3), (40, 7), (200, 64)]
TOLERANCE = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-11, "atol": 1e-13}}


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(load_assignment("a6_numpy", SOLUTIONS))


@pytest.fixture(autouse=True)
def numpy_errors_raise():
    """Any overflow, invalid operation or division by zero in the reference fails the test."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


def problem(n, d, dtype, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * scale).astype(dtype)
    y = rng.integers(0, 2, n).astype(dtype)
    w = rng.standard_normal(d).astype(dtype)
    return X, y, w, float(rng.standard_normal())


def autograd(X, y, w, b):
    """(dw, db) of the mean BCE by torch autograd, in float64."""
    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    z = torch.tensor(X, dtype=torch.float64) @ w_t + b_t
    loss = F.binary_cross_entropy_with_logits(z, torch.tensor(y, dtype=torch.float64))
    loss.backward()
    return w_t.grad.numpy(), b_t.grad.item()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (9,), (4, 5), (2, 3, 4), (1, 1, 1, 6)])
@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
def test_sigmoid_matches_expit(ref, shape, dtype, scale):
    for seed in range(5):
        a = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
        got = ref["sigmoid"](a)
        assert isinstance(got, np.ndarray) and got.shape == a.shape and got.dtype == dtype
        assert np.isfinite(got).all() and (got >= 0).all() and (got <= 1).all()
        np.testing.assert_allclose(got, scipy.special.expit(a), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_extremes_without_overflow(ref, dtype):
    a = np.array([-1000, -709, -100, -88, -1e-8, 0, 1e-8, 88, 100, 709, 1000], dtype=dtype)
    np.testing.assert_allclose(ref["sigmoid"](a), scipy.special.expit(a), **TOLERANCE[dtype])


def test_sigmoid_of_python_floats_and_0d_arrays_is_a_float(ref):
    for a in (0.5, -2.0, 1000.0, -1000.0, 0.0):
        got = ref["sigmoid"](a)
        assert type(got) is float and got == pytest.approx(scipy.special.expit(a), rel=1e-12, abs=1e-300)
    assert ref["sigmoid"](np.array(-0.75)) == pytest.approx(scipy.special.expit(-0.75), rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "d"), SIZES)
def test_logistic_grad_matches_autograd(ref, n, d, dtype):
    for seed in range(4):
        X, y, w, b = problem(n, d, dtype, seed=seed + 10 * n + 1000 * d)
        dw, db = ref["logistic_grad"](X, y, w, b)
        want_dw, want_db = autograd(X, y, w, b)
        assert isinstance(dw, np.ndarray) and dw.shape == (d,)
        assert type(db) is float
        np.testing.assert_allclose(dw, want_dw, **TOLERANCE[dtype])
        assert db == pytest.approx(want_db, **{"rel": TOLERANCE[dtype]["rtol"],
                                               "abs": TOLERANCE[dtype]["atol"]})


@pytest.mark.parametrize("scale", [100.0, 1000.0])
def test_logistic_grad_matches_autograd_for_confident_predictions(ref, scale):
    X, y, w, b = problem(30, 4, np.float64, seed=7)
    dw, db = ref["logistic_grad"](X, y, w * scale, b)
    want_dw, want_db = autograd(X, y, w * scale, b)
    assert np.isfinite(dw).all()
    np.testing.assert_allclose(dw, want_dw, **TOLERANCE[np.float64])
    assert db == pytest.approx(want_db, rel=1e-11, abs=1e-13)


def test_logistic_grad_accepts_integer_labels(ref):
    X, y, w, b = problem(12, 3, np.float64, seed=3)
    dw, db = ref["logistic_grad"](X, y.astype(np.int64), w, b)
    want_dw, want_db = autograd(X, y, w, b)
    np.testing.assert_allclose(dw, want_dw, **TOLERANCE[np.float64])
    assert db == pytest.approx(want_db, rel=1e-11, abs=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "d"), SIZES)
@pytest.mark.parametrize("lr", [0.01, 0.5, 3.0])
def test_gd_step_is_one_step_against_the_autograd_gradient(ref, n, d, dtype, lr):
    X, y, w, b = problem(n, d, dtype, seed=n + 100 * d)
    w_new, b_new = ref["gd_step"](X, y, w, b, lr)
    want_dw, want_db = autograd(X, y, w, b)
    assert isinstance(w_new, np.ndarray) and w_new.shape == (d,) and type(b_new) is float
    np.testing.assert_allclose(w_new, w - lr * want_dw, **TOLERANCE[dtype])
    assert b_new == pytest.approx(b - lr * want_db, rel=TOLERANCE[dtype]["rtol"],
                                  abs=TOLERANCE[dtype]["atol"])


def test_no_argument_is_changed_in_place(ref):
    X, y, w, b = problem(9, 4, np.float64, seed=11)
    copies = [X.copy(), y.copy(), w.copy()]
    ref["sigmoid"](X)
    ref["logistic_grad"](X, y, w, b)
    w_new, _ = ref["gd_step"](X, y, w, b, 0.5)
    for before, after in zip(copies, (X, y, w), strict=True):
        np.testing.assert_array_equal(before, after)
    assert not np.shares_memory(w_new, w)


def test_gradient_descent_lowers_the_loss_at_every_step(ref):
    """What the public check test_gd_step_decreases_the_loss relies on: on its data and rate,
    every step of the reference lowers the mean BCE."""
    rng = np.random.default_rng(622)
    X = rng.standard_normal((40, 3))
    y = (X @ rng.standard_normal(3) + 0.5 * rng.standard_normal(40) > 0).astype(np.float64)
    w, b, losses = np.zeros(3), 0.0, []
    for _ in range(61):
        z = X @ w + b
        losses.append(np.mean(np.logaddexp(0, z) - y * z))
        w, b = ref["gd_step"](X, y, w, b, 0.5)
    assert (np.diff(losses) < 0).all()
    assert losses[-1] < 0.5 * losses[0]


def test_the_notebooks_training_separates_3s_from_8s(ref):
    """The notebook's training section, in brief: 300 steps on load_digits' 3s and 8s."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = (digits.target == 3) | (digits.target == 8)
    X, y = digits.data[keep] / 16.0, (digits.target[keep] == 8).astype(np.float64)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[: int(0.7 * len(X))], order[int(0.7 * len(X)):]
    w, b = np.zeros(64), 0.0
    for _ in range(300):
        w, b = ref["gd_step"](X[train], y[train], w, b, 0.5)
    accuracy = np.mean((ref["sigmoid"](X[test] @ w + b) >= 0.5) == (y[test] == 1))
    assert accuracy > 0.95
