"""Hidden checks for a1_logistic: run by `grade`, never shipped to students."""

import torch
from torch.nn import functional as F

from autograder.checks import (
    assert_close,
    assert_no_builtin,
    check,
    expect,
    hint,
    oracle,
    rand,
    randint,
    show,
)

from public_checks import (  # helpers shared with the public checks
    BUILTIN_BCE,
    own_bce,
)

HINT = hint("Average the loss over every element, whatever the shape of the batch.",
            formula="Return -(y * torch.log(yhat) + (1 - y) * torch.log(1 - yhat)).mean().")
FINITE_HINT = hint("log(0) is -inf: keep yhat away from exactly 0 and 1 before taking logs.",
                   formula="p = yhat.clamp(eps, 1 - eps) with eps = torch.finfo(yhat.dtype).eps.")

# grade build checks that the reference agrees with PyTorch's own loss on these checks' inputs
oracle("bce", F.binary_cross_entropy)


@check("bce", points=2)
def test_bce_2d_float64_mean_over_all(student, reference, device):
    yhat = rand(5, 3, seed=21, low=0.02, high=0.98, dtype=torch.float64, device=device)
    y = randint(5, 3, seed=22, high=2, dtype=torch.float64, device=device)
    assert_close(own_bce(student, yhat, y), reference.bce(yhat, y),
                 what="bce(yhat, y) for a (5, 3) float64 batch", inputs={"yhat": yhat, "y": y},
                 hint=HINT)


@check("bce", points=2, kind="property")
def test_bce_finite_at_exact_zero_and_one(student, device):
    yhat = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5], device=device)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0], device=device)
    got = own_bce(student, yhat, y)
    value = torch.as_tensor(got) if isinstance(got, (torch.Tensor, float, int)) else None
    expect(value is not None and bool(torch.isfinite(value).all()),
           f"bce(yhat, y) with exact 0s and 1s in yhat returned {show(got)}, expected a finite "
           f"number. Input: yhat = {show(yhat)}, y = {show(y)}. {FINITE_HINT}")


@check("bce", points=2)
def test_bce_backpropagates(student, reference, device):
    yhat = rand(8, seed=23, low=0.05, high=0.95, device=device)
    y = randint(8, seed=24, high=2, device=device).float()
    outcome = student.run("call_backward", "bce", [yhat, y], [0])
    got = outcome.unwrap()
    assert_no_builtin(outcome, BUILTIN_BCE, what="bce",
                      instead="Write the formula with torch.log and .mean().")
    want = reference.run("call_backward", "bce", [yhat, y], [0]).unwrap()
    expect(got["has_graph"],
           "bce(yhat, y) does not back-propagate: the result has no gradient history. "
           "Compute it with torch operations and return a tensor (no .item(), float() or numpy).")
    assert_close(got["grads"][0], want["grads"][0], what="d bce / d yhat",
                 inputs={"yhat": yhat, "y": y}, hint=HINT)
