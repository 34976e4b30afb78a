# Alternative implementations of a9_batchnorm's exercise, graded by the project's tests and used
# to build the demo class. Instructor material: never copied to assignments/.

# %% batchnorm_forward: var_mean_and_a_correction_factor [correct]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if not training:
        y = (x - running_mean) / torch.sqrt(running_var + eps) * gamma + beta
        return y, running_mean, running_var
    n = x.shape[0]
    if n == 1:
        raise ValueError("Expected more than 1 value per channel when training")
    var, mean = torch.var_mean(x, dim=0, unbiased=False)
    y = (x - mean) / torch.sqrt(var + eps) * gamma + beta
    new_mean = (1 - momentum) * running_mean + momentum * mean.detach()
    new_var = (1 - momentum) * running_var + momentum * var.detach() * n / (n - 1)
    return y, new_mean, new_var

# %% batchnorm_forward: manual_sums [correct]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    n = x.size(0)
    if training and n < 2:
        raise ValueError(f"a batch of {n} in training")
    if training:
        mean = x.sum(dim=0) / n
        squares = ((x - mean) ** 2).sum(dim=0)
        var = squares / n
        running_mean = running_mean * (1 - momentum) + mean.detach() * momentum
        running_var = running_var * (1 - momentum) + squares.detach() / (n - 1) * momentum
    else:
        mean, var = running_mean, running_var
    return gamma * ((x - mean) / (var + eps) ** 0.5) + beta, running_mean, running_var

# %% batchnorm_forward: float64_inside_cast_back [correct]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    dtype = x.dtype
    xd, gd, bd = x.double(), gamma.double(), beta.double()
    rm, rv = running_mean.double(), running_var.double()
    if training:
        if xd.shape[0] <= 1:
            raise ValueError("need at least two samples per channel in training")
        mean = xd.mean(0)
        var = xd.var(0, unbiased=False)
        rm = (1 - momentum) * rm + momentum * mean.detach()
        rv = (1 - momentum) * rv + momentum * xd.var(0, unbiased=True).detach()
    else:
        mean, var = rm, rv
    y = gd * (xd - mean) / torch.sqrt(var + eps) + bd
    return y.to(dtype), rm.to(running_mean.dtype), rv.to(running_var.dtype)

# %% batchnorm_forward: rsqrt_with_keepdim [correct]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if len(x) < 2:
            raise ValueError("batch norm: more than one sample per channel needed in training")
        mean = x.mean(dim=0, keepdim=True)
        var = x.var(dim=0, keepdim=True, correction=0)
        unbiased = x.var(dim=0, correction=1)
        running_mean = (1 - momentum) * running_mean + momentum * mean.squeeze(0).detach()
        running_var = (1 - momentum) * running_var + momentum * unbiased.detach()
    else:
        mean, var = running_mean.unsqueeze(0), running_var.unsqueeze(0)
    x_hat = (x - mean) * torch.rsqrt(var + eps)
    return torch.addcmul(beta, gamma, x_hat), running_mean, running_var

# %% batchnorm_forward: in_place_running_buffers [correct]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if not training:
        return gamma * (x - running_mean) / (running_var + eps).sqrt() + beta, running_mean, running_var
    if x.shape[0] == 1:
        raise ValueError("Expected more than 1 value per channel when training")
    mean = x.mean(0)
    var = x.var(0, unbiased=False)
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * x.var(0))
    return gamma * (x - mean) / (var + eps).sqrt() + beta, running_mean, running_var

# %% batchnorm_forward: lerp_and_in_place_centring [correct]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    n = x.shape[0]
    if training:
        if n < 2:
            raise ValueError("training needs a batch of 2 or more")
        mean = x.mean(0)
        centred = x.sub_(mean)
        var = centred.pow(2).mean(0)
        new_mean = torch.lerp(running_mean, mean.detach(), momentum)
        new_var = torch.lerp(running_var, var.detach() * (n / (n - 1)), momentum)
        return centred / torch.sqrt(var + eps) * gamma + beta, new_mean, new_var
    return (x - running_mean) / torch.sqrt(running_var + eps) * gamma + beta, running_mean, running_var

# %% batchnorm_forward: eval_as_one_affine_map [correct]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if not training:
        scale = gamma / torch.sqrt(running_var + eps)
        return x * scale + (beta - running_mean * scale), running_mean.clone(), running_var.clone()
    n = x.shape[0]
    if n == 1:
        raise ValueError("Expected more than 1 value per channel when training")
    mean = x.mean(0)
    unbiased = x.var(0)
    var = unbiased * (n - 1) / n
    std = torch.sqrt(var + eps)
    y = (x - mean) / std * gamma + beta
    return y, (1 - momentum) * running_mean + momentum * mean.detach(), (1 - momentum) * running_var + momentum * unbiased.detach()

# %% batchnorm_forward: material_sqrt_of_std [wrong: batchnorm_training_output, batchnorm_running_statistics, batchnorm_evaluation, batchnorm_gradients, batchnorm_train_and_eval_sequence, batchnorm_eps_matters, batchnorm_shapes_and_momenta, batchnorm_evaluation_gradients, batchnorm_batch_of_one]
# the course notes' misprint: (z - mu) / sqrt(sigma + eps) with sigma the standard deviation
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    n = x.shape[0]
    if training:
        if n < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var(0).detach()
    else:
        mean, var = running_mean, running_var
    sigma = var.sqrt()
    return gamma * (x - mean) / torch.sqrt(sigma + eps) + beta, running_mean, running_var

# %% batchnorm_forward: biased_variance_in_the_running_estimate [wrong: batchnorm_running_statistics, batchnorm_train_and_eval_sequence, batchnorm_shapes_and_momenta]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * var.detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: unbiased_variance_to_normalise [wrong: batchnorm_training_output, batchnorm_running_statistics, batchnorm_gradients, batchnorm_train_and_eval_sequence, batchnorm_shapes_and_momenta]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * var.detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: momentum_the_wrong_way_round [wrong: batchnorm_running_statistics, batchnorm_train_and_eval_sequence, batchnorm_shapes_and_momenta]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = momentum * running_mean + (1 - momentum) * mean.detach()
        running_var = momentum * running_var + (1 - momentum) * x.var(0).detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: batch_statistics_in_evaluation [wrong: batchnorm_evaluation, batchnorm_train_and_eval_sequence, batchnorm_eps_matters, batchnorm_evaluation_gradients]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training and x.shape[0] < 2:
        raise ValueError("Expected more than 1 value per channel when training")
    mean, var = x.mean(0), x.var(0, unbiased=False)
    if training:
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var(0).detach()
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: running_statistics_not_updated [wrong: batchnorm_running_statistics, batchnorm_train_and_eval_sequence, batchnorm_shapes_and_momenta]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: eps_forgotten [wrong: batchnorm_eps_matters]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var(0).detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var) + beta, running_mean, running_var

# %% batchnorm_forward: eps_outside_the_square_root [wrong: batchnorm_eps_matters]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var(0).detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / (torch.sqrt(var) + eps) + beta, running_mean, running_var

# %% batchnorm_forward: statistics_over_the_wrong_dim [wrong: batchnorm_training_output, batchnorm_running_statistics, batchnorm_gradients, batchnorm_train_and_eval_sequence, batchnorm_eps_matters, batchnorm_shapes_and_momenta]
# each sample (row) normalised over its channels: layer norm, not batch norm
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var(1, keepdim=True).detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: statistics_of_the_whole_batch [wrong: batchnorm_training_output, batchnorm_running_statistics, batchnorm_gradients, batchnorm_train_and_eval_sequence, batchnorm_eps_matters, batchnorm_shapes_and_momenta]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(), x.var(unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var().detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: standard_deviation_in_the_running_variance [wrong: batchnorm_running_statistics, batchnorm_train_and_eval_sequence, batchnorm_shapes_and_momenta]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.std(0).detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: statistics_detached_from_the_graph [wrong: batchnorm_gradients]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        with torch.no_grad():
            mean, var = x.mean(0), x.var(0, unbiased=False)
            running_mean = (1 - momentum) * running_mean + momentum * mean
            running_var = (1 - momentum) * running_var + momentum * x.var(0)
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: no_error_for_a_batch_of_one [wrong: batchnorm_batch_of_one]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var(0).detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: calls_functional_batch_norm [wrong: batchnorm_own_code]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    running_mean, running_var = running_mean.clone(), running_var.clone()
    y = torch.nn.functional.batch_norm(x, running_mean, running_var, gamma, beta, training, momentum, eps)
    return y, running_mean, running_var

# %% batchnorm_forward: float64_not_cast_back [wrong: batchnorm_keeps_dtype_and_device]
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    x, gamma, beta = x.double(), gamma.double(), beta.double()
    running_mean, running_var = running_mean.double(), running_var.double()
    if training:
        if x.shape[0] < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * x.var(0).detach()
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% batchnorm_forward: ones_vector_on_the_cpu [wrong on cuda: batchnorm_training_output, batchnorm_running_statistics, batchnorm_gradients, batchnorm_train_and_eval_sequence]
# the mean as a product with a vector of ones, made on the cpu whatever x's device
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        n = x.shape[0]
        if n < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        ones = torch.ones(n, dtype=x.dtype)
        mean = ones @ x / n
        var = ones @ (x - mean) ** 2 / n
        running_mean = (1 - momentum) * running_mean + momentum * mean.detach()
        running_var = (1 - momentum) * running_var + momentum * var.detach() * n / (n - 1)
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta, running_mean, running_var

# %% bn_net: sequential_built_in_a_loop [correct]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        modules = []
        for i in range(len(layers) - 2):
            modules += [nn.Linear(layers[i], layers[i + 1]), nn.BatchNorm1d(layers[i + 1]), nn.ReLU()]
        modules.append(nn.Linear(layers[-2], layers[-1]))
        self.model = nn.Sequential(*modules)

    def forward(self, x):
        return self.model(x)

# %% bn_net: norms_first_and_hidden_bias_false [correct]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.bns = nn.ModuleList([nn.BatchNorm1d(n) for n in layers[1:-1]])
        hidden = [nn.Linear(a, b, bias=False) for a, b in zip(layers[:-2], layers[1:-1])]
        self.fcs = nn.ModuleList(hidden + [nn.Linear(layers[-2], layers[-1])])

    def forward(self, x):
        for fc, bn in zip(self.fcs[:-1], self.bns):
            x = nn.functional.relu(bn(fc(x)))
        return self.fcs[-1](x)

# %% bn_net: named_attributes [correct]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.depth = len(layers) - 1
        for i in range(self.depth):
            setattr(self, f"fc{i}", nn.Linear(layers[i], layers[i + 1]))
            if i < self.depth - 1:
                setattr(self, f"bn{i}", nn.BatchNorm1d(layers[i + 1]))
        self.act = nn.ReLU()

    def forward(self, x):
        for i in range(self.depth - 1):
            x = self.act(getattr(self, f"bn{i}")(getattr(self, f"fc{i}")(x)))
        return getattr(self, f"fc{self.depth - 1}")(x)

# %% bn_net: batch_norm_after_the_activation [wrong: bn_net_training_forward, bn_net_running_statistics, bn_net_evaluation, bn_net_other_depths]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in layers[1:-1])

    def forward(self, x):
        for linear, norm in zip(self.linears, self.norms):
            x = norm(torch.relu(linear(x)))
        return self.linears[-1](x)

# %% bn_net: norms_never_applied [wrong: bn_net_training_forward, bn_net_running_statistics, bn_net_evaluation, bn_net_other_depths]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in layers[1:-1])

    def forward(self, x):
        for linear in self.linears[:-1]:
            x = torch.relu(linear(x))
        return self.linears[-1](x)

# %% bn_net: batch_norm_on_the_output_layer_too [wrong: bn_net_training_forward, bn_net_evaluation, bn_net_other_depths]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in layers[1:])

    def forward(self, x):
        for linear, norm in zip(self.linears[:-1], self.norms):
            x = torch.relu(norm(linear(x)))
        return self.norms[-1](self.linears[-1](x))

# %% bn_net: batch_norm_before_each_linear [wrong: bn_net_training_forward, bn_net_running_statistics, bn_net_evaluation, bn_net_other_depths]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(a) for a in layers[:-1])

    def forward(self, x):
        for linear, norm in zip(self.linears[:-1], self.norms):
            x = torch.relu(linear(norm(x)))
        return self.linears[-1](self.norms[-1](x))

# %% bn_net: layers_in_a_python_list [wrong: bn_net_training_forward, bn_net_running_statistics, bn_net_evaluation, bn_net_other_depths]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = [nn.Linear(a, b) for a, b in zip(layers, layers[1:])]
        self.norms = [nn.BatchNorm1d(b) for b in layers[1:-1]]

    def forward(self, x):
        for linear, norm in zip(self.linears, self.norms):
            x = torch.relu(norm(linear(x)))
        return self.linears[-1](x)

# %% bn_net: batch_statistics_in_eval_mode_too [wrong: bn_net_evaluation, bn_net_other_depths]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in layers[1:-1])

    def forward(self, x):
        for linear, norm in zip(self.linears, self.norms):
            h = linear(x)
            h = nn.functional.batch_norm(h, norm.running_mean, norm.running_var, norm.weight,
                                         norm.bias, training=True)
            x = torch.relu(h)
        return self.linears[-1](x)

# %% bn_net: sigmoid_instead_of_relu [wrong: bn_net_training_forward, bn_net_evaluation, bn_net_other_depths]
class BNNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, layers[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in layers[1:-1])

    def forward(self, x):
        for linear, norm in zip(self.linears, self.norms):
            x = torch.sigmoid(norm(linear(x)))
        return self.linears[-1](x)
