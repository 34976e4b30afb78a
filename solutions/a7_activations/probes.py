"""Probes for a7_activations: call an activation on a copy of its input and report whether the
call changed it; build a network from given weights and run the student's ``layer_grad_norms``
on it, several times in a row or after another backward pass has left gradients behind.

Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel).
"""

import torch
from torch import nn

from autograder.probes import probe

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


@probe
def call_unchanged(ns, name, z):
    """Call ``name(z)`` on a copy of ``z``; return ``{"value": the result, "changed": whether the
    call modified its argument in place}``."""
    copy = z.clone()
    value = ns.call(name, copy)
    return {"value": value, "changed": not torch.equal(copy, z)}


def build(layers):
    """An ``nn.Sequential`` from ``layers``: activation names, and ``{"weight": W [out, in],
    "bias": b [out] or None}`` for each ``nn.Linear`` (built on W's device, in W's dtype)."""
    modules = []
    for layer in layers:
        if isinstance(layer, str):
            modules.append(ACTIVATIONS[layer]())
            continue
        weight, bias = layer["weight"], layer["bias"]
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                           device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight)
            if bias is not None:
                linear.bias.copy_(bias)
        modules.append(linear)
    return nn.Sequential(*modules)


def _form(value):
    """What kind of answer ``value`` is: its type, and its items' types when it is a sequence
    (the wire turns NumPy scalars and 0-d tensors' values into plain data, so say it here)."""
    items = [type(v).__name__ for v in value] if isinstance(value, (list, tuple)) else None
    return {"type": type(value).__name__, "items": items}


@probe
def grad_norms(ns, layers, x, y, calls=1, stale=False):
    """Build the network ``layers`` describes and call ``layer_grad_norms(model, x, y)`` on it
    ``calls`` times in a row; with ``stale``, first leave the gradients of another loss in every
    ``.grad``. Returns ``{"results": [each call's answer], "forms": [each answer's form]}``."""
    model = build(layers)
    if stale:
        (model(x) ** 2).mean().backward()  # an earlier, unrelated backward pass
    results, forms = [], []
    for _ in range(calls):
        value = ns.call("layer_grad_norms", model, x.clone(), y.clone())
        results.append(value)
        forms.append(_form(value))
    return {"results": results, "forms": forms}
