"""Probes for a9_batchnorm: drive ``batchnorm_forward`` where a plain call cannot.

- ``batchnorm_steps`` calls it on a sequence of batches, in training or evaluation mode, and
  feeds the running statistics each call returns into the next, as an ``nn.BatchNorm1d`` layer
  carries its buffers from one forward pass to the next.
- ``batchnorm_gradients`` back-propagates a weighted sum of y to x, gamma and beta.
- ``bnnet_run`` builds the student's ``BNNet``, loads given weights into its layers (found by
  their sizes) and runs it in training and evaluation mode.

Every call gets fresh copies of its tensors: changing the arguments in place is allowed.
Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel).
"""

import torch
from torch import nn

from autograder.probes import ProbeError, probe

NAMES = ("y", "new_running_mean", "new_running_var")


def _unpack(result, x, running_mean, step):
    """The student's (y, new_running_mean, new_running_var), each checked for its shape."""
    where = f" at step {step}" if step else ""
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise ProbeError(f"batchnorm_forward returned {type(result).__name__}{where}; it must "
                         "return the tuple (y, new_running_mean, new_running_var)")
    shapes = (tuple(x.shape), tuple(running_mean.shape), tuple(running_mean.shape))
    for name, value, shape in zip(NAMES, result, shapes, strict=True):
        if not isinstance(value, torch.Tensor):
            raise ProbeError(f"batchnorm_forward returned {name} as {type(value).__name__}{where}; "
                             f"it must be a tensor of shape {shape}")
        if tuple(value.shape) != shape:
            raise ProbeError(f"batchnorm_forward returned {name} of shape {tuple(value.shape)}"
                             f"{where} for x of shape {tuple(x.shape)}; it must have shape "
                             f"{shape}, "
                             + ("like x" if name == "y" else "one value per channel (a column of x): "
                                "take the statistics over dim 0, the batch"))
    return result


@probe
def batchnorm_steps(ns, xs, gamma, beta, running_mean, running_var, modes, options):
    """Call ``batchnorm_forward(x, gamma, beta, running_mean, running_var, training, *options)``
    for each batch x of ``xs`` with ``training`` from ``modes``, starting from the running
    statistics given and passing on those each call returns. ``options`` holds momentum and eps
    (or nothing: the defaults). Returns y and the running statistics after every step."""
    ys, means, variances = [], [], []
    mean, var = running_mean, running_var
    for step, (x, training) in enumerate(zip(xs, modes, strict=True), 1):
        result = ns.call("batchnorm_forward", x.clone(), gamma.clone(), beta.clone(), mean.clone(),
                         var.clone(), training, *options)
        y, mean, var = (t.detach().clone() for t in _unpack(result, x, running_mean,
                                                           step if len(xs) > 1 else 0))
        ys.append(y)
        means.append(mean)
        variances.append(var)
    return {"ys": ys, "means": means, "vars": variances}


@probe
def batchnorm_gradients(ns, x, gamma, beta, running_mean, running_var, training, upstream, options):
    """Back-propagate ``(y * upstream).sum()`` for y from ``batchnorm_forward``; return y and
    the gradients with respect to x, gamma and beta (None for one y is not connected to).
    A plain sum would not do: in training its gradient with respect to x is 0 whatever y is."""
    leaves = [t.clone().requires_grad_(True) for t in (x, gamma, beta)]
    result = ns.call("batchnorm_forward", *(leaf.clone() for leaf in leaves),
                     running_mean.clone(), running_var.clone(), training, *options)
    y = _unpack(result, x, running_mean, 0)[0]
    if y.grad_fn is None:
        return {"y": y.detach(), "connected": False, "grads": [None, None, None]}
    with ns.recording():
        (y * upstream).sum().backward()
    return {"y": y.detach(), "connected": True, "grads": [leaf.grad for leaf in leaves]}


# --- BNNet --------------------------------------------------------------------------------------

def _only(found, what, advice):
    if len(found) != 1:
        raise ProbeError(f"the network has {len(found)} {what} among its modules, expected exactly "
                         f"one. {advice}")
    return found[0]


def _load(net, layers, linears, norms):
    """Copy the given weights into the student's layers, found by their shapes: an nn.Linear by
    (in_features, out_features), an nn.BatchNorm1d by num_features (the checks use distinct
    widths), so that the order in which the layers were created or registered does not matter."""
    advice = (f"BNNet({layers}) needs one nn.Linear(layers[i], layers[i + 1]) per pair of "
              "consecutive sizes and one nn.BatchNorm1d per hidden size, registered as "
              "submodules (attributes, nn.ModuleList or nn.Sequential; a plain Python list hides "
              "them from PyTorch).")
    found_linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    found_norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    with torch.no_grad():
        for spec in linears:
            out_features, in_features = spec["weight"].shape
            layer = _only([m for m in found_linears
                           if (m.in_features, m.out_features) == (in_features, out_features)],
                          f"nn.Linear({in_features}, {out_features})", advice)
            layer.weight.copy_(spec["weight"])
            if layer.bias is not None:
                layer.bias.copy_(spec["bias"])
            elif bool((spec["bias"] != 0).any()):
                raise ProbeError(f"nn.Linear({in_features}, {out_features}) has no bias; the "
                                 "output layer, which no batch norm follows, needs one")
        bns = []
        for spec in norms:
            width = spec["gamma"].numel()
            bn = _only([m for m in found_norms if m.num_features == width],
                       f"nn.BatchNorm1d({width})", advice)
            if bn.weight is None or bn.running_mean is None:
                raise ProbeError(f"nn.BatchNorm1d({width}) was made without its learnable gamma "
                                 "and beta or without running statistics; keep the defaults "
                                 "(affine=True, track_running_stats=True)")
            bn.weight.copy_(spec["gamma"])
            bn.bias.copy_(spec["beta"])
            bns.append(bn)
    return bns


@probe
def bnnet_run(ns, layers, linears, norms, batches, modes, dtype="float32", device="cpu"):
    """Build ``BNNet(layers)``, move it to ``device`` in ``dtype``, load the given weights
    (``linears``: [{"weight", "bias"}], ``norms``: [{"gamma", "beta"}] per hidden size), then
    run one forward pass per batch, in ``model.train()`` or ``model.eval()`` mode as ``modes``
    says. Returns every output and each batch norm layer's running statistics at the end."""
    torch.manual_seed(0)  # an extra layer, which the weights given do not cover, starts the same
    net = ns.call("BNNet", list(layers))
    if not isinstance(net, nn.Module):
        raise ProbeError(f"BNNet({layers}) made a {type(net).__name__}; BNNet must be a subclass "
                         "of nn.Module")
    with ns.recording():
        net = net.to(device=device, dtype=getattr(torch, dtype))
    norms_found = _load(net, layers, linears, norms)
    outputs = []
    for step, (x, training) in enumerate(zip(batches, modes, strict=True), 1):
        with ns.recording():
            net.train(training)
            out = net(x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0], layers[-1]):
            kind = type(out).__name__ + (f" of shape {tuple(out.shape)}"
                                         if isinstance(out, torch.Tensor) else "")
            raise ProbeError(f"at forward pass {step}, BNNet({layers}) returned {kind} for x of "
                             f"shape {tuple(x.shape)}; expected a tensor of shape "
                             f"({x.shape[0]}, {layers[-1]})")
        outputs.append(out.detach().clone())
    running = [[bn.running_mean.detach().clone(), bn.running_var.detach().clone()]
               for bn in norms_found]
    return {"outputs": outputs, "running": running}
