"""Hidden checks for a2_softmax: run by `grade`, never shipped to students."""

import torch

from autograder.checks import (
    assert_close,
    check,
    hint,
    oracle,
    randn,
)

from public_checks import (  # helpers shared with the public checks
    BACKWARD_HINT,
    expect_distribution,
    own_backward,
    own_softmax,
)

DIM_HINT = ("Take the maximum and the sum along dim, the argument (keepdim=True), not along a "
            "fixed dimension such as 1 or -1.")
BACKWARD_DIM_HINT = hint("Sum along dim, the argument (keepdim=True), not along a fixed dimension "
                         "such as 1 or -1.",
                         formula="The sum is (grad_q * q).sum(dim, keepdim=True).")


def softmax_by_pytorch(z, dim=-1):
    return torch.softmax(z, dim)


def softmax_backward_by_autograd(q, grad_q, dim=-1):
    """dL/dz by autograd through torch.softmax, at logits z = log(q) (softmax(log q) = q)."""
    z = q.detach().log().requires_grad_(True)
    torch.softmax(z, dim).backward(grad_q)
    return z.grad


# grade build checks that the reference agrees with these on every value check's inputs
oracle("softmax", softmax_by_pytorch)
oracle("softmax_backward", softmax_backward_by_autograd)


# --- softmax ----------------------------------------------------------------------------------

@check("softmax", points=1)
def test_softmax_dim0(student, reference, device):
    z = randn(5, 3, seed=301, scale=2.0, device=device)
    assert_close(own_softmax(student, z, 0), reference.softmax(z, 0),
                 what="softmax(z, 0) for z of shape (5, 3) (each column sums to 1)",
                 inputs={"z": z}, hint=DIM_HINT)


@check("softmax", points=1)
def test_softmax_middle_dim_of_3d(student, reference, device):
    z = randn(2, 5, 3, seed=302, scale=2.0, device=device)
    for dim in (1, -2):
        assert_close(own_softmax(student, z, dim), reference.softmax(z, dim),
                     what=f"softmax(z, {dim}) for z of shape (2, 5, 3)", inputs={"z": z},
                     hint=DIM_HINT)


@check("softmax", points=1)
def test_softmax_rows_of_different_scale(student, reference, device):
    z = torch.cat([
        randn(1, 8, seed=303, scale=1e-3),
        randn(1, 8, seed=304, scale=100.0) + 500.0,
        randn(1, 8, seed=305, scale=100.0) - 500.0,
    ]).to(device)
    what = "softmax(z) for rows of very different scale (~1e-3, ~500 +- 100, ~-500 +- 100)"
    hint = ("Each row needs its own shift: use z.amax(dim, keepdim=True), not the maximum of "
            "the whole tensor (z.max()), which makes every exponential of a low row underflow "
            "to 0 and the row 0/0 = nan.")
    got = own_softmax(student, z)
    expect_distribution(got, z, -1, what=what, hint=hint)
    assert_close(got, reference.softmax(z), what=what, inputs={"z": z}, hint=hint,
                 rtol=1e-3, atol=1e-6)


@check("softmax", points=1)
def test_softmax_float64_extremes(student, reference, device):
    z = torch.tensor([[1000.0, -1000.0, 0.5, 800.0],
                      [999.0, -1000.0, 0.0, -800.0],
                      [-5.0, -1000.0, -0.5, 799.0]], dtype=torch.float64, device=device)
    what = "softmax(z, 0) in float64 with logits of magnitude 1000 (exp(1000) = inf in float64)"
    hint = ("Subtract the maximum along dim (keepdim=True) before torch.exp, and keep the "
            "input's dtype.")
    got = own_softmax(student, z, 0)
    expect_distribution(got, z, 0, what=what, hint=hint)
    assert_close(got, reference.softmax(z, 0), what=what, inputs={"z": z}, hint=hint)


# --- softmax_backward -------------------------------------------------------------------------

@check("softmax_backward", points=1)
def test_softmax_backward_dim0(student, reference, device):
    q = torch.softmax(randn(5, 3, seed=311, scale=2.0, device=device), 0)
    g = randn(5, 3, seed=312, device=device)
    assert_close(own_backward(student, q, g, 0), reference.softmax_backward(q, g, 0),
                 what="softmax_backward(q, grad_q, 0) for shape (5, 3) (q's columns sum to 1)",
                 inputs={"q": q, "grad_q": g}, hint=BACKWARD_DIM_HINT)


@check("softmax_backward", points=1)
def test_softmax_backward_middle_dim_of_3d(student, reference, device):
    z = randn(2, 5, 3, seed=313, scale=2.0, device=device)
    g = randn(2, 5, 3, seed=314, device=device)
    for dim in (1, -2):
        q = torch.softmax(z, dim)
        assert_close(own_backward(student, q, g, dim), reference.softmax_backward(q, g, dim),
                     what=f"softmax_backward(q, grad_q, {dim}) for shape (2, 5, 3)",
                     inputs={"q": q, "grad_q": g}, hint=BACKWARD_DIM_HINT)


@check("softmax_backward", points=1)
def test_softmax_backward_shapes_and_dims(student, reference, device):
    cases = [((7,), 0), ((3, 4), 1), ((4, 3, 2), -3), ((2, 3, 4, 5), 2), ((2, 1, 6), 1)]
    for i, (shape, dim) in enumerate(cases):
        q = torch.softmax(randn(*shape, seed=320 + i, scale=1.5, device=device), dim)
        g = randn(*shape, seed=330 + i, device=device)
        assert_close(own_backward(student, q, g, dim), reference.softmax_backward(q, g, dim),
                     what=f"softmax_backward(q, grad_q, {dim}) for shape {shape}",
                     inputs={"q": q, "grad_q": g}, hint=BACKWARD_DIM_HINT)


@check("softmax_backward", points=1)
def test_softmax_backward_float64(student, reference, device):
    q = torch.softmax(randn(3, 7, seed=315, scale=3.0, dtype=torch.float64, device=device), -1)
    g = randn(3, 7, seed=316, dtype=torch.float64, device=device)
    assert_close(own_backward(student, q, g, -1), reference.softmax_backward(q, g, -1),
                 what="softmax_backward(q, grad_q, -1) in float64", inputs={"q": q, "grad_q": g},
                 hint=BACKWARD_HINT)


@check("softmax_backward", points=1, kind="property")
def test_softmax_backward_constant_grad_is_zero(student, reference, device):
    q = torch.softmax(randn(3, 5, seed=317, scale=2.0, device=device), -1)
    g = torch.full((3, 5), 2.5, device=device)
    assert_close(own_backward(student, q, g, -1), reference.softmax_backward(q, g, -1),
                 what="softmax_backward(q, grad_q, -1) with grad_q = 2.5 everywhere",
                 inputs={"q": q, "grad_q": g},
                 hint=("Shifting every logit by the same amount leaves q unchanged, so a "
                       "gradient that is the same for every q_i must give dL/dz = 0. Keeping "
                       "only the diagonal q*(1-q)*grad_q misses the -q_i*q_j terms. "
                       + BACKWARD_HINT))
