"""Public checks for a10_conv: students see these and run them from the check cells.

Each check calls the student's function and the reference on the same inputs and compares.
When an answer has the wrong shape or the wrong values, the message says which known mistake
(a flipped kernel, the course notes' ceil in the output size, a bias added once per input
channel, a pooling stride of 1, ...) gives exactly the student's answer, if one does. The
known mistakes are computed here with PyTorch's own functions, which only the checks may call.
"""

import math

import torch
from torch.nn import functional as F

from autograder.checks import assert_close, assert_equal, assert_no_builtin, check, fail, hint, randn

CONV_HINT = hint("Slide each output channel's kernel over the zero-padded input in steps of "
                 "stride; at each position multiply the kernel with the window under it, "
                 "element by element, over every input channel, and sum; add that output "
                 "channel's bias once. PyTorch's conv2d is a cross-correlation: the kernel is "
                 "not flipped. The output has (H + 2 * padding - kH) // stride + 1 rows.",
                 formula="pad x with zeros; for each kernel entry (i, j): out += "
                         "torch.einsum('nchw,oc->nohw', xp[:, :, i:i + stride * (h_out - 1) + 1:"
                         "stride, j:j + stride * (w_out - 1) + 1:stride], weight[:, :, i, j]); "
                         "then out += bias.view(1, -1, 1, 1)")
POOL_HINT = hint("Take the maximum of each kernel_size x kernel_size window, channel by channel, "
                 "moving the window by stride (by kernel_size when stride is None, so that the "
                 "windows do not overlap). Windows that would run past the edge are dropped: "
                 "the output has (H - kernel_size) // stride + 1 rows.",
                 formula="stride = stride or kernel_size; out = the elementwise torch.maximum of "
                         "x[:, :, i:i + stride * (h_out - 1) + 1:stride, j:j + stride * "
                         "(w_out - 1) + 1:stride] over every i, j < kernel_size")
# Every way of calling PyTorch's convolution or max pooling records one of these names
# (nn.Conv2d and F.conv2d record "conv2d"; nn.MaxPool2d, F.max_pool2d and torch.max_pool2d
# record "max_pool2d"). F.unfold and Tensor.unfold, which only cut out the windows, are allowed.
BUILTIN_CONV = {"conv1d", "conv2d", "conv3d", "convolution", "_convolution", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "conv_tbc", "mkldnn_convolution",
                "cudnn_convolution", "_conv_depthwise2d", "thnn_conv2d", "slow_conv2d"}
BUILTIN_POOL = {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
                "max_pool2d_with_indices", "max_pool3d_with_indices", "_max_pool2d",
                "mkldnn_max_pool2d", "quantized_max_pool2d", "adaptive_max_pool1d",
                "adaptive_max_pool2d", "adaptive_max_pool3d", "fractional_max_pool2d",
                "fractional_max_pool3d", "max_unpool2d"}

CEIL = ("This is the output size with ceil((M - K) / S) + 1, as the course notes write it: a "
        "misprint. PyTorch rounds down, floor((M + 2P - K) / S) + 1: a window that would run "
        "past the (padded) edge is dropped, not kept.")
NO_PADDING = ("That is the size without padding: surround the input with `padding` rows and "
              "columns of zeros on every side before sliding the kernel.")
NO_STRIDE = "That is the size with stride 1: move the kernel `stride` pixels at a time."
POOL_STRIDE_ONE = ("That is the size with stride 1. When stride is None, max pooling moves the "
                   "window by kernel_size, so that the windows do not overlap.")
FLIPPED = ("Your values are those of a convolution with the kernel flipped (rotated by 180 "
           "degrees), the textbook's convolution. PyTorch's conv2d, like every deep learning "
           "library, computes a cross-correlation: multiply the window by the kernel as it is, "
           "entry (i, j) with entry (i, j).")
BIAS_PER_INPUT = ("Your values have the bias added once per input channel. Each output channel "
                  "has one bias, added once after summing over the input channels: "
                  "Z_l = sum_k W_lk * X_k + b_l.")
NO_BIAS = ("Your values are those without the bias: add bias[l] to every position of output "
           "channel l (when bias is not None).")
ONE_INPUT_CHANNEL = ("Your values use only the first input channel. Each output channel sums "
                     "the correlations of all C_in input channels with their kernels.")
ZERO_START = ("Your values are never negative where the window's maximum is: do not start the "
              "running maximum at 0 (or pad with zeros). Start from the window's first element, "
              "or from -inf.")
AVERAGE = "Your values are the windows' means: max pooling takes each window's maximum."
OVER_CHANNELS = ("Your values are maxima over the channels as well as over each window. Pool each "
                 "channel on its own: the output has x's channels, each the pooled map of the "
                 "same input channel.")
GRAPH_HINT = ("Compute the output from the inputs with tensor operations (indexing, slicing, "
              "arithmetic, torch.maximum, ...), without .detach(), torch.no_grad(), .item(), "
              ".numpy() or torch.tensor(...) of the values, so that gradients flow back.")


# --- calling the student ------------------------------------------------------------------------

def conv_signature(x, weight, bias, stride, padding):
    b = "None" if bias is None else f"bias {tuple(bias.shape)}"
    return (f"conv2d(x {tuple(x.shape)}, weight {tuple(weight.shape)}, {b}, stride={stride}, "
            f"padding={padding}) in {str(x.dtype).removeprefix('torch.')}")


def pool_signature(x, kernel_size, stride):
    return (f"max_pool2d(x {tuple(x.shape)}, kernel_size={kernel_size}, stride={stride}) in "
            f"{str(x.dtype).removeprefix('torch.')}")


def answer(outcome, what, advice):
    """The student's value; an error other than the stub's explained."""
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"{what} raised an error: {error.describe()} {advice}")
    value = outcome.unwrap()
    if not isinstance(value, torch.Tensor):
        fail(f"{what} returned {type(value).__name__}; it must return a tensor. {advice}")
    return value


def _close(got, want):
    """True when ``got`` equals ``want`` up to float32 rounding (for a diagnosis only)."""
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and bool(torch.allclose(got.detach().to("cpu", torch.float64),
                                    want.detach().to("cpu", torch.float64), rtol=1e-4, atol=1e-5)))


def out_size(size, k, stride, padding, rounding=math.floor):
    return rounding((size + 2 * padding - k) / stride) + 1


def shape_advice(got_shape, want_shape, spatial, k, stride, padding, *, pool=False):
    """What to tell a student whose output has shape ``got_shape``: the mistake it matches."""
    def sizes(s, p, rounding=math.floor):
        return tuple(out_size(m, kk, s, p, rounding) for m, kk in zip(spatial, k, strict=True))

    if got_shape[:2] == want_shape[:2]:
        if got_shape[2:] == sizes(stride, padding, math.ceil):
            return CEIL
        if padding and got_shape[2:] == sizes(stride, 0):
            return NO_PADDING
        if stride != 1 and got_shape[2:] == sizes(1, padding):
            return POOL_STRIDE_ONE if pool else NO_STRIDE
    return ""


def compare_shape(got, want, what, advice):
    if tuple(got.shape) != tuple(want.shape):
        fail(f"{what}: returned shape {tuple(got.shape)}, expected {tuple(want.shape)}. "
             f"{advice} {CONV_HINT if 'conv2d' in what else POOL_HINT}".replace("  ", " "))


def conv_slips(x, weight, bias, stride, padding):
    """Known wrong values of conv2d for these inputs, with what to tell the student."""
    x, weight = x.detach().cpu().double(), weight.detach().cpu().double()
    b = None if bias is None else bias.detach().cpu().double()
    slips = [(F.conv2d(x, weight.flip(-1, -2), b, stride, padding), FLIPPED)]
    if b is not None:
        slips += [(F.conv2d(x, weight, b * weight.shape[1], stride, padding), BIAS_PER_INPUT),
                  (F.conv2d(x, weight, None, stride, padding), NO_BIAS)]
    if weight.shape[1] > 1:
        slips.append((F.conv2d(x[:, :1], weight[:, :1], b, stride, padding), ONE_INPUT_CHANNEL))
    return slips


def pool_slips(x, kernel_size, stride):
    x = x.detach().cpu().double()
    return [(F.max_pool2d(x, kernel_size, stride).clamp(min=0), ZERO_START),
            (F.avg_pool2d(x, kernel_size, stride), AVERAGE),
            (F.max_pool2d(x.amax(1, keepdim=True), kernel_size, stride).expand(
                -1, x.shape[1], -1, -1), OVER_CHANNELS)]


def told(got, slips):
    return next((text + " " for wrong, text in slips if _close(got, wrong)), "")


def check_conv(student, reference, x, weight, bias=None, stride=1, padding=0):
    """Compare the student's conv2d with the reference's: shape first, then values."""
    what = conv_signature(x, weight, bias, stride, padding)
    got = answer(student.outcome("conv2d", x, weight, bias, stride, padding), what, CONV_HINT)
    want = reference.conv2d(x, weight, bias, stride, padding)
    compare_shape(got, want, what, shape_advice(tuple(got.shape), tuple(want.shape), x.shape[2:],
                                                weight.shape[2:], stride, padding))
    advice = "" if _close(got, want) else told(got, conv_slips(x, weight, bias, stride, padding))
    assert_close(got, want, what=what, inputs={"x": x, "weight": weight}, hint=advice + CONV_HINT)


def check_pool(student, reference, x, kernel_size, stride=None):
    what = pool_signature(x, kernel_size, stride)
    args = (x, kernel_size) if stride is None else (x, kernel_size, stride)
    got = answer(student.outcome("max_pool2d", *args), what, POOL_HINT)
    want = reference.max_pool2d(*args)
    step = kernel_size if stride is None else stride
    compare_shape(got, want, what, shape_advice(tuple(got.shape), tuple(want.shape), x.shape[2:],
                                                (kernel_size, kernel_size), step, 0, pool=True))
    advice = "" if _close(got, want) else told(got, pool_slips(x, kernel_size, step))
    assert_close(got, want, what=what, inputs={"x": x}, hint=advice + POOL_HINT)


def check_gradients(student, reference, name, args, wrt, what, advice):
    """Back-propagate (out * upstream).sum() through the student's and the reference's ``name``
    for a fixed random upstream (a plain sum would hide a flipped kernel in x's gradient)."""
    want_out = getattr(reference, name)(*args)
    upstream = randn(*want_out.shape, seed=77, dtype=want_out.dtype, device=want_out.device.type)
    outcome = student.run("weighted_backward", name, list(args), list(wrt), upstream)
    error = outcome.error
    if error is not None and error.is_a("ProbeError"):
        fail(f"{what}: {error.describe().rstrip('.')}. {advice}")
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"{what}, then (out * w).sum().backward() raised an error: {error.describe()} {advice}")
    got = outcome.unwrap()
    want = reference.run("weighted_backward", name, list(args), list(wrt), upstream).unwrap()
    assert_close(got["value"], want["value"], what=what, hint=advice)
    if not got["connected"]:
        fail(f"{what}: the output has no autograd history, so a network built on it cannot "
             f"learn. {GRAPH_HINT}")
    names = ("x", "weight", "bias")
    for i, g, w in zip(wrt, got["grads"], want["grads"], strict=True):
        if g is None:
            fail(f"{what}: {names[i]} got no gradient: the output is not connected to it. "
                 f"{GRAPH_HINT}")
        assert_close(g, w, what=f"{what}, then (out * w).sum().backward() for a fixed random w: "
                                f"the gradient with respect to {names[i]}", hint=GRAPH_HINT)


# --- conv2d -------------------------------------------------------------------------------------

@check("conv2d", points=2)
def test_conv2d_one_channel(student, reference, device):
    x = randn(1, 1, 5, 6, seed=1001, device=device)
    weight = randn(1, 1, 3, 3, seed=1002, device=device)
    bias = randn(1, seed=1003, device=device)
    check_conv(student, reference, x, weight, bias)


@check("conv2d", points=3)
def test_conv2d_several_channels(student, reference, device):
    x = randn(2, 3, 6, 7, seed=1011, device=device)
    weight = randn(4, 3, 3, 2, seed=1012, scale=0.5, device=device)
    bias = randn(4, seed=1013, device=device)
    check_conv(student, reference, x, weight, bias)


@check("conv2d", points=3)
def test_conv2d_stride_and_padding(student, reference, device):
    x = randn(2, 2, 8, 7, seed=1021, device=device)
    weight = randn(3, 2, 3, 3, seed=1022, scale=0.5, device=device)
    bias = randn(3, seed=1023, device=device)
    check_conv(student, reference, x, weight, bias, stride=2, padding=1)


@check("conv2d", points=1.5)
def test_conv2d_gradients(student, reference, device):
    x = randn(2, 2, 6, 5, seed=1031, dtype=torch.float64, device=device)
    weight = randn(3, 2, 3, 2, seed=1032, dtype=torch.float64, device=device)
    bias = randn(3, seed=1033, dtype=torch.float64, device=device)
    args = (x, weight, bias, 2, 1)
    check_gradients(student, reference, "conv2d", args, (0, 1, 2), conv_signature(*args), CONV_HINT)


@check("conv2d", points=0.5, kind="property")
def test_conv2d_own_code(student, device):
    x = randn(1, 2, 5, 5, seed=1041, device=device)
    weight = randn(2, 2, 3, 3, seed=1042, device=device)
    outcome = student.outcome("conv2d", x, weight, None, 2, 1)
    answer(outcome, conv_signature(x, weight, None, 2, 1), CONV_HINT)
    assert_no_builtin(outcome, BUILTIN_CONV, what="conv2d",
                      instead="Multiply the kernel with each window yourself, in loops, with "
                              "slices or with F.unfold (which cuts out the windows and is allowed).")


# --- max_pool2d ---------------------------------------------------------------------------------

@check("max_pool2d", points=2)
def test_max_pool2d_default_stride(student, reference, device):
    x = randn(2, 3, 6, 8, seed=2001, device=device)
    check_pool(student, reference, x, 2)


@check("max_pool2d", points=2)
def test_max_pool2d_overlapping_negative_windows(student, reference, device):
    x = randn(1, 2, 5, 5, seed=2011, device=device) - 3.0
    check_pool(student, reference, x, 3, 1)


@check("max_pool2d", points=2)
def test_max_pool2d_drops_incomplete_windows(student, reference, device):
    x = randn(2, 1, 7, 5, seed=2021, device=device)
    check_pool(student, reference, x, 2, 2)


@check("max_pool2d", points=1)
def test_max_pool2d_gradient(student, reference, device):
    x = randn(1, 2, 6, 6, seed=2031, dtype=torch.float64, device=device)
    args = (x, 3, 2)
    check_gradients(student, reference, "max_pool2d", args, (0,), pool_signature(*args), POOL_HINT)


@check("max_pool2d", points=0.5, kind="property")
def test_max_pool2d_own_code(student, device):
    x = randn(1, 2, 4, 4, seed=2041, device=device)
    outcome = student.outcome("max_pool2d", x, 2)
    answer(outcome, pool_signature(x, 2, None), POOL_HINT)
    assert_no_builtin(outcome, BUILTIN_POOL, what="max_pool2d",
                      instead="Take the maximum of each window yourself: torch.maximum of shifted "
                              "slices, or .max over windows cut out with unfold.")


# --- layer_shapes -------------------------------------------------------------------------------

SHAPES_HINT = hint("Follow the shape through the layers one at a time. A convolution changes the "
                   "channels to its out_channels and each spatial size to "
                   "floor((M + 2P - K) / S) + 1; max pooling keeps the channels and uses the "
                   "same rule with no padding and stride = kernel_size when it is None; ReLU "
                   "changes nothing; flatten keeps the batch and multiplies the rest, "
                   "(N, C, H, W) -> (N, C * H * W); a linear layer keeps the batch and gives "
                   "out_features.",
                   formula="conv: (n, out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1); "
                           "pool: s = s or k; (n, c, (h - k) // s + 1, (w - k) // s + 1); "
                           "flatten: (n, c * h * w); linear: (n, out_features)")


def normalised(value):
    """The student's list of shapes as a list of tuples of ints, or None if it is not one."""
    if not isinstance(value, (list, tuple)):
        return None
    shapes = []
    for shape in value:
        if not isinstance(shape, (list, tuple)) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in shape):
            return None
        shapes.append(tuple(shape))
    return shapes


def check_shapes(student, reference, input_shape, layers):
    what = f"layer_shapes({tuple(input_shape)}, {layers})"
    outcome = student.outcome("layer_shapes", tuple(input_shape), [tuple(layer) for layer in layers])
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"{what} raised an error: {error.describe()} {SHAPES_HINT}")
    got = normalised(outcome.unwrap())
    if got is None:
        fail(f"{what} returned {outcome.value!r}; it must return a list with one tuple of ints "
             f"per layer. {SHAPES_HINT}")
    want = [tuple(s) for s in reference.layer_shapes(tuple(input_shape), [tuple(x) for x in layers])]
    if len(got) != len(want):
        fail(f"{what} returned {len(got)} shapes for {len(layers)} layers; return one shape per "
             f"layer, the shape after it. {SHAPES_HINT}")
    shape = tuple(input_shape)
    for layer, g, w in zip(layers, got, want, strict=True):
        if g != w:
            advice = layer_advice(layer, shape, g, w)
            assert_equal(g, w, what=f"{what}: the shape after layer {layer} (input {shape})",
                         hint=advice + SHAPES_HINT)
        shape = w


def layer_advice(layer, shape, got, want):
    kind = layer[0]
    if kind in ("conv", "pool") and len(got) == 4 and got[:2] == want[:2]:
        k = layer[2] if kind == "conv" else layer[1]
        stride = layer[3] if kind == "conv" else (layer[2] or layer[1])
        padding = layer[4] if kind == "conv" else 0
        return shape_advice(got, want, shape[2:], (k, k), stride, padding, pool=kind == "pool") + " "
    if kind == "conv" and len(got) == 4 and got[1] == shape[1] != want[1]:
        return "A convolution's output has out_channels channels, one per kernel. "
    if kind == "flatten" and len(got) == 1:
        return ("Flatten keeps the batch dimension: (N, C, H, W) becomes (N, C * H * W), "
                "one row per image. ")
    if kind == "flatten" and len(got) == 2 and got[1] == shape[2] * shape[3]:
        return "Multiply the channels in too: a flattened image has C * H * W features. "
    return ""


DIGITS_CNN = [("conv", 4, 3, 1, 1), ("relu",), ("pool", 2, None), ("conv", 8, 3, 1, 1),
              ("relu",), ("pool", 2, None), ("flatten",), ("linear", 10)]


@check("layer_shapes", points=3)
def test_layer_shapes_digits_cnn(student, reference):
    check_shapes(student, reference, (16, 1, 8, 8), DIGITS_CNN)


@check("layer_shapes", points=3)
def test_layer_shapes_strides_that_do_not_divide(student, reference):
    layers = [("conv", 6, 3, 2, 0), ("relu",), ("pool", 2, 1), ("conv", 5, 2, 2, 1),
              ("pool", 2, None), ("flatten",), ("linear", 3)]
    check_shapes(student, reference, (4, 3, 12, 9), layers)
