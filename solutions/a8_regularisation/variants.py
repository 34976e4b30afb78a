# Alternative implementations of a8_regularisation's exercises, graded by the project's tests and
# used to build the demo class. Instructor material: never copied to assignments/.

# %% dropout: rand_below_keep_probability [correct]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = torch.rand(x.shape, generator=generator, device=x.device) < 1 - p
    return x * mask / (1 - p)

# %% dropout: bernoulli_of_full_like [correct]
def dropout(x, p, training, generator=None):
    if not training:
        return x
    if p >= 1:
        return x * 0.0
    mask = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
    return mask * x / (1 - p)

# %% dropout: bernoulli_in_place_then_where [correct]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x.clone()
    keep = torch.empty_like(x).bernoulli_(1 - p, generator=generator).bool()
    if p == 1:
        return torch.zeros_like(x)
    return torch.where(keep, x / (1 - p), torch.zeros_like(x))

# %% dropout: float64_uniforms_scale_first [correct]
def dropout(x, p, training, generator=None):
    if not training:
        return x
    u = torch.rand(x.size(), generator=generator, dtype=torch.float64, device=x.device)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    mask = (u >= p).to(x.dtype) * scale
    return x * mask

# %% dropout: where_with_a_scalar_zero [correct]
def dropout(x, p, training, generator=None):
    if training and p > 0:
        if p == 1:
            return torch.zeros_like(x)
        r = torch.rand(*x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.where(r >= p, x * (1 / (1 - p)), 0.0)
    return x

# %% dropout: no_scaling [wrong: dropout_kept_values_are_scaled, dropout_drops_a_fraction_p, dropout_gradient, dropout_preserves_the_mean, dropout_other_rates_and_float64]
def dropout(x, p, training, generator=None):
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p)

# %% dropout: divides_by_p [wrong: dropout_kept_values_are_scaled, dropout_gradient, dropout_preserves_the_mean]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p) / p

# %% dropout: p_is_the_keep_probability [wrong: dropout_drops_a_fraction_p, dropout_preserves_the_mean, dropout_other_rates_and_float64]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator, device=x.device) < p
    return x * keep / (1 - p)

# %% dropout: drops_in_evaluation_too [wrong: dropout_eval_returns_x]
def dropout(x, p, training, generator=None):
    if p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p) / (1 - p)

# %% dropout: scales_in_evaluation [wrong: dropout_eval_returns_x, dropout_extreme_rates]
def dropout(x, p, training, generator=None):
    if p == 1:
        return torch.zeros_like(x)
    if not training:
        return x / (1 - p)
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p) / (1 - p)

# %% dropout: ignores_the_generator [wrong: dropout_uses_the_generator]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, device=x.device) >= p) / (1 - p)

# %% dropout: reseeds_the_global_generator [wrong: dropout_uses_the_generator]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    torch.manual_seed(0)
    return x * (torch.rand(x.shape, device=x.device) >= p) / (1 - p)

# %% dropout: new_generator_when_none [wrong: dropout_global_generator]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    if generator is None:
        generator = torch.Generator(device=x.device)
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p) / (1 - p)

# %% dropout: nan_when_p_is_1 [wrong: dropout_extreme_rates]
def dropout(x, p, training, generator=None):
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p) / (1 - p)

# %% dropout: zeros_on_the_cpu_when_p_is_1 [wrong: dropout_keeps_dtype_and_device]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros(x.shape)
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p) / (1 - p)

# %% dropout: changes_x_in_place [wrong: dropout_kept_values_are_scaled, dropout_gradient]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return x.zero_()
    return x.mul_(torch.rand(x.shape, generator=generator, device=x.device) >= p).div_(1 - p)

# %% dropout: mask_detached_from_x [wrong: dropout_gradient]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return (x * keep / (1 - p)).detach()

# %% dropout: calls_functional_dropout [wrong: dropout_own_code, dropout_uses_the_generator]
def dropout(x, p, training, generator=None):
    return torch.nn.functional.dropout(x, p, training)

# %% dropout: mask_on_the_cpu [wrong on cuda: dropout_kept_values_are_scaled, dropout_drops_a_fraction_p, dropout_uses_the_generator]
def dropout(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep.to(x.device) / (1 - p)

# %% init_weights: torch_nn_init [correct]
def init_weights(layer, scheme):
    initialisers = {
        "xavier_uniform": nn.init.xavier_uniform_,
        "xavier_normal": nn.init.xavier_normal_,
        "he_uniform": lambda w: nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"),
        "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    }
    if scheme not in initialisers:
        raise ValueError(f"no scheme called {scheme}")
    initialisers[scheme](layer.weight)
    nn.init.zeros_(layer.bias)
    return layer

# %% init_weights: kaiming_defaults_and_gain [correct]
def init_weights(layer, scheme):
    w = layer.weight
    if scheme == "he_uniform":
        nn.init.kaiming_uniform_(w)              # a=0, fan_in, leaky_relu(0) = relu's gain
    elif scheme == "he_normal":
        nn.init.kaiming_normal_(w)
    elif scheme == "xavier_uniform":
        nn.init.xavier_uniform_(w, gain=1.0)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("linear"))
    else:
        raise ValueError(scheme)
    nn.init.constant_(layer.bias, 0.0)
    return layer

# %% init_weights: by_hand_with_copy [correct]
def init_weights(layer, scheme):
    fan_in, fan_out = layer.in_features, layer.out_features
    kinds = {"xavier": 2 / (fan_in + fan_out), "he": 2 / fan_in}
    family, _, shape = scheme.partition("_")
    if family not in kinds or shape not in ("uniform", "normal"):
        raise ValueError(f"unknown scheme {scheme}")
    std = kinds[family] ** 0.5
    w = layer.weight
    if shape == "uniform":
        new = (torch.rand(w.shape, dtype=w.dtype, device=w.device) * 2 - 1) * (3 ** 0.5 * std)
    else:
        new = torch.randn(w.shape, dtype=w.dtype, device=w.device) * std
    with torch.no_grad():
        w.copy_(new)
        layer.bias.fill_(0)
    return layer

# %% init_weights: data_attribute_and_bound_formula [correct]
def init_weights(layer, scheme):
    n_out, n_in = layer.weight.shape
    if scheme == "xavier_uniform":
        a = math.sqrt(6 / (n_in + n_out))
        layer.weight.data.uniform_(-a, a)
    elif scheme == "he_uniform":
        a = math.sqrt(6 / n_in)
        layer.weight.data.uniform_(-a, a)
    elif scheme == "xavier_normal":
        layer.weight.data.normal_(mean=0, std=math.sqrt(2 / (n_in + n_out)))
    elif scheme == "he_normal":
        layer.weight.data.normal_(std=math.sqrt(2 / n_in))
    else:
        raise ValueError("scheme must be xavier_uniform, xavier_normal, he_uniform or he_normal")
    layer.bias.data.zero_()
    return layer

# %% init_weights: he_fans_swapped [wrong: init_weights_mean_and_std, init_weights_fan_out_larger]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme.startswith("xavier"):
        var = 2 / (fan_in + fan_out)
    elif scheme.startswith("he"):
        var = 2 / fan_out
    else:
        raise ValueError(scheme)
    with torch.no_grad():
        if scheme.endswith("uniform"):
            layer.weight.uniform_(-math.sqrt(3 * var), math.sqrt(3 * var))
        else:
            layer.weight.normal_(0, math.sqrt(var))
        layer.bias.zero_()
    return layer

# %% init_weights: kaiming_fan_out_mode [wrong: init_weights_mean_and_std, init_weights_fan_out_larger]
def init_weights(layer, scheme):
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(layer.weight)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(layer.weight)
    elif scheme == "he_uniform":
        nn.init.kaiming_uniform_(layer.weight, mode="fan_out", nonlinearity="relu")
    elif scheme == "he_normal":
        nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    else:
        raise ValueError(scheme)
    nn.init.zeros_(layer.bias)
    return layer

# %% init_weights: variance_used_as_std [wrong: init_weights_mean_and_std, init_weights_distribution_shape, init_weights_fan_out_larger]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme not in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        raise ValueError(scheme)
    std = 2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in
    with torch.no_grad():
        if scheme.endswith("uniform"):
            layer.weight.uniform_(-math.sqrt(3) * std, math.sqrt(3) * std)
        else:
            layer.weight.normal_(0, std)
        layer.bias.zero_()
    return layer

# %% init_weights: uniform_bound_sqrt_var [wrong: init_weights_mean_and_std, init_weights_distribution_shape, init_weights_fan_out_larger]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme not in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        raise ValueError(scheme)
    var = 2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in
    with torch.no_grad():
        if scheme.endswith("uniform"):
            layer.weight.uniform_(-math.sqrt(var), math.sqrt(var))
        else:
            layer.weight.normal_(0, math.sqrt(var))
        layer.bias.zero_()
    return layer

# %% init_weights: forgets_the_bias [wrong: init_weights_zero_bias]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme not in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        raise ValueError(scheme)
    var = 2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in
    with torch.no_grad():
        if scheme.endswith("uniform"):
            layer.weight.uniform_(-math.sqrt(3 * var), math.sqrt(3 * var))
        else:
            layer.weight.normal_(0, math.sqrt(var))
    return layer

# %% init_weights: uniform_from_zero [wrong: init_weights_mean_and_std, init_weights_fan_out_larger]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme not in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        raise ValueError(scheme)
    var = 2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in
    with torch.no_grad():
        if scheme.endswith("uniform"):
            layer.weight.copy_(torch.rand_like(layer.weight) * math.sqrt(3 * var))
        else:
            layer.weight.normal_(0, math.sqrt(var))
        layer.bias.zero_()
    return layer

# %% init_weights: normal_for_every_scheme [wrong: init_weights_distribution_shape, init_weights_fan_out_larger]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme not in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        raise ValueError(scheme)
    var = 2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in
    with torch.no_grad():
        layer.weight.normal_(0, math.sqrt(var))
        layer.bias.zero_()
    return layer

# %% init_weights: xavier_variance_for_he [wrong: init_weights_mean_and_std, init_weights_fan_out_larger]
def init_weights(layer, scheme):
    if scheme in ("xavier_uniform", "he_uniform"):
        nn.init.xavier_uniform_(layer.weight)
    elif scheme in ("xavier_normal", "he_normal"):
        nn.init.xavier_normal_(layer.weight)
    else:
        raise ValueError(scheme)
    nn.init.zeros_(layer.bias)
    return layer

# %% init_weights: new_parameter [wrong: init_weights_in_place_returns_the_layer]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme not in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        raise ValueError(scheme)
    var = 2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in
    w = torch.empty_like(layer.weight)
    if scheme.endswith("uniform"):
        w.uniform_(-math.sqrt(3 * var), math.sqrt(3 * var))
    else:
        w.normal_(0, math.sqrt(var))
    layer.weight = nn.Parameter(w)
    layer.bias = nn.Parameter(torch.zeros_like(layer.bias))
    return layer

# %% init_weights: returns_nothing [wrong: init_weights_in_place_returns_the_layer]
def init_weights(layer, scheme):
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(layer.weight)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(layer.weight)
    elif scheme == "he_uniform":
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    elif scheme == "he_normal":
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    else:
        raise ValueError(scheme)
    nn.init.zeros_(layer.bias)

# %% init_weights: unknown_scheme_falls_back_to_he [wrong: init_weights_unknown_scheme]
def init_weights(layer, scheme):
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(layer.weight)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(layer.weight)
    elif scheme == "he_uniform":
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    else:
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    nn.init.zeros_(layer.bias)
    return layer

# %% init_weights: data_replaced_by_a_float32_cpu_tensor [wrong: init_weights_keeps_dtype_and_device]
def init_weights(layer, scheme):
    fan_out, fan_in = layer.weight.shape
    if scheme not in ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal"):
        raise ValueError(scheme)
    var = 2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in
    if scheme.endswith("uniform"):
        layer.weight.data = (torch.rand(fan_out, fan_in) * 2 - 1) * math.sqrt(3 * var)
    else:
        layer.weight.data = torch.randn(fan_out, fan_in) * math.sqrt(var)
    layer.bias.data.zero_()
    return layer

# %% momentum_step: in_place_updates [correct]
def momentum_step(param, grad, velocity, lr, momentum):
    velocity.mul_(momentum).add_(grad)
    param.sub_(lr * velocity)
    return param, velocity

# %% momentum_step: add_with_alpha [correct]
def momentum_step(param, grad, velocity, lr, momentum):
    v = grad.add(velocity, alpha=momentum)
    return torch.add(param, v, alpha=-lr), v

# %% momentum_step: float64_inside [correct]
def momentum_step(param, grad, velocity, lr, momentum):
    v = momentum * velocity.double() + grad.double()
    p = param.double() - lr * v
    return p.to(param.dtype), v.to(velocity.dtype)

# %% momentum_step: torch_optim_sgd [correct]
def momentum_step(param, grad, velocity, lr, momentum):
    p = param.clone().requires_grad_(True)
    opt = torch.optim.SGD([p], lr=lr, momentum=momentum)
    p.grad = grad.clone()
    if momentum != 0:
        opt.state[p]["momentum_buffer"] = velocity.clone()
    opt.step()
    new_velocity = opt.state[p]["momentum_buffer"] if momentum != 0 else grad.clone()
    return p.detach(), new_velocity

# %% momentum_step: learning_rate_inside_the_velocity [wrong: momentum_step_one_step, momentum_step_tracks_sgd, momentum_step_lr_schedule_and_matrix]
# v <- m v + lr g; p <- p - v moves the parameters exactly as torch does while lr is constant, but
# its velocity is lr times torch's momentum buffer, and after a change of lr (a scheduler) the
# parameters part too: torch applies the new lr to the whole velocity.
def momentum_step(param, grad, velocity, lr, momentum):
    v = momentum * velocity + lr * grad
    return param - v, v

# %% momentum_step: sign_slip_in_the_velocity [wrong: momentum_step_one_step, momentum_step_tracks_sgd, momentum_step_lr_schedule_and_matrix]
def momentum_step(param, grad, velocity, lr, momentum):
    v = momentum * velocity - grad
    return param - lr * v, v

# %% momentum_step: steps_with_the_old_velocity [wrong: momentum_step_one_step, momentum_step_tracks_sgd, momentum_step_without_momentum]
def momentum_step(param, grad, velocity, lr, momentum):
    new_param = param - lr * velocity
    return new_param, momentum * velocity + grad

# %% momentum_step: dampening [wrong: momentum_step_one_step, momentum_step_tracks_sgd]
def momentum_step(param, grad, velocity, lr, momentum):
    v = momentum * velocity + (1 - momentum) * grad
    return param - lr * v, v

# %% momentum_step: nesterov [wrong: momentum_step_one_step, momentum_step_tracks_sgd]
def momentum_step(param, grad, velocity, lr, momentum):
    v = momentum * velocity + grad
    return param - lr * (grad + momentum * v), v

# %% momentum_step: forgets_the_velocity [wrong: momentum_step_one_step, momentum_step_tracks_sgd]
def momentum_step(param, grad, velocity, lr, momentum):
    return param - lr * grad, grad

# %% momentum_step: pair_swapped [wrong: momentum_step_one_step, momentum_step_tracks_sgd]
def momentum_step(param, grad, velocity, lr, momentum):
    v = momentum * velocity + grad
    return v, param - lr * v

# %% momentum_step: returns_float64 [wrong: momentum_step_keeps_dtype_and_device]
def momentum_step(param, grad, velocity, lr, momentum):
    v = momentum * velocity.double() + grad.double()
    return param.double() - lr * v, v
