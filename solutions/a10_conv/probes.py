"""Probes for a10_conv: drive the student's functions where a plain call cannot.

- ``weighted_backward`` calls ``conv2d`` or ``max_pool2d`` on inputs that require grad and
  back-propagates a weighted sum of the output, so that the gradients can be compared (a plain
  sum would give x the same gradient for a kernel and its flipped copy).

Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel).
"""

import torch

from autograder.probes import ProbeError, probe


@probe
def weighted_backward(ns, name, args, wrt, upstream):
    """Call ``name(*args)`` with ``args[i]`` requiring grad for i in ``wrt``, back-propagate
    ``(out * upstream).sum()``; return the output, whether it has a graph, and the gradients
    (None for an argument the output is not connected to)."""
    args = [a.detach().clone().requires_grad_(True) if i in wrt else a for i, a in enumerate(args)]
    out = ns.call(name, *args)
    if not isinstance(out, torch.Tensor):
        raise ProbeError(f"{name} returned {type(out).__name__}; it must return a tensor")
    if tuple(out.shape) != tuple(upstream.shape):
        raise ProbeError(f"{name} returned shape {tuple(out.shape)}, expected "
                         f"{tuple(upstream.shape)}")
    if out.grad_fn is None:
        return {"value": out.detach(), "connected": False, "grads": [None for _ in wrt]}
    with ns.recording():
        (out * upstream).sum().backward()
    return {"value": out.detach(), "connected": True, "grads": [args[i].grad for i in wrt]}
