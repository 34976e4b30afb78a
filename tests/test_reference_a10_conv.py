"""The a10_conv reference against PyTorch itself, and the checks against false failures.

conv2d and max_pool2d are compared with ``F.conv2d`` and ``F.max_pool2d`` (values and gradients)
over random batches, channel counts, kernels, strides and paddings in both float dtypes, and
layer_shapes with the same layers built as ``nn`` modules (the hidden checks' oracle). Then the
checks' own comparisons (``check_conv``, ``check_pool``, ``check_gradients``, ``check_shapes``,
with the grader's tolerances) run over many random cases on every correct variant of
``variants.py``, with the reference and with PyTorch playing the reference: none may fail once,
so the fixed seeds the checks use cannot have been picked to hide a false failure. The same
random cases catch each wrong variant most of the time, and each known mistake's message names
that mistake.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from conftest import import_checks, variant_subject
from torch.nn import functional as F

from autograder.checks import CheckFailed
from autograder.course import load_assignment, reference_namespace
from autograder.variants import variants_of

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
ASSIGNMENT = load_assignment("a10_conv", SOLUTIONS)

checks = import_checks(ASSIGNMENT, "public_checks.py", "a10_public_checks")
hidden = import_checks(ASSIGNMENT, "hidden_checks.py", "a10_hidden_checks", public=checks)

TOLERANCE = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}
SEEDS = range(20)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tensors this small gain nothing from threads, and two workers with a thread pool each
    on a busy machine run several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(ASSIGNMENT)


subject = functools.partial(variant_subject, ASSIGNMENT)


VARIANTS = variants_of(ASSIGNMENT)


def correct(exercise):
    found = [("reference", None)] + [(v.name, v.source) for v in VARIANTS
                                     if v.exercise == exercise and (v.correct or v.device == "cuda")]
    return pytest.mark.parametrize(("name", "source"), found, ids=[n for n, _ in found])


def value_mistakes(exercise, properties):
    found = [(v.name, v.source) for v in VARIANTS if v.exercise == exercise and not v.correct
             and v.device is None and not set(properties) >= set(v.must_fail)]
    return pytest.mark.parametrize(("name", "source"), found, ids=[n for n, _ in found])


# --- random cases -----------------------------------------------------------------------------------

def conv_case(seed):
    """x, weight, bias (or None), stride, padding: the kernel fits in the padded input."""
    g = torch.Generator().manual_seed(seed)

    def pick(low, high):
        return int(torch.randint(low, high + 1, (1,), generator=g))

    dtype = (torch.float32, torch.float64)[seed % 2]
    n, c_in, c_out = pick(1, 3), pick(1, 4), pick(1, 4)
    kh, kw, stride, padding = pick(1, 4), pick(1, 4), pick(1, 3), pick(0, 2)
    h, w = pick(max(1, kh - 2 * padding), 9), pick(max(1, kw - 2 * padding), 9)
    x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64).to(dtype)
    weight = torch.randn(c_out, c_in, kh, kw, generator=g, dtype=torch.float64).to(dtype)
    bias = None if seed % 3 == 0 else torch.randn(c_out, generator=g, dtype=torch.float64).to(dtype)
    return x, weight, bias, stride, padding


def pool_case(seed):
    """x, kernel_size, stride (None for a third of the cases): the window fits."""
    g = torch.Generator().manual_seed(1000 + seed)

    def pick(low, high):
        return int(torch.randint(low, high + 1, (1,), generator=g))

    dtype = (torch.float32, torch.float64)[seed % 2]
    k = pick(1, 4)
    stride = None if (seed // 2) % 2 == 0 else pick(1, 3)
    x = torch.randn(pick(1, 3), pick(1, 4), pick(k, 8), pick(k, 8), generator=g,
                    dtype=torch.float64).to(dtype)
    return x, k, stride


def network_case(seed):
    """An input shape and a random valid network: conv/pool blocks, flatten, linear layers."""
    g = torch.Generator().manual_seed(2000 + seed)

    def pick(low, high):
        return int(torch.randint(low, high + 1, (1,), generator=g))

    n, c, h, w = pick(1, 8), pick(1, 3), pick(6, 24), pick(6, 24)
    shape = (n, c, h, w)
    layers = []
    for _ in range(pick(1, 4)):
        if pick(0, 2):
            k, s, p = pick(1, 5), pick(1, 3), pick(0, 2)
            if min(h, w) + 2 * p < k:
                continue
            layers.append(("conv", pick(1, 16), k, s, p))
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        else:
            k = pick(1, 3)
            s = None if pick(0, 2) else pick(1, 3)
            if min(h, w) < k:
                continue
            layers.append(("pool", k, s))
            h, w = (h - k) // (s or k) + 1, (w - k) // (s or k) + 1
        if pick(0, 1):
            layers.append(("relu",))
    layers.append(("flatten",))
    for _ in range(pick(1, 2)):
        layers.append(("linear", pick(1, 20)))
    return shape, layers


# --- the reference against PyTorch -------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_reference_conv2d_is_functional_conv2d(ref, seed):
    x, weight, bias, stride, padding = conv_case(seed)
    leaves = [t.clone().requires_grad_(True) for t in (x, weight)] + (
        [] if bias is None else [bias.clone().requires_grad_(True)])
    ours = ref["conv2d"](leaves[0], leaves[1], leaves[2] if bias is not None else None, stride, padding)
    want = F.conv2d(x, weight, bias, stride, padding)
    torch.testing.assert_close(ours, want, **TOLERANCE[x.dtype])
    upstream = torch.randn(want.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad((ours * upstream).sum(), leaves)
    torch_leaves = [t.clone().requires_grad_(True) for t in (x, weight)] + (
        [] if bias is None else [bias.clone().requires_grad_(True)])
    torch_out = F.conv2d(*torch_leaves[:2], torch_leaves[2] if bias is not None else None, stride, padding)
    torch_grads = torch.autograd.grad((torch_out * upstream).sum(), torch_leaves)
    for got, expected in zip(grads, torch_grads, strict=True):
        torch.testing.assert_close(got, expected, **TOLERANCE[x.dtype])


@pytest.mark.parametrize("seed", range(30))
def test_reference_max_pool2d_is_functional_max_pool2d(ref, seed):
    x, k, stride = pool_case(seed)
    leaf, torch_leaf = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, want = ref["max_pool2d"](leaf, k, stride), F.max_pool2d(torch_leaf, k, stride)
    assert ours.dtype == x.dtype
    torch.testing.assert_close(ours, want, rtol=0, atol=0)
    upstream = torch.randn(want.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(seed))
    (ours * upstream).sum().backward()
    (want * upstream).sum().backward()
    torch.testing.assert_close(leaf.grad, torch_leaf.grad, **TOLERANCE[x.dtype])


@pytest.mark.parametrize("seed", range(30))
def test_reference_layer_shapes_is_what_nn_modules_produce(ref, seed):
    shape, layers = network_case(seed)
    assert ref["layer_shapes"](shape, layers) == hidden.layer_shapes_by_torch(shape, layers)


def test_the_oracles_are_the_nn_layers():
    x = torch.randn(2, 3, 7, 6)
    conv = torch.nn.Conv2d(3, 4, (3, 2), stride=2, padding=1)
    torch.testing.assert_close(hidden.conv2d_by_torch(x, conv.weight, conv.bias, 2, 1), conv(x))
    torch.testing.assert_close(hidden.max_pool2d_by_torch(x, 3), torch.nn.MaxPool2d(3)(x))
    assert hidden.layer_shapes_by_torch((5, 1, 8, 8), checks.DIGITS_CNN) == [
        (5, 4, 8, 8), (5, 4, 8, 8), (5, 4, 4, 4), (5, 8, 4, 4), (5, 8, 4, 4), (5, 8, 2, 2),
        (5, 32), (5, 10)]


# --- correct code passes the checks' comparisons on many inputs -----------------------------------------

TORCH = subject("pytorch", conv2d=hidden.conv2d_by_torch, max_pool2d=hidden.max_pool2d_by_torch,
                layer_shapes=hidden.layer_shapes_by_torch)


def run_conv_case(student, reference, seed):
    x, weight, bias, stride, padding = conv_case(seed)
    checks.check_conv(student, reference, x, weight, bias, stride, padding)
    if seed % 4 == 0:
        args = (x.double(), weight.double(), None if bias is None else bias.double(), stride, padding)
        wrt = (0, 1) if bias is None else (0, 1, 2)
        checks.check_gradients(student, reference, "conv2d", args, wrt, "conv2d", "")


def run_pool_case(student, reference, seed):
    x, k, stride = pool_case(seed)
    checks.check_pool(student, reference, x, k, stride)
    if seed % 4 == 0:
        args = (x.double(), k) if stride is None else (x.double(), k, stride)
        checks.check_gradients(student, reference, "max_pool2d", args, (0,), "max_pool2d", "")


def run_network_case(student, reference, seed):
    shape, layers = network_case(seed)
    checks.check_shapes(student, reference, shape, layers)


RUNNERS = {"conv2d": run_conv_case, "max_pool2d": run_pool_case, "layer_shapes": run_network_case}


def failures_of(name, source, exercise, reference, seeds=SEEDS):
    student = subject(name, source)
    failures = []
    for seed in seeds:
        try:
            RUNNERS[exercise](student, reference, seed)
        except CheckFailed as failure:
            failures.append((seed, str(failure)[:300]))
    return failures


@correct("conv2d")
def test_correct_conv2d_passes_the_comparison_on_many_inputs(name, source):
    assert failures_of(name, source, "conv2d", subject("reference")) == []
    assert failures_of(name, source, "conv2d", TORCH, range(8)) == []


@correct("max_pool2d")
def test_correct_max_pool2d_passes_the_comparison_on_many_inputs(name, source):
    assert failures_of(name, source, "max_pool2d", subject("reference")) == []
    assert failures_of(name, source, "max_pool2d", TORCH, range(8)) == []


@correct("layer_shapes")
def test_correct_layer_shapes_passes_the_comparison_on_many_networks(name, source):
    assert failures_of(name, source, "layer_shapes", subject("reference")) == []
    assert failures_of(name, source, "layer_shapes", TORCH, range(8)) == []


# --- the random cases are not vacuous ---------------------------------------------------------------------

@value_mistakes("conv2d", {"conv2d_own_code", "conv2d_keeps_dtype_and_device", "conv2d_gradients"})
def test_random_cases_catch_each_conv2d_mistake(name, source):
    assert len(failures_of(name, source, "conv2d", subject("reference"), range(12))) >= 4


@value_mistakes("max_pool2d", {"max_pool2d_own_code", "max_pool2d_keeps_dtype_and_device",
                               "max_pool2d_gradient", "max_pool2d_gradient_default_stride"})
def test_random_cases_catch_each_max_pool2d_mistake(name, source):
    assert len(failures_of(name, source, "max_pool2d", subject("reference"), range(12))) >= 3


@value_mistakes("layer_shapes", set())
def test_random_cases_catch_each_layer_shapes_mistake(name, source):
    """Random networks seldom hold the layer a mistake is about (a pool with stride None):
    at least a few of them do."""
    assert len(failures_of(name, source, "layer_shapes", subject("reference"), range(12))) >= 2


# --- each mistake is named in its message -------------------------------------------------------------

DIAGNOSED = {
    ("conv2d", "material_ceil_output_size"): ("test_conv2d_stride_and_padding", checks.CEIL),
    ("conv2d", "flipped_kernel"): ("test_conv2d_one_channel", checks.FLIPPED),
    ("conv2d", "bias_added_per_input_channel"): ("test_conv2d_several_channels", checks.BIAS_PER_INPUT),
    ("conv2d", "ignores_padding"): ("test_conv2d_stride_and_padding", checks.NO_PADDING),
    ("conv2d", "first_input_channel_only"): ("test_conv2d_several_channels", checks.ONE_INPUT_CHANNEL),
    ("conv2d", "values_through_numpy"): ("test_conv2d_gradients", "no autograd history"),
    ("conv2d", "float32_output"): ("test_conv2d_keeps_dtype_and_device", "keep the input's dtype"),
    ("conv2d", "calls_functional_conv2d"): ("test_conv2d_own_code", "calls the built-in conv2d"),
    ("max_pool2d", "stride_defaults_to_one"): ("test_max_pool2d_default_stride", checks.POOL_STRIDE_ONE),
    ("max_pool2d", "material_ceil_output_size"): ("test_max_pool2d_drops_incomplete_windows", checks.CEIL),
    ("max_pool2d", "running_max_starts_at_zero"): ("test_max_pool2d_overlapping_negative_windows",
                                                   checks.ZERO_START),
    ("max_pool2d", "average_instead_of_max"): ("test_max_pool2d_default_stride", checks.AVERAGE),
    ("max_pool2d", "max_over_channels_too"): ("test_max_pool2d_default_stride", checks.OVER_CHANNELS),
    ("max_pool2d", "detached_values"): ("test_max_pool2d_gradient", "no autograd history"),
    ("max_pool2d", "calls_functional_max_pool2d"): ("test_max_pool2d_own_code",
                                                    "calls the built-in max_pool2d"),
    ("max_pool2d", "float32_output"): ("test_max_pool2d_keeps_dtype_and_device", "keep the input's dtype"),
    ("layer_shapes", "material_ceil_output_size"): ("test_layer_shapes_strides_that_do_not_divide",
                                                    checks.CEIL),
    ("layer_shapes", "pool_stride_defaults_to_one"): ("test_layer_shapes_digits_cnn", checks.POOL_STRIDE_ONE),
    ("layer_shapes", "flatten_forgets_the_channels"): ("test_layer_shapes_digits_cnn",
                                                       "Multiply the channels in too"),
    ("layer_shapes", "flatten_includes_the_batch"): ("test_layer_shapes_digits_cnn",
                                                     "Flatten keeps the batch dimension"),
    ("layer_shapes", "conv_forgets_padding"): ("test_layer_shapes_digits_cnn", checks.NO_PADDING),
    ("layer_shapes", "conv_keeps_the_input_channels"): ("test_layer_shapes_digits_cnn",
                                                        "out_channels channels, one per kernel"),
}


def test_every_wrong_variant_has_its_message_tested():
    wrong = {(v.exercise, v.name) for v in VARIANTS if not v.correct and v.device is None}
    assert wrong == set(DIAGNOSED)


@pytest.mark.parametrize(("exercise", "name"), sorted(DIAGNOSED),
                         ids=[f"{e}:{n}" for e, n in sorted(DIAGNOSED)])
def test_each_mistake_gets_a_message_that_names_it(exercise, name):
    source = next(v.source for v in VARIANTS if v.exercise == exercise and v.name == name)
    check_name, text = DIAGNOSED[(exercise, name)]
    fn = getattr(checks, check_name, None) or getattr(hidden, check_name)
    kwargs = {"student": subject(name, source)}
    arguments = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    if "reference" in arguments:
        kwargs["reference"] = subject("reference")
    if "device" in arguments:
        kwargs["device"] = "cpu"
    with pytest.raises(CheckFailed) as failure:
        fn(**kwargs)
    assert text in str(failure.value)
