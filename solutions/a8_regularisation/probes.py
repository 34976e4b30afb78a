"""Probes for a8_regularisation: drive the student's functions where a plain call cannot.

- ``dropout_outputs`` and ``dropout_summary`` build the ``torch.Generator`` that ``dropout``
  takes here, in the sandbox (a generator cannot cross the boundary), from a seed; the summary
  counts what a large output holds instead of sending it back.
- ``dropout_gradient`` back-propagates ``out.sum()`` through one call.
- ``init_statistics`` builds an ``nn.Linear``, hands it to ``init_weights`` and reports the
  statistics of the weights it holds afterwards (in place: the layer passed in is measured).
- ``momentum_trajectory`` runs many steps of ``momentum_step`` on a least-squares problem.

Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel).
"""

import torch
from torch import nn

from autograder.probes import ProbeError, probe


def _generator(spec, device):
    """The generator argument for one call. ``spec`` is {"generator": seed} (a fresh generator
    on ``device`` seeded with it), {"global": seed} (reseed the global generator, pass None) or
    {"global": None} (pass None, the global generator left as it is)."""
    if "generator" in spec:
        return torch.Generator(device=device).manual_seed(spec["generator"])
    if spec.get("global") is not None:
        torch.manual_seed(spec["global"])
    return None


def _tensor(value, name="dropout"):
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"{name} returned {type(value).__name__}, expected a tensor shaped like x")
    return value


@probe
def dropout_outputs(ns, x, p, training, specs):
    """Call ``dropout(copy of x, p, training, generator)`` once per entry of ``specs`` (see
    ``_generator``); return the outputs and whether any call changed x in place."""
    outputs, changed = [], False
    for spec in specs:
        copy = x.clone()
        out = ns.call("dropout", copy, p, training, _generator(spec, x.device))
        changed = changed or not torch.equal(copy, x)
        outputs.append(out.detach() if isinstance(out, torch.Tensor) else out)
    return {"outputs": outputs, "x_changed": changed}


@probe
def dropout_summary(ns, x, p, seed):
    """Call ``dropout(copy of x, p, True, generator seeded with seed)`` and count its elements:
    exact zeros, survivors equal to x / (1 - p) (to 1e-5 relative: the order of the product and
    the division, or a float32 scale, moves the last digits), and anything else."""
    copy = x.clone()
    out = _tensor(ns.call("dropout", copy, p, True, torch.Generator(device=x.device).manual_seed(seed)))
    if tuple(out.shape) != tuple(x.shape):
        raise ProbeError(f"dropout returned a tensor of shape {tuple(out.shape)} for x of shape "
                         f"{tuple(x.shape)}; it must keep x's shape")
    got = out.detach().to("cpu", torch.float64).flatten()
    xs = x.to("cpu", torch.float64).flatten()
    scaled_value = xs / (1 - p)
    zero = got == 0
    scaled = ~zero & ((got - scaled_value).abs() <= 1e-5 * scaled_value.abs())
    other = ~(zero | scaled)
    examples = [[int(i), float(xs[i]), float(got[i])] for i in other.nonzero().flatten()[:3]]
    return {
        "n": got.numel(), "zeros": int(zero.sum()), "scaled": int(scaled.sum()),
        "other": int(other.sum()), "examples": examples,
        "sum_out": float(got.sum()), "sum_x": float(xs.sum()), "sum_x2": float((xs * xs).sum()),
        "x_changed": not torch.equal(copy, x),
    }


@probe
def dropout_gradient(ns, x, p, seed):
    """Back-propagate ``dropout(x, p, True, generator).sum()`` to x; return the output and the
    gradient (None when the output is not connected to x)."""
    leaf = x.clone().requires_grad_(True)
    out = _tensor(ns.call("dropout", leaf, p, True, torch.Generator(device=x.device).manual_seed(seed)))
    if out.grad_fn is None:
        return {"out": out.detach(), "grad": None}
    with ns.recording():
        out.sum().backward()
    return {"out": out.detach(), "grad": leaf.grad}


@probe
def init_statistics(ns, fan_in, fan_out, scheme, seed, dtype="float32", device="cpu"):
    """Build ``nn.Linear(fan_in, fan_out)`` on ``device`` in ``dtype``, call
    ``init_weights(layer, scheme)`` with the global generator seeded, and describe the layer it
    was given: its weight's statistics (in float64), its bias, and what came back."""
    torch.manual_seed(seed)
    layer = nn.Linear(fan_in, fan_out).to(device=device, dtype=getattr(torch, dtype))
    weight, bias = layer.weight, layer.bias
    returned = ns.call("init_weights", layer, scheme)
    w_now, b_now = layer.weight, layer.bias
    if not isinstance(w_now, torch.Tensor) or not isinstance(b_now, torch.Tensor):
        raise ProbeError("after init_weights the layer's weight or bias is no longer a tensor")
    w = w_now.detach().to("cpu", torch.float64).flatten()
    centred = w - w.mean()
    m2 = float((centred ** 2).mean())
    return {
        "returned_layer": returned is layer,
        "returned": type(returned).__name__,
        "same_weight": w_now is weight,
        "same_bias": b_now is bias,
        "shape": list(w_now.shape),
        "dtype": str(w_now.dtype).removeprefix("torch."),
        "device": w_now.device.type,
        "finite": bool(torch.isfinite(w).all()),
        "n": w.numel(),
        "mean": float(w.mean()),
        "rms": float(w.pow(2).mean().sqrt()),
        "kurtosis": float((centred ** 4).mean()) / m2 ** 2 if m2 > 0 else 0.0,
        "max_abs": float(w.abs().max()),
        "bias_max_abs": float(b_now.detach().abs().max()),
    }


@probe
def momentum_trajectory(ns, A, b, x0, lrs, momentum):
    """Minimise mean((A x - b)**2) / 2 from ``x0`` with ``momentum_step``, one step per entry
    of ``lrs`` (the learning rate of that step), the velocity starting at zero. Every call gets
    fresh copies, so changing the arguments in place is harmless. Returns the parameters and
    velocities after each step, stacked."""
    param, velocity = x0.clone(), torch.zeros_like(x0)
    params, velocities = [], []
    for step, lr in enumerate(lrs, 1):
        grad = A.T @ (A @ param - b) / A.shape[0]
        result = ns.call("momentum_step", param.clone(), grad, velocity.clone(), lr, momentum)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ProbeError(f"at step {step}, momentum_step returned {type(result).__name__}; it "
                             "must return the pair (new_param, new_velocity)")
        for name, value in zip(("new_param", "new_velocity"), result, strict=True):
            if not isinstance(value, torch.Tensor) or value.shape != x0.shape:
                kind = type(value).__name__ + (f" of shape {tuple(value.shape)}"
                                               if isinstance(value, torch.Tensor) else "")
                raise ProbeError(f"at step {step}, momentum_step returned {name} as {kind}; it "
                                 f"must be a tensor shaped like param, {tuple(x0.shape)}")
        param, velocity = (t.detach() for t in result)
        params.append(param.clone())
        velocities.append(velocity.clone())
    return {"params": torch.stack(params), "velocities": torch.stack(velocities)}
