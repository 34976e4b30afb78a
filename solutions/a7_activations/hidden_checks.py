"""Hidden checks for a7_activations: run by `grade`, never shipped to students."""

import torch

from autograder.checks import check, oracle, randn

from public_checks import (  # helpers shared with the public checks
    ACCUMULATE_HINT,
    AT_ZERO_HINT,
    MISPRINT_HINT,
    NORMS_HINT,
    RELU_GRAD_HINT,
    SIGMOID_GRAD_HINT,
    SIGMOID_HINT,
    TANH_GRAD_HINT,
    TANH_HINT,
    batch,
    compare_activation,
    compare_grad,
    compare_norms,
    describe,
    network,
    run_norms,
    tanh_mistakes,
)

SHAPE_HINT = ("Work element by element, whatever the shape: tensor operations, no loop over the "
              "first dimension, no flattening without reshaping back.")
SHAPES = [(7,), (2, 3, 4), (), (1, 1, 5)]


def derivative_by_autograd(activation, inverse):
    """The derivative of ``activation`` at z = inverse(a), by autograd, given its output a."""
    def derivative(a):
        z = inverse(a.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(activation(z).sum(), z)
        return grad
    return derivative


# grade build checks that the reference agrees with these on every value check's inputs
oracle("sigmoid", torch.sigmoid)
oracle("tanh", torch.tanh)
oracle("relu", torch.relu)
oracle("sigmoid_grad", derivative_by_autograd(torch.sigmoid, torch.logit))
oracle("tanh_grad", derivative_by_autograd(torch.tanh, torch.atanh))
oracle("relu_grad", derivative_by_autograd(torch.relu, lambda r: r))


def _name(dtype):
    return str(dtype).removeprefix("torch.")


# --- the activations ----------------------------------------------------------------------------

def _any_shape(student, reference, name, device, seed):
    for i, shape in enumerate(SHAPES):
        for dtype in (torch.float32, torch.float64):
            z = randn(*shape, seed=seed + i, scale=3.0, dtype=dtype, device=device)
            compare_activation(student, reference, name, z,
                               what=f"{name}(z) for a {_name(dtype)} z of shape {shape}",
                               hint=SHAPE_HINT)


@check("sigmoid", points=0.5)
def test_sigmoid_any_shape(student, reference, device):
    _any_shape(student, reference, "sigmoid", device, seed=901)


@check("sigmoid", points=0.5)
def test_sigmoid_float64_extremes(student, reference, device):
    z = torch.tensor([-1000.0, -745.0, -709.0, -40.0, -1e-8, 0.0, 1e-8, 40.0, 709.0, 745.0, 1000.0],
                     dtype=torch.float64, device=device)
    compare_activation(student, reference, "sigmoid", z,
                       what="sigmoid(z) for a float64 z beyond exp's range (e^710 = inf)",
                       hint=SIGMOID_HINT)


@check("tanh", points=0.5)
def test_tanh_any_shape(student, reference, device):
    _any_shape(student, reference, "tanh", device, seed=911)


@check("tanh", points=0.5)
def test_tanh_float64_extremes(student, reference, device):
    z = torch.tensor([-1000.0, -710.0, -355.0, -30.0, -1e-8, 0.0, 1e-8, 1e-3, 30.0, 355.0, 710.0,
                      1000.0], dtype=torch.float64, device=device)
    compare_activation(student, reference, "tanh", z,
                       what="tanh(z) for a float64 z beyond exp's range (e^710 = inf)",
                       hint=TANH_HINT, mistakes=tanh_mistakes(z))


@check("relu", points=0.5)
def test_relu_any_shape(student, reference, device):
    _any_shape(student, reference, "relu", device, seed=921)


# --- the derivatives ----------------------------------------------------------------------------

@check("sigmoid_grad", points=1)
def test_sigmoid_grad_saturated_float64_and_shapes(student, reference, device):
    s = torch.tensor([0.0, 1e-12, 0.01, 0.25, 0.5, 0.75, 0.99, 1 - 1e-12, 1.0],
                     dtype=torch.float64, device=device)
    compare_grad(student, reference, "sigmoid_grad", s,
                 what="sigmoid_grad(s) for float64 s from 0 to 1 (saturated units included)",
                 hint=SIGMOID_GRAD_HINT)
    for i, shape in enumerate(SHAPES):
        s = torch.sigmoid(randn(*shape, seed=931 + i, scale=3.0, device=device))
        compare_grad(student, reference, "sigmoid_grad", s,
                     what=f"sigmoid_grad(s) for a float32 s of shape {shape}",
                     hint=f"{SHAPE_HINT} {SIGMOID_GRAD_HINT}")


@check("tanh_grad", points=1)
def test_tanh_grad_saturated_float64_and_shapes(student, reference, device):
    h = torch.tensor([-1.0, -0.999, -0.5, -1e-9, 0.0, 0.3, 0.5, 0.999, 1.0],
                     dtype=torch.float64, device=device)
    compare_grad(student, reference, "tanh_grad", h,
                 what="tanh_grad(h) for float64 h from -1 to 1 (saturated units included)",
                 hint=TANH_GRAD_HINT, mistakes=[((1 - h) ** 2, MISPRINT_HINT)])
    for i, shape in enumerate(SHAPES):
        h = torch.tanh(randn(*shape, seed=941 + i, scale=2.0, device=device))
        compare_grad(student, reference, "tanh_grad", h,
                     what=f"tanh_grad(h) for a float32 h of shape {shape}",
                     hint=f"{SHAPE_HINT} {TANH_GRAD_HINT}")


@check("relu_grad", points=1)
def test_relu_grad_float64_and_shapes(student, reference, device):
    r = torch.tensor([0.0, 1e-300, 1e-30, 0.5, 0.0, 1.0, 2.5, 1e6], dtype=torch.float64, device=device)
    compare_grad(student, reference, "relu_grad", r,
                 what="relu_grad(r) for float64 r with exact zeros, tiny and large values",
                 hint=RELU_GRAD_HINT, mistakes=[(torch.ones_like(r), AT_ZERO_HINT)])
    for i, shape in enumerate(SHAPES):
        r = torch.clamp(randn(*shape, seed=951 + i, device=device), min=0)
        compare_grad(student, reference, "relu_grad", r,
                     what=f"relu_grad(r) for a float32 r of shape {shape}",
                     hint=f"{SHAPE_HINT} {RELU_GRAD_HINT}")


# --- layer_grad_norms ---------------------------------------------------------------------------

@check("layer_grad_norms", points=1)
def test_layer_grad_norms_deep_sigmoid_float64(student, reference, device):
    sizes = [6, 10, 10, 10, 10, 10, 4]
    dtype = torch.float64
    layers = network(sizes, "sigmoid", seed=961, dtype=dtype, device=device)
    x, y = batch(20, 6, 4, seed=971, dtype=dtype, device=device)
    what = f"layer_grad_norms(model, x, y) for {describe(sizes, 'Sigmoid', dtype)}"
    got = run_norms(student, layers, x, y, what=what)["results"][0]
    want = reference.run("grad_norms", layers, x, y).unwrap()["results"][0]
    compare_norms(got, want, dtype, what=what, hint=NORMS_HINT, batch_size=20)


@check("layer_grad_norms", points=0.5)
def test_layer_grad_norms_after_another_backward(student, reference, device):
    sizes = [5, 7, 3]
    layers = network(sizes, "relu", seed=981, device=device)
    x, y = batch(9, 5, 3, seed=991, device=device)
    what = (f"layer_grad_norms(model, x, y) for {describe(sizes, 'ReLU', torch.float32)} whose "
            ".grad already held the gradients of another loss")
    got = run_norms(student, layers, x, y, stale=True, what=what)["results"][0]
    want = reference.run("grad_norms", layers, x, y, stale=True).unwrap()["results"][0]
    compare_norms(got, want, torch.float32, what=what, batch_size=9,
                  hint=ACCUMULATE_HINT + " Clearing them after the backward pass is too late: "
                       "the model may come with gradients left from elsewhere (a training step).")


@check("layer_grad_norms", points=0.5)
def test_layer_grad_norms_layers_without_bias(student, reference, device):
    sizes = [4, 6, 5, 3]
    layers = network(sizes, "tanh", seed=1001, device=device, no_bias=(0, 2))
    x, y = batch(8, 4, 3, seed=1011, device=device)
    what = (f"layer_grad_norms(model, x, y) for {describe(sizes, 'Tanh', torch.float32)}, the "
            "first and last created with bias=False")
    got = run_norms(student, layers, x, y, what=what)["results"][0]
    want = reference.run("grad_norms", layers, x, y).unwrap()["results"][0]
    compare_norms(got, want, torch.float32, what=what, batch_size=8,
                  hint="A layer built with bias=False has a weight and no bias, so the model's "
                       "parameters do not alternate weight, bias: pick the nn.Linear modules and "
                       "read their .weight. " + NORMS_HINT)
