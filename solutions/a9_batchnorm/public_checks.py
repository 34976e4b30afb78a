"""Public checks for a9_batchnorm: students see these and run them from the check cells.

Every check runs ``batchnorm_forward`` through the probe ``batchnorm_steps`` (a sequence of
batches, the running statistics passed on from call to call, as an ``nn.BatchNorm1d`` layer
carries its buffers) or ``batchnorm_gradients``, on the student and on the reference, and
compares. When a value differs, the message names the step and the output, and says which known
mistake (the course notes' sqrt(std + eps), the wrong variance, momentum the wrong way round,
...) gives exactly the student's values, if one does.
"""

import torch

from autograder.checks import (
    assert_close,
    assert_no_builtin,
    check,
    fail,
    hint,
    rand,
    randn,
)

BN_HINT = hint("In training, normalise each channel (each column of x: statistics over dim 0, "
               "the batch) with the batch's mean and its biased variance (divide by N), eps "
               "added to the variance inside the square root, then scale by gamma and shift by "
               "beta. The running statistics move a fraction momentum of the way towards the "
               "batch's mean and its unbiased variance (divide by N - 1). In evaluation, "
               "normalise with the running statistics and return them unchanged.",
               formula="mean = x.mean(0); var = x.var(0, unbiased=False); y = gamma * (x - mean) "
                       "/ torch.sqrt(var + eps) + beta; new_running_mean = (1 - momentum) * "
                       "running_mean + momentum * mean; new_running_var = (1 - momentum) * "
                       "running_var + momentum * x.var(0, unbiased=True)")
# Every way of calling PyTorch's batch norm records one of these names (nn.BatchNorm1d and
# F.batch_norm record "batch_norm"); the other normalisations compute the same statistics of a
# transposed x (F.layer_norm(x.T, ...)) or call batch norm underneath (instance_norm).
BUILTIN_NORMS = {
    "batch_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_native_batch_norm_legit_functional",
    "_batch_norm_impl_index", "_batch_norm_with_update", "_batch_norm_no_update",
    "cudnn_batch_norm", "miopen_batch_norm", "batch_norm_stats", "batch_norm_elemt",
    "batch_norm_gather_stats", "batch_norm_gather_stats_with_counts", "batch_norm_update_stats",
    "instance_norm", "layer_norm", "native_layer_norm", "group_norm", "native_group_norm",
}
DEFAULTS = {"momentum": 0.1, "eps": 1e-5}
NAMES = {"ys": "y", "means": "new_running_mean", "vars": "new_running_var"}

MISPRINT = ("Your y divides by sqrt(std + eps), with the standard deviation under the square "
            "root: that is a misprint in the course notes. Batch norm divides by "
            "sqrt(var + eps), the square root of the variance plus eps.")
UNBIASED_FOR_Y = ("Your y is normalised with the unbiased variance (dividing by N - 1). Batch "
                  "norm normalises with the biased variance of the batch (dividing by N: "
                  "unbiased=False, or correction=0) and uses the unbiased one only to update "
                  "the running variance.")
NO_EPS = ("Your y is what you get without eps: add eps to the variance inside the square root, "
          "sqrt(var + eps). It matters when a channel's variance is small.")
RUNNING_IN_TRAINING = ("Your y uses the running statistics in training mode. In training, "
                       "normalise with the statistics of the batch itself, and update the "
                       "running ones.")
BIASED_RUNNING = ("Your running variance moves towards the biased variance of the batch "
                  "(dividing by N). nn.BatchNorm1d updates it with the unbiased variance "
                  "(dividing by N - 1), although it normalises y with the biased one.")
MOMENTUM_SWAPPED = ("Your running statistics keep a fraction momentum of their old value: the "
                    "wrong way round. In PyTorch momentum is the weight of the NEW batch "
                    "statistic, new = (1 - momentum) * running + momentum * batch (Keras's "
                    "momentum means the opposite).")
NOT_UPDATED = ("Your running statistics come back unchanged after a training step. In "
               "training, move them towards the batch's statistics and return the new values.")
STD_IN_RUNNING = ("Your running variance moves towards the batch's standard deviation; it "
                  "estimates the variance (the square of the standard deviation).")
BATCH_IN_EVAL = ("Your y in evaluation mode (training=False) uses the statistics of the batch. "
                 "In evaluation, normalise with running_mean and running_var: a prediction "
                 "must not depend on the other samples of the batch.")
UPDATED_IN_EVAL = ("Your running statistics change in evaluation mode; with training=False "
                   "return running_mean and running_var as they came.")
GRAPH_HINT = ("In training the batch's mean and variance are functions of x, and the gradient "
              "flows through them too: compute them with tensor operations on x, without "
              ".detach(), torch.no_grad() or .item() (the running statistics, which y does not "
              "use, may be detached).")


# --- inputs -------------------------------------------------------------------------------------

def batch(n, c, *, seed, dtype=torch.float32, device="cpu", spread=1.0):
    """x [n, c] whose channels (columns) have different means and scales, so that statistics
    over the wrong dimension, or of the whole tensor, give other numbers. ``spread`` scales
    every channel's standard deviation."""
    scale = rand(c, seed=seed + 1, low=0.5, high=3.0, dtype=torch.float64) * spread
    shift = randn(c, seed=seed + 2, scale=2.0, dtype=torch.float64)
    x = randn(n, c, seed=seed, dtype=torch.float64) * scale + shift
    return x.to(dtype=dtype, device=device)


def layer(c, *, seed, dtype=torch.float32, device="cpu"):
    """gamma, beta, running_mean, running_var for c channels (gamma of either sign)."""
    gamma = randn(c, seed=seed, scale=0.7, dtype=dtype, device=device) + 1.0
    beta = randn(c, seed=seed + 1, scale=0.5, dtype=dtype, device=device)
    running_mean = randn(c, seed=seed + 2, scale=0.5, dtype=dtype, device=device)
    running_var = rand(c, seed=seed + 3, low=0.5, high=2.0, dtype=dtype, device=device)
    return gamma, beta, running_mean, running_var


def signature(training, options):
    extra = "" if not options else f", momentum={options[0]}, eps={options[1]}"
    return (f"batchnorm_forward(x, gamma, beta, running_mean, running_var, "
            f"training={training}{extra})")


# --- running the student ------------------------------------------------------------------------

def steps_outcome(subject, xs, params, modes, options=()):
    gamma, beta, running_mean, running_var = params
    return subject.run("batchnorm_steps", list(xs), gamma, beta, running_mean, running_var,
                       list(modes), list(options))


def run_steps(subject, xs, params, modes, options=()):
    """The probe ``batchnorm_steps``; the student's error (other than the stub's) explained."""
    outcome = steps_outcome(subject, xs, params, modes, options)
    error = outcome.error
    if error is not None and error.is_a("ProbeError"):  # the answer has the wrong form
        fail(f"{error.describe().rstrip('.')}. {BN_HINT}")
    if error is not None and not error.is_a("NotImplementedError"):
        shapes = ", ".join(f"{tuple(x.shape)} training={m}" for x, m in zip(xs, modes, strict=True))
        fail(f"batchnorm_forward raised an error on batches of shape {shapes}: "
             f"{error.describe()} {BN_HINT}")
    return outcome


# --- known mistakes, to say which one a wrong answer is ---------------------------------------

def _normalise(x, gamma, beta, mean, var, eps):
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def slips(x, params, training, options):
    """Known wrong answers for one call: (output key, wrong value, what to tell the student).
    Computed here, in float64 on the cpu, from the inputs the call had."""
    gamma, beta, rm, rv = (t.detach().to("cpu", torch.float64) for t in params)
    x = x.detach().to("cpu", torch.float64)
    momentum, eps = options if options else (DEFAULTS["momentum"], DEFAULTS["eps"])
    n = x.shape[0]
    if not training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        return [
            ("ys", _normalise(x, gamma, beta, rm, rv.sqrt(), eps), MISPRINT),
            ("ys", _normalise(x, gamma, beta, rm, rv, 0.0), NO_EPS),
            ("ys", _normalise(x, gamma, beta, mean, var, eps), BATCH_IN_EVAL),
            ("means", (1 - momentum) * rm + momentum * mean, UPDATED_IN_EVAL),
        ]
    mean, var = x.mean(0), x.var(0, unbiased=False)
    unbiased = x.var(0, unbiased=True) if n > 1 else var
    return [
        ("ys", _normalise(x, gamma, beta, mean, var.sqrt(), eps), MISPRINT),
        ("ys", _normalise(x, gamma, beta, mean, unbiased, eps), UNBIASED_FOR_Y),
        ("ys", _normalise(x, gamma, beta, mean, var, 0.0), NO_EPS),
        ("ys", _normalise(x, gamma, beta, rm, rv, eps), RUNNING_IN_TRAINING),
        ("vars", (1 - momentum) * rv + momentum * var, BIASED_RUNNING),
        ("vars", (1 - momentum) * rv + momentum * unbiased.sqrt(), STD_IN_RUNNING),
        ("means", momentum * rm + (1 - momentum) * mean, MOMENTUM_SWAPPED),
        ("vars", momentum * rv + (1 - momentum) * unbiased, MOMENTUM_SWAPPED),
        ("means", rm, NOT_UPDATED),
        ("vars", rv, NOT_UPDATED),
    ]


def _close(got, want):
    """True when ``got`` equals ``want`` up to float32 rounding (for a diagnosis only)."""
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and bool(torch.allclose(got.detach().to("cpu", torch.float64),
                                    want.detach().to("cpu", torch.float64),
                                    rtol=1e-4, atol=1e-6, equal_nan=True)))


def diagnosis(key, got, x, params, training, options):
    """What to tell a student whose output ``key`` is ``got``: the known mistake it matches."""
    return next((text + " " for k, wrong, text in slips(x, params, training, options)
                 if k == key and _close(got, wrong)), "")


def compare_steps(got, want, *, xs, params, modes, options=()):
    """Compare y and the running statistics step by step; report the first that departs, with
    the known mistake it matches. Until then the student's running statistics are the
    reference's, so the diagnosis starts from the reference's."""
    gamma, beta, mean, var = params
    steps = len(xs)
    for step in range(steps):
        x, training = xs[step], modes[step]
        before = (gamma, beta, mean, var)
        where = f" at step {step + 1} of {steps}" if steps > 1 else ""
        for key, name in NAMES.items():
            g, w = got[key][step], want[key][step]
            told = "" if _close(g, w) else diagnosis(key, g, x, before, training, options)
            assert_close(g, w, what=f"{signature(training, options)}{where}, x of shape "
                                    f"{tuple(x.shape)} ({str(x.dtype).removeprefix('torch.')}): "
                                    f"{name}",
                         inputs={"x": x}, hint=told + BN_HINT)
        mean, var = want["means"][step], want["vars"][step]


def check_steps(student, reference, xs, params, modes, options=()):
    """Run the same batches through the student's and the reference's; compare every step."""
    got = run_steps(student, xs, params, modes, options).unwrap()
    want = run_steps(reference, xs, params, modes, options).unwrap()
    compare_steps(got, want, xs=xs, params=params, modes=modes, options=options)


def check_gradients(student, reference, x, params, training, upstream, options=()):
    """Compare the gradients of (y * upstream).sum() with respect to x, gamma and beta."""
    gamma, beta, running_mean, running_var = params
    args = (x, gamma, beta, running_mean, running_var, training, upstream, list(options))
    outcome = student.run("batchnorm_gradients", *args)
    error = outcome.error
    what = (f"{signature(training, options)} for x of shape {tuple(x.shape)}, then "
            "(y * w).sum().backward() for a fixed random w")
    if error is not None and error.is_a("ProbeError"):
        fail(f"{error.describe().rstrip('.')}. {BN_HINT}")
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"{what} raised an error: {error.describe()} {BN_HINT}")
    got = outcome.unwrap()
    want = reference.run("batchnorm_gradients", *args).unwrap()
    told = "" if _close(got["y"], want["y"]) else diagnosis("ys", got["y"], x, params, training, options)
    assert_close(got["y"], want["y"], what=f"{what}: y", inputs={"x": x}, hint=told + BN_HINT)
    if not got["connected"]:
        fail(f"{what}: y has no autograd history, so nothing can be learnt through it. Compute y "
             "from x, gamma and beta with tensor operations (no .detach(), torch.no_grad(), "
             ".data or .item()).")
    for name, g, w in zip(("x", "gamma", "beta"), got["grads"], want["grads"], strict=True):
        if g is None:
            fail(f"{what}: {name} got no gradient: y is not connected to {name}. Use the "
                 f"{name} you are given, as a tensor, in the formula for y.")
        assert_close(g, w, what=f"{what}: the gradient with respect to {name}",
                     hint=(GRAPH_HINT + " " if name == "x" else "") + BN_HINT)


def own_code(student, device):
    """Fail if batchnorm_forward called PyTorch's batch norm (or a normalisation like it)."""
    x = batch(6, 3, seed=951, device=device)
    params = layer(3, seed=952, device=device)
    outcome = run_steps(student, [x, x], params, [True, False])
    outcome.unwrap()
    assert_no_builtin(outcome, BUILTIN_NORMS, what="batchnorm_forward",
                      instead="Compute the mean and the variance over dim 0 yourself (x.mean, "
                              "x.var or sums), then normalise, scale and shift with arithmetic.")


# --- the checks ---------------------------------------------------------------------------------

@check("batchnorm_forward", points=3)
def test_batchnorm_training_output(student, reference, device):
    x = batch(16, 6, seed=901, device=device)
    params = layer(6, seed=902, device=device)
    got = run_steps(student, [x], params, [True]).unwrap()
    want = run_steps(reference, [x], params, [True]).unwrap()
    told = "" if _close(got["ys"][0], want["ys"][0]) else diagnosis("ys", got["ys"][0], x, params, True, ())
    assert_close(got["ys"][0], want["ys"][0],
                 what=f"{signature(True, ())} (the default momentum and eps) for x of shape "
                      "(16, 6), float32: y",
                 inputs={"x": x}, hint=told + BN_HINT)


@check("batchnorm_forward", points=3)
def test_batchnorm_running_statistics(student, reference, device):
    xs = [batch(16, 6, seed=911 + 10 * k, device=device) for k in range(3)]
    params = layer(6, seed=912, device=device)
    check_steps(student, reference, xs, params, [True, True, True])


@check("batchnorm_forward", points=2)
def test_batchnorm_evaluation(student, reference, device):
    x = batch(10, 6, seed=921, device=device)
    params = layer(6, seed=922, device=device)
    check_steps(student, reference, [x], params, [False])


@check("batchnorm_forward", points=1.5)
def test_batchnorm_gradients(student, reference, device):
    x = batch(12, 5, seed=931, dtype=torch.float64, device=device)
    params = layer(5, seed=932, dtype=torch.float64, device=device)
    upstream = randn(12, 5, seed=933, dtype=torch.float64, device=device)
    check_gradients(student, reference, x, params, True, upstream)


@check("batchnorm_forward", points=0.5, kind="property")
def test_batchnorm_own_code(student, device):
    own_code(student, device)


# --- BNNet --------------------------------------------------------------------------------------

NET_HINT = hint("Every hidden layer is an nn.Linear, then an nn.BatchNorm1d of its output width "
                "(on the linear outputs, before the activation), then ReLU; the last nn.Linear is "
                "alone, with no batch norm and no activation after it. Register the layers as "
                "submodules (nn.ModuleList or nn.Sequential), so that model.train() and "
                "model.eval() reach the batch norm layers.",
                formula="self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers, "
                        "layers[1:])); self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in "
                        "layers[1:-1]); in forward: for linear, norm in zip(self.linears, "
                        "self.norms): x = torch.relu(norm(linear(x))); then return "
                        "self.linears[-1](x)")
AFTER_ACTIVATION = ("Your outputs are those of a network with batch norm AFTER the ReLU "
                    "(Linear -> ReLU -> BatchNorm1d). Batch norm goes on the linear outputs, "
                    "before the activation: Linear -> BatchNorm1d -> ReLU.")
NO_NORM = ("Your outputs are those of the network without any batch norm: the nn.BatchNorm1d "
           "layers exist but forward never calls them. Apply each one to its linear layer's "
           "output, before the ReLU.")
OUTPUT_NORMALISED = ("Your outputs are normalised over the batch: there is a batch norm after the "
                     "last linear layer too. The logits go straight into the loss; no batch norm "
                     "and no activation after the output layer.")
EVAL_HINT = ("In model.eval() mode each nn.BatchNorm1d normalises with its running statistics. "
             "If your forward calls torch.nn.functional.batch_norm with training=True, or the "
             "layers are not registered submodules, eval() does not reach them.")


def net_weights(layers, *, seed, dtype=torch.float32, device="cpu"):
    """Weights for BNNet(layers): per linear layer {"weight", "bias"}, the hidden biases 0 (the
    batch norm after them cancels a bias, so bias=False is as right as a bias), and per hidden
    width {"gamma", "beta"}."""
    linears, norms = [], []
    pairs = list(zip(layers[:-1], layers[1:], strict=True))
    for i, (n_in, n_out) in enumerate(pairs):
        last = i == len(pairs) - 1
        weight = randn(n_out, n_in, seed=seed + 10 * i, scale=n_in ** -0.5, dtype=dtype, device=device)
        bias = (randn(n_out, seed=seed + 10 * i + 1, scale=0.3, dtype=dtype, device=device) if last
                else torch.zeros(n_out, dtype=dtype, device=device))
        linears.append({"weight": weight, "bias": bias})
        if not last:
            gamma = randn(n_out, seed=seed + 10 * i + 2, scale=0.3, dtype=dtype, device=device) + 1
            beta = randn(n_out, seed=seed + 10 * i + 3, scale=0.3, dtype=dtype, device=device)
            norms.append({"gamma": gamma, "beta": beta})
    return linears, norms


def run_net(subject, layers, weights, batches, modes, *, dtype="float32", device="cpu", advice=""):
    """The probe ``bnnet_run``; the student's error (other than the stub's) explained, with
    ``advice`` first."""
    linears, norms = weights
    outcome = subject.run("bnnet_run", list(layers), linears, norms, list(batches), list(modes),
                          dtype, device)
    error = outcome.error
    told = advice + " " if advice else ""
    if error is not None and error.is_a("ProbeError"):
        fail(f"{error.describe().rstrip('.')}. {told}{NET_HINT}")
    if error is not None and not error.is_a("NotImplementedError"):
        steps = ", ".join(f"{'train' if m else 'eval'}() on x of shape {tuple(x.shape)}"
                          for x, m in zip(batches, modes, strict=True))
        fail(f"BNNet({layers}) raised an error while it was built or run ({steps}): "
             f"{error.describe()}\n{told}{NET_HINT}")
    return outcome.unwrap()


def _batch_norm_train(h, gamma, beta):
    return gamma * (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5) + beta


def net_slips(x, weights):
    """Known wrong networks' outputs in training mode on x, with what to tell the student."""
    linears, norms = ([{k: v.detach().to("cpu", torch.float64) for k, v in d.items()} for d in group]
                      for group in weights)
    x = x.detach().to("cpu", torch.float64)

    def run(place):
        h = x
        for linear, norm in zip(linears[:-1], norms, strict=True):
            h = h @ linear["weight"].T + linear["bias"]
            if place == "before":
                h = torch.relu(_batch_norm_train(h, norm["gamma"], norm["beta"]))
            elif place == "after":
                h = _batch_norm_train(torch.relu(h), norm["gamma"], norm["beta"])
            else:
                h = torch.relu(h)
        return h @ linears[-1]["weight"].T + linears[-1]["bias"]

    out = run("before")
    return [(run("after"), AFTER_ACTIVATION), (run("none"), NO_NORM),
            (_batch_norm_train(out, 1.0, 0.0), OUTPUT_NORMALISED)]


def net_diagnosis(got, want, x, weights):
    if _close(got, want):
        return ""
    return next((text + " " for wrong, text in net_slips(x, weights) if _close(got, wrong)), "")


def describe_net(layers, steps):
    return f"BNNet({layers}) with given weights, after {steps}"


@check("bn_net", points=3)
def test_bn_net_training_forward(student, reference, device):
    layers = [6, 9, 7, 4]
    weights = net_weights(layers, seed=1101, device=device)
    x = batch(16, 6, seed=1102, device=device)
    got = run_net(student, layers, weights, [x], [True], device=device)["outputs"][0]
    want = run_net(reference, layers, weights, [x], [True], device=device)["outputs"][0]
    assert_close(got, want, what=f"BNNet({layers}) with given weights, in train() mode, on x of "
                                 "shape (16, 6): the logits",
                 inputs={"x": x}, hint=net_diagnosis(got, want, x, weights) + NET_HINT)


@check("bn_net", points=2)
def test_bn_net_running_statistics(student, reference, device):
    layers = [6, 9, 7, 4]
    weights = net_weights(layers, seed=1111, device=device)
    xs = [batch(16, 6, seed=1112 + k, device=device) for k in range(2)]
    got = run_net(student, layers, weights, xs, [True, True], device=device)["running"]
    want = run_net(reference, layers, weights, xs, [True, True], device=device)["running"]
    for (mean, var), (want_mean, want_var), width in zip(got, want, layers[1:-1], strict=True):
        for name, g, w in (("running_mean", mean, want_mean), ("running_var", var, want_var)):
            assert_close(g, w, what=f"BNNet({layers}) with given weights, after two forward passes "
                                    f"in train() mode on batches of 16: the {name} of its "
                                    f"nn.BatchNorm1d({width})",
                         hint="The running statistics show what each batch norm layer saw: the "
                              "linear layer's outputs, before the activation. " + NET_HINT)


@check("bn_net", points=2)
def test_bn_net_evaluation(student, reference, device):
    layers = [6, 9, 7, 4]
    weights = net_weights(layers, seed=1121, device=device)
    xs = [batch(16, 6, seed=1122 + k, device=device) for k in range(2)]
    tests = [batch(5, 6, seed=1125, device=device), batch(1, 6, seed=1126, device=device)]
    modes = [True, True, False, False]
    got = run_net(student, layers, weights, xs + tests, modes, device=device,
                  advice=EVAL_HINT)["outputs"]
    want = run_net(reference, layers, weights, xs + tests, modes, device=device)["outputs"]
    for step in (0, 1):  # a wrong network is told so first, not that eval() went wrong
        assert_close(got[step], want[step],
                     what=f"BNNet({layers}) with given weights, forward pass {step + 1} in "
                          "train() mode on x of shape (16, 6): the logits",
                     inputs={"x": xs[step]},
                     hint=net_diagnosis(got[step], want[step], xs[step], weights) + NET_HINT)
    for step, x in ((2, tests[0]), (3, tests[1])):
        assert_close(got[step], want[step],
                     what=f"BNNet({layers}) with given weights, after two forward passes in "
                          f"train() mode, then in eval() mode on x of shape {tuple(x.shape)}: "
                          "the logits",
                     inputs={"x": x}, hint=EVAL_HINT + " " + NET_HINT)
