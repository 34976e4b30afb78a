"""Hidden checks for a5_cnn: run by `grade`, never shipped to students."""

import math

import torch
from torch import nn

from autograder.checks import (
    assert_close,
    check,
    expect,
    fail,
    oracle,
    rand,
    randint,
    student_raises,
)

from public_checks import (  # helpers shared with the public checks
    LOSS_RTOL,
    TRAIN_HINT,
    WEIGHT_TOL,
    _as_number,
    _conv_case,
    _eval_spec,
    _floats,
    _probe_state,
)


def conv_output_size_by_conv2d(size, kernel_size, stride=1, padding=0, dilation=1):
    """What nn.Conv2d itself produces; ValueError where it refuses the input."""
    conv = nn.Conv2d(1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation)
    try:
        return conv(torch.zeros(1, 1, size, size)).shape[-1]
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None


# grade build checks that the reference agrees with nn.Conv2d on every value check's inputs
oracle("conv_output_size", conv_output_size_by_conv2d)


@check("conv_output_size", points=1)
def test_conv_output_size_dilation(student, reference, device):
    for size, kernel_size, stride, padding, dilation in [
        (10, 3, 1, 0, 2), (8, 3, 1, 2, 2), (12, 3, 2, 1, 3), (7, 2, 1, 0, 3), (16, 5, 2, 4, 2),
    ]:
        _conv_case(student, reference, size, kernel_size, stride, padding, dilation)


@check("conv_output_size", points=1)
def test_conv_output_size_max_pooling(student, reference, device):
    # nn.MaxPool2d(k) has stride k and ceil_mode=False: odd sizes lose their last row/column.
    for size, kernel_size, stride, padding in [(7, 2, 2, 0), (5, 2, 2, 0), (11, 3, 3, 0),
                                               (8, 3, 2, 1), (9, 3, 2, 1)]:
        note = f" (as for nn.MaxPool2d({kernel_size}, stride={stride}, padding={padding}))"
        _conv_case(student, reference, size, kernel_size, stride, padding, note=note)


@check("conv_output_size", points=1)
def test_conv_output_size_kernel_that_just_fits(student, reference, device):
    for size, kernel_size, stride, padding, dilation in [
        (5, 5, 1, 0, 1), (5, 5, 3, 0, 1), (4, 5, 1, 1, 1), (1, 3, 1, 1, 1), (2, 2, 1, 1, 2),
        (5, 3, 2, 0, 2),
    ]:
        call = (f"conv_output_size(size={size}, kernel_size={kernel_size}, stride={stride}, "
                f"padding={padding}, dilation={dilation})")
        error = student_raises(student.conv_output_size, size, kernel_size, stride=stride,
                               padding=padding, dilation=dilation)
        if error is not None:
            fail(f"{call} raised {error.types[0]} ({error.message}), but the kernel covers "
                 f"{dilation * (kernel_size - 1) + 1} pixels and fits in the padded input of size "
                 f"{size + 2 * padding}, so nn.Conv2d returns an output. Raise only when "
                 "dilation*(kernel_size-1)+1 > size+2*padding (strictly greater).")
        _conv_case(student, reference, size, kernel_size, stride, padding, dilation)


# --- train_model --------------------------------------------------------------------------------


def _train_spec(device, *, seed, n, batch_size, epochs, lr=0.1, momentum=0.9):
    return {
        "state": _probe_state(seed, 0.0), "dropout": 0.0,
        "X": rand(n, 1, 8, 8, seed=seed + 1), "y": randint(n, seed=seed + 2, high=10),
        "batch_size": batch_size, "lr": lr, "momentum": momentum, "epochs": epochs,
        "seed": seed, "device": device, "start_in_eval": False,
    }


@check("train_model", points=2)
def test_train_model_three_epochs_many_batches(student, reference, device):
    spec = _train_spec(device, seed=700, n=60, batch_size=6, epochs=3, lr=0.05, momentum=0.5)
    what = ("train_model (60 samples in batches of 6, epochs=3, SGD(lr=0.05, momentum=0.5))")
    got = student.run("train", spec).unwrap()
    want = reference.run("train", spec).unwrap()
    got_list, want_list = _floats(got["losses"], what), _floats(want["losses"], what)
    expect(len(got_list) == 3,
           f"{what}: returned {len(got_list)} values, expected 3 (one mean loss per epoch).")
    hint = TRAIN_HINT
    if all(math.isclose(g, 10 * w, rel_tol=1e-4) for g, w in zip(got_list, want_list, strict=True)):
        hint = ("Your values are 10 times too large (10 batches per epoch): you return the SUM "
                "of the batch losses. Divide by the number of batches.")
    assert_close(torch.tensor(got_list, dtype=torch.float64),
                 torch.tensor(want_list, dtype=torch.float64), what=f"{what}: mean loss per epoch",
                 rtol=LOSS_RTOL, atol=1e-4, hint=hint)
    for name, value in want["state"].items():
        assert_close(got["state"][name].cpu(), value.cpu(), what=f"{what}: parameter {name}",
                     hint=TRAIN_HINT, **WEIGHT_TOL)


@check("train_model", points=1, kind="property")
def test_train_model_moves_every_batch(student, device):
    spec = _train_spec(device, seed=710, n=24, batch_size=8, epochs=2)
    got = student.run("train", spec).unwrap()
    expect(got["batches_moved"] == got["batch_tensors"],
           f"train_model moved {got['batches_moved']} of the {got['batch_tensors']} tensors the "
           f"loader yielded to the device ({spec['device']} here). A DataLoader yields CPU "
           "tensors; on a GPU the forward pass fails unless every batch is moved: "
           "x, y = x.to(device), y.to(device).")


@check("train_model", points=1, kind="property")
def test_train_model_runs_on_device(student, device):
    spec = _train_spec(device, seed=720, n=16, batch_size=8, epochs=1)
    got = student.run("train", spec).unwrap()
    expect(got["model_device"] == device,
           f"after train_model the model is on {got['model_device']}, expected {device}. Call "
           "model.to(device) at the start.")
    expect(got["forward_devices"] == [device],
           f"train_model fed the model batches on {got['forward_devices']}, expected only "
           f"{device}. Move every batch with x.to(device).")


# --- evaluate -----------------------------------------------------------------------------------


@check("evaluate", points=1)
def test_evaluate_smaller_last_batch(student, reference, device):
    spec = _eval_spec(device, seed=800, n=50, batch_size=16, share_right=0.6)
    what = "evaluate on 50 samples in batches of 16 (the last batch has 2)"
    got = _as_number(student.run("evaluate", spec).unwrap()["accuracy"], what)
    want = _as_number(reference.run("evaluate", spec).unwrap()["accuracy"], what)
    hint = ("Count the correct predictions over all batches and divide by the total number of "
            "samples (e.g. len(loader.dataset)). Averaging per-batch accuracies gives the small "
            "last batch as much weight as a full one.")
    if math.isclose(got, want * 50, rel_tol=1e-6):
        hint = "You return the number of correct predictions; divide it by the 50 samples."
    elif math.isclose(got, want * 100, rel_tol=1e-6):
        hint = "You return a percentage; return a fraction in [0, 1]."
    assert_close(got, want, what=what, rtol=1e-5, atol=1e-7, hint=hint)


@check("evaluate", points=1, kind="property")
def test_evaluate_runs_on_device(student, device):
    spec = _eval_spec(device, seed=810, n=24, batch_size=8, share_right=0.6)
    got = student.run("evaluate", spec).unwrap()
    expect(got["forwards"] > 0, "evaluate never called the model on a batch.")
    expect(got["forward_devices"] == [device],
           f"evaluate fed the model batches on {got['forward_devices']}, expected only {device}. "
           "Call model.to(device) and move every batch with x.to(device).")
    expect(2 * got["batches_moved"] >= got["batch_tensors"],
           f"evaluate moved {got['batches_moved']} of the {got['batch_tensors']} tensors the "
           f"loader yielded to the device ({device} here). A DataLoader yields CPU tensors: "
           "move each batch with x, y = x.to(device), y.to(device).")
