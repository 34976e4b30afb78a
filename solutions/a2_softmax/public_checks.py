"""Public checks for a2_softmax: students see these and run them from the check cell."""

import torch

from autograder.checks import (
    assert_close,
    assert_no_builtin,
    assert_same_kind,
    check,
    expect,
    hint,
    kind,
    randn,
    show,
)

# Every spelling of PyTorch's softmax records one of these names (F.softmax, Tensor.softmax and
# nn.Softmax all record "softmax"). logsumexp is allowed.
BUILTIN_SOFTMAX = {"softmax", "_softmax", "log_softmax", "_log_softmax", "special_softmax",
                   "special_log_softmax"}
# Autograd in any form records at least one of these (torch.func and torch.autograd.functional
# call torch.autograd.grad underneath).
AUTOGRAD = {"backward", "grad", "requires_grad_", "vjp", "jvp", "jacobian", "jacrev", "jacfwd",
            "hessian", "_softmax_backward_data"}

SOFTMAX_HINT = hint("Exponentiate the logits and divide by their sum along dim (keepdim=True, so "
                    "it broadcasts); subtract the maximum along dim first, so exp cannot overflow.",
                    formula="Compute e = torch.exp(z - z.amax(dim, keepdim=True)) and return "
                            "e / e.sum(dim, keepdim=True).")
STABLE_HINT = ("exp(1000) overflows to inf and inf/inf is nan. Subtract the maximum taken along "
               "dim with keepdim=True (one maximum per slice) before torch.exp: softmax does not "
               "change when every logit of a slice is shifted by the same amount.")
BACKWARD_HINT = hint("Use the softmax Jacobian dq_i/dz_j = q_i * (delta_ij - q_j): every logit moves "
                     "every probability, so each result mixes grad_q over the whole slice along dim.",
                     formula="Return q * (grad_q - (grad_q * q).sum(dim, keepdim=True)).")


def _name(dtype):
    return str(dtype).removeprefix("torch.")


def own_softmax(student, z, *dim):
    """Call the student's softmax(z, *dim); fail if it used PyTorch's softmax."""
    outcome = student.outcome("softmax", z, *dim)
    value = outcome.unwrap()
    assert_no_builtin(outcome, BUILTIN_SOFTMAX, what="softmax",
                      instead="Use torch.exp and .sum (and torch.amax or torch.logsumexp).")
    return value


def own_backward(student, q, grad_q, *dim):
    """Call the student's softmax_backward; fail if it used autograd."""
    outcome = student.outcome("softmax_backward", q, grad_q, *dim)
    value = outcome.unwrap()
    assert_no_builtin(outcome, AUTOGRAD, what="softmax_backward",
                      instead=("Here you compute the gradient by hand, without autograd, from q "
                               f"and grad_q only. {BACKWARD_HINT}"))
    return value


def expect_distribution(got, z, dim, *, what, hint):
    """Fail unless ``got`` is a finite tensor shaped like ``z`` that sums to 1 along ``dim``."""
    expect(isinstance(got, torch.Tensor), f"{what}: returned {kind(got)}, expected a tensor.")
    expect(tuple(got.shape) == tuple(z.shape),
           f"{what}: shape {tuple(got.shape)}, expected {tuple(z.shape)} (the shape of z). "
           "Keep the summed dimension with keepdim=True so it broadcasts.")
    values = got.detach().cpu().double()
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        expect(False, f"{what}: {int(bad.sum())} of {values.numel()} values are nan or inf "
               f"(first at index {index}). Input: z = {show(z)}. {hint}")
    sums = values.sum(dim)
    tol = 1e-8 if got.dtype == torch.float64 else 1e-4
    expect(bool(((sums - 1).abs() <= tol).all()) and bool((values >= 0).all()),
           f"{what}: the values along dim={dim} should be >= 0 and sum to 1; the sums are "
           f"{show(sums)}. Input: z = {show(z)}. Divide by the sum along dim (keepdim=True).")


# --- softmax ----------------------------------------------------------------------------------

@check("softmax", points=2)
def test_softmax_matches_reference(student, reference, device):
    z = randn(4, 10, seed=201, scale=2.0, device=device)
    assert_close(own_softmax(student, z), reference.softmax(z),
                 what="softmax(z) for z of shape (4, 10) with the default dim=-1",
                 inputs={"z": z}, hint=SOFTMAX_HINT)


@check("softmax", points=1)
def test_softmax_1d(student, reference, device):
    z = randn(6, seed=202, device=device)
    assert_close(own_softmax(student, z), reference.softmax(z),
                 what="softmax(z) for a 1-D z of 6 logits", inputs={"z": z},
                 hint="A 1-D tensor has a single dimension, dim=-1 = 0. " + SOFTMAX_HINT)


@check("softmax", points=1)
def test_softmax_large_logits(student, reference, device):
    z = torch.tensor([[1000.0, 0.0, -1000.0],
                      [-1000.0, -999.0, -1000.0],
                      [1000.0, 999.0, 1000.0]], device=device)
    what = "softmax(z) with logits of magnitude 1000"
    got = own_softmax(student, z)
    expect_distribution(got, z, -1, what=what, hint=STABLE_HINT)
    assert_close(got, reference.softmax(z), what=what, inputs={"z": z}, hint=STABLE_HINT,
                 rtol=1e-3, atol=1e-6)


@check("softmax", points=1, kind="property")
def test_softmax_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        z = randn(3, 5, seed=203, dtype=dtype, device=device)
        assert_same_kind(own_softmax(student, z), z, what=f"softmax(z) for a {_name(dtype)} z")


@check("softmax", points=1, kind="property")
def test_softmax_is_your_own(student, device):
    z = randn(2, 4, seed=204, device=device)
    own_softmax(student, z)


# --- softmax_backward -------------------------------------------------------------------------

@check("softmax_backward", points=2)
def test_softmax_backward_matches_reference(student, reference, device):
    q = torch.softmax(randn(4, 6, seed=211, scale=2.0, device=device), -1)
    g = randn(4, 6, seed=212, device=device)
    assert_close(own_backward(student, q, g), reference.softmax_backward(q, g),
                 what="softmax_backward(q, grad_q) for shape (4, 6) with the default dim=-1",
                 inputs={"q": q, "grad_q": g}, hint=BACKWARD_HINT)


@check("softmax_backward", points=1)
def test_softmax_backward_1d(student, reference, device):
    q = torch.softmax(randn(5, seed=213, device=device), -1)
    g = randn(5, seed=214, device=device)
    assert_close(own_backward(student, q, g), reference.softmax_backward(q, g),
                 what="softmax_backward(q, grad_q) for 1-D q of 5 probabilities",
                 inputs={"q": q, "grad_q": g},
                 hint="Every logit moves every probability: keep the -q_i*q_j terms. "
                 + BACKWARD_HINT)


@check("softmax_backward", points=1, kind="property")
def test_softmax_backward_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        q = torch.softmax(randn(3, 5, seed=215, dtype=dtype, device=device), -1)
        g = randn(3, 5, seed=216, dtype=dtype, device=device)
        assert_same_kind(own_backward(student, q, g), q,
                         what=f"softmax_backward(q, grad_q) for a {_name(dtype)} q")


@check("softmax_backward", points=1, kind="property")
def test_softmax_backward_no_autograd(student, device):
    q = torch.softmax(randn(2, 4, seed=217, device=device), -1)
    g = randn(2, 4, seed=218, device=device)
    own_backward(student, q, g)
