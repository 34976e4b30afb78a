"""Hidden checks for a8_regularisation: run by `grade`, never shipped to students."""

import torch
from torch import nn
from torch.nn import functional as F

from autograder.checks import assert_close, assert_same_kind, check, expect, oracle, randn

from public_checks import (  # helpers shared with the public checks
    DROPOUT_HINT,
    FAN_IN,
    FAN_OUT,
    INIT_HINT,
    MOMENTUM_HINT,
    SCHEMES,
    compare_trajectories,
    fraction_verdict,
    init_stats,
    init_verdict,
    least_squares,
    mean_verdict,
    run_dropout,
    signed_inputs,
    step,
    trajectory,
)


def dropout_by_torch(x, p, training, generator=None):
    """PyTorch's own dropout, its randomness taken from ``generator``: a seed drawn from it
    seeds the global generators for the one call (fork_rng puts them back afterwards)."""
    if generator is None:
        return F.dropout(x, p, training)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator, device=generator.device)))
        return F.dropout(x, p, training)


def init_by_torch(layer, scheme):
    """torch.nn.init's initialisers; He for ReLU."""
    init = {"xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_,
            "he_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
            "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")}
    if scheme not in init:
        raise ValueError(f"unknown scheme {scheme!r}")
    init[scheme](layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def momentum_step_by_sgd(param, grad, velocity, lr, momentum):
    """One step of torch.optim.SGD(momentum=momentum), its momentum buffer set to ``velocity``.
    With momentum 0 SGD keeps no buffer; the velocity is then the gradient itself."""
    p = param.detach().clone().requires_grad_(True)
    optimizer = torch.optim.SGD([p], lr=lr, momentum=momentum)
    p.grad = grad.detach().clone()
    if momentum:
        optimizer.state[p]["momentum_buffer"] = velocity.detach().clone()
    optimizer.step()
    return p.detach(), (optimizer.state[p]["momentum_buffer"] if momentum else grad.clone())


# grade build checks that the reference agrees with these on every value check's inputs
oracle("dropout", dropout_by_torch)
oracle("init_weights", init_by_torch)
oracle("momentum_step", momentum_step_by_sgd)


# --- dropout -----------------------------------------------------------------------------------

@check("dropout", points=1)
def test_dropout_preserves_the_mean(student, device):
    problem = mean_verdict(student, p=0.2, seed=861, device=device)
    expect(problem is None, problem or "")


@check("dropout", points=1)
def test_dropout_other_rates_and_float64(student, device):
    for p, dtype, seed in ((0.5, torch.float64, 871), (0.8, torch.float32, 872), (0.05, torch.float64, 873)):
        problem = fraction_verdict(student, p=p, seed=seed, device=device, dtype=dtype)
        expect(problem is None, problem or "")


@check("dropout", points=0.5)
def test_dropout_extreme_rates(student, reference, device):
    x = signed_inputs(4, 5, seed=881, dtype=torch.float64, device=device)
    for p, training, words in ((1.0, True, "p = 1 drops everything: return zeros, with no nan "
                                "from 0 / (1 - p)"),
                               (0.0, True, "p = 0 drops nothing and scales by 1: return x"),
                               (1.0, False, "in evaluation x comes back whatever p is")):
        spec = [{"generator": 882}]
        got = run_dropout(student, "dropout_outputs", x, p, training, spec).unwrap()["outputs"][0]
        want = reference.run("dropout_outputs", x, p, training, spec).unwrap()["outputs"][0]
        assert_close(got, want, what=f"dropout(x, p={p}, training={training}) for float64 x",
                     inputs={"x": x}, rtol=0, atol=0, hint=f"{words}. {DROPOUT_HINT}")


@check("dropout", points=0.5)
def test_dropout_global_generator(student, device):
    x, p = signed_inputs(30, 40, seed=891, device=device), 0.5
    specs = [{"global": 892}, {"global": None}, {"global": 892}]
    first, second, again = run_dropout(student, "dropout_outputs", x, p, True, specs).unwrap()["outputs"]
    what = "dropout(x, p=0.5, training=True) with generator=None"
    for out in (first, second, again):
        expect(isinstance(out, torch.Tensor) and out.shape == x.shape,
               f"{what} returned {out!r}, expected a tensor shaped like x. {DROPOUT_HINT}")
    expect(torch.equal(first, again),
           f"{what}: after torch.manual_seed(892) twice, two calls gave different outputs. With "
           "generator=None, draw from PyTorch's global generator (torch.rand(..., generator=None) "
           "does).")
    expect(not torch.equal(first == 0, second == 0),
           f"{what}: two calls in a row dropped exactly the same elements. With generator=None, "
           "draw from PyTorch's global generator, which moves on after every draw; a new "
           "torch.Generator() made at each call starts from the same state every time.")


@check("dropout", points=0.5, kind="property")
def test_dropout_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        x = signed_inputs(6, 7, seed=895, dtype=dtype, device=device)
        for p, training in ((0.3, True), (0.3, False), (1.0, True)):
            out = run_dropout(student, "dropout_outputs", x, p, training,
                              [{"generator": 896}]).unwrap()["outputs"][0]
            assert_same_kind(out, x, what=f"dropout(x, p={p}, training={training}) for {dtype} x",
                             hint="Make masks and zeros with x's dtype and device: "
                                  "torch.zeros_like(x), torch.rand(..., device=x.device).")


# --- init_weights ------------------------------------------------------------------------------

@check("init_weights", points=2)
def test_init_weights_fan_out_larger(student, device):
    fan_in, fan_out = 256, 1024  # the transpose of the public checks' layer: fans swapped show
    for scheme in SCHEMES:
        problem = init_verdict(student, scheme, seed=941, device=device, fan_in=fan_in, fan_out=fan_out)
        expect(problem is None, problem or "")


@check("init_weights", points=1)
def test_init_weights_unknown_scheme(student, reference, device):
    for scheme in ("lecun_normal", "orthogonal", ""):
        outcome = student.run("init_statistics", 8, 4, scheme, 951, "float32", device)
        error = outcome.error
        if error is not None and error.is_a("NotImplementedError"):
            outcome.unwrap()
        expect(error is not None and error.is_a("ValueError"),
               f"init_weights(nn.Linear(8, 4), {scheme!r}) "
               + (f"raised {error.types[0]}: {error.message}" if error else "returned")
               + f"; an unknown scheme must raise ValueError (raise ValueError(f'unknown scheme "
                 f"{{scheme!r}}')), naming the four known ones: {', '.join(SCHEMES)}.")


@check("init_weights", points=0.5, kind="property")
def test_init_weights_keeps_dtype_and_device(student, device):
    s = init_stats(student, "xavier_normal", seed=961, dtype="float64", device=device)
    expect(s["dtype"] == "float64" and s["device"] == device,
           f"init_weights(layer, 'xavier_normal') for a float64 nn.Linear({FAN_IN}, {FAN_OUT}) on "
           f"{device} left a {s['dtype']} weight on {s['device']}: fill the weight in place "
           "(weight.normal_(...), nn.init.*_) instead of assigning a tensor made elsewhere. "
           + INIT_HINT)


# --- momentum_step -----------------------------------------------------------------------------

@check("momentum_step", points=1.5)
def test_momentum_step_lr_schedule_and_matrix(student, reference, device):
    A, b, x0 = least_squares(40, 6, seed=1031, k=3, dtype=torch.float64, device=device)
    lrs = [0.1 * 0.5 ** (step // 20) for step in range(80)]  # halved every 20 steps
    compare_trajectories(trajectory(student, A, b, x0, lrs, 0.8),
                         reference.run("momentum_trajectory", A, b, x0, lrs, 0.8).unwrap(),
                         what="80 steps of momentum_step, lr 0.1 halved every 20 steps, "
                              "momentum=0.8, on a float64 least-squares problem with a (6, 3) "
                              "parameter",
                         hint="The velocity holds no learning rate: when lr changes, the whole "
                              "velocity is scaled by the new lr, as torch.optim.SGD does under a "
                              "learning-rate scheduler. " + MOMENTUM_HINT)


@check("momentum_step", points=1)
def test_momentum_step_without_momentum(student, reference, device):
    param, grad = randn(4, seed=1041, device=device), randn(4, seed=1042, device=device)
    velocity = randn(4, seed=1043, device=device)
    for momentum, words in ((0.0, "momentum = 0 is plain gradient descent: new_velocity = grad"),
                            (0.5, "from a zero velocity the first step is plain gradient descent")):
        v = velocity if momentum == 0 else torch.zeros_like(velocity)
        assert_close(step(student, param, grad, v, 0.3, momentum),
                     step(reference, param, grad, v, 0.3, momentum),
                     what=f"momentum_step(param, grad, velocity, lr=0.3, momentum={momentum})",
                     inputs={"param": param, "grad": grad, "velocity": v},
                     hint=f"{words}. {MOMENTUM_HINT}")
