"""Hidden checks for a9_batchnorm: run by `grade`, never shipped to students."""

import torch
from torch import nn
from torch.nn import functional as F

from autograder.checks import assert_close, assert_same_kind, check, expect, oracle, randn

from public_checks import (  # helpers shared with the public checks
    NET_HINT,
    batch,
    check_gradients,
    check_steps,
    layer,
    net_weights,
    run_net,
    run_steps,
    steps_outcome,
)


def batchnorm_by_torch(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """PyTorch's own batch norm, the computation of nn.BatchNorm1d's forward: F.batch_norm
    updates the running statistics in place (here, copies) and raises ValueError for a batch of
    one in training."""
    mean, var = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, mean, var, gamma, beta, training, momentum, eps)
    return y, mean, var


# grade build checks that the reference agrees with it on every value check's inputs
oracle("batchnorm_forward", batchnorm_by_torch)


@check("batchnorm_forward", points=2)
def test_batchnorm_train_and_eval_sequence(student, reference, device):
    """Batches of 2 to 32 in float64, momentum 0.3 and eps 1e-3, training interleaved with
    evaluation: every y and running statistic along the way."""
    sizes = [(2, True), (5, True), (32, True), (7, False), (4, True), (9, False), (3, True)]
    xs = [batch(n, 4, seed=1001 + 10 * k, dtype=torch.float64, device=device)
          for k, (n, _) in enumerate(sizes)]
    params = layer(4, seed=1002, dtype=torch.float64, device=device)
    check_steps(student, reference, xs, params, [mode for _, mode in sizes], (0.3, 1e-3))


@check("batchnorm_forward", points=1)
def test_batchnorm_eps_matters(student, reference, device):
    """Channels whose variance is below eps (training, the default eps) and a large eps in
    evaluation: forgetting eps, or adding it outside the square root, shows."""
    x = batch(20, 5, seed=1011, dtype=torch.float64, device=device, spread=1e-3)
    params = layer(5, seed=1012, dtype=torch.float64, device=device)
    check_steps(student, reference, [x], params, [True])
    gamma, beta, running_mean, _ = params
    small_var = torch.full_like(running_mean, 0.01)
    check_steps(student, reference, [batch(6, 5, seed=1013, device=device)],
                (gamma.float(), beta.float(), running_mean.float(), small_var.float()), [False],
                (0.1, 0.25))


@check("batchnorm_forward", points=1)
def test_batchnorm_shapes_and_momenta(student, reference, device):
    """A wide float64 batch of 3, a long float32 batch of one channel, momentum near 0 and
    near 1."""
    for n, c, dtype, options, seed in ((3, 40, torch.float64, (0.05, 1e-5), 1021),
                                       (200, 1, torch.float32, (0.9, 1e-5), 1022),
                                       (50, 7, torch.float32, (1.0, 1e-4), 1023)):
        xs = [batch(n, c, seed=seed + k, dtype=dtype, device=device) for k in (10, 20)]
        params = layer(c, seed=seed, dtype=dtype, device=device)
        check_steps(student, reference, xs, params, [True, True], options)


@check("batchnorm_forward", points=1)
def test_batchnorm_evaluation_gradients(student, reference, device):
    """In evaluation y is an affine function of x: gradients through the running statistics."""
    x = batch(8, 3, seed=1031, dtype=torch.float64, device=device)
    params = layer(3, seed=1032, dtype=torch.float64, device=device)
    upstream = randn(8, 3, seed=1033, dtype=torch.float64, device=device)
    check_gradients(student, reference, x, params, False, upstream, (0.1, 1e-5))


@check("batchnorm_forward", points=0.5)
def test_batchnorm_batch_of_one(student, reference, device):
    """One sample: fine in evaluation; in training its variance is 0 and its unbiased variance
    0 / 0, so nn.BatchNorm1d raises ValueError, and so must batchnorm_forward."""
    x = batch(1, 4, seed=1041, device=device)
    params = layer(4, seed=1042, device=device)
    check_steps(student, reference, [x], params, [False])
    outcome = steps_outcome(student, [x], params, [True])
    error = outcome.error
    if error is not None and error.is_a("NotImplementedError"):
        outcome.unwrap()
    expect(error is not None and error.is_a("ValueError"),
           "batchnorm_forward(x, ..., training=True) for x of shape (1, 4) "
           + (f"raised {error.types[0]}: {error.message}" if error else "returned")
           + "; a batch of one sample has no variance to normalise with (and its unbiased "
             "variance is 0 / 0), so in training it must raise ValueError, as nn.BatchNorm1d "
             "does: check x.shape[0] before computing anything. In evaluation a single sample "
             "is fine.")


@check("batchnorm_forward", points=0.5, kind="property")
def test_batchnorm_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        x = batch(6, 3, seed=1051, dtype=dtype, device=device)
        params = layer(3, seed=1052, dtype=dtype, device=device)
        result = run_steps(student, [x, x], params, [True, False]).unwrap()
        for step, mode in ((0, "training=True"), (1, "training=False")):
            for key, name in (("ys", "y"), ("means", "new_running_mean"), ("vars", "new_running_var")):
                assert_same_kind(result[key][step], x,
                                 what=f"batchnorm_forward(...) for {dtype} x and parameters, "
                                      f"{mode}: {name}",
                                 hint="Make every tensor you create with x's dtype and device "
                                      "(torch.zeros_like(x), device=x.device), and if you compute "
                                      "in float64, convert back with .to(x.dtype).")


# --- BNNet --------------------------------------------------------------------------------------

class BNNetAsSequential(nn.Module):
    """The network written as one nn.Sequential, an independent check on the reference."""

    def __init__(self, layers):
        super().__init__()
        blocks = []
        for n_in, n_out in zip(layers[:-2], layers[1:-1], strict=True):
            blocks += [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]
        self.body = nn.Sequential(*blocks, nn.Linear(layers[-2], layers[-1]))

    def forward(self, x):
        return self.body(x)


oracle("bn_net", BNNet=BNNetAsSequential)


@check("bn_net", points=3)
def test_bn_net_other_depths(student, reference, device):
    """No hidden layer, one, three; float64; training then evaluation: every output and running
    statistic."""
    for layers, seed in (([5, 3], 1201), ([7, 12, 2], 1211), ([4, 11, 10, 8, 3], 1221)):
        weights = net_weights(layers, seed=seed, dtype=torch.float64, device=device)
        xs = [batch(n, layers[0], seed=seed + k, dtype=torch.float64, device=device)
              for k, n in enumerate((8, 20, 6))]
        modes = [True, True, False]
        got = run_net(student, layers, weights, xs, modes, dtype="float64", device=device)
        want = run_net(reference, layers, weights, xs, modes, dtype="float64", device=device)
        for step, (x, mode) in enumerate(zip(xs, modes, strict=True)):
            assert_close(got["outputs"][step], want["outputs"][step],
                         what=f"BNNet({layers}) in float64 with given weights, forward pass "
                              f"{step + 1} of 3 ({'train' if mode else 'eval'}() mode, x of "
                              f"shape {tuple(x.shape)}): the logits",
                         inputs={"x": x}, hint=NET_HINT)
        for (mean, var), (want_mean, want_var), width in zip(got["running"], want["running"],
                                                             layers[1:-1], strict=True):
            assert_close([mean, var], [want_mean, want_var],
                         what=f"BNNet({layers}) in float64: (running_mean, running_var) of its "
                              f"nn.BatchNorm1d({width}) after two training passes",
                         hint=NET_HINT)
