"""The a4_deep reference Net against torch oracles: an nn.Sequential twin with copied weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from autograder.course import load_assignment, reference_namespace

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
WIDTHS = [6, 9, 5, 8, 7, 4, 3]


@pytest.fixture(scope="module")
def Net():  # noqa: N802 - the fixture is the class
    return reference_namespace(load_assignment("a4_deep", SOLUTIONS))["Net"]


def sequential_twin(net: nn.Module) -> nn.Sequential:
    """Return nn.Sequential(Linear, ReLU, ..., Linear) holding copies of net.hidden's layers."""
    modules: list[nn.Module] = []
    for i, layer in enumerate(net.hidden):
        twin = nn.Linear(layer.in_features, layer.out_features).to(layer.weight.dtype)
        with torch.no_grad():
            twin.weight.copy_(layer.weight)
            twin.bias.copy_(layer.bias)
        modules.append(twin)
        if i < len(net.hidden) - 1:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
def test_forward_matches_sequential_twin(Net, depth, dtype):  # noqa: N803
    torch.manual_seed(depth)
    layers = WIDTHS[:depth] + [WIDTHS[-1]]
    net = Net(layers).to(dtype)
    twin = sequential_twin(net)
    x = torch.randn(11, layers[0], dtype=dtype)
    out = net(x)
    assert out.dtype == dtype
    assert out.shape == (11, layers[-1])
    torch.testing.assert_close(out, twin(x))


def test_logits_can_be_negative(Net):  # noqa: N803
    torch.manual_seed(0)
    net = Net([4, 6, 5])
    with torch.no_grad():
        net.hidden[-1].bias.fill_(-10.0)
    x = torch.randn(8, 4)
    out = net(x)
    assert bool((out < 0).all()), "no ReLU may follow the last layer"
    torch.testing.assert_close(out, sequential_twin(net)(x))


@pytest.mark.parametrize("layers", [[10, 2], [3, 5, 5, 5, 2], [7, 6, 5, 4, 3, 2, 1], [64, 32, 10]])
def test_structure_and_parameter_count(Net, layers):  # noqa: N803
    net = Net(layers)
    assert isinstance(net, nn.Module)
    assert type(net.hidden) is nn.ModuleList
    pairs = list(zip(layers[:-1], layers[1:], strict=True))
    assert [(m.in_features, m.out_features) for m in net.hidden] == pairs
    assert all(type(m) is nn.Linear for m in net.hidden)
    expected = sum(a * b + b for a, b in pairs)
    assert sum(p.numel() for p in net.parameters()) == expected
    assert sum(p.numel() for p in net.hidden.parameters()) == expected


def test_double_moves_every_layer(Net):  # noqa: N803
    net = Net([3, 4, 4, 2]).double()
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert net(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64
