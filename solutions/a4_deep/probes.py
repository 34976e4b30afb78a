"""Probes for a4_deep: build the student's ``Net`` and describe it, or run it with given weights.

Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel).
"""

import torch
from torch import nn

from autograder.probes import ProbeError, probe


def _hidden(net):
    hidden = getattr(net, "hidden", None)
    if hidden is None:
        raise ProbeError("the network has no attribute 'hidden'; store the layers in self.hidden")
    return hidden


@probe
def net_structure(ns, layers):
    """Build ``Net(layers)`` and describe its modules."""
    net = ns.call("Net", layers)
    hidden = getattr(net, "hidden", None)
    linears = []
    if isinstance(hidden, nn.Module):
        for child in hidden.children():
            if isinstance(child, nn.Linear):
                linears.append([child.in_features, child.out_features])
            else:
                linears.append(type(child).__name__)
    hidden_ids = {id(p) for p in hidden.parameters()} if isinstance(hidden, nn.Module) else set()
    params = list(net.parameters()) if isinstance(net, nn.Module) else []
    return {
        "is_module": isinstance(net, nn.Module),
        "hidden_type": type(hidden).__name__,
        "children": linears,
        "n_params": sum(p.numel() for p in params),
        "params_outside_hidden": sum(p.numel() for p in params if id(p) not in hidden_ids),
    }


@probe
def net_forward(ns, layers, weights, x):
    """Build ``Net(layers)``, load ``weights`` [(W [out, in], b [out]), ...] into ``hidden[i]``,
    move it to ``x``'s device and dtype, and return ``net(x)``."""
    net = ns.call("Net", layers)
    hidden = list(_hidden(net))
    if len(hidden) != len(weights):
        count = f"{len(hidden)} layer{'s' if len(hidden) != 1 else ''}"
        raise ProbeError(f"Net({layers}).hidden has {count}, expected {len(weights)}")
    net = net.to(device=x.device, dtype=x.dtype)
    with torch.no_grad():
        for layer, (w, b) in zip(hidden, weights, strict=True):
            if getattr(layer, "weight", None) is None or layer.weight.shape != w.shape:
                raise ProbeError(
                    f"layer {type(layer).__name__} in hidden does not have a weight of shape "
                    f"{tuple(w.shape)}"
                )
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    with ns.recording():
        out = net(x)
    return out.detach() if isinstance(out, torch.Tensor) else out
