# Alternative implementations of a3_backprop's exercises, graded by the project's tests and used
# to build the demo class. Instructor material: never copied to assignments/.

# %% two_layer_forward: einsum [correct]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.tanh(torch.einsum("nd,hd->nh", X, W1) + b1)
    q = torch.sigmoid(torch.einsum("nh,h->n", h, w2) + b2)
    return h, q

# %% two_layer_forward: addmm_mv [correct]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.addmm(b1, X, W1.t()).tanh()
    q = torch.sigmoid(torch.mv(h, w2) + b2)
    return h, q

# %% two_layer_forward: linear_and_doubled_sigmoid [correct]
def two_layer_forward(X, W1, b1, w2, b2):
    # tanh(a) = 2 sigmoid(2a) - 1 exactly; F.linear(h, w2[None], b2) is [N, 1].
    h = 2 * torch.sigmoid(2 * F.linear(X, W1, b1)) - 1
    q = torch.sigmoid(F.linear(h, w2.unsqueeze(0), b2)).squeeze(1)
    return h, q

# %% two_layer_forward: float64_inside [correct]
def two_layer_forward(X, W1, b1, w2, b2):
    a = X.double() @ W1.double().T + b1.double()
    h = torch.tanh(a)
    q = 1 / (1 + torch.exp(-(h @ w2.double() + b2.double())))
    return h.to(X.dtype), q.to(X.dtype)

# %% two_layer_forward: loop_over_hidden_units [correct]
def two_layer_forward(X, W1, b1, w2, b2):
    columns = [torch.tanh((X * W1[j]).sum(dim=1) + b1[j]) for j in range(W1.shape[0])]
    h = torch.stack(columns, dim=1)
    z = b2 + sum(h[:, j] * w2[j] for j in range(W1.shape[0]))
    return h, torch.sigmoid(z)

# %% two_layer_forward: seed_two_sigmoid_minus_one [wrong: forward_matches_reference, forward_float64_larger_batch]
def two_layer_forward(X, W1, b1, w2, b2):
    # The course notes' forward pass: 2*sigmoid(a) - 1 is tanh(a/2), not tanh(a).
    h = 2 * torch.sigmoid(X @ W1.T + b1) - 1
    q = torch.sigmoid(h @ w2 + b2)
    return h, q

# %% two_layer_forward: sigmoid_hidden_layer [wrong: forward_matches_reference, forward_float64_larger_batch]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.sigmoid(X @ W1.T + b1)
    q = torch.sigmoid(h @ w2 + b2)
    return h, q

# %% two_layer_forward: no_transpose [wrong: forward_matches_reference, forward_returns_h_and_q_shapes, forward_float64_larger_batch]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.tanh(X @ W1 + b1)
    q = torch.sigmoid(h @ w2 + b2)
    return h, q

# %% two_layer_forward: q_as_column [wrong: forward_returns_h_and_q_shapes, forward_one_sample_one_unit_shapes]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.tanh(X @ W1.T + b1)
    q = torch.sigmoid(h @ w2.reshape(-1, 1) + b2)
    return h, q

# %% two_layer_forward: squeeze_without_dim [wrong: forward_one_sample_one_unit_shapes]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.tanh(X @ W1.T + b1)
    q = torch.sigmoid(h @ w2[:, None] + b2).squeeze()
    return h, q

# %% two_layer_forward: hand_written_tanh_overflows [wrong: forward_saturated_units_stay_finite]
def two_layer_forward(X, W1, b1, w2, b2):
    a = X @ W1.T + b1
    h = (torch.exp(a) - torch.exp(-a)) / (torch.exp(a) + torch.exp(-a))
    q = 1 / (1 + torch.exp(-(h @ w2 + b2)))
    return h, q

# %% two_layer_forward: forgot_hidden_bias [wrong: forward_matches_reference, forward_float64_larger_batch]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.tanh(X @ W1.T)
    q = torch.sigmoid(h @ w2 + b2)
    return h, q

# %% two_layer_forward: returns_q_then_h [wrong: forward_matches_reference, forward_returns_h_and_q_shapes]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.tanh(X @ W1.T + b1)
    q = torch.sigmoid(h @ w2 + b2)
    return q, h

# %% two_layer_forward: float32_buffer [wrong: forward_one_sample_one_unit_shapes]
def two_layer_forward(X, W1, b1, w2, b2):
    h = torch.empty(X.shape[0], W1.shape[0], device=X.device)
    h[:] = torch.tanh(X @ W1.T + b1)
    q = torch.sigmoid(h @ w2.to(h.dtype) + b2.to(h.dtype))
    return h, q

# %% two_layer_backward: einsum [correct]
def two_layer_backward(X, y, h, q, w2):
    dz = (q - y) / X.shape[0]
    da = torch.einsum("n,h->nh", dz, w2) * (1 - h * h)
    dW1 = torch.einsum("nh,nd->hd", da, X)
    db1 = torch.einsum("nh->h", da)
    dw2 = torch.einsum("nh,n->h", h, dz)
    db2 = torch.einsum("n->", dz).unsqueeze(0)
    return dW1, db1, dw2, db2

# %% two_layer_backward: matmul_factored_derivative [correct]
def two_layer_backward(X, y, h, q, w2):
    N = len(y)
    residual = (q - y).unsqueeze(1)                     # [N, 1]
    dw2 = (h * residual).mean(dim=0)
    db2 = residual.mean(dim=0)
    da = (residual @ w2.unsqueeze(0)) * (1 - h) * (1 + h) / N
    return torch.matmul(da.T, X), da.sum(0), dw2, db2

# %% two_layer_backward: float64_inside [correct]
def two_layer_backward(X, y, h, q, w2):
    X64, h64, w64 = X.double(), h.double(), w2.double()
    dz = (q.double() - y.double()) / X.shape[0]
    da = torch.outer(dz, w64) * (1 - h64**2)
    grads = (da.T @ X64, da.sum(0), h64.T @ dz, dz.sum(0, keepdim=True))
    return tuple(g.to(X.dtype) for g in grads)

# %% two_layer_backward: loop_over_hidden_units [correct]
def two_layer_backward(X, y, h, q, w2):
    N, H = h.shape
    dz = (q - y) / N
    rows, biases, weights = [], [], []
    for j in range(H):
        da_j = dz * w2[j] * (1 - h[:, j] ** 2)          # [N]
        rows.append((da_j[:, None] * X).sum(dim=0))     # [D]
        biases.append(da_j.sum())
        weights.append((dz * h[:, j]).sum())
    return torch.stack(rows), torch.stack(biases), torch.stack(weights), dz.sum().reshape(1)

# %% two_layer_backward: loop_over_samples_zeros_like [correct]
def two_layer_backward(X, y, h, q, w2):
    N, H = h.shape
    dW1 = torch.zeros(H, X.shape[1], dtype=X.dtype, device=X.device)
    db1 = torch.zeros_like(w2)
    dw2 = torch.zeros_like(w2)
    db2 = torch.zeros(1, dtype=X.dtype, device=X.device)
    for n in range(N):
        dz = q[n] - y[n]
        da = dz * w2 * (1 - h[n] ** 2)
        dW1 += torch.outer(da, X[n])
        db1 += da
        dw2 += dz * h[n]
        db2 += dz
    return dW1 / N, db1 / N, dw2 / N, db2 / N

# %% two_layer_backward: seed_one_minus_h_squared [wrong: backward_hidden_layer, backward_float64_larger_batch, backward_saturated_units_pass_no_gradient]
def two_layer_backward(X, y, h, q, w2):
    # The course notes' derivative: (1 - h)**2 instead of 1 - h**2.
    dz = (q - y) / X.shape[0]
    da = torch.outer(dz, w2) * (1 - h) ** 2
    return da.T @ X, da.sum(0), h.T @ dz, dz.sum().reshape(1)

# %% two_layer_backward: sum_not_mean [wrong: backward_output_layer, backward_hidden_layer, backward_float64_larger_batch]
def two_layer_backward(X, y, h, q, w2):
    dz = q - y
    da = torch.outer(dz, w2) * (1 - h**2)
    return da.T @ X, da.sum(0), h.T @ dz, dz.sum().reshape(1)

# %% two_layer_backward: db2_zero_dim [wrong: backward_returns_parameter_shapes]
def two_layer_backward(X, y, h, q, w2):
    dz = (q - y) / X.shape[0]
    da = torch.outer(dz, w2) * (1 - h**2)
    return da.T @ X, da.sum(0), h.T @ dz, dz.sum()

# %% two_layer_backward: dW1_transposed [wrong: backward_hidden_layer, backward_returns_parameter_shapes, backward_float64_larger_batch]
def two_layer_backward(X, y, h, q, w2):
    dz = (q - y) / X.shape[0]
    da = torch.outer(dz, w2) * (1 - h**2)
    return X.T @ da, da.sum(0), h.T @ dz, dz.sum().reshape(1)

# %% two_layer_backward: forgot_tanh_derivative [wrong: backward_hidden_layer, backward_float64_larger_batch, backward_saturated_units_pass_no_gradient]
def two_layer_backward(X, y, h, q, w2):
    dz = (q - y) / X.shape[0]
    da = torch.outer(dz, w2)
    return da.T @ X, da.sum(0), h.T @ dz, dz.sum().reshape(1)

# %% two_layer_backward: sigmoid_derivative [wrong: backward_hidden_layer, backward_float64_larger_batch]
def two_layer_backward(X, y, h, q, w2):
    dz = (q - y) / X.shape[0]
    da = torch.outer(dz, w2) * h * (1 - h)
    return da.T @ X, da.sum(0), h.T @ dz, dz.sum().reshape(1)

# %% two_layer_backward: seed_return_order [wrong: backward_output_layer, backward_hidden_layer, backward_returns_parameter_shapes]
def two_layer_backward(X, y, h, q, w2):
    # The course notes return (w2_grad, b2_grad, W1_grad, b1_grad).
    dz = (q - y) / X.shape[0]
    da = torch.outer(dz, w2) * (1 - h**2)
    return h.T @ dz, dz.sum().reshape(1), da.T @ X, da.sum(0)

# %% two_layer_backward: autograd_through_tanh [wrong: backward_is_your_own]
def two_layer_backward(X, y, h, q, w2):
    # Recover the pre-activations and let autograd do the tanh and output layer.
    a = torch.atanh(h.clamp(-1 + 1e-6, 1 - 1e-6)).detach().requires_grad_(True)
    w = w2.detach().clone().requires_grad_(True)
    b2 = (torch.logit(q) - h @ w2).mean().detach()
    qq = torch.sigmoid(torch.tanh(a) @ w + b2)
    F.binary_cross_entropy(qq, y).backward()
    return a.grad.T @ X, a.grad.sum(0), w.grad, ((q - y).mean()).reshape(1)

# %% two_layer_backward: float32_accumulators [wrong: backward_keeps_float64]
def two_layer_backward(X, y, h, q, w2):
    N, H = h.shape
    dW1 = torch.zeros(H, X.shape[1], device=X.device)
    db1 = torch.zeros(H, device=X.device)
    dw2 = torch.zeros(H, device=X.device)
    db2 = torch.zeros(1, device=X.device)
    dz = (q - y) / N
    da = torch.outer(dz, w2) * (1 - h**2)
    dW1 += da.T @ X
    db1 += da.sum(0)
    dw2 += h.T @ dz
    db2 += dz.sum()
    return dW1, db1, dw2, db2

# %% two_layer_backward: squeezes_residual [wrong: backward_single_sample]
def two_layer_backward(X, y, h, q, w2):
    dz = ((q - y) / len(y)).squeeze()
    da = dz[..., None] * w2 * (1 - h**2)
    return da.T @ X, da.sum(0), h.T @ dz, dz.sum().reshape(1)
