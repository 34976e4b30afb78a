# Alternative implementations of a7_activations's exercises, graded by the project's tests and
# used to build the demo class. Instructor material: never copied to assignments/.

# %% sigmoid: plain_formula_inf_is_harmless [correct]
def sigmoid(z):
    return 1 / (1 + torch.exp(-z))          # exp(1000) = inf, and 1 / inf = 0: right in torch

# %% sigmoid: where_with_a_nan_branch_not_picked [correct]
def sigmoid(z):
    return torch.where(z >= 0, 1 / (1 + torch.exp(-z)), torch.exp(z) / (1 + torch.exp(z)))

# %% sigmoid: boolean_masks_float64_inside [correct]
def sigmoid(z):
    x = z.double()
    out = torch.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + torch.exp(-x[pos]))
    e = torch.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out.to(z.dtype)

# %% sigmoid: clamp_then_plain_formula [correct]
def sigmoid(z):
    return torch.reciprocal(1 + torch.exp(-torch.clamp(z, -80, 80)))

# %% sigmoid: exp_over_one_plus_exp [wrong: sigmoid_large_inputs, sigmoid_float64_extremes]
def sigmoid(z):
    e = torch.exp(z)
    return e / (1 + e)

# %% sigmoid: builtin [wrong: sigmoid_matches_reference, sigmoid_large_inputs, sigmoid_any_shape, sigmoid_is_your_own]
def sigmoid(z):
    return torch.sigmoid(z)

# %% sigmoid: tensor_method [wrong: sigmoid_matches_reference, sigmoid_is_your_own]
def sigmoid(z):
    return z.sigmoid()

# %% sigmoid: exp_of_minus_softplus [wrong: sigmoid_matches_reference, sigmoid_is_your_own]
def sigmoid(z):
    return torch.exp(-F.softplus(-z))

# %% sigmoid: sign_slip [wrong: sigmoid_matches_reference, sigmoid_large_inputs, sigmoid_any_shape, sigmoid_float64_extremes]
def sigmoid(z):
    return 1 / (1 + torch.exp(z))

# %% sigmoid: math_exp_per_element [wrong: sigmoid_large_inputs, sigmoid_float64_extremes]
def sigmoid(z):
    import math
    values = [1 / (1 + math.exp(-v)) for v in z.flatten().tolist()]
    return torch.tensor(values, dtype=z.dtype, device=z.device).reshape(z.shape)

# %% sigmoid: always_float32 [wrong: sigmoid_keeps_dtype_and_device]
def sigmoid(z):
    e = torch.exp(-z.float().abs())
    return torch.where(z >= 0, 1 / (1 + e), e / (1 + e))

# %% tanh: expm1_and_sign [correct]
def tanh(z):
    m = torch.expm1(-2 * z.abs())
    return torch.sign(z) * (-m) / (2 + m)

# %% tanh: twice_own_sigmoid_of_2z_minus_1 [correct]
def tanh(z):
    e = torch.exp(-2 * z.abs())
    s = torch.where(z >= 0, 1 / (1 + e), e / (1 + e))   # sigmoid(2z)
    return 2 * s - 1

# %% tanh: calls_the_sigmoid_cell [correct]
def tanh(z):
    return 2 * sigmoid(2 * z) - 1

# %% tanh: where_float64_inside [correct]
def tanh(z):
    x = z.double()
    e = torch.exp(-2 * x.abs())
    t = (1 - e) / (1 + e)
    return torch.where(x < 0, -t, t).to(z.dtype)

# %% tanh: clamp_then_textbook [correct]
def tanh(z):
    x = torch.clamp(z, -20, 20)
    return (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x))

# %% tanh: textbook_formula [wrong: tanh_large_inputs, tanh_float64_extremes]
def tanh(z):
    return (torch.exp(z) - torch.exp(-z)) / (torch.exp(z) + torch.exp(-z))

# %% tanh: one_sided_exp [wrong: tanh_large_inputs, tanh_float64_extremes]
def tanh(z):
    e = torch.exp(-2 * z)
    return (1 - e) / (1 + e)

# %% tanh: sinh_over_cosh [wrong: tanh_large_inputs, tanh_float64_extremes]
def tanh(z):
    return torch.sinh(z) / torch.cosh(z)

# %% tanh: seed_notebook_2_sigmoid_minus_1 [wrong: tanh_matches_reference, tanh_large_inputs, tanh_any_shape, tanh_float64_extremes]
def tanh(z):
    e = torch.exp(-z.abs())
    s = torch.where(z >= 0, 1 / (1 + e), e / (1 + e))   # sigmoid(z), not sigmoid(2z)
    return 2 * s - 1

# %% tanh: builtin [wrong: tanh_matches_reference, tanh_large_inputs, tanh_any_shape, tanh_float64_extremes, tanh_is_your_own]
def tanh(z):
    return torch.tanh(z)

# %% tanh: through_builtin_sigmoid [wrong: tanh_matches_reference, tanh_is_your_own]
def tanh(z):
    return 2 * torch.sigmoid(2 * z) - 1

# %% tanh: always_float32 [wrong: tanh_keeps_dtype_and_device]
def tanh(z):
    m = torch.expm1(-2 * z.float().abs())
    return torch.where(z >= 0, -m / (2 + m), m / (2 + m))

# %% relu: where_zeros_like [correct]
def relu(z):
    return torch.where(z > 0, z, torch.zeros_like(z))

# %% relu: times_mask [correct]
def relu(z):
    return z * (z > 0)

# %% relu: maximum_with_zeros [correct]
def relu(z):
    return torch.maximum(z, torch.zeros_like(z))

# %% relu: half_of_z_plus_abs [correct]
def relu(z):
    return (z + z.abs()) / 2

# %% relu: clone_then_masked_assignment [correct]
def relu(z):
    out = z.clone()
    out[out < 0] = 0
    return out

# %% relu: masked_assignment_in_place [wrong: relu_leaves_z_unchanged]
def relu(z):
    z[z < 0] = 0
    return z

# %% relu: clamp_in_place [wrong: relu_leaves_z_unchanged]
def relu(z):
    return z.clamp_(min=0)

# %% relu: torch_max_along_dim_0 [wrong: relu_matches_reference, relu_any_shape]
def relu(z):
    return torch.max(z, 0)

# %% relu: clamp_max_instead_of_min [wrong: relu_matches_reference, relu_any_shape]
def relu(z):
    return torch.clamp(z, max=0)

# %% relu: step_function [wrong: relu_matches_reference, relu_any_shape]
def relu(z):
    return (z > 0).to(z.dtype)

# %% relu: builtin_functional [wrong: relu_matches_reference, relu_any_shape, relu_is_your_own]
def relu(z):
    return F.relu(z)

# %% relu: builtin_module [wrong: relu_matches_reference, relu_is_your_own]
def relu(z):
    return nn.ReLU()(z)

# %% relu: always_float32 [wrong: relu_keeps_dtype_and_device]
def relu(z):
    return torch.clamp(z.float(), min=0)

# %% sigmoid_grad: s_minus_s_squared [correct]
def sigmoid_grad(s):
    return s - s ** 2

# %% sigmoid_grad: log_domain [correct]
def sigmoid_grad(s):
    return torch.exp(torch.log(s) + torch.log1p(-s))

# %% sigmoid_grad: centred_square_float64_inside [correct]
def sigmoid_grad(s):
    x = s.double()
    return (0.25 - (x - 0.5) ** 2).to(s.dtype)

# %% sigmoid_grad: sigmoid_applied_again [wrong: sigmoid_grad_matches_reference, sigmoid_grad_saturated_float64_and_shapes]
def sigmoid_grad(s):
    e = torch.exp(-s)
    return 1 / (1 + e) * (1 - 1 / (1 + e))

# %% sigmoid_grad: textbook_formula_at_s [wrong: sigmoid_grad_matches_reference, sigmoid_grad_saturated_float64_and_shapes]
def sigmoid_grad(s):
    return torch.exp(-s) / (1 + torch.exp(-s)) ** 2

# %% sigmoid_grad: one_minus_s_only [wrong: sigmoid_grad_matches_reference, sigmoid_grad_saturated_float64_and_shapes]
def sigmoid_grad(s):
    return 1 - s

# %% sigmoid_grad: autograd_through_logit [wrong: sigmoid_grad_matches_reference, sigmoid_grad_no_autograd]
def sigmoid_grad(s):
    z = torch.log(s / (1 - s)).detach().requires_grad_(True)
    torch.sigmoid(z).sum().backward()
    return z.grad

# %% sigmoid_grad: always_float32 [wrong: sigmoid_grad_keeps_dtype_and_device]
def sigmoid_grad(s):
    return (s * (1 - s)).float()

# %% tanh_grad: one_minus_h_times_one_plus_h [correct]
def tanh_grad(h):
    return (1 - h) * (1 + h)

# %% tanh_grad: square_method_float64_inside [correct]
def tanh_grad(h):
    return (1 - h.double().square()).to(h.dtype)

# %% tanh_grad: pow_then_subtract [correct]
def tanh_grad(h):
    return -(torch.pow(h, 2) - 1)

# %% tanh_grad: seed_notebook_misprint [wrong: tanh_grad_matches_reference, tanh_grad_saturated_float64_and_shapes]
def tanh_grad(h):
    return (1 - h) ** 2

# %% tanh_grad: tanh_applied_again [wrong: tanh_grad_matches_reference, tanh_grad_saturated_float64_and_shapes]
def tanh_grad(h):
    e = torch.exp(-2 * h.abs())
    t = torch.where(h >= 0, (1 - e) / (1 + e), (e - 1) / (1 + e))
    return 1 - t ** 2

# %% tanh_grad: sech_squared_of_h [wrong: tanh_grad_matches_reference, tanh_grad_saturated_float64_and_shapes]
def tanh_grad(h):
    return 1 / torch.cosh(h) ** 2

# %% tanh_grad: one_minus_h [wrong: tanh_grad_matches_reference, tanh_grad_saturated_float64_and_shapes]
def tanh_grad(h):
    return 1 - h

# %% tanh_grad: autograd_through_atanh [wrong: tanh_grad_matches_reference, tanh_grad_no_autograd]
def tanh_grad(h):
    z = torch.atanh(h).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.tanh(z).sum(), z)
    return grad

# %% tanh_grad: always_float32 [wrong: tanh_grad_keeps_dtype_and_device]
def tanh_grad(h):
    return 1 - h.float() ** 2

# %% relu_grad: where_ones_zeros_like [correct]
def relu_grad(r):
    return torch.where(r > 0, torch.ones_like(r), torch.zeros_like(r))

# %% relu_grad: sign_of_output [correct]
def relu_grad(r):
    return torch.sign(r)

# %% relu_grad: heaviside_at_zero_is_zero [correct]
def relu_grad(r):
    return torch.heaviside(r, torch.zeros_like(r))

# %% relu_grad: mask_type_as [correct]
def relu_grad(r):
    return r.gt(0).type_as(r)

# %% relu_grad: one_at_zero [wrong: relu_grad_matches_reference, relu_grad_float64_and_shapes]
def relu_grad(r):
    return (r >= 0).to(r.dtype)

# %% relu_grad: returns_bool [wrong: relu_grad_keeps_dtype_and_device]
def relu_grad(r):
    return r > 0

# %% relu_grad: where_python_floats [wrong: relu_grad_keeps_dtype_and_device]
def relu_grad(r):
    return torch.where(r > 0, 1.0, 0.0)

# %% relu_grad: relu_applied_again [wrong: relu_grad_matches_reference, relu_grad_float64_and_shapes]
def relu_grad(r):
    return torch.clamp(r, min=0)

# %% relu_grad: autograd_through_relu [wrong: relu_grad_no_autograd]
def relu_grad(r):
    z = r.detach().clone().requires_grad_(True)
    torch.relu(z).sum().backward()
    return z.grad

# %% layer_grad_norms: grads_to_none_modules_linalg [correct]
def layer_grad_norms(model, x, y):
    for p in model.parameters():
        p.grad = None
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return [float(torch.linalg.norm(m.weight.grad)) for m in model.modules() if isinstance(m, nn.Linear)]

# %% layer_grad_norms: children_sqrt_of_squares_float64 [correct]
def layer_grad_norms(model, x, y):
    model.zero_grad(set_to_none=False)
    nn.CrossEntropyLoss()(model(x), y).backward()
    norms = []
    for layer in model.children():
        if isinstance(layer, nn.Linear):
            norms.append(layer.weight.grad.double().pow(2).sum().sqrt().item())
    return norms

# %% layer_grad_norms: indexing_and_autograd_grad [correct]
def layer_grad_norms(model, x, y):
    linears = [model[i] for i in range(len(model)) if isinstance(model[i], nn.Linear)]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [layer.weight for layer in linears])
    return [g.norm().item() for g in grads]

# %% layer_grad_norms: named_parameters_and_optimizer [correct]
def layer_grad_norms(model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y, reduction="mean")
    loss.backward()
    return [torch.sqrt(torch.sum(p.grad ** 2)).item()
            for name, p in model.named_parameters() if name.endswith("weight")]

# %% layer_grad_norms: forgets_zero_grad [wrong: layer_grad_norms_repeated_calls, layer_grad_norms_after_another_backward]
def layer_grad_norms(model, x, y):
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)]

# %% layer_grad_norms: zero_grad_after_not_before [wrong: layer_grad_norms_after_another_backward]
def layer_grad_norms(model, x, y):
    F.cross_entropy(model(x), y).backward()
    norms = [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)]
    model.zero_grad()
    return norms

# %% layer_grad_norms: bias_norms [wrong: layer_grad_norms_matches_reference, layer_grad_norms_repeated_calls, layer_grad_norms_deep_sigmoid_float64, layer_grad_norms_layers_without_bias]
def layer_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.bias.grad.norm().item() for m in model if isinstance(m, nn.Linear)]

# %% layer_grad_norms: output_to_input [wrong: layer_grad_norms_matches_reference, layer_grad_norms_repeated_calls, layer_grad_norms_deep_sigmoid_float64]
def layer_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in reversed(model) if isinstance(m, nn.Linear)]

# %% layer_grad_norms: returns_tensors [wrong: layer_grad_norms_returns_floats]
def layer_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm() for m in model if isinstance(m, nn.Linear)]

# %% layer_grad_norms: nll_loss_on_logits [wrong: layer_grad_norms_matches_reference, layer_grad_norms_repeated_calls, layer_grad_norms_deep_sigmoid_float64]
def layer_grad_norms(model, x, y):
    model.zero_grad()
    F.nll_loss(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)]

# %% layer_grad_norms: summed_loss [wrong: layer_grad_norms_matches_reference, layer_grad_norms_repeated_calls, layer_grad_norms_deep_sigmoid_float64]
def layer_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)]

# %% layer_grad_norms: every_other_parameter [wrong: layer_grad_norms_layers_without_bias]
def layer_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.norm().item() for p in list(model.parameters())[::2]]

# %% layer_grad_norms: mse_on_one_hot [wrong: layer_grad_norms_matches_reference, layer_grad_norms_deep_sigmoid_float64]
def layer_grad_norms(model, x, y):
    model.zero_grad()
    out = model(x)
    F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype)).backward()
    return [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)]
