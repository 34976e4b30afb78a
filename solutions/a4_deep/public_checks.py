"""Public checks for a4_deep: students see these and run them from the check cell."""

import torch

from autograder.checks import assert_close, check, expect, fail, hint, randn

LAYERS = [4, 8, 3]
BUILD_HINT = hint("Keep the layers in an nn.ModuleList in self.hidden: one nn.Linear per pair of "
                  "consecutive sizes in layers, in order.",
                  formula="self.hidden = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in "
                          "zip(layers, layers[1:]))")
FORWARD_HINT = ("In forward, pass x through every layer of self.hidden in order and apply ReLU "
                "after each one except the last, which returns the raw logits.")


def weights_for(layers, seed, device, dtype=torch.float32):
    """Return [(W, b), ...] for Net(layers): W [layers[i+1], layers[i]], b [layers[i+1]]."""
    return [
        (randn(n_out, n_in, seed=seed + 2 * i, scale=n_in ** -0.5, dtype=dtype, device=device),
         randn(n_out, seed=seed + 2 * i + 1, scale=0.5, dtype=dtype, device=device))
        for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True))
    ]


def describe_children(children):
    """Render net_structure's children list as 'Linear(4, 8), ReLU'."""
    return ", ".join(f"Linear({c[0]}, {c[1]})" if isinstance(c, list) else str(c)
                     for c in children) or "nothing"


def forward(subject, layers, weights, x):
    """Run Net(layers) with ``weights`` loaded on ``x``; explain a failure to the student."""
    outcome = subject.run("net_forward", layers, weights, x)
    error = outcome.error
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"Net({layers}) could not run on x of shape {tuple(x.shape)} "
             f"({str(x.dtype).removeprefix('torch.')}) after loading weights into "
             f"self.hidden[0..{len(weights) - 1}]. self.hidden must hold exactly "
             f"len(layers) - 1 = {len(weights)} nn.Linear layers, layer i mapping layers[i] "
             f"inputs to layers[i + 1] outputs. {FORWARD_HINT} What went wrong: "
             f"{error.describe()}")
    return outcome.unwrap()


def relu_on_last_hint(got, want):
    """A targeted hint when the only difference is a ReLU applied to the logits."""
    if (isinstance(got, torch.Tensor) and got.shape == want.shape and bool((want < 0).any())
            and torch.allclose(got.double(), want.clamp(min=0).double(), rtol=1e-4, atol=1e-5)):
        return (" Your outputs are the expected logits with the negative ones set to 0: do not "
                "apply ReLU after the last layer.")
    return ""


@check("net", points=1, kind="property")
def test_net_is_module(student, reference, device):
    got = student.run("net_structure", LAYERS).unwrap()
    want = reference.run("net_structure", LAYERS).unwrap()
    expect(got["is_module"] == want["is_module"],
           f"Net({LAYERS}) is not an nn.Module. Declare it as `class Net(nn.Module):` and call "
           "super().__init__() first in __init__.")


@check("net", points=1, kind="property")
def test_net_hidden_is_modulelist(student, reference, device):
    got = student.run("net_structure", LAYERS).unwrap()
    want = reference.run("net_structure", LAYERS).unwrap()
    kind = got["hidden_type"]
    if kind == want["hidden_type"]:
        return
    if kind == "NoneType":
        fail(f"Net({LAYERS}) has no attribute 'hidden'. Store the layers in self.hidden. "
             + BUILD_HINT)
    if kind in ("list", "tuple"):
        fail(f"Net({LAYERS}).hidden is a plain Python {kind}. PyTorch does not look inside "
             "lists: the layers' parameters are not registered (model.parameters() and the "
             "optimizer see none of them) and .to(device) or .double() do not move them. Wrap "
             "the layers in nn.ModuleList.")
    fail(f"Net({LAYERS}).hidden is a {kind}; it must be an nn.ModuleList of the nn.Linear "
         f"layers. {BUILD_HINT}")


@check("net", points=1)
def test_net_layer_sizes(student, reference, device):
    got = student.run("net_structure", LAYERS).unwrap()
    want = reference.run("net_structure", LAYERS).unwrap()
    if got["children"] == want["children"]:
        return
    text = (f"Net({LAYERS}).hidden holds {describe_children(got['children'])}; expected "
            f"{describe_children(want['children'])} (in this order).")
    if got["hidden_type"] in ("list", "tuple", "NoneType"):
        fail(f"{text} hidden is a {got['hidden_type']}, not a module, so it holds no "
             f"registered layers. {BUILD_HINT}")
    if len(got["children"]) != len(want["children"]):
        fail(f"{text} There must be exactly len(layers) - 1 = {len(want['children'])} layers, "
             f"and nothing else (keep activations in forward). {BUILD_HINT}")
    fail(f"{text} nn.Linear(in_features, out_features): layer i takes layers[i] inputs and "
         f"gives layers[i + 1] outputs. {BUILD_HINT}")


@check("net", points=2)
def test_net_parameters_registered(student, reference, device):
    got = student.run("net_structure", LAYERS).unwrap()
    want = reference.run("net_structure", LAYERS).unwrap()
    expect(got["n_params"] == want["n_params"],
           f"Net({LAYERS}).parameters() holds {got['n_params']} numbers, expected "
           f"{want['n_params']} (4*8 + 8 weights and biases in the first layer, 8*3 + 3 in the "
           "second). "
           + ("Nothing is registered: layers kept in a plain Python list (or created in "
              "forward) are invisible to model.parameters() and the optimizer. Use nn.ModuleList."
              if got["n_params"] == 0 else BUILD_HINT))
    expect(got["params_outside_hidden"] == 0,
           f"Net({LAYERS}) has {got['params_outside_hidden']} parameters outside self.hidden. "
           "Keep all the layers in self.hidden (parameter-free modules such as nn.ReLU() may "
           "live elsewhere).")


@check("net", points=2)
def test_net_forward_one_hidden_layer(student, reference, device):
    layers = [5, 7, 3]
    weights = weights_for(layers, seed=101, device=device)
    x = randn(6, 5, seed=100, device=device)
    got = forward(student, layers, weights, x)
    want = forward(reference, layers, weights, x)
    assert_close(got, want, what=f"Net({layers})(x) with the same weights loaded",
                 inputs={"x": x}, hint=FORWARD_HINT + relu_on_last_hint(got, want))
