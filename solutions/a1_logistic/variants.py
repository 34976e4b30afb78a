# Alternative implementations of a1_logistic's exercises, graded by the project's tests and used
# to build the demo class. Instructor material: never copied to assignments/.

# %% bce: torch_where [correct]
def bce(yhat, y):
    eps = torch.finfo(yhat.dtype).eps
    p = yhat.clamp(eps, 1 - eps)
    return torch.where(y > 0.5, -torch.log(p), -torch.log1p(-p)).mean()

# %% bce: float64_inside [correct]
def bce(yhat, y):
    p = yhat.double().clamp(1e-12, 1 - 1e-12)
    t = y.double()
    loss = -(t * p.log() + (1 - t) * (1 - p).log()).sum() / yhat.numel()
    return loss.to(yhat.dtype)

# %% bce: split_means_xlogy [correct]
def bce(yhat, y):
    eps = torch.finfo(yhat.dtype).eps
    p = torch.clamp(yhat, min=eps, max=1 - eps)
    positive = torch.xlogy(y, p).mean()
    negative = torch.xlogy(1 - y, 1 - p).mean()
    return -(negative + positive)

# %% bce: sum_instead_of_mean [wrong: bce_matches_bceloss, bce_2d_float64_mean_over_all]
def bce(yhat, y):
    eps = torch.finfo(yhat.dtype).eps
    p = yhat.clamp(eps, 1 - eps)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum()

# %% bce: missing_minus_sign [wrong: bce_matches_bceloss, bce_backpropagates]
def bce(yhat, y):
    eps = torch.finfo(yhat.dtype).eps
    p = yhat.clamp(eps, 1 - eps)
    return (y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()

# %% bce: labels_swapped [wrong: bce_matches_bceloss]
def bce(yhat, y):
    eps = torch.finfo(yhat.dtype).eps
    p = yhat.clamp(eps, 1 - eps)
    return -(y * torch.log(1 - p) + (1 - y) * torch.log(p)).mean()

# %% bce: no_clamp [wrong: bce_finite_at_exact_zero_and_one]
def bce(yhat, y):
    return -(y * torch.log(yhat) + (1 - y) * torch.log(1 - yhat)).mean()

# %% bce: builtin_bce [wrong: bce_is_your_own]
def bce(yhat, y):
    return nn.functional.binary_cross_entropy(yhat, y)

# %% bce: item_breaks_graph [wrong: bce_returns_0dim_tensor, bce_backpropagates]
def bce(yhat, y):
    eps = torch.finfo(yhat.dtype).eps
    p = yhat.clamp(eps, 1 - eps)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean().item()

# %% bce: mean_over_first_dim [wrong: bce_returns_0dim_tensor, bce_2d_float64_mean_over_all]
def bce(yhat, y):
    eps = torch.finfo(yhat.dtype).eps
    p = yhat.clamp(eps, 1 - eps)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean(dim=0)
