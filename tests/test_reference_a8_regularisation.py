"""The a8_regularisation reference against PyTorch itself, and the statistical checks against
false failures.

dropout is compared with the semantics of ``torch.nn.functional.dropout``, init_weights with
the statistics of ``torch.nn.init``'s initialisers, momentum_step with ``torch.optim.SGD``'s
trajectories (a learning-rate scheduler included). Then every statistical criterion of the
checks runs over 200 seeds on the reference, on PyTorch's own implementations (the oracles) and
on every correct variant of ``variants.py``: none may fail once, so the fixed seeds the checks
use cannot have been picked to hide a false failure. Wrong variants, on their side, fail the
criteria they are declared to fail at every seed tried.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from conftest import import_checks, variant_subject
from torch import nn
from torch.nn import functional as F

from autograder.course import load_assignment, reference_namespace
from autograder.variants import variants_of

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
ASSIGNMENT = load_assignment("a8_regularisation", SOLUTIONS)
SEEDS = range(200)
VARIANT_SEEDS = range(40)
"""The reference is tried at 200 seeds (its false-failure rate is the checks' rate: every correct
variant draws from the same distribution); each other correct variant at 40, which is enough to
show a structural difference (a wrong bound, a lost bias) and keeps the suite's time bounded."""
SCHEMES = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal")


checks = import_checks(ASSIGNMENT, "public_checks.py", "a8_public_checks")
hidden = import_checks(ASSIGNMENT, "hidden_checks.py", "a8_hidden_checks", public=checks)


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(ASSIGNMENT)


subject = functools.partial(variant_subject, ASSIGNMENT)


VARIANTS = variants_of(ASSIGNMENT)
CORRECT = {
    exercise: [("reference", None)] + [(v.name, v.source) for v in VARIANTS
                                       if v.exercise == exercise and (v.correct or v.device == "cuda")]
    for exercise in ("dropout", "init_weights", "momentum_step")
}


# --- dropout against torch.nn.functional.dropout --------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.5, 0.8, 1.0])
def test_dropout_has_the_semantics_of_functional_dropout(ref, p, dtype):
    torch.manual_seed(0)
    x = torch.randn(300, 400, dtype=dtype)
    ours = ref["dropout"](x, p, True, torch.Generator().manual_seed(1))
    theirs = F.dropout(x, p, True)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert torch.isfinite(ours).all()
    for out in (ours, theirs):  # the same structure: 0, or x scaled exactly as torch scales it
        kept = out != 0
        scale = 1.0 if p == 0 else (0.0 if p == 1 else 1 / (1 - p))
        torch.testing.assert_close(out[kept], x[kept] * scale)
    n = x.numel()
    tolerance = 6 * math.sqrt(p * (1 - p) / n)
    dropped_ours = (ours == 0).double().mean().item()
    dropped_theirs = (theirs == 0).double().mean().item()
    assert abs(dropped_ours - p) <= tolerance and abs(dropped_theirs - p) <= tolerance
    assert torch.equal(ref["dropout"](x, p, False), F.dropout(x, p, False))


def test_dropout_gradient_is_the_mask_over_1_minus_p(ref):
    x = torch.randn(50, 60, requires_grad=True)
    out = ref["dropout"](x, 0.4, True, torch.Generator().manual_seed(3))
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() / 0.6)
    x_torch = x.detach().clone().requires_grad_(True)
    out_torch = F.dropout(x_torch, 0.4, True)
    out_torch.sum().backward()
    torch.testing.assert_close(x_torch.grad, (out_torch != 0).float() / 0.6)


def test_dropout_uses_its_generator_and_else_the_global_one(ref):
    x = torch.randn(1000)
    a = ref["dropout"](x, 0.5, True, torch.Generator().manual_seed(5))
    b = ref["dropout"](x, 0.5, True, torch.Generator().manual_seed(5))
    c = ref["dropout"](x, 0.5, True, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(9)
    first, second = ref["dropout"](x, 0.5, True), ref["dropout"](x, 0.5, True)
    torch.manual_seed(9)
    assert torch.equal(ref["dropout"](x, 0.5, True), first) and not torch.equal(first, second)


def test_the_dropout_oracle_matches_the_criteria_over_many_seeds():
    torch_subject = subject("F.dropout", dropout=hidden.dropout_by_torch)
    for seed in range(40):
        assert checks.fraction_verdict(torch_subject, p=0.3, seed=seed, device="cpu") is None
        assert checks.mean_verdict(torch_subject, p=0.2, seed=seed, device="cpu") is None
        assert checks.generator_verdict(torch_subject, seed=seed, device="cpu") is None


# --- init_weights against torch.nn.init ----------------------------------------------------------

@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(("fan_in", "fan_out"), [(1024, 256), (256, 1024), (300, 300)])
def test_init_weights_has_the_statistics_of_nn_init(ref, scheme, fan_in, fan_out):
    torch.manual_seed(0)
    layer = nn.Linear(fan_in, fan_out)
    weight = layer.weight
    assert ref["init_weights"](layer, scheme) is layer and layer.weight is weight
    ours = layer.weight.detach().double()
    theirs = hidden.init_by_torch(nn.Linear(fan_in, fan_out), scheme).weight.detach().double()
    std = math.sqrt(2 / (fan_in + fan_out) if scheme.startswith("xavier") else 2 / fan_in)
    n = ours.numel()
    for w in (ours, theirs):
        assert abs(w.pow(2).mean().sqrt().item() / std - 1) < 6 * math.sqrt(2 / (4 * n))
        assert abs(w.mean().item()) < 6 * std / math.sqrt(n)
        if scheme.endswith("uniform"):
            assert w.abs().max().item() <= math.sqrt(3) * std * (1 + 1e-6)
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_init_weights_refuses_an_unknown_scheme(ref):
    for scheme in ("lecun_normal", "orthogonal", "", "He_normal"):
        with pytest.raises(ValueError):
            ref["init_weights"](nn.Linear(3, 2), scheme)


def test_init_weights_keeps_float64_layers_float64(ref):
    layer = nn.Linear(64, 32).double()
    ref["init_weights"](layer, "xavier_normal")
    assert layer.weight.dtype == torch.float64 and layer.bias.dtype == torch.float64


# --- momentum_step against torch.optim.SGD --------------------------------------------------------

def sgd_trajectory(A, b, x0, lr, momentum, steps, *, schedule=None):
    """Parameters and momentum buffers of torch.optim.SGD after each step, on the problem the
    probe momentum_trajectory solves (mean((A x - b)**2) / 2), and the lr of each step."""
    x = x0.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr=lr, momentum=momentum)
    scheduler = None if schedule is None else torch.optim.lr_scheduler.StepLR(optimizer, *schedule)
    params, buffers, lrs = [], [], []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        with torch.no_grad():  # the gradient as the probe computes it: only the rule differs
            x.grad = A.T @ (A @ x - b) / A.shape[0]
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        params.append(x.detach().clone())
        buffers.append(optimizer.state[x]["momentum_buffer"].clone() if momentum else x.grad.clone())
    return torch.stack(params), torch.stack(buffers), lrs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("shape", [(5,), (5, 3)])
def test_momentum_step_tracks_torch_optim_sgd(momentum, dtype, shape):
    torch.manual_seed(0)
    A = torch.randn(30, 5, dtype=dtype)
    b = torch.randn(30, *shape[1:], dtype=dtype)
    x0 = torch.randn(*shape, dtype=dtype)
    want_params, want_buffers, lrs = sgd_trajectory(A, b, x0, 0.05, momentum, 100, schedule=(25, 0.5))
    got = subject("reference").run("momentum_trajectory", A, b, x0, lrs, momentum).unwrap()
    # float32: SGD's p.add_(buf, alpha=-lr) and p - lr * v round differently, and momentum 0.99
    # carries the difference for ~100 steps: the grader's float32 tolerances
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-13}
    torch.testing.assert_close(got["params"], want_params, **tolerance)
    torch.testing.assert_close(got["velocities"], want_buffers, **tolerance)


def test_momentum_step_returns_new_tensors_and_leaves_its_arguments(ref):
    param, grad, velocity = torch.randn(4), torch.randn(4), torch.randn(4)
    copies = [t.clone() for t in (param, grad, velocity)]
    new_param, new_velocity = ref["momentum_step"](param, grad, velocity, 0.1, 0.9)
    for before, after in zip(copies, (param, grad, velocity), strict=True):
        assert torch.equal(before, after)
    torch.testing.assert_close(new_velocity, 0.9 * velocity + grad)
    torch.testing.assert_close(new_param, param - 0.1 * new_velocity)


def test_the_learning_rate_inside_the_velocity_differs_only_under_a_schedule():
    """Why the variant learning_rate_inside_the_velocity is wrong: with a constant lr its
    parameters follow torch.optim.SGD; once the lr changes they part."""
    source = next(v.source for v in VARIANTS if v.name == "learning_rate_inside_the_velocity")
    lr_inside, reference = subject("lr inside", source), subject("reference")
    A, b, x0 = (torch.randn(30, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(s))
                for s in (1, 2, 3))
    b, x0 = b[:, 0], x0[0]
    constant, scheduled = [0.05] * 60, [0.05 * 0.5 ** (k // 20) for k in range(60)]
    same = [s.run("momentum_trajectory", A, b, x0, constant, 0.9).unwrap()["params"]
            for s in (lr_inside, reference)]
    torch.testing.assert_close(same[0], same[1], rtol=1e-10, atol=1e-12)
    parted = [s.run("momentum_trajectory", A, b, x0, scheduled, 0.9).unwrap()["params"]
              for s in (lr_inside, reference)]
    assert (parted[0] - parted[1]).abs().max() > 1e-3


# --- the statistical criteria: never a false failure, over 200 seeds (the reference) -------------

def dropout_verdicts(s, seed):
    """Every statistical (or seeded) dropout criterion the checks apply, at ``seed``."""
    yield "structure", checks.structure_verdict(s, p=0.3, seed=seed, device="cpu")
    yield "fraction", checks.fraction_verdict(s, p=0.3, seed=seed, device="cpu")
    for p, dtype in ((0.5, torch.float64), (0.8, torch.float32), (0.05, torch.float64)):
        yield f"fraction p={p}", checks.fraction_verdict(s, p=p, seed=seed, device="cpu", dtype=dtype)
    yield "mean", checks.mean_verdict(s, p=0.2, seed=seed, device="cpu")
    yield "generator", checks.generator_verdict(s, seed=seed, device="cpu")
    yield "gradient", checks.gradient_verdict(s, seed=seed, device="cpu")


def init_verdicts(s, seed):
    for scheme in SCHEMES:
        yield scheme, checks.init_verdict(s, scheme, seed=seed, device="cpu")
        yield f"{scheme} 256->1024", checks.init_verdict(s, scheme, seed=seed, device="cpu",
                                                         fan_in=256, fan_out=1024)


def seeds_for(name):
    return SEEDS if name == "reference" else VARIANT_SEEDS


@pytest.mark.parametrize(("name", "source"), CORRECT["dropout"], ids=[n for n, _ in CORRECT["dropout"]])
def test_dropout_criteria_never_fail_correct_code(name, source):
    s = subject(name, source)
    failures = [(seed, which, problem) for seed in seeds_for(name)
                for which, problem in dropout_verdicts(s, seed) if problem is not None]
    assert failures == []


@pytest.mark.parametrize(("name", "source"), CORRECT["init_weights"] + [("nn.init", None)],
                         ids=[n for n, _ in CORRECT["init_weights"]] + ["nn.init"])
def test_init_criteria_never_fail_correct_code(name, source):
    s = subject(name, source, **({"init_weights": hidden.init_by_torch} if name == "nn.init" else {}))
    failures = [(seed, which, problem) for seed in seeds_for(name)
                for which, problem in init_verdicts(s, seed) if problem is not None]
    assert failures == []


def first_init_problem(criterion, s, seed):
    for scheme in SCHEMES:
        problem = criterion(checks.init_stats(s, scheme, seed=seed), scheme, fan_in=1024, fan_out=256)
        if problem is not None:
            return problem
    return None


STATISTICAL_CHECKS = {
    "dropout_kept_values_are_scaled":
        lambda s, seed: checks.structure_verdict(s, p=0.3, seed=seed, device="cpu"),
    "dropout_drops_a_fraction_p": lambda s, seed: checks.fraction_verdict(s, p=0.3, seed=seed, device="cpu"),
    "dropout_preserves_the_mean": lambda s, seed: checks.mean_verdict(s, p=0.2, seed=seed, device="cpu"),
    "dropout_uses_the_generator": lambda s, seed: checks.generator_verdict(s, seed=seed, device="cpu"),
    "init_weights_mean_and_std": lambda s, seed: first_init_problem(checks.spread_problem, s, seed),
    "init_weights_distribution_shape": lambda s, seed: first_init_problem(checks.shape_problem, s, seed),
}
WRONG = [(v.name, v.source, check) for v in VARIANTS if not v.correct and v.device is None
         for check in v.must_fail if check in STATISTICAL_CHECKS]


@pytest.mark.parametrize(("name", "source", "check"), WRONG, ids=[f"{n}-{c}" for n, _, c in WRONG])
def test_statistical_checks_catch_each_declared_mistake_at_every_seed(name, source, check):
    s = subject(name, source)
    passed = [seed for seed in range(20) if STATISTICAL_CHECKS[check](s, seed) is None]
    assert passed == []
