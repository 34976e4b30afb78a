"""Public checks for a1_logistic: students see these and run them from the check cell."""


from autograder.checks import (
    assert_close,
    assert_no_builtin,
    assert_same_kind,
    check,
    expect,
    hint,
    rand,
    randint,
)

HINT = hint("Take the log of the probability each prediction gives to its true label, and average "
            "the negated logs over every element of the batch.",
            formula="Return -(y * torch.log(yhat) + (1 - y) * torch.log(1 - yhat)).mean().")

# nn.BCELoss and F.binary_cross_entropy both record "binary_cross_entropy". Using one costs the
# exercise (every check of it fails), not just one check: the exercise is to write it.
BUILTIN_BCE = {"binary_cross_entropy", "binary_cross_entropy_with_logits"}


def own_bce(student, yhat, y):
    """Call the student's bce(yhat, y); fail if it used PyTorch's BCE."""
    outcome = student.outcome("bce", yhat, y)
    value = outcome.unwrap()
    assert_no_builtin(outcome, BUILTIN_BCE, what="bce",
                      instead="Write the formula with torch.log and .mean().")
    return value


@check("bce", points=2)
def test_bce_matches_bceloss(student, reference, device):
    yhat = rand(6, seed=11, low=0.05, high=0.95, device=device)
    y = randint(6, seed=12, high=2, device=device).float()
    assert_close(own_bce(student, yhat, y), reference.bce(yhat, y), what="bce(yhat, y)",
                 inputs={"yhat": yhat, "y": y}, hint=HINT)


@check("bce", points=1, kind="property")
def test_bce_returns_0dim_tensor(student, device):
    yhat = rand(3, 4, seed=13, low=0.1, high=0.9, device=device)
    y = randint(3, 4, seed=14, high=2, device=device).float()
    got = own_bce(student, yhat, y)
    assert_same_kind(got, yhat, what="bce(yhat, y)")
    expect(got.dim() == 0,
           f"bce(yhat, y) returned shape {tuple(got.shape)} for inputs of shape (3, 4); "
           "it must be a single number (a 0-dim tensor): take the mean over all elements.")


@check("bce", points=1, kind="property")
def test_bce_is_your_own(student, device):
    yhat = rand(5, seed=15, low=0.1, high=0.9, device=device)
    y = randint(5, seed=16, high=2, device=device).float()
    own_bce(student, yhat, y)
