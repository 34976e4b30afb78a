# Alternative implementations of a2_softmax's exercises, graded by the project's tests and used
# to build the demo class. Instructor material: never copied to assignments/.

# %% softmax: exp_minus_logsumexp [correct]
def softmax(z, dim=-1):
    return torch.exp(z - torch.logsumexp(z, dim=dim, keepdim=True))

# %% softmax: float64_inside [correct]
def softmax(z, dim=-1):
    x = z.double()
    x = x - x.max(dim=dim, keepdim=True).values
    e = x.exp()
    return (e / e.sum(dim=dim, keepdim=True)).to(z.dtype)

# %% softmax: unsqueeze_instead_of_keepdim [correct]
def softmax(z, dim=-1):
    dim = dim % z.dim()
    m = torch.amax(z, dim=dim).unsqueeze(dim)
    e = torch.exp(z - m)
    return e * (1.0 / torch.sum(e, dim=dim)).unsqueeze(dim)

# %% softmax: movedim_to_last [correct]
def softmax(z, dim=-1):
    x = torch.movedim(z, dim, -1)
    rows = x.reshape(-1, x.shape[-1])
    e = torch.exp(rows - rows.max(dim=1, keepdim=True)[0])
    out = (e / e.sum(dim=1, keepdim=True)).reshape(x.shape)
    return torch.movedim(out, -1, dim)

# %% softmax: no_max_shift [wrong: softmax_large_logits, softmax_rows_of_different_scale, softmax_float64_extremes]
def softmax(z, dim=-1):
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)

# %% softmax: seed_notebook_version [wrong: softmax_large_logits, softmax_dim0, softmax_middle_dim_of_3d, softmax_float64_extremes]
def softmax(z, dim=-1):
    return z.exp() / z.exp().sum(-1).unsqueeze(-1)

# %% softmax: global_max [wrong: softmax_large_logits, softmax_rows_of_different_scale]
def softmax(z, dim=-1):
    e = torch.exp(z - z.max())
    return e / e.sum(dim=dim, keepdim=True)

# %% softmax: sum_over_dim_1 [wrong: softmax_1d, softmax_dim0, softmax_float64_extremes]
def softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=1, keepdim=True)

# %% softmax: ignores_dim [wrong: softmax_dim0, softmax_middle_dim_of_3d, softmax_float64_extremes]
def softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)

# %% softmax: sum_without_keepdim [wrong: softmax_matches_reference, softmax_large_logits]
def softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim)

# %% softmax: builtin_softmax [wrong: softmax_is_your_own, softmax_matches_reference, softmax_dim0, softmax_float64_extremes]
def softmax(z, dim=-1):
    return torch.softmax(z, dim=dim)

# %% softmax: exp_of_builtin_log_softmax [wrong: softmax_is_your_own, softmax_1d]
def softmax(z, dim=-1):
    return F.log_softmax(z, dim=dim).exp()

# %% softmax: always_float32 [wrong: softmax_keeps_dtype_and_device]
def softmax(z, dim=-1):
    x = z.float()
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)

# %% softmax_backward: einsum_jacobian_after_movedim [correct]
def softmax_backward(q, grad_q, dim=-1):
    qm = torch.movedim(q, dim, -1)
    gm = torch.movedim(grad_q, dim, -1)
    jacobian = torch.diag_embed(qm) - qm.unsqueeze(-1) * qm.unsqueeze(-2)   # [..., K, K]
    dz = torch.einsum("...ij,...i->...j", jacobian, gm)
    return torch.movedim(dz, -1, dim)

# %% softmax_backward: float64_inside [correct]
def softmax_backward(q, grad_q, dim=-1):
    p, g = q.double(), grad_q.double()
    dz = p * g - p * (p * g).sum(dim=dim, keepdim=True)
    return dz.to(q.dtype)

# %% softmax_backward: unsqueeze_sum [correct]
def softmax_backward(q, grad_q, dim=-1):
    d = dim if dim >= 0 else q.dim() + dim
    inner = torch.sum(q * grad_q, dim=d).unsqueeze(d)
    return q * grad_q - q * inner

# %% softmax_backward: batched_matmul_rows [correct]
def softmax_backward(q, grad_q, dim=-1):
    qm = q.movedim(dim, -1)
    shape = qm.shape
    rows = qm.reshape(-1, shape[-1])
    grads = grad_q.movedim(dim, -1).reshape(-1, shape[-1])
    jacobian = torch.diag_embed(rows) - rows[:, :, None] @ rows[:, None, :]
    dz = (jacobian @ grads[:, :, None]).squeeze(-1)
    return dz.reshape(shape).movedim(-1, dim)

# %% softmax_backward: diagonal_only [wrong: softmax_backward_matches_reference, softmax_backward_1d, softmax_backward_constant_grad_is_zero, softmax_backward_float64]
def softmax_backward(q, grad_q, dim=-1):
    return q * (1 - q) * grad_q

# %% softmax_backward: grad_times_q [wrong: softmax_backward_matches_reference, softmax_backward_1d, softmax_backward_constant_grad_is_zero]
def softmax_backward(q, grad_q, dim=-1):
    return grad_q * q

# %% softmax_backward: sum_over_last_dim [wrong: softmax_backward_dim0, softmax_backward_middle_dim_of_3d, softmax_backward_shapes_and_dims]
def softmax_backward(q, grad_q, dim=-1):
    return q * (grad_q - (grad_q * q).sum(dim=-1, keepdim=True))

# %% softmax_backward: sum_over_everything [wrong: softmax_backward_matches_reference, softmax_backward_dim0, softmax_backward_constant_grad_is_zero]
def softmax_backward(q, grad_q, dim=-1):
    return q * (grad_q - (grad_q * q).sum())

# %% softmax_backward: sign_flipped [wrong: softmax_backward_matches_reference, softmax_backward_1d, softmax_backward_float64]
def softmax_backward(q, grad_q, dim=-1):
    return q * ((grad_q * q).sum(dim=dim, keepdim=True) - grad_q)

# %% softmax_backward: uses_autograd [wrong: softmax_backward_no_autograd, softmax_backward_matches_reference, softmax_backward_dim0, softmax_backward_float64]
def softmax_backward(q, grad_q, dim=-1):
    z = torch.log(q).detach().requires_grad_(True)
    with torch.enable_grad():
        out = torch.softmax(z, dim=dim)
        out.backward(grad_q)
    return z.grad

# %% softmax_backward: uses_torch_func_vjp [wrong: softmax_backward_no_autograd]
def softmax_backward(q, grad_q, dim=-1):
    _, pullback = torch.func.vjp(lambda z: torch.softmax(z, dim=dim), torch.log(q))
    return pullback(grad_q)[0]

# %% softmax_backward: drops_float64 [wrong: softmax_backward_keeps_dtype_and_device]
def softmax_backward(q, grad_q, dim=-1):
    p, g = q.float(), grad_q.float()
    return p * (g - (g * p).sum(dim=dim, keepdim=True))
