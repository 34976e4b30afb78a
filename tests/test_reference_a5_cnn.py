"""The a5_cnn reference solutions agree with PyTorch itself.

conv_output_size is compared with the output shapes of real nn.Conv2d and nn.MaxPool2d layers
(and raises exactly when they do); train_model with a plain training loop written here; evaluate
with a direct computation of the accuracy.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.course import load_assignment, reference_namespace

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(load_assignment("a5_cnn", SOLUTIONS))


def _layer_output(layer: nn.Module, size: int) -> int | None:
    """The output height of ``layer`` on a size x size image, or None when the layer refuses."""
    try:
        with torch.no_grad():
            return int(layer(torch.zeros(1, 1, size, size)).shape[-2])
    except RuntimeError:
        return None


def _reference_output(ref, size: int, *args: int) -> int | None:
    try:
        out = ref["conv_output_size"](size, *args)
    except ValueError:
        return None
    assert type(out) is int, f"conv_output_size{(size, *args)} returned {type(out).__name__}"
    return out


def test_conv_output_size_matches_conv2d(ref):
    checked = refused = 0
    for kernel, stride, padding, dilation in itertools.product(
        range(1, 6), range(1, 4), range(0, 3), range(1, 4)
    ):
        conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation, bias=False)
        for size in range(1, 13):
            want = _layer_output(conv, size)
            got = _reference_output(ref, size, kernel, stride, padding, dilation)
            assert got == want, (f"size={size} kernel={kernel} stride={stride} padding={padding} "
                                 f"dilation={dilation}: reference {got}, nn.Conv2d {want}")
            checked += 1
            refused += want is None
    assert refused > 50 and checked - refused > 1000  # both branches really exercised


def test_conv_output_size_matches_maxpool2d_floor_mode(ref):
    for kernel, stride, dilation in itertools.product(range(1, 5), range(1, 4), range(1, 3)):
        for padding in range(0, kernel // 2 + 1):  # MaxPool2d allows padding <= kernel / 2
            pool = nn.MaxPool2d(kernel, stride=stride, padding=padding, dilation=dilation,
                                ceil_mode=False)
            for size in range(1, 13):
                want = _layer_output(pool, size)
                got = _reference_output(ref, size, kernel, stride, padding, dilation)
                assert got == want, (f"size={size} kernel={kernel} stride={stride} "
                                     f"padding={padding} dilation={dilation}: reference {got}, "
                                     f"nn.MaxPool2d {want}")


def test_conv_output_size_default_pooling_stride(ref):
    for size in range(2, 15):
        want = _layer_output(nn.MaxPool2d(2), size)
        assert ref["conv_output_size"](size, 2, stride=2) == want


def _tiny_model(dropout: float) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(3 * 4 * 4, 10),
    )


def _data(n: int = 40) -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    return TensorDataset(torch.rand(n, 1, 8, 8, generator=generator),
                         torch.randint(0, 10, (n,), generator=generator))


def _plain_loop(model, loader, criterion, optimizer, epochs):
    model.train()
    means = []
    for _ in range(epochs):
        losses = []
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        means.append(sum(losses) / len(losses))
    return means


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_train_model_matches_plain_loop(ref, dropout):
    loader = DataLoader(_data(), batch_size=8, shuffle=False)
    ours, theirs = _tiny_model(dropout), _tiny_model(dropout)
    ours.eval()  # the reference must switch to train mode itself
    theirs.eval()
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)

    torch.manual_seed(5)
    got = ref["train_model"](ours, loader, nn.CrossEntropyLoss(), opt_ours, torch.device("cpu"),
                             epochs=3)
    torch.manual_seed(5)
    want = _plain_loop(theirs, loader, nn.CrossEntropyLoss(), opt_theirs, epochs=3)

    assert isinstance(got, list) and all(type(v) is float for v in got)
    assert got == pytest.approx(want, rel=1e-12)
    assert want[-1] < want[0]  # it did learn something
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert ours.training


def test_train_model_epoch_mean_is_sample_mean_for_equal_batches(ref):
    data = _data(32)
    model = _tiny_model(0.0)
    snapshot = copy.deepcopy(model)
    loader = DataLoader(data, batch_size=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # no update: losses of the start model
    got = ref["train_model"](model, loader, nn.CrossEntropyLoss(), optimizer, "cpu", epochs=1)
    with torch.no_grad():
        direct = nn.CrossEntropyLoss()(snapshot(data.tensors[0]), data.tensors[1]).item()
    assert got == pytest.approx([direct], rel=1e-6)


def test_evaluate_matches_direct_accuracy(ref):
    data = _data(50)
    model = _tiny_model(0.5)
    model.train()  # the reference must switch to eval mode itself
    with torch.no_grad():
        scores = copy.deepcopy(model).eval()(data.tensors[0])
    want = (scores.argmax(dim=1) == data.tensors[1]).double().mean().item()
    got = ref["evaluate"](model, DataLoader(data, batch_size=16), "cpu")
    assert type(got) is float
    assert got == pytest.approx(want, abs=1e-12)
    assert not model.training


def test_evaluate_on_perfect_and_hopeless_labels(ref):
    data = _data(30)
    model = _tiny_model(0.0).eval()
    with torch.no_grad():
        predicted = model(data.tensors[0]).argmax(dim=1)
    right = DataLoader(TensorDataset(data.tensors[0], predicted), batch_size=7)
    wrong = DataLoader(TensorDataset(data.tensors[0], (predicted + 1) % 10), batch_size=7)
    assert ref["evaluate"](model, right, torch.device("cpu")) == 1.0
    assert ref["evaluate"](model, wrong, torch.device("cpu")) == 0.0
