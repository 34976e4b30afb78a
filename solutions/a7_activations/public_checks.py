"""Public checks for a7_activations: students see these and run them from the check cells.

The activations run through the probe ``call_unchanged`` (which also sees whether the input was
changed in place) and must not call PyTorch's own activations; the derivatives must not use
autograd; ``layer_grad_norms`` runs on networks the probe ``grad_norms`` builds from given weights.
"""

import math

import torch

from autograder.checks import (
    assert_close,
    assert_no_builtin,
    assert_same_kind,
    check,
    expect,
    fail,
    hint,
    kind,
    randint,
    randn,
)

# Every way of calling PyTorch's activations records one of these names: torch.sigmoid,
# Tensor.sigmoid, F.sigmoid and nn.Sigmoid all record "sigmoid"; the rest are the activations of
# torch.nn.functional and torch.special that a sigmoid, tanh or ReLU could be built from.
BUILTIN_ACTIVATIONS = {
    "sigmoid", "sigmoid_", "special_expit", "log_sigmoid", "softplus", "hardsigmoid", "silu",
    "tanh", "tanh_", "hardtanh", "hardtanh_", "tanhshrink", "softsign",
    "relu", "relu_", "relu6", "_threshold", "threshold", "threshold_", "leaky_relu",
    "leaky_relu_", "rrelu", "rrelu_", "prelu", "elu", "elu_", "celu", "selu", "gelu", "mish",
    "hardswish", "glu",
}
# Autograd in any form records at least one of these (torch.func and torch.autograd.functional
# call torch.autograd.grad underneath).
AUTOGRAD = {"backward", "grad", "requires_grad_", "vjp", "jvp", "jacobian", "jacrev", "jacfwd",
            "sigmoid_backward", "tanh_backward", "threshold_backward"}
ARGUMENT = {"sigmoid_grad": "s", "tanh_grad": "h", "relu_grad": "r"}
OWN_CODE = {
    "sigmoid": "Write it with torch.exp, torch.where and arithmetic.",
    "tanh": "Write it with torch.exp (or torch.expm1), torch.where and arithmetic, or from your "
            "own sigmoid.",
    "relu": "Write it with torch.clamp, torch.where, torch.maximum or a comparison.",
}

SIGMOID_HINT = hint("Apply 1 / (1 + e^(-z)) to every element, exponentiating only numbers <= 0 so "
                    "that nothing overflows: e^(-|z|) and the sign of z are all you need.",
                    formula="e = torch.exp(-z.abs()); return torch.where(z >= 0, 1 / (1 + e), "
                            "e / (1 + e)).")
TANH_HINT = hint("tanh is odd, tanh(-z) = -tanh(z): compute tanh(|z|) from e^(-2|z|), which "
                 "never overflows, and give it z's sign. tanh(z) = 2 sigmoid(2z) - 1 is another "
                 "way.",
                 formula="e = torch.exp(-2 * z.abs()); t = (1 - e) / (1 + e); return "
                         "torch.where(z >= 0, t, -t).")
RELU_HINT = hint("ReLU keeps the positive elements and replaces the negative ones by 0.",
                 formula="return torch.clamp(z, min=0).")
STABLE_HINT = ("torch.exp overflows to inf above about 88.7 in float32 (709.8 in float64), "
               "without a warning, and inf / inf is nan: e^z / (1 + e^z) at z = 1000 and the "
               "textbook (e^z - e^-z) / (e^z + e^-z) at |z| = 1000 both give nan. Exponentiate "
               "only numbers <= 0, such as -|z|, and pick the right form with torch.where by the "
               "sign of z. torch.where computes both of its branches everywhere, so each must be "
               "finite on its own.")
SIGMOID_GRAD_HINT = hint("s is already sigmoid(z), the activation's output: the derivative is a "
                         "product of s and 1 - s, with no exp and no sigmoid applied again.",
                         formula="return s * (1 - s).")
TANH_GRAD_HINT = hint("h is already tanh(z), the activation's output: the derivative is 1 minus "
                      "the square of h.",
                      formula="return 1 - h * h.")
RELU_GRAD_HINT = hint("r is already relu(z): the derivative is 1 where r > 0 and 0 everywhere "
                      "else, including r = 0, in r's dtype.",
                      formula="return (r > 0).to(r.dtype).")
MISPRINT_HINT = ("Your values are (1 - h)^2. That is a misprint in the course notebook: the "
                 "derivative of tanh is 1 - h^2 = (1 - h)(1 + h); the square is on h alone. At "
                 "h = -1, where the unit is saturated and the derivative is 0, (1 - h)^2 gives 4.")
AGAIN_HINT = ("Your values are the derivative at z = {arg}, the output itself: {arg} is already "
              "{f}(z), so apply no {f} to it; write the derivative from {arg} directly.")
AT_ZERO_HINT = ("Your values are 1 where r == 0. ReLU's derivative is 0 for z <= 0 (PyTorch takes "
                "0 at z = 0 too), and r == 0 exactly where z <= 0: use r > 0, not r >= 0.")
NORMS_HINT = hint("Clear the gradients, run the forward pass, take F.cross_entropy(model(x), y), "
                  "call backward(), then read layer.weight.grad of every nn.Linear, from the first "
                  "layer to the last, and take its L2 norm as a Python float.",
                  formula="model.zero_grad(); F.cross_entropy(model(x), y).backward(); return "
                          "[m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)].")
ACCUMULATE_HINT = ("loss.backward() adds the new gradients to what .grad already holds. Clear "
                   "them before the backward pass (model.zero_grad(), or set every p.grad to None) "
                   "so that each call measures the gradient of its own loss only.")


def _name(dtype):
    return str(dtype).removeprefix("torch.")


def _close(got, want):
    """True when ``got`` is a tensor equal to ``want`` up to float32 rounding (for a diagnosis)."""
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and bool(torch.allclose(got.detach().cpu().double(), want.detach().cpu().double(),
                                    rtol=1e-4, atol=1e-6, equal_nan=True)))


def _diagnosis(got, mistakes):
    """The hint of the first known mistake (answer, hint) whose answer ``got`` matches, or ""."""
    return next((text for answer, text in mistakes if _close(got, answer)), "")


# --- calling the student ------------------------------------------------------------------------

def activation_call(subject, name, z):
    """Run the student's ``name(z)`` on a copy of z; fail if it used PyTorch's activations.
    Returns ``{"value": ..., "changed": ...}``."""
    outcome = subject.run("call_unchanged", name, z)
    report = outcome.unwrap()
    assert_no_builtin(outcome, BUILTIN_ACTIVATIONS, what=name,
                      instead=f"This exercise asks for your own {name}: {OWN_CODE[name]}")
    return report


def own(subject, name, z):
    """The student's ``name(z)``, written without PyTorch's activations."""
    return activation_call(subject, name, z)["value"]


def own_grad(subject, name, a):
    """The student's derivative ``name(a)`` from an output ``a``; fail if it used autograd."""
    outcome = subject.outcome(name, a)
    value = outcome.unwrap()
    assert_no_builtin(outcome, AUTOGRAD, what=name,
                      instead="Compute the derivative by hand from the activation's output, with "
                              "arithmetic and comparisons only, no autograd.")
    return value


def tanh_mistakes(z):
    """Known wrong answers of tanh(z), with what to tell a student whose values are one."""
    return [(torch.tanh(z / 2), "Your values are tanh(z / 2), which is 2 sigmoid(z) - 1 (the "
             "course notebook's forward pass makes this slip): the identity is tanh(z) = "
             "2 sigmoid(2z) - 1, with 2z inside the sigmoid.")]


def compare_activation(student, reference, name, z, *, what, hint, mistakes=()):
    got = own(student, name, z)
    want = reference.run("call_unchanged", name, z).unwrap()["value"]
    if isinstance(got, torch.Tensor) and got.shape == z.shape:
        bad = ~torch.isfinite(got.detach().cpu())
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            value = z.detach().cpu()[where].item() if where else z.item()
            fail(f"{what}: {int(bad.sum())} of {got.numel()} values are nan or inf, the first "
                 f"at index {where} where z = {value:g}. {STABLE_HINT}")
    diagnosis = _diagnosis(got, mistakes)
    assert_close(got, want, what=what, inputs={"z": z}, hint=f"{diagnosis} {hint}" if diagnosis else hint)


def compare_grad(student, reference, name, a, *, what, hint, mistakes=()):
    got = own_grad(student, name, a)
    diagnosis = _diagnosis(got, mistakes)
    assert_close(got, reference.run("call", name, a).unwrap(), what=what, inputs={ARGUMENT[name]: a},
                 hint=f"{diagnosis} {hint}" if diagnosis else hint)


# --- networks for layer_grad_norms --------------------------------------------------------------

def network(sizes, activation, *, seed, dtype=torch.float32, device="cpu", no_bias=()):
    """Layers for the probe ``grad_norms``: nn.Linear(sizes[i], sizes[i + 1]) with weights of
    variance 2 / fan-in and small biases (none for the layers in ``no_bias``), ``activation``
    between them."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(activation)
        weight = randn(n_out, n_in, seed=seed + 2 * i, scale=(2 / n_in) ** 0.5, dtype=dtype,
                       device=device)
        bias = None if i in no_bias else randn(n_out, seed=seed + 2 * i + 1, scale=0.5,
                                                dtype=dtype, device=device)
        layers.append({"weight": weight, "bias": bias})
    return layers


def batch(n, d, classes, *, seed, dtype=torch.float32, device="cpu"):
    """x [n, d] and int64 labels y [n] in [0, classes)."""
    return (randn(n, d, seed=seed, dtype=dtype, device=device),
            randint(n, seed=seed + 1, high=classes, device=device))


def describe(sizes, activation, dtype):
    return (f"a {_name(dtype)} nn.Sequential of {len(sizes) - 1} nn.Linear layers "
            f"{' -> '.join(map(str, sizes))} with {activation} between them")


def run_norms(subject, layers, x, y, *, what, **options):
    """The probe's report for the student's layer_grad_norms; an error becomes a message."""
    outcome = subject.run("grad_norms", layers, x, y, **options)
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"{what} raised {error.describe()}. {NORMS_HINT}")
    return outcome.unwrap()


def _number(value):
    """``value`` as a float when it is one number (a float, an int, a one-element tensor)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        return float(value.reshape(()).item())
    return None


def _matches(got, want, rtol):
    return len(got) == len(want) and all(math.isclose(g, w, rel_tol=rtol, abs_tol=0.0)
                                         for g, w in zip(got, want, strict=True))


def _show_norms(values):
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def compare_norms(got, want, dtype, *, what, hint, batch_size):
    """Compare the student's norms with the reference's, layer by layer; name a known mistake
    (reversed order, a summed loss) when the numbers show it. Whether the items are Python
    floats is the business of a property check: a 1-D tensor or 0-d tensors pass here."""
    rtol = 1e-4 if dtype == torch.float32 else 1e-9
    if isinstance(got, torch.Tensor) and got.dim() == 1:
        got = list(got)
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        length = f" of {len(got)} items" if isinstance(got, (list, tuple)) else ""
        fail(f"{what}: returned {kind(got)}{length}, expected a list of {len(want)} floats, one "
             f"per nn.Linear layer (not per parameter: biases do not count). {hint}")
    numbers = [_number(v) for v in got]
    odd = [(i, v) for i, (v, n) in enumerate(zip(got, numbers, strict=True)) if n is None]
    if odd:
        i, v = odd[0]
        fail(f"{what}: item {i} of the list is {kind(v)}, expected one number, the norm of layer "
             f"{i + 1}'s weight gradient. {hint}")
    if _matches(numbers, want, rtol):
        return
    diagnosis = ""
    if _matches(numbers[::-1], want, 1e-3):
        diagnosis = ("Your norms are in reverse order: list them from the layer next to the "
                     "input to the output layer, the order of the model's children. ")
    elif _matches([n / batch_size for n in numbers], want, 1e-3):
        diagnosis = (f"Your norms are {batch_size} times too large, the batch size: the loss is "
                     "the mean over the batch (F.cross_entropy's default), not the sum. ")
    bad = sum(not math.isclose(g, w, rel_tol=rtol, abs_tol=0.0) for g, w in zip(numbers, want, strict=True))
    fail(f"{what}: {bad} of {len(want)} norms differ (tolerance {rtol:.0e} * |expected|): "
         f"expected {_show_norms(want)}, got {_show_norms(numbers)}, layer 1 next to the input. "
         f"{diagnosis}{hint}")


# --- sigmoid ------------------------------------------------------------------------------------

@check("sigmoid", points=2)
def test_sigmoid_matches_reference(student, reference, device):
    z = randn(4, 6, seed=701, scale=3.0, device=device)
    compare_activation(student, reference, "sigmoid", z,
                       what="sigmoid(z) for a float32 z of shape (4, 6)", hint=SIGMOID_HINT)


@check("sigmoid", points=1)
def test_sigmoid_large_inputs(student, reference, device):
    for dtype in (torch.float32, torch.float64):
        z = torch.tensor([-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0],
                         dtype=dtype, device=device)
        compare_activation(student, reference, "sigmoid", z,
                           what=f"sigmoid(z) for a {_name(dtype)} z with |z| up to 1000",
                           hint=SIGMOID_HINT)


@check("sigmoid", points=0.5, kind="property")
def test_sigmoid_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        z = randn(3, 5, seed=702, dtype=dtype, device=device)
        assert_same_kind(own(student, "sigmoid", z), z, what=f"sigmoid(z) for a {_name(dtype)} z")


@check("sigmoid", points=0.5, kind="property")
def test_sigmoid_is_your_own(student, device):
    own(student, "sigmoid", randn(2, 4, seed=703, device=device))


# --- tanh ---------------------------------------------------------------------------------------

@check("tanh", points=2)
def test_tanh_matches_reference(student, reference, device):
    z = randn(4, 6, seed=711, scale=2.0, device=device)
    compare_activation(student, reference, "tanh", z,
                       what="tanh(z) for a float32 z of shape (4, 6)", hint=TANH_HINT,
                       mistakes=tanh_mistakes(z))


@check("tanh", points=1)
def test_tanh_large_inputs(student, reference, device):
    for dtype in (torch.float32, torch.float64):
        z = torch.tensor([-1000.0, -100.0, -20.0, -0.5, 0.0, 0.5, 20.0, 100.0, 1000.0],
                         dtype=dtype, device=device)
        compare_activation(student, reference, "tanh", z,
                           what=f"tanh(z) for a {_name(dtype)} z with |z| up to 1000",
                           hint=TANH_HINT, mistakes=tanh_mistakes(z))


@check("tanh", points=0.5, kind="property")
def test_tanh_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        z = randn(3, 5, seed=712, dtype=dtype, device=device)
        assert_same_kind(own(student, "tanh", z), z, what=f"tanh(z) for a {_name(dtype)} z")


@check("tanh", points=0.5, kind="property")
def test_tanh_is_your_own(student, device):
    own(student, "tanh", randn(2, 4, seed=713, device=device))


# --- relu ---------------------------------------------------------------------------------------

@check("relu", points=2)
def test_relu_matches_reference(student, reference, device):
    z = randn(5, 4, seed=721, device=device)
    compare_activation(student, reference, "relu", z,
                       what="relu(z) for a float32 z of shape (5, 4)", hint=RELU_HINT)


@check("relu", points=0.5, kind="property")
def test_relu_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        z = randn(3, 5, seed=722, dtype=dtype, device=device)
        assert_same_kind(own(student, "relu", z), z, what=f"relu(z) for a {_name(dtype)} z")


@check("relu", points=0.5, kind="property")
def test_relu_is_your_own(student, device):
    own(student, "relu", randn(2, 4, seed=723, device=device))


@check("relu", points=0.5, kind="property")
def test_relu_leaves_z_unchanged(student, device):
    z = randn(4, 3, seed=724, device=device)
    expect(not activation_call(student, "relu", z)["changed"],
           "relu(z) changed z in place (its negative elements are 0 after the call). The caller "
           "still needs z, and autograd refuses to back-propagate through a tensor it needed that "
           "was modified. Masked assignment (z[z < 0] = 0) and methods ending in _ (clamp_) "
           "write into z; return a new tensor instead (torch.clamp(z, min=0), torch.where, or "
           "z.clone() before changing it).")


# --- sigmoid_grad -------------------------------------------------------------------------------

@check("sigmoid_grad", points=2)
def test_sigmoid_grad_matches_reference(student, reference, device):
    s = torch.sigmoid(randn(4, 5, seed=731, scale=3.0, device=device))
    again = torch.sigmoid(s) * (1 - torch.sigmoid(s))
    compare_grad(student, reference, "sigmoid_grad", s,
                 what="sigmoid_grad(s) for s = sigmoid(z), z of shape (4, 5), float32",
                 hint=SIGMOID_GRAD_HINT,
                 mistakes=[(again, AGAIN_HINT.format(arg="s", f="sigmoid"))])


@check("sigmoid_grad", points=0.5, kind="property")
def test_sigmoid_grad_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        s = torch.sigmoid(randn(3, 4, seed=732, dtype=dtype, device=device))
        assert_same_kind(own_grad(student, "sigmoid_grad", s), s,
                         what=f"sigmoid_grad(s) for a {_name(dtype)} s")


@check("sigmoid_grad", points=0.5, kind="property")
def test_sigmoid_grad_no_autograd(student, device):
    own_grad(student, "sigmoid_grad", torch.sigmoid(randn(2, 3, seed=733, device=device)))


# --- tanh_grad ----------------------------------------------------------------------------------

@check("tanh_grad", points=2)
def test_tanh_grad_matches_reference(student, reference, device):
    h = torch.tanh(randn(4, 5, seed=741, scale=1.5, device=device))
    compare_grad(student, reference, "tanh_grad", h,
                 what="tanh_grad(h) for h = tanh(z), z of shape (4, 5), float32",
                 hint=TANH_GRAD_HINT,
                 mistakes=[((1 - h) ** 2, MISPRINT_HINT),
                           (1 - torch.tanh(h) ** 2, AGAIN_HINT.format(arg="h", f="tanh"))])


@check("tanh_grad", points=0.5, kind="property")
def test_tanh_grad_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        h = torch.tanh(randn(3, 4, seed=742, dtype=dtype, device=device))
        assert_same_kind(own_grad(student, "tanh_grad", h), h,
                         what=f"tanh_grad(h) for a {_name(dtype)} h")


@check("tanh_grad", points=0.5, kind="property")
def test_tanh_grad_no_autograd(student, device):
    own_grad(student, "tanh_grad", torch.tanh(randn(2, 3, seed=743, device=device)))


# --- relu_grad ----------------------------------------------------------------------------------

@check("relu_grad", points=2)
def test_relu_grad_matches_reference(student, reference, device):
    r = torch.clamp(randn(5, 6, seed=751, device=device), min=0)  # about half exact zeros
    compare_grad(student, reference, "relu_grad", r,
                 what="relu_grad(r) for r = relu(z), z of shape (5, 6), float32",
                 hint=RELU_GRAD_HINT,
                 mistakes=[(torch.ones_like(r), AT_ZERO_HINT),
                           (torch.clamp(r, min=0), AGAIN_HINT.format(arg="r", f="relu"))])


@check("relu_grad", points=0.5, kind="property")
def test_relu_grad_keeps_dtype_and_device(student, device):
    for dtype in (torch.float32, torch.float64):
        r = torch.clamp(randn(3, 4, seed=752, dtype=dtype, device=device), min=0)
        assert_same_kind(own_grad(student, "relu_grad", r), r,
                         what=f"relu_grad(r) for a {_name(dtype)} r",
                         hint="A comparison gives a bool tensor, and torch.where(c, 1.0, 0.0) or "
                              ".float() a float32 one: convert with .to(r.dtype).")


@check("relu_grad", points=0.5, kind="property")
def test_relu_grad_no_autograd(student, device):
    own_grad(student, "relu_grad", torch.clamp(randn(2, 3, seed=753, device=device), min=0))


# --- layer_grad_norms ---------------------------------------------------------------------------

@check("layer_grad_norms", points=3)
def test_layer_grad_norms_matches_reference(student, reference, device):
    sizes = [5, 8, 6, 3]
    layers = network(sizes, "relu", seed=801, device=device)
    x, y = batch(12, 5, 3, seed=811, device=device)
    what = f"layer_grad_norms(model, x, y) for {describe(sizes, 'ReLU', torch.float32)}, x of shape (12, 5)"
    got = run_norms(student, layers, x, y, what=what)["results"][0]
    want = reference.run("grad_norms", layers, x, y).unwrap()["results"][0]
    compare_norms(got, want, torch.float32, what=what, hint=NORMS_HINT, batch_size=12)


@check("layer_grad_norms", points=2)
def test_layer_grad_norms_repeated_calls(student, reference, device):
    sizes = [4, 6, 6, 3]
    layers = network(sizes, "tanh", seed=821, device=device)
    x, y = batch(10, 4, 3, seed=831, device=device)
    model = describe(sizes, "Tanh", torch.float32)
    what = f"layer_grad_norms(model, x, y), called 3 times on {model}"
    got = run_norms(student, layers, x, y, calls=3, what=what)["results"]
    want = reference.run("grad_norms", layers, x, y, calls=3).unwrap()["results"]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        compare_norms(g, w, torch.float32,
                      what=f"call {i + 1} of 3 of layer_grad_norms(model, x, y) on the same "
                           f"model and data ({model})",
                      hint=ACCUMULATE_HINT if i else NORMS_HINT, batch_size=10)


@check("layer_grad_norms", points=1, kind="property")
def test_layer_grad_norms_returns_floats(student, device):
    layers = network([3, 4, 2], "sigmoid", seed=841, device=device)
    x, y = batch(6, 3, 2, seed=851, device=device)
    what = f"layer_grad_norms(model, x, y) for {describe([3, 4, 2], 'Sigmoid', torch.float32)}"
    form = run_norms(student, layers, x, y, what=what)["forms"][0]
    if form["type"] != "list":
        fail(f"{what} returned a {form['type']}; return a Python list, one float per nn.Linear "
             "layer.")
    others = sorted({t for t in form["items"] if t not in ("float", "float64", "float32")})
    expect(not others,
           f"{what} returned a list holding {', '.join(others)} values; "
           "every item must be a Python float. .norm() gives a 0-dim tensor (which keeps the "
           "GPU memory and the device): turn it into a number with .item() or float(...).")
