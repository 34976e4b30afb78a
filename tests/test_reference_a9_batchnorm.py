"""The a9_batchnorm reference against PyTorch itself, and the checks against false failures.

batchnorm_forward is compared with ``nn.BatchNorm1d`` over sequences of training and evaluation
steps (several batch sizes, channel counts, momenta, eps and both float dtypes): the outputs,
the running buffers the layer carries from step to step, and the gradients. Then the checks'
own comparison (``compare_steps``, with the grader's tolerances) runs over many random inputs
on every correct variant of ``variants.py``: none may fail once, so the fixed seeds the checks
use cannot have been picked to hide a false failure. Finally each known mistake's message
names that mistake.

BNNet is compared with the same network written as one ``nn.Sequential`` (the oracle) and with
the network computed by hand, through the probe that loads weights into the layers it finds by
their sizes; every correct variant passes the comparison on many random depths and widths, and
each misplaced batch norm is named in its message.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from conftest import import_checks, variant_subject
from torch import nn

from autograder.checks import CheckFailed
from autograder.course import load_assignment, reference_namespace
from autograder.variants import variants_of

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
ASSIGNMENT = load_assignment("a9_batchnorm", SOLUTIONS)


checks = import_checks(ASSIGNMENT, "public_checks.py", "a9_public_checks")
hidden = import_checks(ASSIGNMENT, "hidden_checks.py", "a9_hidden_checks", public=checks)


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(ASSIGNMENT)["batchnorm_forward"]


subject = functools.partial(variant_subject, ASSIGNMENT)


VARIANTS = variants_of(ASSIGNMENT)
CORRECT = [("reference", None)] + [(v.name, v.source) for v in VARIANTS
                                   if v.exercise == "batchnorm_forward" and (v.correct or v.device == "cuda")]


def layer_like(c, *, momentum, eps, dtype, seed):
    """An nn.BatchNorm1d with random gamma, beta and running buffers, and copies of them."""
    torch.manual_seed(seed)
    bn = nn.BatchNorm1d(c, momentum=momentum, eps=eps).to(dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(c, dtype=dtype) * 0.7 + 1)
        bn.bias.copy_(torch.randn(c, dtype=dtype) * 0.5)
        bn.running_mean.copy_(torch.randn(c, dtype=dtype) * 0.5)
        bn.running_var.copy_(torch.rand(c, dtype=dtype) * 1.5 + 0.5)
    return bn


MODES = [True, True, False, True, False, False, True]
TOLERANCE = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}


# --- the reference against nn.BatchNorm1d ---------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [1e-5, 1e-3, 0.5])
@pytest.mark.parametrize("momentum", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize(("n", "c"), [(2, 1), (3, 4), (16, 33), (100, 5)])
def test_reference_follows_batchnorm1d_over_a_sequence(ref, n, c, momentum, eps, dtype):
    bn = layer_like(c, momentum=momentum, eps=eps, dtype=dtype, seed=n * 100 + c)
    gamma, beta = bn.weight.detach().clone(), bn.bias.detach().clone()
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    tolerance = TOLERANCE[dtype]
    for step, training in enumerate(MODES):
        x = torch.randn(n, c, dtype=dtype) * (step + 1) + step - 3
        bn.train(training)
        want = bn(x)
        y, mean, var = ref(x, gamma, beta, mean, var, training, momentum, eps)
        torch.testing.assert_close(y, want.detach(), **tolerance)
        torch.testing.assert_close(mean, bn.running_mean, **tolerance)
        torch.testing.assert_close(var, bn.running_var, **tolerance)
        assert y.dtype == mean.dtype == var.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("n", [2, 7, 64])
def test_reference_gradients_are_batchnorm1d_gradients(ref, n, training, dtype):
    bn = layer_like(6, momentum=0.1, eps=1e-5, dtype=dtype, seed=n)
    bn.train(training)
    x = torch.randn(n, 6, dtype=dtype) * 2 + 1
    upstream = torch.randn(n, 6, dtype=dtype)
    x_torch = x.clone().requires_grad_(True)
    (bn(x_torch) * upstream).sum().backward()
    x_ours = x.clone().requires_grad_(True)
    gamma = bn.weight.detach().clone().requires_grad_(True)
    beta = bn.bias.detach().clone().requires_grad_(True)
    y, _, _ = ref(x_ours, gamma, beta, bn.running_mean.clone(), bn.running_var.clone(), training)
    (y * upstream).sum().backward()
    tolerance = TOLERANCE[dtype]
    torch.testing.assert_close(x_ours.grad, x_torch.grad, **tolerance)
    torch.testing.assert_close(gamma.grad, bn.weight.grad, **tolerance)
    torch.testing.assert_close(beta.grad, bn.bias.grad, **tolerance)


def test_a_batch_of_one_is_refused_in_training_only(ref):
    bn = layer_like(3, momentum=0.1, eps=1e-5, dtype=torch.float32, seed=0)
    x = torch.randn(1, 3)
    with pytest.raises(ValueError):
        bn.train()(x)
    with pytest.raises(ValueError):
        ref(x, bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var, True)
    y, mean, var = ref(x, bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var, False)
    torch.testing.assert_close(y, bn.eval()(x).detach())
    assert torch.equal(mean, bn.running_mean) and torch.equal(var, bn.running_var)


def test_reference_leaves_its_arguments_and_keeps_the_running_statistics_out_of_the_graph(ref):
    x, gamma, beta = torch.randn(5, 2), torch.randn(2).requires_grad_(True), torch.randn(2)
    running_mean, running_var = torch.zeros(2), torch.ones(2)
    copies = [t.detach().clone() for t in (x, gamma, beta, running_mean, running_var)]
    y, mean, var = ref(x, gamma, beta, running_mean, running_var, True)
    for before, after in zip(copies, (x, gamma, beta, running_mean, running_var), strict=True):
        assert torch.equal(before, after)
    assert y.grad_fn is not None and mean.grad_fn is None and var.grad_fn is None


def test_the_oracle_is_batchnorm1d(ref):
    bn = layer_like(4, momentum=0.3, eps=1e-3, dtype=torch.float64, seed=5)
    x = torch.randn(9, 4, dtype=torch.float64)
    y, mean, var = hidden.batchnorm_by_torch(x, bn.weight.detach(), bn.bias.detach(),
                                             bn.running_mean, bn.running_var, True, 0.3, 1e-3)
    torch.testing.assert_close(y, bn.train()(x).detach())
    torch.testing.assert_close(mean, bn.running_mean)
    torch.testing.assert_close(var, bn.running_var)


# --- the checks never fail correct code ---------------------------------------------------------

SEEDS = range(40)


def random_case(seed):
    """A sequence of batches as the checks build them, with sizes, momentum, eps, dtype and
    spread drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    c = int(torch.randint(1, 12, (1,), generator=g))
    dtype = (torch.float32, torch.float64)[seed % 2]
    spread = (1.0, 1e-3, 10.0)[seed % 3] if dtype == torch.float64 else (1.0, 0.1, 5.0)[seed % 3]
    options = () if seed % 4 == 0 else (float(torch.rand(1, generator=g)), (1e-5, 1e-3, 0.2)[seed % 3])
    steps = [(int(torch.randint(2, 40, (1,), generator=g)), bool(torch.rand(1, generator=g) < 0.7))
             for _ in range(4)]
    xs = [checks.batch(n, c, seed=1000 * seed + k, dtype=dtype, spread=spread)
          for k, (n, _) in enumerate(steps)]
    params = checks.layer(c, seed=1000 * seed + 7, dtype=dtype)
    return xs, params, [mode for _, mode in steps], options


def gradient_case(seed, xs, params, modes):
    """The first batch of a case for a gradient comparison, in float64 as the checks compare
    gradients (a float32 gradient of gamma sums N products of rounded numbers: correct code
    written another way differs from the reference by more than float32's tolerance where a
    channel's spread is small beside its mean), with a fixed upstream gradient."""
    x = xs[0].double()
    upstream = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return x, tuple(p.double() for p in params), modes[0], upstream


@pytest.mark.parametrize(("name", "source"), CORRECT, ids=[n for n, _ in CORRECT])
def test_correct_code_passes_the_comparison_on_many_inputs(name, source):
    student, reference = subject(name, source), subject("reference")
    failures = []
    for seed in SEEDS:
        xs, params, modes, options = random_case(seed)
        try:
            checks.check_steps(student, reference, xs, params, modes, options)
            checks.check_gradients(student, reference, *gradient_case(seed, xs, params, modes), options)
        except CheckFailed as failure:
            failures.append((seed, str(failure)[:300]))
    assert failures == []


VALUE_MISTAKES = [(v.name, v.source) for v in VARIANTS if v.exercise == "batchnorm_forward"
                  and not v.correct and v.device is None
                  and not {"batchnorm_own_code", "batchnorm_keeps_dtype_and_device",
                           "batchnorm_batch_of_one"} >= set(v.must_fail)]


@pytest.mark.parametrize(("name", "source"), VALUE_MISTAKES, ids=[n for n, _ in VALUE_MISTAKES])
def test_the_comparison_on_random_inputs_is_not_vacuous(name, source):
    """The random cases above would catch real mistakes: each one in most of them."""
    student, reference = subject(name, source), subject("reference")
    caught = 0
    for seed in range(20):
        xs, params, modes, options = random_case(seed)
        try:
            checks.check_steps(student, reference, xs, params, modes, options)
            checks.check_gradients(student, reference, *gradient_case(seed, xs, params, modes), options)
        except CheckFailed:
            caught += 1
    assert caught >= 10


def batchnorm_by_torch_in_float64(x, gamma, beta, running_mean, running_var, training, momentum=0.1,
                                  eps=1e-5):
    """PyTorch's batch norm computed in float64 and rounded to the inputs' dtype. Its float32
    CPU kernel on one thread is itself off by 2e-5 where a channel's spread is small beside its
    mean (one of x (34, 11)'s values: 0.0838844 where the float64 result is 0.0839037 and the reference
    gives 0.0839063), more than the float32 tolerance: the oracle has to be exact."""
    inputs = (t.double() for t in (x, gamma, beta, running_mean, running_var))
    y, mean, var = hidden.batchnorm_by_torch(*inputs, training, momentum, eps)
    return y.to(x.dtype), mean.to(running_mean.dtype), var.to(running_var.dtype)


@pytest.mark.parametrize(("name", "source"), CORRECT, ids=[n for n, _ in CORRECT])
def test_correct_code_matches_batchnorm1d_itself(name, source):
    """Not only the reference: nn.BatchNorm1d playing the reference, too."""
    student = subject(name, source)
    torch_reference = subject("nn.BatchNorm1d", batchnorm_forward=batchnorm_by_torch_in_float64)
    for seed in range(10):
        xs, params, modes, options = random_case(seed)
        checks.check_steps(student, torch_reference, xs, params, modes, options)


# --- each mistake is named in its message -----------------------------------------------------------

DIAGNOSED = {
    "material_sqrt_of_std": ("test_batchnorm_training_output", checks.MISPRINT),
    "biased_variance_in_the_running_estimate": ("test_batchnorm_running_statistics", checks.BIASED_RUNNING),
    "unbiased_variance_to_normalise": ("test_batchnorm_training_output", checks.UNBIASED_FOR_Y),
    "momentum_the_wrong_way_round": ("test_batchnorm_running_statistics", checks.MOMENTUM_SWAPPED),
    "batch_statistics_in_evaluation": ("test_batchnorm_evaluation", checks.BATCH_IN_EVAL),
    "running_statistics_not_updated": ("test_batchnorm_running_statistics", checks.NOT_UPDATED),
    "eps_forgotten": ("test_batchnorm_eps_matters", checks.NO_EPS),
    "standard_deviation_in_the_running_variance": ("test_batchnorm_running_statistics",
                                                   checks.STD_IN_RUNNING),
    "statistics_detached_from_the_graph": ("test_batchnorm_gradients", checks.GRAPH_HINT),
    "statistics_over_the_wrong_dim": ("test_batchnorm_training_output", "take the statistics over dim 0"),
    "no_error_for_a_batch_of_one": ("test_batchnorm_batch_of_one", "must raise ValueError"),
    "calls_functional_batch_norm": ("test_batchnorm_own_code", "calls the built-in batch_norm"),
}


@pytest.mark.parametrize("name", sorted(DIAGNOSED))
def test_each_mistake_gets_a_message_that_names_it(name):
    source = next(v.source for v in VARIANTS if v.name == name)
    check_name, text = DIAGNOSED[name]
    module = checks if hasattr(checks, check_name) else hidden
    fn = getattr(module, check_name)
    kwargs = {"student": subject(name, source), "device": "cpu"}
    if "reference" in fn.__code__.co_varnames[:fn.__code__.co_argcount]:
        kwargs["reference"] = subject("reference")
    with pytest.raises(CheckFailed) as failure:
        fn(**kwargs)
    assert text in str(failure.value)


# --- BNNet ----------------------------------------------------------------------------------------

NET_CORRECT = [("reference", None)] + [(v.name, v.source) for v in VARIANTS
                                       if v.exercise == "bn_net" and v.correct]


def distinct_widths(seed):
    """Layer widths, all different (the probe finds layers by their sizes), 2 to 5 of them."""
    g = torch.Generator().manual_seed(seed)
    depth = int(torch.randint(2, 6, (1,), generator=g))
    return [int(w) + 2 for w in torch.randperm(14, generator=g)[:depth]]


def net_case(seed):
    layers = distinct_widths(seed)
    dtype = (torch.float32, torch.float64)[seed % 2]
    weights = checks.net_weights(layers, seed=100 * seed, dtype=dtype)
    modes = [True, True, False, True, False]
    xs = [checks.batch(int(n), layers[0], seed=100 * seed + k, dtype=dtype)
          for k, n in enumerate(torch.randint(2, 30, (len(modes),),
                                              generator=torch.Generator().manual_seed(seed)))]
    return layers, weights, xs, modes, str(dtype).removeprefix("torch.")


@pytest.mark.parametrize("seed", range(8))
def test_reference_net_is_the_sequential_oracle(seed):
    layers, weights, xs, modes, dtype = net_case(seed)
    ours = subject("reference").run("bnnet_run", layers, *weights, xs, modes, dtype, "cpu").unwrap()
    oracle = subject("oracle", BNNet=hidden.BNNetAsSequential)
    theirs = oracle.run("bnnet_run", layers, *weights, xs, modes, dtype, "cpu").unwrap()
    tolerance = TOLERANCE[getattr(torch, dtype)]
    for a, b in zip(ours["outputs"], theirs["outputs"], strict=True):
        torch.testing.assert_close(a, b, **tolerance)
    for a, b in zip(ours["running"], theirs["running"], strict=True):
        torch.testing.assert_close(a, b, **tolerance)


def test_the_probe_loads_weights_into_the_layers_it_finds():
    """What the probe computes is the network the weights describe, by hand."""
    layers = [3, 5, 2]
    linears, norms = checks.net_weights(layers, seed=7, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64)
    got = subject("reference").run("bnnet_run", layers, linears, norms, [x], [True], "float64",
                                   "cpu").unwrap()
    h = x @ linears[0]["weight"].T + linears[0]["bias"]
    h = norms[0]["gamma"] * (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5) + norms[0]["beta"]
    want = torch.relu(h) @ linears[1]["weight"].T + linears[1]["bias"]
    torch.testing.assert_close(got["outputs"][0], want)


@pytest.mark.parametrize(("name", "source"), NET_CORRECT, ids=[n for n, _ in NET_CORRECT])
def test_correct_networks_pass_the_comparison_on_many_shapes(name, source):
    student, reference = subject(name, source), subject("reference")
    failures = []
    for seed in range(20):
        layers, weights, xs, modes, dtype = net_case(seed)
        try:
            got = checks.run_net(student, layers, weights, xs, modes, dtype=dtype)
            want = checks.run_net(reference, layers, weights, xs, modes, dtype=dtype)
            for step in range(len(xs)):
                checks.assert_close(got["outputs"][step], want["outputs"][step], what=f"step {step}")
            checks.assert_close(got["running"], want["running"], what="running statistics")
        except CheckFailed as failure:
            failures.append((seed, layers, str(failure)[:300]))
    assert failures == []


NET_DIAGNOSED = {
    "batch_norm_after_the_activation": ("test_bn_net_training_forward", checks.AFTER_ACTIVATION),
    "norms_never_applied": ("test_bn_net_training_forward", checks.NO_NORM),
    "batch_norm_on_the_output_layer_too": ("test_bn_net_training_forward", checks.OUTPUT_NORMALISED),
    "layers_in_a_python_list": ("test_bn_net_training_forward", "a plain Python list"),
    "batch_statistics_in_eval_mode_too": ("test_bn_net_evaluation", checks.EVAL_HINT),
}


@pytest.mark.parametrize("name", sorted(NET_DIAGNOSED))
def test_each_network_mistake_gets_a_message_that_names_it(name):
    source = next(v.source for v in VARIANTS if v.name == name)
    check_name, text = NET_DIAGNOSED[name]
    with pytest.raises(CheckFailed) as failure:
        getattr(checks, check_name)(subject(name, source), subject("reference"), "cpu")
    assert text in str(failure.value)
