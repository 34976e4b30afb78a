"""Hidden checks for a3_backprop: run by `grade`, never shipped to students."""

import torch
from torch.nn import functional as F

from autograder.checks import (
    assert_close,
    assert_same_kind,
    check,
    expect,
    hint,
    oracle,
    randint,
    randn,
)

from public_checks import (  # helpers shared with the public checks
    BACKWARD_ARGS,
    FORWARD_ARGS,
    GRADIENTS,
    call,
    same_values,
)

FORWARD_HINT = hint("tanh of the hidden affine map, then the sigmoid of the output's, computed "
                    "with the dtype and device of X.",
                    formula="h = torch.tanh(X @ W1.T + b1); q = torch.sigmoid(h @ w2 + b2)")
BACKWARD_HINT = hint("Chain rule from the mean BCE back: (q - y) / N at the output, through w2, "
                     "then through tanh (derivative 1 - h**2), then through W1.",
                     formula="dz = (q - y) / N; dw2 = h.T @ dz; db2 = dz.sum().reshape(1); "
                             "da = torch.outer(dz, w2) * (1 - h**2); dW1 = da.T @ X; "
                             "db1 = da.sum(dim=0)")


def forward_by_pytorch(X, W1, b1, w2, b2):
    h = torch.tanh(F.linear(X, W1, b1))
    return h, torch.sigmoid(F.linear(h, w2[None, :], b2)).squeeze(-1)


def backward_by_autograd(X, y, h, q, w2):
    """The gradients by autograd through tanh, the output layer and the mean BCE.

    The pre-activation a = atanh(h) may be infinite where h is exactly +-1; autograd's tanh
    derivative uses only h, so the gradient there is exactly 0 as it should be. b2 is recovered
    from q; the last step, from da to (dW1, db1), is the linear layer's, written out.
    """
    a = torch.atanh(h).requires_grad_(True)
    w2 = w2.detach().clone().requires_grad_(True)
    b2 = (torch.logit(q) - h @ w2.detach()).mean().reshape(1).requires_grad_(True)
    logits = torch.tanh(a) @ w2 + b2
    F.binary_cross_entropy_with_logits(logits, y).backward()
    return a.grad.T @ X, a.grad.sum(dim=0), w2.grad, b2.grad


# grade build checks that the reference agrees with these on every value check's inputs
oracle("two_layer_forward", forward_by_pytorch)
oracle("two_layer_backward", backward_by_autograd)


def network(n, d, hidden, *, seed, device, dtype=torch.float32, w1_scale=1.0):
    """Return X [n, d] and the parameters W1 [hidden, d], b1 [hidden], w2 [hidden], b2 [1]."""
    return (randn(n, d, seed=seed, dtype=dtype, device=device),
            randn(hidden, d, seed=seed + 1, dtype=dtype, device=device, scale=w1_scale),
            randn(hidden, seed=seed + 2, dtype=dtype, device=device, scale=0.5),
            randn(hidden, seed=seed + 3, dtype=dtype, device=device),
            randn(1, seed=seed + 4, dtype=dtype, device=device, scale=0.5))


def backward_case(reference, params, *, seed, device):
    """Return the backward inputs (X, y, h, q, w2), with h, q from the reference forward pass."""
    X, W1, b1, w2, b2 = params
    y = randint(X.shape[0], seed=seed, high=2, dtype=X.dtype, device=device)
    h, q = reference.two_layer_forward(X, W1, b1, w2, b2)
    return X, y, h, q, w2


# --- two_layer_forward ------------------------------------------------------------------------

@check("two_layer_forward", points=2)
def test_forward_float64_larger_batch(student, reference, device):
    args = network(32, 7, 10, seed=301, device=device, dtype=torch.float64)
    got = call(student, "two_layer_forward", args, FORWARD_ARGS, ("h", "q"), FORWARD_HINT)
    want = reference.two_layer_forward(*args)
    inputs = dict(zip(FORWARD_ARGS, args, strict=True))
    for i, name in enumerate(("h", "q")):
        same_values(got[i], want[i], what=f"{name} from two_layer_forward (N=32, D=7, H=10, float64)",
                    inputs=inputs, hint=FORWARD_HINT)


@check("two_layer_forward", points=1)
def test_forward_saturated_units_stay_finite(student, reference, device):
    # Pre-activations reach |a| ~ 200: exp(a) overflows float32, tanh itself saturates at +-1.
    args = network(8, 3, 5, seed=311, device=device, w1_scale=60.0)
    got = call(student, "two_layer_forward", args, FORWARD_ARGS, ("h", "q"), FORWARD_HINT)
    want = reference.two_layer_forward(*args)
    pre = args[0] @ args[1].T + args[2]
    for i, name in enumerate(("h", "q")):
        value = got[i]
        bad = int((~torch.isfinite(value)).sum()) if isinstance(value, torch.Tensor) else 0
        expect(bad == 0,
               f"{name} from two_layer_forward has {bad} NaN or inf values (of "
               f"{value.numel() if bad else 0}) when the hidden pre-activations reach |a| = "
               f"{pre.abs().max().item():.0f} (float32). A hand-written (exp(a) - exp(-a)) / "
               "(exp(a) + exp(-a)) overflows to inf/inf there; use torch.tanh and torch.sigmoid.")
        same_values(value, want[i], what=f"{name} from two_layer_forward with saturated tanh "
                    "units (|a| up to ~200, float32)", inputs=None, hint=FORWARD_HINT)


@check("two_layer_forward", points=1)
def test_forward_one_sample_one_unit_shapes(student, reference, device):
    args = network(1, 2, 1, seed=321, device=device, dtype=torch.float64)
    h, q = call(student, "two_layer_forward", args, FORWARD_ARGS, ("h", "q"), FORWARD_HINT)
    assert_same_kind(h, args[0], what="h from two_layer_forward (float64 input)")
    assert_same_kind(q, args[0], what="q from two_layer_forward (float64 input)")
    expect(tuple(h.shape) == (1, 1) and tuple(q.shape) == (1,),
           f"two_layer_forward with N = 1 sample and H = 1 hidden unit returned h of shape "
           f"{tuple(h.shape)} and q of shape {tuple(q.shape)}; expected (1, 1) and (1,). "
           ".squeeze() without a dim also removes the batch dimension when N = 1: "
           "use .squeeze(1), or h @ w2 with the vector w2.")
    want = reference.two_layer_forward(*args)
    inputs = dict(zip(FORWARD_ARGS, args, strict=True))
    assert_close(h, want[0], what="h for one sample", inputs=inputs, hint=FORWARD_HINT)
    assert_close(q, want[1], what="q for one sample", inputs=inputs, hint=FORWARD_HINT)


# --- two_layer_backward -----------------------------------------------------------------------

@check("two_layer_backward", points=2)
def test_backward_float64_larger_batch(student, reference, device):
    params = network(50, 5, 8, seed=401, device=device, dtype=torch.float64)
    args = backward_case(reference, params, seed=406, device=device)
    got = call(student, "two_layer_backward", args, BACKWARD_ARGS, GRADIENTS, BACKWARD_HINT)
    want = reference.two_layer_backward(*args)
    inputs = dict(zip(BACKWARD_ARGS, args, strict=True))
    for i, name in enumerate(GRADIENTS):
        same_values(got[i], want[i], what=f"{name} from two_layer_backward (N=50, D=5, H=8, "
                    "float64)", inputs=inputs, hint=BACKWARD_HINT)


@check("two_layer_backward", points=1)
def test_backward_saturated_units_pass_no_gradient(student, reference, device):
    # Units 0 and 1 saturate (h = -1 or +1 on most samples): tanh' = 1 - h**2 is 0 there,
    # while the wrong (1 - h)**2 is 4 at h = -1.
    X, W1, b1, w2, b2 = network(8, 3, 5, seed=411, device=device)
    W1 = W1 * torch.tensor([40.0, 40.0, 1.0, 1.0, 1.0], device=device)[:, None]
    args = backward_case(reference, (X, W1, b1, w2, b2), seed=416, device=device)
    got = call(student, "two_layer_backward", args, BACKWARD_ARGS, GRADIENTS, BACKWARD_HINT)
    want = reference.two_layer_backward(*args)
    hint = ("A unit saturated at h = -1 or +1 passes (almost) no gradient: tanh'(a) = 1 - h**2 "
            "= (1 - h)(1 + h) is 0 there. (1 - h)**2 is not the derivative of tanh.")
    for i in (0, 1):
        same_values(got[i], want[i], what=f"{GRADIENTS[i]} from two_layer_backward when hidden "
                    "units 0 and 1 are saturated", inputs={"h": args[2]}, hint=hint)


@check("two_layer_backward", points=1, kind="property")
def test_backward_keeps_float64(student, reference, device):
    params = network(4, 3, 2, seed=421, device=device, dtype=torch.float64)
    args = backward_case(reference, params, seed=426, device=device)
    got = call(student, "two_layer_backward", args, BACKWARD_ARGS, GRADIENTS, BACKWARD_HINT)
    for name, value in zip(GRADIENTS, got, strict=True):
        assert_same_kind(value, args[0], what=f"{name} from two_layer_backward",
                         hint="Tensors you create (torch.zeros(...), torch.tensor(...)) default "
                              "to float32: pass dtype=X.dtype, device=X.device, or use "
                              "torch.zeros_like.")


@check("two_layer_backward", points=1)
def test_backward_single_sample(student, reference, device):
    params = network(1, 3, 2, seed=431, device=device)
    args = backward_case(reference, params, seed=436, device=device)
    got = call(student, "two_layer_backward", args, BACKWARD_ARGS, GRADIENTS,
               "With N = 1, .squeeze() without a dim turns [1] tensors into 0-dim ones; "
               "squeeze only the dimension you mean.")
    want = reference.two_layer_backward(*args)
    inputs = dict(zip(BACKWARD_ARGS, args, strict=True))
    for i, name in enumerate(GRADIENTS):
        same_values(got[i], want[i], what=f"{name} from two_layer_backward for one sample (N=1)",
                    inputs=inputs, hint=BACKWARD_HINT)
