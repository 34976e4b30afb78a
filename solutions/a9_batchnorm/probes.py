"""Probes for a9_batchnorm: drive ``batchnorm_forward`` where a plain call cannot.

- ``batchnorm_steps`` calls it on a sequence of batches, in training or evaluation mode, and
  feeds the running statistics each call returns into the next, as an ``nn.BatchNorm1d`` layer
  carries its buffers from one forward pass to the next.
- ``batchnorm_gradients`` back-propagates a weighted sum of y to x, gamma and beta.

Every call gets fresh copies of its tensors: changing the arguments in place is allowed.
Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel).
"""

import torch

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
