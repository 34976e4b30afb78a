"""Public checks for a6_numpy: students see these and run them from the check cells.

Everything here is NumPy: inputs come from fixed generators (np.random.default_rng(seed)), the
student's answers must be np.ndarrays (or plain numbers where the contract says so), and every
call goes through the probe ``call_watched``, which hands the student copies of the arguments
and reports what the call changed in place and which overflow warnings NumPy raised.
"""

import re

import numpy as np
import torch

from autograder.checks import assert_close, check, expect, fail, hint, kind, show

SIGMOID_HINT = hint("Apply 1 / (1 + e^(-a)) to every element with NumPy operations (np.exp works "
                    "element by element on an array of any shape) and return the array.",
                    formula="e = np.exp(-np.abs(a)); return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).")
STABLE_HINT = ("exp(-a) overflows for a below about -709 in float64 and -88 in float32, even "
               "where the final value comes out right; e^a / (1 + e^a) is inf / inf = nan for "
               "large positive a. Exponentiate only numbers <= 0, such as -|a|. np.where(c, x, y) "
               "computes x and y for every element before it picks, so each branch must be safe "
               "on its own.")
GRAD_HINT = hint("p = sigmoid(X w + b) is one probability per sample; the gradient at each logit "
                 "is (p - y) / N. dw sums each sample's error times its features over the batch "
                 "(shape [D], like w); db averages the errors.",
                 formula="err = p - y; return X.T @ err / len(y), float(np.mean(err)).")
SHAPES_HINT = ("X is [N, D], y and p - y are [N], w is [D]: X @ w is [N], one logit per sample, "
               "and X.T @ (p - y) is [D], one number per feature, like w. X @ (p - y) needs "
               "N == D and means something else.")
ARRAY_HINT = ("math.exp, float() and Python's if work on one number at a time; np.exp, np.where "
              "and boolean masks work on whole arrays of any shape, and on a plain float after "
              "np.asarray(a).")
STEP_HINT = hint("Gradient descent moves against the gradient of the mean loss: new = old - "
                 "lr * gradient, for w and for b, with the gradient of logistic_grad.",
                 formula="dw, db = logistic_grad(X, y, w, b); return w - lr * dw, b - lr * db.")
PARAMETERS = {"sigmoid": ("a",), "logistic_grad": ("X", "y", "w", "b"),
              "gd_step": ("X", "y", "w", "b", "lr")}
ERROR_HINTS = {"sigmoid": ARRAY_HINT, "logistic_grad": SHAPES_HINT, "gd_step": SHAPES_HINT}


# --- inputs -------------------------------------------------------------------------------------

def problem(n, d, *, seed, dtype=np.float64, scale=1.0, int_labels=False):
    """A logistic-regression problem: X [n, d], 0/1 labels y [n], weights w [d] and a bias b."""
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * scale).astype(dtype)
    y = rng.integers(0, 2, n)
    w = rng.standard_normal(d).astype(dtype)
    b = float(np.round(rng.standard_normal(), 3))
    return X, (y if int_labels else y.astype(dtype)), w, b


def logits(*shape, seed, dtype=np.float64, scale=3.0):
    """Normal samples times ``scale``: inputs for sigmoid."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def tolerances(dtype):
    """Tolerances for a single number computed from arrays of ``dtype`` (the number itself, a
    Python float, no longer says which)."""
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-6, "atol": 1e-8}


# --- calling the student ------------------------------------------------------------------------

def watched(subject, name, *args):
    """Call ``name(*args)`` on copies of the arguments; return the probe's report (value, the
    positions of the arguments changed in place, NumPy's warnings)."""
    return unwrap(subject.run("call_watched", name, *args), name, args)


def unwrap(outcome, name, args):
    """The outcome's value. An error the student's ``name`` raised fails the check with the
    arguments' shapes and the exercise's hint; a stub of another exercise that it called, with
    which one."""
    error = outcome.error
    if error is not None and error.is_a("NotImplementedError"):
        raised_in = [cell.split("#")[0] for cell in re.findall(r"cell ([\w#]+), line", error.traceback)]
        if raised_in and raised_in[-1] != name:  # the stub of another exercise, called from here
            fail(f"{name} calls {raised_in[-1]}, which is not implemented yet (its stub still "
                 f"raises NotImplementedError()). Finish {raised_in[-1]} first, or compute "
                 f"without it.")
    elif error is not None and not error.is_a("ProbeError"):
        parameters = PARAMETERS[name]
        described = ", ".join(f"{p} of shape {a.shape}" if isinstance(a, np.ndarray) else f"{p} = {a!r}"
                              for p, a in zip(parameters, args[:len(parameters)], strict=True))
        fail(f"{name}({', '.join(parameters)}) with {described} raised {error.types[0]}: "
             f"{error.message}. {ERROR_HINTS[name]}" + (f"\n{error.traceback}" if error.traceback else ""))
    return outcome.unwrap()


def call(subject, name, *args):
    """The value of ``name(*args)``, the arguments left intact whatever the code does to them."""
    return watched(subject, name, *args)["value"]


def pair(value, *, what, names):
    """``value`` as the two results the contract asks for; fail unless it is a pair."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        fail(f"{what}: returned {kind(value)}, expected the pair ({names[0]}, {names[1]}): "
             f"return {names[0]}, {names[1]}.")
    return value


def number(value, want, *, what, hint, inputs=None, **tol):
    """Compare a result the contract makes a single number. A float, a NumPy scalar or an array
    holding one value passes here (the shape is the business of a property check); a torch
    tensor, an array of several values or anything else fails with what to return."""
    if isinstance(value, torch.Tensor):
        fail(f"{what}: returned a torch.Tensor ({kind(value)}), expected a float. This exercise "
             "works on NumPy: compute with NumPy and return a plain number.")
    if isinstance(value, np.ndarray) and value.size != 1:
        fail(f"{what}: returned an array of shape {value.shape}, expected one number "
             f"({show(want)}). {hint}")
    if isinstance(value, np.ndarray):
        value = float(value.reshape(()))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{what}: returned {kind(value)}, expected a float ({show(want)})."
             + (" Did you forget a return statement?" if value is None else ""))
    assert_close(float(value), float(want), what=what, hint=hint, inputs=inputs, **tol)


def compare_grad(got, want, *, what, inputs, dtype):
    dw, db = pair(got, what=what, names=("dw", "db"))
    assert_close(dw, want[0], what=f"{what}: dw", inputs=inputs, hint=GRAD_HINT)
    number(db, want[1], what=f"{what}: db", inputs=inputs, hint=GRAD_HINT, **tolerances(dtype))


def compare_step(got, want, *, what, inputs, dtype):
    w_new, b_new = pair(got, what=what, names=("w_new", "b_new"))
    assert_close(w_new, want[0], what=f"{what}: w_new", inputs=inputs, hint=STEP_HINT)
    number(b_new, want[1], what=f"{what}: b_new", inputs=inputs, hint=STEP_HINT, **tolerances(dtype))


def changed_names(name, report):
    return [PARAMETERS[name][i] for i in report["changed"]]


# --- sigmoid ------------------------------------------------------------------------------------

@check("sigmoid", points=2)
def test_sigmoid_matches_reference(student, reference):
    a = logits(4, 5, seed=601)
    assert_close(call(student, "sigmoid", a), call(reference, "sigmoid", a),
                 what="sigmoid(a) for a float64 array a of shape (4, 5)", inputs={"a": a},
                 hint=SIGMOID_HINT)


@check("sigmoid", points=1)
def test_sigmoid_large_inputs(student, reference):
    a = np.array([-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0])
    assert_close(call(student, "sigmoid", a), call(reference, "sigmoid", a),
                 what="sigmoid(a) for |a| up to 1000 (float64)", inputs={"a": a}, hint=STABLE_HINT)


@check("sigmoid", points=1, kind="property")
def test_sigmoid_no_overflow_warnings(student):
    for dtype in (np.float64, np.float32):
        a = np.array([-1000.0, -500.0, -100.0, 0.0, 100.0, 500.0, 1000.0], dtype=dtype)
        report = watched(student, "sigmoid", a)
        what = f"sigmoid(a) for a = {show(a)}"
        overflow = [w for w in report["warnings"] if "overflow" in w]
        expect(not overflow, f"{what}: NumPy warned '{overflow[0] if overflow else ''}'. The "
               f"result must come without overflow warnings. {STABLE_HINT}")
        value = report["value"]
        finite = (isinstance(value, np.ndarray) and value.shape == a.shape
                  and np.issubdtype(value.dtype, np.number) and bool(np.isfinite(value).all()))
        expect(finite, f"{what}: returned {show(value)}, expected a finite np.ndarray of shape "
               f"{a.shape}. {STABLE_HINT}")


# --- logistic_grad ------------------------------------------------------------------------------

@check("logistic_grad", points=3)
def test_logistic_grad_matches_reference(student, reference):
    X, y, w, b = problem(6, 3, seed=611)
    compare_grad(call(student, "logistic_grad", X, y, w, b), call(reference, "logistic_grad", X, y, w, b),
                 what="logistic_grad(X, y, w, b) with X of shape (6, 3), float64",
                 inputs={"X": X, "y": y, "w": w, "b": b}, dtype=np.float64)


@check("logistic_grad", points=1, kind="property")
def test_logistic_grad_db_is_a_number(student):
    X, y, w, b = problem(5, 2, seed=612)
    result = pair(call(student, "logistic_grad", X, y, w, b), what="logistic_grad(X, y, w, b)",
                  names=("dw", "db"))
    db = result[1]
    is_number = (isinstance(db, (int, float)) and not isinstance(db, bool)) or (
        isinstance(db, np.ndarray) and db.shape == ())
    expect(is_number, f"logistic_grad(X, y, w, b) with X of shape (5, 2) returned db as "
           f"{kind(db)}; db must be a single number, like b: the mean of p - y. np.mean gives "
           "one; float(...) turns a 1-element array into one.")


@check("logistic_grad", points=1, kind="property")
def test_logistic_grad_leaves_inputs_unchanged(student):
    X, y, w, b = problem(6, 3, seed=613)
    changed = changed_names("logistic_grad", watched(student, "logistic_grad", X, y, w, b))
    expect(not changed, f"logistic_grad(X, y, w, b) changed {' and '.join(changed)} in place: "
           "the caller's arrays must come back as they were (a training loop passes the same X "
           "and y at every step). Operators such as X *= ..., y -= ... or np.exp(z, out=X) "
           "write into the argument; compute into a new array instead (X * ..., y - ...).")


# --- gd_step ------------------------------------------------------------------------------------

@check("gd_step", points=2)
def test_gd_step_matches_reference(student, reference):
    X, y, w, b = problem(8, 3, seed=621)
    lr = 0.5
    compare_step(call(student, "gd_step", X, y, w, b, lr), call(reference, "gd_step", X, y, w, b, lr),
                 what="gd_step(X, y, w, b, lr=0.5) with X of shape (8, 3), float64",
                 inputs={"X": X, "y": y, "w": w, "b": b}, dtype=np.float64)


def separable_problem(n, d, *, seed):
    """Labels from a noisy linear rule, so that gradient descent has somewhere to go."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0).astype(np.float64)
    return X, y


@check("gd_step", points=2)
def test_gd_step_decreases_the_loss(student, reference):
    X, y = separable_problem(40, 3, seed=622)
    w, b, lr, steps = np.zeros(3), 0.0, 0.5, 60
    got = unwrap(student.run("descend", X, y, w, b, lr, steps), "gd_step", (X, y, w, b, lr))
    want = reference.run("descend", X, y, w, b, lr, steps).unwrap()
    losses = got["losses"]
    what = f"{steps} steps of gd_step from w = 0, b = 0 (lr = {lr}, X of shape {X.shape})"
    expect(bool(losses[-1] < losses[0]),
           f"{what}: the mean BCE went from {losses[0]:.4g} to {losses[-1]:.4g}; each step must "
           f"lower it (the reference ends at {want['losses'][-1]:.4g}). {STEP_HINT}")
    assert_close(losses, want["losses"], what=f"{what}: the loss after each step",
                 inputs={"X": X, "y": y}, hint=STEP_HINT)
    assert_close(got["w"], want["w"], what=f"{what}: the final w", hint=STEP_HINT)
    number(got["b"], want["b"], what=f"{what}: the final b", hint=STEP_HINT)


@check("gd_step", points=1, kind="property")
def test_gd_step_leaves_w_unchanged(student):
    X, y, w, b = problem(5, 4, seed=623)
    changed = changed_names("gd_step", watched(student, "gd_step", X, y, w, b, 0.1))
    expect(not changed, f"gd_step(X, y, w, b, lr) changed {' and '.join(changed)} in place. "
           "w -= lr * dw writes into the caller's array (and so does w_new = w followed by "
           "w_new -= ...: that is the same array under a second name). Return a new array: "
           "w - lr * dw, or w.copy() before -=.")
