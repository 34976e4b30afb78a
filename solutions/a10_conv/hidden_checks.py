"""Hidden checks for a10_conv: run by `grade`, never shipped to students."""

import torch
from torch import nn
from torch.nn import functional as F

from autograder.checks import assert_same_kind, check, oracle, randn

from public_checks import (  # helpers shared with the public checks
    CONV_HINT,
    POOL_HINT,
    answer,
    check_conv,
    check_gradients,
    check_pool,
    check_shapes,
    conv_signature,
    pool_signature,
)


def conv2d_by_torch(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride, padding)


def max_pool2d_by_torch(x, kernel_size, stride=None):
    return F.max_pool2d(x, kernel_size, stride)


def layer_shapes_by_torch(input_shape, layers):
    """Build the layers as nn modules on the meta device (no memory, no arithmetic) and run a
    tensor of ``input_shape`` through them."""
    h = torch.empty(input_shape, device="meta")
    shapes = []
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            module = nn.Conv2d(h.shape[1], layer[1], layer[2], layer[3], layer[4], device="meta")
        elif kind == "pool":
            module = nn.MaxPool2d(layer[1], layer[2])
        elif kind == "relu":
            module = nn.ReLU()
        elif kind == "flatten":
            module = nn.Flatten()
        else:
            module = nn.Linear(h.shape[1], layer[1], device="meta")
        h = module(h)
        shapes.append(tuple(h.shape))
    return shapes


# grade build checks that the reference agrees with them on every value check's inputs
oracle("conv2d", conv2d_by_torch)
oracle("max_pool2d", max_pool2d_by_torch)
oracle("layer_shapes", layer_shapes_by_torch)


@check("conv2d", points=1.5)
def test_conv2d_other_shapes_float64(student, reference, device):
    """float64, no bias; a 1x1 kernel, a kernel as large as the padded input, stride 3 with
    padding 2, a wide kernel on a tall image."""
    cases = [((3, 4, 5, 5), (2, 4, 1, 1), 1, 0), ((2, 2, 4, 3), (3, 2, 6, 5), 1, 1),
             ((1, 3, 9, 10), (2, 3, 4, 3), 3, 2), ((2, 1, 11, 4), (5, 1, 2, 4), 2, 0)]
    for k, (x_shape, w_shape, stride, padding) in enumerate(cases):
        x = randn(*x_shape, seed=3001 + 10 * k, dtype=torch.float64, device=device)
        weight = randn(*w_shape, seed=3002 + 10 * k, dtype=torch.float64, device=device)
        check_conv(student, reference, x, weight, None, stride, padding)
        bias = randn(w_shape[0], seed=3003 + 10 * k, dtype=torch.float64, device=device)
        check_conv(student, reference, x, weight, bias, stride, padding)


@check("conv2d", points=0.5, kind="property")
def test_conv2d_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        x = randn(2, 2, 5, 4, seed=3101, dtype=dtype, device=device)
        weight = randn(3, 2, 2, 2, seed=3102, dtype=dtype, device=device)
        bias = randn(3, seed=3103, dtype=dtype, device=device)
        what = conv_signature(x, weight, bias, 1, 1)
        got = answer(student.outcome("conv2d", x, weight, bias, 1, 1), what, CONV_HINT)
        assert_same_kind(got, x, what=what,
                         hint="Create every tensor you need with x's dtype and device "
                              "(x.new_zeros(...), torch.zeros(..., dtype=x.dtype, device=x.device)).")


@check("max_pool2d", points=1.5)
def test_max_pool2d_other_shapes_float64(student, reference, device):
    """float64; kernel 3 stride 2 (a row of incomplete windows), kernel 1, a kernel as large
    as the image, a tall thin image."""
    for k, (shape, kernel_size, stride) in enumerate([((2, 3, 8, 7), 3, 2), ((1, 2, 3, 4), 1, None),
                                                      ((2, 2, 4, 4), 4, None), ((1, 1, 9, 3), 3, 1)]):
        x = randn(*shape, seed=3201 + k, dtype=torch.float64, device=device)
        check_pool(student, reference, x, kernel_size, stride)


@check("max_pool2d", points=0.5)
def test_max_pool2d_gradient_default_stride(student, reference, device):
    x = randn(2, 1, 4, 6, seed=3301, dtype=torch.float64, device=device)
    check_gradients(student, reference, "max_pool2d", (x, 2), (0,), pool_signature(x, 2, None),
                    POOL_HINT)


@check("max_pool2d", points=0.5, kind="property")
def test_max_pool2d_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        x = randn(1, 2, 4, 4, seed=3401, dtype=dtype, device=device)
        what = pool_signature(x, 2, None)
        got = answer(student.outcome("max_pool2d", x, 2), what, POOL_HINT)
        assert_same_kind(got, x, what=what,
                         hint="Keep x's dtype and device: take the maximum of x's own values.")


@check("layer_shapes", points=2)
def test_layer_shapes_other_networks(student, reference):
    """A network that starts with pooling, one with padding 2 and a 5x5 kernel, a batch of one,
    and a network ending in two linear layers."""
    check_shapes(student, reference, (1, 3, 32, 32),
                 [("pool", 2, None), ("conv", 16, 5, 1, 2), ("relu",), ("pool", 3, 2),
                  ("conv", 32, 3, 2, 1), ("relu",), ("flatten",), ("linear", 64), ("relu",),
                  ("linear", 10)])
    check_shapes(student, reference, (7, 2, 10, 13),
                 [("conv", 3, 4, 3, 0), ("pool", 2, None), ("flatten",), ("linear", 5)])
