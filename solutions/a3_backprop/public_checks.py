"""Public checks for a3_backprop: students see these and run them from the check cell."""

import torch

from autograder.checks import (
    assert_close,
    assert_no_builtin,
    assert_same_kind,
    check,
    expect,
    fail,
    hint,
    kind,
    randint,
    randn,
)

FORWARD_ARGS = ("X", "W1", "b1", "w2", "b2")
BACKWARD_ARGS = ("X", "y", "h", "q", "w2")
GRADIENTS = ("dW1", "db1", "dw2", "db2")
H_HINT = hint("The hidden layer is tanh of X's affine map (W1 is [H, D]): tanh, not sigmoid, and "
              "not 2*sigmoid(a) - 1 (that is tanh(a/2)).",
              formula="h = torch.tanh(X @ W1.T + b1)")
Q_HINT = hint("The output is the sigmoid of the hidden layer's affine map: one probability per "
              "sample.", formula="q = torch.sigmoid(h @ w2 + b2)")
OUTPUT_HINT = hint("Through the mean BCE and the sigmoid, the gradient at the output's "
                   "pre-activation is q - y, divided by N for the mean (do not forget the 1/N); "
                   "the output layer's gradients follow from it by the chain rule.",
                   formula="dz = (q - y) / N; dw2 = h.T @ dz; db2 = dz.sum().reshape(1)")
HIDDEN_HINT = hint("Go back through the output layer, then through tanh, whose derivative is "
                   "1 - h**2 (not (1 - h)**2). If the output-layer check fails too, fix that first.",
                   formula="dh = torch.outer(dz, w2); da = dh * (1 - h**2); dW1 = da.T @ X; "
                           "db1 = da.sum(dim=0)")
AUTOGRAD = {"backward", "grad", "requires_grad_", "tanh_backward", "sigmoid_backward"}


def network(n, d, hidden, *, seed, device, dtype=torch.float32):
    """Return X [n, d] and the parameters W1 [hidden, d], b1 [hidden], w2 [hidden], b2 [1]."""
    return (randn(n, d, seed=seed, dtype=dtype, device=device),
            randn(hidden, d, seed=seed + 1, dtype=dtype, device=device),
            randn(hidden, seed=seed + 2, dtype=dtype, device=device, scale=0.5),
            randn(hidden, seed=seed + 3, dtype=dtype, device=device),
            randn(1, seed=seed + 4, dtype=dtype, device=device, scale=0.5))


def backward_case(reference, n, d, hidden, *, seed, device, dtype=torch.float32):
    """Return the backward inputs (X, y, h, q, w2), with h, q from the reference forward pass."""
    X, W1, b1, w2, b2 = network(n, d, hidden, seed=seed, device=device, dtype=dtype)
    y = randint(n, seed=seed + 5, high=2, dtype=dtype, device=device)
    h, q = reference.two_layer_forward(X, W1, b1, w2, b2)
    return X, y, h, q, w2


def call(student, name, args, arg_names, names, hint):
    """Call the student's ``name(*args)``; return its result as a list of ``len(names)`` items."""
    outcome = student.outcome(name, *args)
    error = outcome.error
    if error is not None and not (error.is_a("NotImplementedError") or error.is_a("ProbeError")):
        shapes = ", ".join(f"{a} {tuple(v.shape)}" for a, v in zip(arg_names, args, strict=True))
        fail(f"{name} raised {error.types[0]}: {error.message}, on inputs of shapes {shapes}. "
             f"{hint}".rstrip() + (f"\n{error.traceback}" if error.traceback else ""))
    got = outcome.unwrap()
    expect(isinstance(got, (tuple, list)) and len(got) == len(names),
           f"{name} returned {kind(got)}"
           + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "")
           + f"; expected a tuple ({', '.join(names)}). Return them in this order.")
    return list(got)


def same_values(got, want, *, what, inputs, hint):
    """Compare values only: a result whose shape differs from ``want``'s just by size-1 dims
    is reshaped first, because separate checks judge the shapes."""
    if (isinstance(got, torch.Tensor) and got.shape != want.shape
            and got.squeeze().shape == want.squeeze().shape):
        got = got.reshape(want.shape)
    assert_close(got, want, what=what, inputs=inputs, hint=hint)


# --- two_layer_forward ------------------------------------------------------------------------

@check("two_layer_forward", points=3)
def test_forward_matches_reference(student, reference, device):
    args = network(6, 3, 4, seed=101, device=device)
    hint = "W1 has shape [H, D], so the hidden pre-activation is X @ W1.T + b1."
    got = call(student, "two_layer_forward", args, FORWARD_ARGS, ("h", "q"), hint)
    want = reference.two_layer_forward(*args)
    inputs = dict(zip(FORWARD_ARGS, args, strict=True))
    same_values(got[0], want[0], what="h from two_layer_forward(X, W1, b1, w2, b2)",
                inputs=inputs, hint=H_HINT)
    same_values(got[1], want[1], what="q from two_layer_forward(X, W1, b1, w2, b2)",
                inputs=inputs, hint=Q_HINT)


@check("two_layer_forward", points=1, kind="property")
def test_forward_returns_h_and_q_shapes(student, device):
    args = network(5, 3, 4, seed=111, device=device)
    h, q = call(student, "two_layer_forward", args, FORWARD_ARGS, ("h", "q"),
                "W1 has shape [H, D], so the hidden pre-activation is X @ W1.T + b1.")
    assert_same_kind(h, args[0], what="h from two_layer_forward")
    assert_same_kind(q, args[0], what="q from two_layer_forward")
    expect(tuple(h.shape) == (5, 4),
           f"h has shape {tuple(h.shape)} for X (5, 3) and W1 (4, 3); expected (N, H) = (5, 4): "
           "one row per sample, one column per hidden unit.")
    expect(tuple(q.shape) == (5,),
           f"q has shape {tuple(q.shape)} for X (5, 3); expected (N,) = (5,), one probability "
           "per sample. h @ w2 with the vector w2 gives shape (N,); if you have (N, 1), "
           "use .squeeze(1).")


# --- two_layer_backward -----------------------------------------------------------------------

@check("two_layer_backward", points=2)
def test_backward_output_layer(student, reference, device):
    args = backward_case(reference, 6, 3, 4, seed=201, device=device)
    got = call(student, "two_layer_backward", args, BACKWARD_ARGS, GRADIENTS, OUTPUT_HINT)
    want = reference.two_layer_backward(*args)
    inputs = dict(zip(BACKWARD_ARGS, args, strict=True))
    for i in (2, 3):
        same_values(got[i], want[i], what=f"{GRADIENTS[i]} from two_layer_backward",
                    inputs=inputs, hint=OUTPUT_HINT)


@check("two_layer_backward", points=3)
def test_backward_hidden_layer(student, reference, device):
    args = backward_case(reference, 7, 3, 4, seed=211, device=device)
    got = call(student, "two_layer_backward", args, BACKWARD_ARGS, GRADIENTS, HIDDEN_HINT)
    want = reference.two_layer_backward(*args)
    inputs = dict(zip(BACKWARD_ARGS, args, strict=True))
    for i in (0, 1):
        same_values(got[i], want[i], what=f"{GRADIENTS[i]} from two_layer_backward",
                    inputs=inputs, hint=HIDDEN_HINT)


@check("two_layer_backward", points=1, kind="property")
def test_backward_returns_parameter_shapes(student, reference, device):
    args = backward_case(reference, 5, 3, 4, seed=221, device=device)
    got = call(student, "two_layer_backward", args, BACKWARD_ARGS, GRADIENTS, "")
    expected = {"dW1": (4, 3), "db1": (4,), "dw2": (4,), "db2": (1,)}
    for name, value in zip(GRADIENTS, got, strict=True):
        assert_same_kind(value, args[0], what=f"{name} from two_layer_backward")
    shapes = [tuple(value.shape) for value in got]
    expect(shapes == list(expected.values()) or sorted(shapes) != sorted(expected.values()),
           f"two_layer_backward returned gradients of shapes {shapes} for X (5, 3) and H = 4 "
           f"hidden units: the right shapes in the wrong order. Return (dW1, db1, dw2, db2), "
           f"of shapes {list(expected.values())}.")
    for name, value in zip(GRADIENTS, got, strict=True):
        shape = tuple(value.shape)
        advice = {
            "dW1": "W1 is [H, D]: compute da.T @ X, not X.T @ da.",
            "db2": "b2 is a 1-element vector: return dz.sum().reshape(1), not a 0-dim scalar.",
        }.get(name, "")
        expect(shape == expected[name],
               f"{name} has shape {shape} for X (5, 3) and H = 4 hidden units; expected "
               f"{expected[name]}, the shape of the parameter it belongs to. {advice}".rstrip())


@check("two_layer_backward", points=1, kind="property")
def test_backward_is_your_own(student, reference, device):
    args = backward_case(reference, 5, 2, 3, seed=231, device=device)
    outcome = student.outcome("two_layer_backward", *args)
    outcome.unwrap()
    assert_no_builtin(outcome, AUTOGRAD, what="two_layer_backward",
                      instead="No autograd here: compute every gradient with the chain-rule "
                              "formulas of section 3 (products, sums and 1 - h**2).")
