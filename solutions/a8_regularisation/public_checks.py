"""Public checks for a8_regularisation: students see these and run them from the check cells.

dropout and init_weights draw random numbers, so their answers cannot be compared with the
reference's number by number (a correct ``torch.rand(...) < 1 - p`` and a correct
``torch.bernoulli(...)`` draw different masks from the same seed). Their checks test what every
correct answer shares instead: exact structure, and statistics of a large sample, each within a
tolerance derived from the sampling distribution (six standard deviations: a correct answer
fails one with probability about 2e-9; tests/test_reference_a8_regularisation.py runs every
criterion over 200 seeds on the reference and every correct variant). All seeds are fixed, so
every check gives the same verdict every time.
"""

import math

import pytest
import torch

from autograder.checks import (
    assert_close,
    assert_no_builtin,
    assert_same_kind,
    check,
    expect,
    fail,
    hint,
    rand,
    randn,
)

# --- dropout -----------------------------------------------------------------------------------

DROPOUT_HINT = hint("In training, each element is kept with probability 1 - p and the survivors "
                    "are divided by 1 - p, so that the expected output equals x; in evaluation "
                    "(training=False) x comes back as it is.",
                    formula="keep = torch.rand(x.shape, generator=generator, device=x.device) >= p; "
                            "return x * keep / (1 - p)")
GENERATOR_HINT = ("Draw every random number from the generator you are given: pass "
                  "generator=generator (and device=x.device) to torch.rand or torch.bernoulli. "
                  "Calling torch.manual_seed, or drawing without generator=, ignores it.")
BUILTIN_DROPOUT = {"dropout", "dropout_", "native_dropout", "feature_dropout", "alpha_dropout",
                   "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d"}
BIG = (200, 500)  # 100,000 elements: the sample for the statistical checks
SIGMAS = 6  # the tolerance of every statistical check, in standard deviations (see the docstring)


def signed_inputs(*shape, seed, dtype=torch.float32, device="cpu"):
    """Values of magnitude 0.5 to 1.5 and random sign: never 0, so a kept element and a dropped
    one can always be told apart."""
    magnitude = rand(*shape, seed=seed, low=0.5, high=1.5, dtype=dtype, device=device)
    sign = rand(*shape, seed=seed + 1, dtype=dtype, device=device) < 0.5
    return torch.where(sign, -magnitude, magnitude)


def positive_inputs(*shape, seed, dtype=torch.float32, device="cpu"):
    """Values from 1 to 2, so that their sum is far from 0 and a lost scale shows (and a tensor
    of ones, mean 1, is far from their mean, 1.5)."""
    return rand(*shape, seed=seed, low=1.0, high=2.0, dtype=dtype, device=device)


def run_dropout(subject, probe, *args):
    """Run a dropout probe; explain the student's error with the exercise's hint."""
    outcome = subject.run(probe, *args)
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"dropout(x, p, training, generator) raised an error: {error.describe()} "
             f"{GENERATOR_HINT}")
    return outcome


def summary(subject, x, p, *, seed):
    return run_dropout(subject, "dropout_summary", x, p, seed).unwrap()


def described(x, p):
    return (f"dropout(x, p={p}, training=True, generator) for x of shape {tuple(x.shape)} "
            f"({str(x.dtype).removeprefix('torch.')})")


def structure_problem(s, *, x, p):
    """Every element must be 0 or x / (1 - p), with some of each; None when so."""
    what = described(x, p)
    if s["x_changed"]:
        return (f"{what} changed x in place. Return a new tensor (x * mask / (1 - p)), leaving "
                "the caller's x as it was.")
    if s["other"]:
        shown = "; ".join(f"x[{i}] = {xi:.4g} gave {oi:.4g}" for i, xi, oi in s["examples"])
        return (f"{what}: {s['other']} of {s['n']} elements are neither 0 nor x / (1 - p) = "
                f"x / {1 - p:g} ({shown}). {DROPOUT_HINT}")
    if not s["scaled"] or not s["zeros"]:
        which = "dropped" if not s["scaled"] else "kept"
        return (f"{what}: every one of the {s['n']} elements was {which}; about {p:.0%} should "
                f"be dropped (0) and the rest kept (x / (1 - p)). {DROPOUT_HINT}")
    return None


def fraction_problem(s, *, x, p):
    """The dropped fraction must be p within six binomial standard deviations; None when so.

    The number of zeros is Binomial(n, p): its fraction has standard deviation
    sqrt(p (1 - p) / n), 0.0014 for n = 100,000 and p = 0.3; six of them (0.009) are missed by a
    correct dropout with probability 2e-9, and the nearest mistake (dropping with probability
    1 - p) is 0.4 away.
    """
    n = s["n"]
    dropped = s["zeros"] / n
    tolerance = SIGMAS * math.sqrt(p * (1 - p) / n)
    if abs(dropped - p) <= tolerance:
        return None
    swapped = " It looks like 1 - p: p is the probability to DROP an element." if abs(
        dropped - (1 - p)) <= tolerance else ""
    return (f"{described(x, p)} dropped {dropped:.2%} of the {n} elements; expected p = {p:.0%} "
            f"(give or take {tolerance:.2%}, six binomial standard deviations).{swapped} "
            f"{DROPOUT_HINT}")


def mean_problem(s, *, x, p):
    """sum(out) must be sum(x) within six standard deviations; None when so.

    Each output element is x_i m_i / (1 - p) with m_i ~ Bernoulli(1 - p): its mean is x_i and
    its variance x_i^2 p / (1 - p), so sum(out) has mean sum(x) and variance
    sum(x^2) p / (1 - p).
    """
    spread = math.sqrt(s["sum_x2"] * p / (1 - p))
    if abs(s["sum_out"] - s["sum_x"]) <= SIGMAS * spread:
        return None
    n = s["n"]
    return (f"{described(x, p)}: the mean output is {s['sum_out'] / n:.4g}, but the mean of x is "
            f"{s['sum_x'] / n:.4g} (tolerance {SIGMAS * spread / n:.2g}, six standard "
            f"deviations). Dividing the survivors by 1 - p keeps the expected output equal to x. "
            f"{DROPOUT_HINT}")


def structure_verdict(subject, *, p, seed, device, dtype=torch.float32):
    x = signed_inputs(*BIG, seed=seed, dtype=dtype, device=device)
    return structure_problem(summary(subject, x, p, seed=seed), x=x, p=p)


def fraction_verdict(subject, *, p, seed, device, dtype=torch.float32):
    x = signed_inputs(*BIG, seed=seed, dtype=dtype, device=device)
    s = summary(subject, x, p, seed=seed)
    return structure_problem(s, x=x, p=p) or fraction_problem(s, x=x, p=p)


def mean_verdict(subject, *, p, seed, device, dtype=torch.float32):
    x = positive_inputs(*BIG, seed=seed, dtype=dtype, device=device)
    return mean_problem(summary(subject, x, p, seed=seed), x=x, p=p)


def generator_verdict(subject, *, seed, device):
    """The same seed must give the same output, and another seed another mask; None when so."""
    x, p = signed_inputs(30, 40, seed=seed, device=device), 0.5
    specs = [{"generator": seed}, {"generator": seed}, {"generator": seed + 1}]
    first, again, other = run_dropout(subject, "dropout_outputs", x, p, True, specs).unwrap()["outputs"]
    what = f"dropout(x, p={p}, training=True, generator) for x of shape {tuple(x.shape)}"
    for out in (first, again, other):
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            return f"{what} returned {out!r}, expected a tensor shaped like x. {DROPOUT_HINT}"
    if not torch.equal(first, again):
        return (f"{what}: two calls with generators seeded alike (torch.Generator()."
                f"manual_seed({seed})) gave different outputs. {GENERATOR_HINT}")
    if torch.equal(first == 0, other == 0):
        return (f"{what}: generators seeded with {seed} and {seed + 1} dropped exactly the same "
                f"elements; the mask must come from the generator. {GENERATOR_HINT}")
    return None


def gradient_verdict(subject, *, seed, device):
    """d sum(out) / dx must be 1 / (1 - p) where an element was kept and 0 where dropped."""
    x, p = signed_inputs(20, 30, seed=seed, device=device), 0.4
    result = run_dropout(subject, "dropout_gradient", x, p, seed).unwrap()
    what = f"dropout(x, p={p}, training=True, generator).sum().backward() for x of shape (20, 30)"
    if result["grad"] is None:
        return (f"{what}: x got no gradient: the output is not connected to x. Compute it from x "
                "with tensor operations (no .detach(), no torch.no_grad(), no .data).")
    kept = (result["out"] != 0).double()
    want = kept / (1 - p)
    got = result["grad"].detach().cpu().double()
    if torch.allclose(got, want.cpu(), rtol=1e-5, atol=1e-7):
        return None
    return (f"{what}: x.grad holds {sorted({round(v, 4) for v in got.flatten().tolist()})[:4]}; "
            f"expected {1 / (1 - p):.4g} where the element was kept and 0 where it was dropped. "
            f"{DROPOUT_HINT}")


def own_dropout(outcome):
    assert_no_builtin(outcome, BUILTIN_DROPOUT, what="dropout",
                      instead="Draw the mask with torch.rand or torch.bernoulli and apply it yourself.")


@check("dropout", points=1.5)
def test_dropout_eval_returns_x(student, reference, device):
    x = signed_inputs(3, 4, seed=801, device=device)
    for p, training in ((0.5, False), (0.0, True)):
        spec = [{"generator": 802}]
        got = run_dropout(student, "dropout_outputs", x, p, training, spec).unwrap()["outputs"][0]
        want = reference.run("dropout_outputs", x, p, training, spec).unwrap()["outputs"][0]
        mode = "training=False (evaluation)" if not training else "training=True"
        assert_close(got, want, what=f"dropout(x, p={p}, {mode})", inputs={"x": x}, rtol=0, atol=0,
                     hint=("In evaluation nothing is dropped and nothing is scaled; with p = 0 "
                           "nothing is dropped and 1 / (1 - p) = 1. Return x unchanged. "
                           + DROPOUT_HINT))


@check("dropout", points=2)
def test_dropout_kept_values_are_scaled(student, device):
    problem = structure_verdict(student, p=0.3, seed=811, device=device)
    expect(problem is None, problem or "")


@check("dropout", points=2)
def test_dropout_drops_a_fraction_p(student, device):
    problem = fraction_verdict(student, p=0.3, seed=821, device=device)
    expect(problem is None, problem or "")


@check("dropout", points=1.5)
def test_dropout_uses_the_generator(student, device):
    problem = generator_verdict(student, seed=831, device=device)
    expect(problem is None, problem or "")


@check("dropout", points=1)
def test_dropout_gradient(student, device):
    problem = gradient_verdict(student, seed=841, device=device)
    expect(problem is None, problem or "")


@check("dropout", points=0.5, kind="property")
def test_dropout_own_code(student, device):
    x = signed_inputs(10, 10, seed=851, device=device)
    own_dropout(run_dropout(student, "dropout_outputs", x, 0.3, True, [{"generator": 852}]))


# --- init_weights ------------------------------------------------------------------------------

SCHEMES = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal")
FAN_IN, FAN_OUT = 1024, 256  # nn.Linear(1024, 256): a weight [256, 1024] of 262,144 numbers
INIT_HINT = hint("Glorot (Xavier) keeps the variance of the weights at 2 / (fan_in + fan_out), "
                 "He (Kaiming, for ReLU) at 2 / fan_in; fan_in is in_features (the weight's "
                 "second dimension). A uniform U(-a, a) has variance a^2 / 3, so a = "
                 "sqrt(3 * variance); a normal takes std = sqrt(variance). torch.nn.init's "
                 "functions are allowed.",
                 formula="var = 2 / (fan_in + fan_out) or 2 / fan_in; then "
                         "weight.uniform_(-math.sqrt(3 * var), math.sqrt(3 * var)) or "
                         "weight.normal_(0, math.sqrt(var)), under torch.no_grad()")


def target_std(scheme, fan_in, fan_out):
    return math.sqrt(2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in)


def init_stats(subject, scheme, *, seed, fan_in=FAN_IN, fan_out=FAN_OUT, dtype="float32", device="cpu"):
    """The statistics of nn.Linear(fan_in, fan_out) after init_weights(layer, scheme)."""
    outcome = subject.run("init_statistics", fan_in, fan_out, scheme, seed, dtype, device)
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"init_weights(nn.Linear({fan_in}, {fan_out}), {scheme!r}) raised an error: "
             f"{error.describe()} {INIT_HINT}")
    return outcome.unwrap()


def spread_problem(s, scheme, *, fan_in, fan_out):
    """Mean 0 and standard deviation sqrt(var) within six standard errors; None when so.

    For n independent weights of variance s2 and kurtosis k, the mean of the squares (the
    squared RMS) has standard deviation s2 sqrt((k - 1) / n), so the RMS has relative standard
    deviation sqrt((k - 1) / (4 n)): 0.14% for a normal (k = 3) and 262,144 weights, less for a
    uniform (k = 1.8). The tolerance, six of them, is 0.8%; the nearest mistake (Glorot's
    variance where He's was meant, for a 1024 -> 256 layer) is 11% off. The sample mean has
    standard deviation sqrt(s2 / n).
    """
    n, std = s["n"], target_std(scheme, fan_in, fan_out)
    what = f"init_weights(nn.Linear({fan_in}, {fan_out}), {scheme!r})"
    if not s["finite"]:
        return f"{what} left inf or nan in the weight. {INIT_HINT}"
    mean_tolerance = SIGMAS * std / math.sqrt(n)
    if abs(s["mean"]) > mean_tolerance:
        return (f"{what}: the weights' mean is {s['mean']:.3g}, expected 0 (within "
                f"{mean_tolerance:.1g}): the distribution must be centred on 0, e.g. U(-a, a), "
                f"not U(0, a). {INIT_HINT}")
    relative = SIGMAS * math.sqrt(2 / (4 * n))  # kurtosis 3, the larger of the two
    if abs(s["rms"] / std - 1) > relative:
        return (f"{what}: the weights' standard deviation is {s['rms']:.4g}, expected "
                f"{std:.4g} (within {relative:.1%}) for fan_in = {fan_in}, fan_out = {fan_out}. "
                f"{INIT_HINT}")
    return None


def shape_problem(s, scheme, *, fan_in, fan_out):
    """A uniform scheme: every weight within the bound a = sqrt(3 var), the largest close to it;
    a normal one: kurtosis 3 within six standard errors. None when so.

    The largest of n uniform |w| / a falls below 1 - t with probability (1 - t)^n: for
    t = 1e-4 and n = 262,144 that is e^-26, while a bound of sqrt(var) gives 0.58. The sample
    kurtosis of n normal numbers has standard deviation sqrt(24 / n) = 0.0096; a uniform's is
    1.8, 125 of them away.
    """
    what = f"init_weights(nn.Linear({fan_in}, {fan_out}), {scheme!r})"
    std = target_std(scheme, fan_in, fan_out)
    if scheme.endswith("uniform"):
        bound = math.sqrt(3) * std
        if s["max_abs"] > bound * (1 + 1e-6):
            return (f"{what}: a weight of magnitude {s['max_abs']:.4g} is outside the bound "
                    f"a = sqrt(3 * var) = {bound:.4g} of a uniform U(-a, a). Is it a normal "
                    f"distribution? {INIT_HINT}")
        if s["max_abs"] < bound * (1 - 1e-4):
            return (f"{what}: the largest weight magnitude is {s['max_abs']:.4g}; a uniform "
                    f"U(-a, a) with a = sqrt(3 * var) = {bound:.4g} reaches close to a among "
                    f"{s['n']} values. {INIT_HINT}")
        return None
    tolerance = SIGMAS * math.sqrt(24 / s["n"])
    if abs(s["kurtosis"] - 3) > tolerance:
        like = " (a uniform has 1.8)" if abs(s["kurtosis"] - 1.8) < tolerance else ""
        return (f"{what}: the weights' kurtosis is {s['kurtosis']:.3g}{like}; a normal "
                f"distribution has 3 (within {tolerance:.2g}). Use a normal distribution for the "
                f"_normal schemes. {INIT_HINT}")
    return None


def init_verdict(subject, scheme, *, seed, device, fan_in=FAN_IN, fan_out=FAN_OUT, dtype="float32"):
    """Spread and shape of one scheme's weights; None when both are right."""
    s = init_stats(subject, scheme, seed=seed, fan_in=fan_in, fan_out=fan_out, dtype=dtype, device=device)
    return (spread_problem(s, scheme, fan_in=fan_in, fan_out=fan_out)
            or shape_problem(s, scheme, fan_in=fan_in, fan_out=fan_out))


@check("init_weights", points=0.75)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_init_weights_mean_and_std(student, device, scheme):
    s = init_stats(student, scheme, seed=901, device=device)
    problem = spread_problem(s, scheme, fan_in=FAN_IN, fan_out=FAN_OUT)
    expect(problem is None, problem or "")


@check("init_weights", points=0.5)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_init_weights_distribution_shape(student, device, scheme):
    s = init_stats(student, scheme, seed=911, device=device)
    problem = shape_problem(s, scheme, fan_in=FAN_IN, fan_out=FAN_OUT)
    expect(problem is None, problem or "")


@check("init_weights", points=1)
def test_init_weights_zero_bias(student, device):
    for scheme in ("xavier_uniform", "he_normal"):
        s = init_stats(student, scheme, seed=921, device=device)
        expect(s["bias_max_abs"] == 0,
               f"init_weights(nn.Linear({FAN_IN}, {FAN_OUT}), {scheme!r}) left a bias as large as "
               f"{s['bias_max_abs']:.3g}; set every bias to exactly 0 (layer.bias.zero_() under "
               "torch.no_grad(), or nn.init.zeros_).")


@check("init_weights", points=0.5, kind="property")
def test_init_weights_in_place_returns_the_layer(student, device):
    s = init_stats(student, "he_uniform", seed=931, device=device)
    what = f"init_weights(layer, 'he_uniform') for layer = nn.Linear({FAN_IN}, {FAN_OUT})"
    expect(s["same_weight"] and s["same_bias"],
           f"{what} replaced layer.weight or layer.bias with a new Parameter. Fill the existing "
           "ones in place (weight.uniform_(...), nn.init.*_ under torch.no_grad()): an optimizer "
           "built before the call still holds the old ones.")
    expect(s["shape"] == [FAN_OUT, FAN_IN],
           f"{what} changed the weight's shape to {tuple(s['shape'])}; it must stay "
           f"({FAN_OUT}, {FAN_IN}).")
    expect(s["returned_layer"],
           f"{what} returned {s['returned']}; return the layer you were given (the same object), "
           "so that calls can be chained: net = init_weights(nn.Linear(4, 8), 'he_normal').")


# --- momentum_step -----------------------------------------------------------------------------

MOMENTUM_HINT = hint("One step of SGD with momentum, as torch.optim.SGD(momentum=m) takes it: "
                     "the velocity decays by m and adds the gradient (no learning rate, no "
                     "(1 - m) factor inside it), then the parameter moves against the NEW "
                     "velocity, scaled by lr.",
                     formula="new_velocity = momentum * velocity + grad; "
                             "return param - lr * new_velocity, new_velocity")


def least_squares(n, d, *, seed, k=None, dtype=torch.float32, device="cpu"):
    """A well-conditioned problem: A [n, d], b [n] (or [n, k]) and a starting point x0."""
    A = randn(n, d, seed=seed, dtype=dtype, device=device)
    tail = () if k is None else (k,)
    b = randn(n, *tail, seed=seed + 1, dtype=dtype, device=device)
    x0 = randn(d, *tail, seed=seed + 2, dtype=dtype, device=device)
    return A, b, x0


def step(subject, param, grad, velocity, lr, momentum):
    """``subject.momentum_step`` on copies of the tensors. Updating the arguments in place is
    allowed, and outside the sandbox (the check cell, nbgrader's kernel) the student and the
    reference would otherwise be handed the same tensors, one after the other."""
    return subject.momentum_step(param.clone(), grad.clone(), velocity.clone(), lr, momentum)


def trajectory(subject, A, b, x0, lrs, momentum):
    outcome = subject.run("momentum_trajectory", A, b, x0, lrs, momentum)
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"momentum_step(param, grad, velocity, lr, momentum) failed while minimising a "
             f"least-squares loss: {error.describe()} {MOMENTUM_HINT}")
    return outcome.unwrap()


def compare_trajectories(got, want, *, what, hint=MOMENTUM_HINT):
    """Compare step by step, with the dtype's tolerances, and report the first step that departs."""
    steps = len(want["params"])
    for step in range(steps):
        for key, name in (("velocities", "new_velocity"), ("params", "new_param")):
            assert_close(got[key][step], want[key][step],
                         what=f"{what}: {name} after step {step + 1} of {steps}", hint=hint)


@check("momentum_step", points=2)
def test_momentum_step_one_step(student, reference, device):
    param, grad = randn(3, 4, seed=1001, device=device), randn(3, 4, seed=1002, device=device)
    velocity = randn(3, 4, seed=1003, device=device)
    lr, momentum = 0.1, 0.9
    assert_close(step(student, param, grad, velocity, lr, momentum),
                 step(reference, param, grad, velocity, lr, momentum),
                 what=f"momentum_step(param, grad, velocity, lr={lr}, momentum={momentum}) for "
                      "(3, 4) tensors: (new_param, new_velocity)",
                 inputs={"param": param, "grad": grad, "velocity": velocity}, hint=MOMENTUM_HINT)


@check("momentum_step", points=3)
def test_momentum_step_tracks_sgd(student, reference, device):
    A, b, x0 = least_squares(30, 5, seed=1011, device=device)
    lrs, momentum = [0.05] * 100, 0.9
    compare_trajectories(trajectory(student, A, b, x0, lrs, momentum),
                         reference.run("momentum_trajectory", A, b, x0, lrs, momentum).unwrap(),
                         what=f"100 steps of momentum_step (lr=0.05, momentum={momentum}) on "
                              "mean((A x - b)**2) / 2, A of shape (30, 5), from velocity 0")


@check("momentum_step", points=0.5, kind="property")
def test_momentum_step_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        param, grad = (randn(5, seed=s, dtype=dtype, device=device) for s in (1021, 1022))
        velocity = randn(5, seed=1023, dtype=dtype, device=device)
        result = step(student, param, grad, velocity, 0.1, 0.9)
        for i, name in enumerate(("new_param", "new_velocity")):
            assert_same_kind(result[i], param, what=f"momentum_step(...) for {dtype} tensors: {name}")
