"""Hidden checks for a4_deep: run by `grade`, never shipped to students."""

import pytest
import torch

from autograder.checks import assert_close, assert_same_kind, check, expect, fail, randn

from public_checks import (  # helpers shared with the public checks
    FORWARD_HINT,
    describe_children,
    relu_on_last_hint,
)

BUILD_HINT = ("self.hidden must be an nn.ModuleList holding nn.Linear(layers[i], layers[i + 1]) "
              "for every i in range(len(layers) - 1), for any length of layers.")

# Widths for the depth sweep: Net(WIDTHS[:depth] + [3]) has `depth` linear layers.
WIDTHS = [6, 9, 5, 8, 7, 4]


def layers_of_depth(depth):
    return WIDTHS[:depth] + [3]


def weights_for(layers, seed, device, dtype=torch.float32, last_bias=0.0):
    """Return [(W, b), ...] for Net(layers): W [layers[i+1], layers[i]], b [layers[i+1]].

    Weights are scaled by 1/sqrt(fan-in) so activations stay of order 1 at any depth;
    ``last_bias`` shifts the output layer's bias (negative: mostly negative logits).
    """
    weights = []
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        w = randn(n_out, n_in, seed=seed + 2 * i, scale=1.5 * n_in ** -0.5, dtype=dtype,
                  device=device)
        b = randn(n_out, seed=seed + 2 * i + 1, scale=0.5, dtype=dtype, device=device)
        if i == len(layers) - 2:
            b = b + last_bias
        weights.append((w, b))
    return weights


def forward(subject, layers, weights, x, hint=""):
    """Run Net(layers) with ``weights`` loaded on ``x``; explain a failure to the student."""
    outcome = subject.run("net_forward", layers, weights, x)
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"Net({layers}) could not run on x of shape {tuple(x.shape)} "
             f"({str(x.dtype).removeprefix('torch.')}) after loading weights into "
             f"self.hidden[0..{len(weights) - 1}]. {hint or BUILD_HINT} "
             f"What went wrong: {error.describe()}")
    return outcome.unwrap()


@check("net", points=0.5)
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
def test_net_forward_any_depth(student, reference, device, depth):
    layers = layers_of_depth(depth)
    weights = weights_for(layers, seed=207 + 20 * depth, device=device)
    x = randn(7, layers[0], seed=206 + 20 * depth, device=device)
    got = forward(student, layers, weights, x)
    want = forward(reference, layers, weights, x)
    extra = (" With a single layer (len(layers) == 2) the network is just hidden[0], with no "
             "activation." if depth == 1 else "")
    assert_close(got, want, what=f"Net({layers})(x), {depth} linear layer(s), same weights loaded",
                 inputs={"x": x}, hint=FORWARD_HINT + extra + relu_on_last_hint(got, want))


@check("net", points=1.5)
def test_net_structure_any_depth(student, reference, device):
    for layers in ([10, 2], [3, 5, 5, 5, 2], [7, 6, 5, 4, 3, 2, 1], [2, 16, 16, 16, 16, 16, 2]):
        got = student.run("net_structure", layers).unwrap()
        want = reference.run("net_structure", layers).unwrap()
        expect(got["children"] == want["children"],
               f"Net({layers}).hidden holds {describe_children(got['children'])} "
               f"({got['hidden_type']}); expected {describe_children(want['children'])}. "
               + BUILD_HINT)


@check("net", points=1)
def test_net_parameters_any_depth(student, reference, device):
    for layers in ([10, 2], [3, 5, 5, 5, 2], [7, 6, 5, 4, 3, 2, 1]):
        got = student.run("net_structure", layers).unwrap()
        want = reference.run("net_structure", layers).unwrap()
        expect(got["n_params"] == want["n_params"] and got["params_outside_hidden"] == 0,
               f"Net({layers}) registers {got['n_params']} parameters "
               f"({got['params_outside_hidden']} outside self.hidden); expected "
               f"{want['n_params']}, the sum of in*out + out over the layers, all in self.hidden. "
               "Layers in a plain Python list, or created in forward, are not registered: "
               "use nn.ModuleList.")


@check("net", points=1)
def test_net_keeps_negative_logits(student, reference, device):
    layers = [4, 6, 5]
    weights = weights_for(layers, seed=300, device=device, last_bias=-2.0)
    x = randn(8, 4, seed=299, device=device)
    got = forward(student, layers, weights, x)
    want = forward(reference, layers, weights, x)
    assert_close(got, want, what=f"Net({layers})(x) whose logits are mostly negative",
                 inputs={"x": x},
                 hint="The last layer returns logits for nn.CrossEntropyLoss: they must be free "
                      "to be negative, so apply no ReLU (or any activation) after it."
                      + relu_on_last_hint(got, want))


@check("net", points=1)
def test_net_forward_float64(student, reference, device):
    layers = [3, 16, 16, 2]
    weights = weights_for(layers, seed=400, device=device, dtype=torch.float64)
    x = randn(5, 3, seed=399, device=device, dtype=torch.float64)
    hint = ("The grader moves the network with net.to(dtype=torch.float64). Layers kept in a "
            "plain Python list are not converted (use nn.ModuleList), and tensors you create "
            "yourself in forward keep their own dtype.")
    got = forward(student, layers, weights, x, hint=hint)
    want = forward(reference, layers, weights, x)
    assert_close(got, want, what=f"Net({layers}).double()(x) with float64 weights",
                 inputs={"x": x}, hint=FORWARD_HINT)


@check("net", points=0.5, kind="property")
def test_net_output_kind(student, reference, device):
    layers = [3, 4, 2]
    weights = weights_for(layers, seed=500, device=device, dtype=torch.float64)
    x = randn(2, 3, seed=499, device=device, dtype=torch.float64)
    got = forward(student, layers, weights, x,
                  hint="Layers kept in a plain Python list are not converted by net.to(): "
                       "use nn.ModuleList.")
    want = forward(reference, layers, weights, x)
    assert_same_kind(got, want, what=f"Net({layers}).double()(x) for float64 x")
    expect(tuple(got.shape) == tuple(want.shape),
           f"Net({layers})(x) for x of shape {tuple(x.shape)} returned shape "
           f"{tuple(got.shape)}, expected {tuple(want.shape)}: [N, layers[-1]].")
