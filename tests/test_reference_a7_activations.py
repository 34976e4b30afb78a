"""The a7_activations reference against PyTorch: the activations against torch.sigmoid,
torch.tanh and torch.relu, the derivatives against autograd through them, layer_grad_norms
against a norm computed here from autograd; on many shapes, dtypes and extremes, on cpu and (with
a GPU) cuda. Plus the contract's promises: shape, dtype and device kept, inputs unchanged, no
built-in activation called, and gradients that never accumulate across calls."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from autograder.course import load_assignment, reference_namespace
from autograder.probes import CallRecorder

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
SHAPES = [(), (1,), (9,), (4, 5), (2, 3, 4), (1, 1, 1, 6), (0, 3)]
BUILTINS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
DERIVATIVES = {"sigmoid": "sigmoid_grad", "tanh": "tanh_grad", "relu": "relu_grad"}
EXTREMES = [-1000.0, -745.0, -710.0, -100.0, -89.0, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1e-3, 1.0,
            30.0, 89.0, 100.0, 710.0, 745.0, 1000.0]


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(load_assignment("a7_activations", SOLUTIONS))


def _z(shape, dtype, scale, seed, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    data = torch.randn(tuple(shape), generator=generator, dtype=torch.float64)
    return (data * scale).to(dtype).to(device)


def _tolerance(dtype):
    return {"rtol": 2e-6, "atol": 1e-7} if dtype == torch.float32 else {"rtol": 1e-13, "atol": 1e-15}


# --- the activations ----------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_activation_matches_torch(ref, name, shape, dtype, device):
    for seed, scale in enumerate([0.01, 1.0, 5.0, 50.0, 1000.0]):
        z = _z(shape, dtype, scale, seed, device)
        got = ref[name](z)
        assert got.shape == z.shape and got.dtype == dtype and got.device == z.device
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, BUILTINS[name](z), **_tolerance(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_activation_extremes(ref, name, dtype, device):
    z = torch.tensor(EXTREMES, dtype=dtype, device=device)
    got = ref[name](z)
    torch.testing.assert_close(got, BUILTINS[name](z), **_tolerance(dtype))
    if name != "relu":
        low, high = (0.0, 1.0) if name == "sigmoid" else (-1.0, 1.0)
        assert got[0].item() == low and got[-1].item() == high  # exactly, at |z| = 1000
        assert ((got >= low) & (got <= high)).all()


def test_tanh_is_odd_and_exact_near_zero(ref):
    z = torch.tensor([1e-30, 1e-12, 1e-6, 1e-3, 0.1], dtype=torch.float64)
    assert torch.equal(ref["tanh"](-z), -ref["tanh"](z))
    torch.testing.assert_close(ref["tanh"](z), torch.tanh(z), rtol=1e-15, atol=0.0)
    assert ref["tanh"](torch.tensor(0.0)).item() == 0.0 and ref["sigmoid"](torch.tensor(0.0)).item() == 0.5


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_activation_calls_no_builtin_and_leaves_z_alone(ref, name):
    z = _z((3, 4), torch.float32, 3.0, seed=5)
    before = z.clone()
    recorder = CallRecorder()
    with recorder:
        ref[name](z)
    assert torch.equal(z, before)
    assert not recorder.names & {"sigmoid", "tanh", "relu", "softplus", "special_expit", "hardtanh"}


def test_relu_of_negative_zero_and_of_ties(ref):
    z = torch.tensor([-0.0, 0.0, -1e-45, 1e-45, -3.0, 3.0])
    assert torch.equal(ref["relu"](z), torch.relu(z))


# --- the derivatives, from the output -----------------------------------------------------------

def _autograd_derivative(name, z):
    z = z.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(BUILTINS[name](z).sum(), z)
    return grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_derivative_from_output_matches_autograd(ref, name, shape, dtype, device):
    for seed, scale in enumerate([0.1, 1.0, 4.0, 30.0]):
        z = _z(shape, dtype, scale, seed + 10, device)
        a = BUILTINS[name](z)
        got = ref[DERIVATIVES[name]](a)
        assert got.shape == z.shape and got.dtype == dtype and got.device == z.device
        torch.testing.assert_close(got, _autograd_derivative(name, z), **_tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_derivatives_at_saturation_and_at_zero(ref, dtype):
    s = torch.tensor([0.0, 0.5, 1.0], dtype=dtype)
    assert ref["sigmoid_grad"](s).tolist() == [0.0, 0.25, 0.0]
    h = torch.tensor([-1.0, 0.0, 1.0, 0.5], dtype=dtype)
    assert ref["tanh_grad"](h).tolist() == [0.0, 1.0, 0.0, 0.75]
    r = torch.tensor([0.0, 1e-30, 2.0], dtype=dtype)
    assert ref["relu_grad"](r).tolist() == [0.0, 1.0, 1.0]
    assert ref["relu_grad"](r).dtype == dtype


def test_tanh_grad_is_not_the_course_notebooks_misprint(ref):
    h = torch.tensor([-1.0, -0.5, 0.5])
    assert not torch.allclose(ref["tanh_grad"](h), (1 - h) ** 2)
    torch.testing.assert_close(ref["tanh_grad"](h), torch.tensor([0.0, 0.75, 0.75]))


# --- layer_grad_norms ---------------------------------------------------------------------------

def _net(sizes, activation, dtype, device, seed, no_bias=()):
    torch.manual_seed(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(n_in, n_out, bias=i not in no_bias))
    return nn.Sequential(*layers).to(device=device, dtype=dtype)


def _expected_norms(model, x, y):
    """The norms by torch.autograd.grad, leaving .grad alone, in float64."""
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
    return [g.double().pow(2).sum().sqrt().item() for g in grads]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [nn.Sigmoid, nn.Tanh, nn.ReLU])
def test_layer_grad_norms_match_autograd(ref, activation, dtype, device):
    sizes = [6, 9, 9, 9, 4]
    model = _net(sizes, activation, dtype, device, seed=3)
    x = _z((15, 6), dtype, 1.0, seed=4, device=device)
    y = torch.randint(0, 4, (15,), generator=torch.Generator().manual_seed(5)).to(device)
    got = ref["layer_grad_norms"](model, x, y)
    assert type(got) is list and len(got) == 4 and all(type(v) is float for v in got)
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    assert got == pytest.approx(_expected_norms(model, x, y), rel=rtol)


def test_layer_grad_norms_do_not_accumulate(ref):
    model = _net([4, 6, 3], nn.ReLU, torch.float32, "cpu", seed=6)
    x = _z((8, 4), torch.float32, 1.0, seed=7)
    y = torch.arange(8) % 3
    first = ref["layer_grad_norms"](model, x, y)
    assert ref["layer_grad_norms"](model, x, y) == first
    (model(x) ** 2).mean().backward()  # gradients of another loss left behind
    assert ref["layer_grad_norms"](model, x, y) == pytest.approx(first, rel=1e-6)


def test_layer_grad_norms_skips_biases_and_keeps_the_order(ref):
    model = _net([3, 5, 4, 2], nn.Tanh, torch.float64, "cpu", seed=8, no_bias=(0, 2))
    x = _z((6, 3), torch.float64, 1.0, seed=9)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    assert ref["layer_grad_norms"](model, x, y) == pytest.approx(_expected_norms(model, x, y), rel=1e-12)


def test_deep_sigmoid_gradients_vanish_and_relu_ones_do_not(ref):
    """What the notebook shows: in a deep sigmoid net the first layer gets a far smaller gradient
    than the last; in the same net with ReLU it does not."""
    def deep(activation):
        model = _net([16] + [16] * 8 + [4], activation, torch.float64, "cpu", seed=11)
        for layer in model:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=(2 / layer.in_features) ** 0.5)
                nn.init.zeros_(layer.bias)
        return model

    x = _z((64, 16), torch.float64, 1.0, seed=12)
    y = torch.arange(64) % 4
    sigmoid = ref["layer_grad_norms"](deep(nn.Sigmoid), x, y)
    relu = ref["layer_grad_norms"](deep(nn.ReLU), x, y)
    assert sigmoid[0] < 1e-2 * sigmoid[-1]
    assert relu[0] > 1e-1 * relu[-1]
