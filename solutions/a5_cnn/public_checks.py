"""Public checks for a5_cnn: students see these and run them from the check cell."""

import math

import numpy as np
import torch

from autograder.checks import (
    assert_close,
    assert_equal,
    check,
    expect,
    fail,
    hint,
    kind,
    rand,
    randint,
    show,
    student_raises,
)

from probes import ProbeCNN

CONV_HINT = hint("Count the window starts 0, S, 2S, ... that fit in the padded input; a kernel "
                 "dilated by D covers D*(kernel_size - 1) + 1 pixels.",
                 formula="floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1")


def _conv_hint(got, size, kernel_size, stride=1, padding=0, dilation=1):
    """Name the likely mistake behind a wrong output size, or give the formula."""
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return CONV_HINT
    if got == span / stride + 1 != span // stride + 1:
        return "/ is true division; use // (integer division, rounds down)."
    if got == math.ceil(span / stride) + 1 != span // stride + 1:
        return ("You rounded up: PyTorch never computes a window that sticks out of the padded "
                "input, so round down (floor, or // on ints), not up.")
    if dilation > 1 and got == (size + 2 * padding - kernel_size) // stride + 1:
        return ("A dilated kernel spreads its taps `dilation` pixels apart, so it covers "
                "dilation*(kernel_size - 1) + 1 pixels: use that instead of kernel_size.")
    if padding and got == (size - dilation * (kernel_size - 1) - 1) // stride + 1:
        return ("padding adds `padding` zeros on BOTH sides: the padded size is "
                "size + 2*padding.")
    return CONV_HINT


def _conv_case(student, reference, size, kernel_size, stride=1, padding=0, dilation=1, note=""):
    args = dict(stride=stride, padding=padding, dilation=dilation)
    got = student.conv_output_size(size, kernel_size, **args)
    want = reference.conv_output_size(size, kernel_size, **args)
    call = (f"conv_output_size(size={size}, kernel_size={kernel_size}, stride={stride}, "
            f"padding={padding}, dilation={dilation}){note}")
    assert_equal(got, want, what=call,
                 hint=_conv_hint(got, size, kernel_size, stride, padding, dilation))


@check("conv_output_size", points=1)
def test_conv_output_size_basic(student, reference, device):
    for size, kernel_size in [(8, 3), (5, 3), (28, 5), (4, 1)]:
        _conv_case(student, reference, size, kernel_size)


@check("conv_output_size", points=2)
def test_conv_output_size_stride_and_padding(student, reference, device):
    for size, kernel_size, stride, padding in [
        (8, 3, 2, 0), (5, 3, 3, 0), (7, 3, 2, 1), (10, 4, 3, 1), (28, 5, 1, 2), (9, 2, 2, 0),
        (8, 3, 1, 1),
    ]:
        _conv_case(student, reference, size, kernel_size, stride=stride, padding=padding)


@check("conv_output_size", points=1, kind="property")
def test_conv_output_size_returns_int(student, device):
    got = student.conv_output_size(8, 3, stride=2)
    expect(isinstance(got, int) and not isinstance(got, bool),
           f"conv_output_size(8, 3, stride=2) returned {kind(got)} {show(got)}, expected a Python "
           "int (nn.Linear and nn.Conv2d need int sizes). Use // (integer division) or "
           "math.floor, not /, and do not return a tensor or a NumPy number.")


@check("conv_output_size", points=1)
def test_conv_output_size_raises_when_kernel_does_not_fit(student, device):
    for size, kernel_size, padding, dilation in [(4, 5, 0, 1), (3, 3, 0, 2), (2, 7, 2, 1)]:
        call = (f"conv_output_size(size={size}, kernel_size={kernel_size}, padding={padding}, "
                f"dilation={dilation})")
        effective = dilation * (kernel_size - 1) + 1
        error = student_raises(student.conv_output_size, size, kernel_size,
                               padding=padding, dilation=dilation)
        if error is None:
            got = student.conv_output_size(size, kernel_size, padding=padding, dilation=dilation)
            fail(f"{call} returned {show(got)}, expected a ValueError: the kernel covers "
                 f"{effective} pixels but the padded input has only {size + 2 * padding}, so "
                 "nn.Conv2d raises an error. Check dilation*(kernel_size-1)+1 > size+2*padding "
                 "first and `raise ValueError(...)`.")
        expect(error.is_a("ValueError"),
               f"{call} raised {error.types[0]}, expected a ValueError. Test whether the kernel "
               "fits before computing, and `raise ValueError(\"...\")` when it does not.")


# --- train_model --------------------------------------------------------------------------------

# GPU convolutions may run in TF32 (about 3 significant digits), and the student's check cell
# compares with answers recorded on the CPU; the mistakes these checks catch change the losses
# and weights by percents.
LOSS_RTOL = 2e-3
WEIGHT_TOL = {"rtol": 1e-2, "atol": 2e-3}

TRAIN_HINT = hint("In every batch: clear the old gradients, compute the loss, back-propagate, and "
                  "take one optimizer step; return one number per epoch, the mean of its batch "
                  "losses.",
                  formula="optimizer.zero_grad(); loss = criterion(model(x), y); loss.backward(); "
                          "optimizer.step(); collect loss.item() and return one mean per epoch")


def _probe_state(seed, dropout):
    """The initial weights of the probe's CNN, made without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ProbeCNN(dropout).state_dict()


def _train_spec(device, *, seed, n, batch_size, epochs, dropout=0.0, start_in_eval=False):
    return {
        "state": _probe_state(seed, dropout), "dropout": dropout,
        "X": rand(n, 1, 8, 8, seed=seed + 1), "y": randint(n, seed=seed + 2, high=10),
        "batch_size": batch_size, "lr": 0.1, "momentum": 0.9, "epochs": epochs,
        "seed": seed, "device": device, "start_in_eval": start_in_eval,
    }


def _floats(values, what):
    """Turn a list of floats, a list of 1-element tensors, or a tensor into a list of floats."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return [float(v) for v in torch.as_tensor(values).detach().cpu().double().flatten()]
    if isinstance(values, (list, tuple)):
        out = []
        for i, v in enumerate(values):
            if isinstance(v, (torch.Tensor, np.ndarray)) and torch.as_tensor(v).numel() == 1:
                out.append(float(torch.as_tensor(v).detach().cpu().double().flatten()[0]))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(float(v))
            else:
                fail(f"{what}: item {i} of the returned list is {kind(v)}, expected a number. "
                     "Append loss.item() (a float) for each batch, and return one float per epoch.")
        return out
    fail(f"{what} returned {kind(values)}, expected a list with one float per epoch."
         + (" Did you forget the return statement?" if values is None else ""))
    return []


def _check_losses(got, want, spec, what):
    got_list, want_list = _floats(got, what), _floats(want, what)
    n_batches = len(spec["X"]) // spec["batch_size"]
    expect(len(got_list) == len(want_list),
           f"{what}: returned {len(got_list)} values for epochs={spec['epochs']} "
           f"({n_batches} batches per epoch), expected one mean loss per epoch.")
    hint = TRAIN_HINT
    pairs = zip(got_list, want_list, strict=True)
    if all(math.isclose(g, n_batches * w, rel_tol=1e-4) for g, w in pairs):
        hint = (f"Your values are {n_batches} times too large: you return the SUM of the batch "
                "losses. Divide by the number of batches.")
    assert_close(torch.tensor(got_list, dtype=torch.float64),
                 torch.tensor(want_list, dtype=torch.float64), what=f"{what}: mean loss per epoch",
                 rtol=LOSS_RTOL, atol=1e-4, hint=hint)


def _describe(spec):
    return (f"{len(spec['X'])} samples in batches of {spec['batch_size']}, "
            f"epochs={spec['epochs']}, SGD(lr={spec['lr']}, momentum={spec['momentum']})")


@check("train_model", points=3)
def test_train_model_losses(student, reference, device):
    spec = _train_spec(device, seed=500, n=48, batch_size=12, epochs=2)
    got = student.run("train", spec).unwrap()
    want = reference.run("train", spec).unwrap()
    _check_losses(got["losses"], want["losses"], spec,
                  f"train_model on a small CNN ({_describe(spec)})")


@check("train_model", points=2)
def test_train_model_final_weights(student, reference, device):
    spec = _train_spec(device, seed=510, n=40, batch_size=8, epochs=2)
    got = student.run("train", spec).unwrap()
    want = reference.run("train", spec).unwrap()
    for name, value in want["state"].items():
        assert_close(got["state"][name].cpu(), value.cpu(),
                     what=f"parameter {name} after train_model ({_describe(spec)})",
                     hint=TRAIN_HINT + " Each batch must make exactly one optimizer step.",
                     **WEIGHT_TOL)


@check("train_model", points=1, kind="property")
def test_train_model_sets_train_mode(student, device):
    spec = _train_spec(device, seed=520, n=24, batch_size=8, epochs=1, dropout=0.5,
                       start_in_eval=True)
    got = student.run("train", spec).unwrap()
    expect(got["forwards"] > 0, "train_model never called the model on a batch.")
    in_eval = got["forwards"] - got["forwards_in_train_mode"]
    expect(in_eval == 0,
           f"train_model ran {in_eval} of {got['forwards']} forward passes with the model in "
           "evaluation mode (we passed in a model with dropout that was left in eval mode, as "
           "after a call to evaluate). Call model.train() at the start of train_model.")


# --- evaluate -----------------------------------------------------------------------------------

def _eval_spec(device, *, seed, n, batch_size, dropout=0.5, share_right=0.7):
    """A model and labels it gets about ``share_right`` (plus chance) right in eval mode."""
    state = _probe_state(seed, dropout)
    candidates = rand(2 * n, 1, 8, 8, seed=seed + 1)
    with torch.random.fork_rng(devices=[]):
        model = ProbeCNN(dropout)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        scores = model(candidates)
    # Keep samples whose best score leads by a clear margin, so that rounding on another device
    # (GPU convolutions may use TF32) cannot flip a prediction.
    top2 = scores.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.01
    X, predicted = candidates[clear][:n], scores.argmax(dim=1)[clear][:n]
    if len(X) < n:
        raise RuntimeError(f"seed {seed} gives only {len(X)} clear samples; pick another seed")
    noise = randint(n, seed=seed + 2, high=10)
    keep = rand(n, seed=seed + 3) < share_right
    y = torch.where(keep, predicted, noise)
    return {"state": state, "dropout": dropout, "X": X, "y": y, "batch_size": batch_size,
            "seed": seed, "device": device}


def _accuracy_hint(got, want, n):
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = float(got.detach().cpu().double().flatten()[0])
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        if math.isclose(got, want * n, rel_tol=1e-6):
            return f"You return the number of correct predictions; divide it by the {n} samples."
        if math.isclose(got, want * 100, rel_tol=1e-6):
            return "You return a percentage; return a fraction in [0, 1] (do not multiply by 100)."
    return ("Put the model in eval mode, predict with model(x).argmax(dim=1), count the correct "
            "predictions over all batches and divide by the total number of samples.")


def _as_number(got, what):
    """Accept a float, an int, or a tensor of one element; fail otherwise."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return float(got.detach().cpu().double().flatten()[0])
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    fail(f"{what} returned {kind(got)}, expected a float in [0, 1]."
         + (" Did you forget the return statement?" if got is None else ""))
    return 0.0


def _check_accuracy(got, want, spec, what):
    n = len(spec["X"])
    value = _as_number(got, what)
    assert_close(value, _as_number(want, what), what=what, rtol=1e-5, atol=1e-7,
                 hint=_accuracy_hint(got, _as_number(want, what), n))


@check("evaluate", points=3)
def test_evaluate_accuracy(student, reference, device):
    spec = _eval_spec(device, seed=600, n=64, batch_size=16)
    got = student.run("evaluate", spec).unwrap()
    want = reference.run("evaluate", spec).unwrap()
    _check_accuracy(got["accuracy"], want["accuracy"], spec,
                    "evaluate on a small CNN with dropout (64 samples in batches of 16)")


@check("evaluate", points=1, kind="property")
def test_evaluate_uses_eval_mode(student, device):
    spec = _eval_spec(device, seed=610, n=32, batch_size=8)
    got = student.run("evaluate", spec).unwrap()
    expect(got["forwards"] > 0, "evaluate never called the model on a batch.")
    expect(got["forwards_in_train_mode"] == 0,
           f"evaluate ran {got['forwards_in_train_mode']} of {got['forwards']} forward passes "
           "with the model in training mode, so dropout was active and predictions were random. "
           "Call model.eval() before the loop.")


@check("evaluate", points=1, kind="property")
def test_evaluate_without_gradients(student, device):
    spec = _eval_spec(device, seed=620, n=32, batch_size=8)
    got = student.run("evaluate", spec).unwrap()
    expect(got["forwards"] > 0, "evaluate never called the model on a batch.")
    expect(got["forwards_with_grad"] == 0,
           f"evaluate ran {got['forwards_with_grad']} of {got['forwards']} forward passes with "
           "gradient recording on, which wastes memory and time. Run the loop inside "
           "`with torch.no_grad():` (or torch.inference_mode()).")
