"""Probes: the trusted code that exercises a namespace (the student's or the reference's).

A probe receives the namespace a submission defined and plain-data arguments built by a check,
drives the student's functions, and returns plain data. The same probe runs on the reference,
so the two results can be compared. Probes run inside the sandbox for students and in-process for
the reference and the student's own check cell; they never decide a score.

Student calls run under :class:`CallRecorder`, a ``TorchFunctionMode`` that records the name of
every torch function the student called, so a check can tell whether "implement it yourself"
was honoured (``F.softmax``, ``Tensor.softmax`` and ``nn.Softmax`` all record ``softmax``).
"""

from __future__ import annotations

import linecache
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

CELL_PREFIX = "<cell "
MOVE_METHODS = frozenset({"to", "cuda", "cpu"})


class ProbeError(Exception):
    """The student's code did not have the shape the probe needs (a missing attribute, ...)."""


class CallRecorder(TorchFunctionMode):
    """Record the names of torch functions called, and which watched tensors were moved."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self._watched: dict[int, torch.Tensor] = {}
        self.moved: set[int] = set()

    def watch(self, tensor: torch.Tensor) -> torch.Tensor:
        self._watched[id(tensor)] = tensor
        return tensor

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = getattr(func, "__name__", "")
        if name == "__get__":  # property access such as .shape or .device
            name = getattr(getattr(func, "__self__", None), "__name__", "")
        name = name.split(".")[0]  # an aten overload such as _softmax.default counts as _softmax
        self.names.add(name)
        if name in MOVE_METHODS and args and id(args[0]) in self._watched:
            self.moved.add(id(args[0]))
        return func(*args, **(kwargs or {}))


def register_source(filename: str, source: str) -> None:
    """Make ``source`` visible to tracebacks under ``filename``."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Return the exception as plain data, with a traceback of the student's lines only."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(CELL_PREFIX)]
    lines = [
        f'  {f.filename.removeprefix("<").removesuffix(">")}, line {f.lineno}, in {f.name}'
        + (f"\n    {f.line.strip()}" if f.line else "")
        for f in frames[-6:]
    ]
    return {
        "types": [t.__name__ for t in type(exc).__mro__],
        "message": str(exc)[:2000],
        "traceback": "\n".join(lines),
    }


def _lookup(ns: dict[str, Any], name: str) -> Any:
    if name not in ns:
        raise ProbeError(f"'{name}' is not defined. Did you rename it or delete its cell?")
    return ns[name]


# ---------------------------------------------------------------------------------------------
# The probes. Each takes (namespace, recorder, *args) and returns plain data.

def call(ns: dict[str, Any], rec: CallRecorder, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``name(*args, **kwargs)`` and return its result."""
    fn = _lookup(ns, name)
    with rec:
        return fn(*args, **kwargs)


def call_backward(
    ns: dict[str, Any], rec: CallRecorder, name: str, args: list[Any], wrt: list[int]
) -> dict[str, Any]:
    """Call ``name(*args)`` with ``args[i]`` requiring grad for i in ``wrt``; back-propagate."""
    args = [a.detach().clone().requires_grad_(True) if i in wrt else a for i, a in enumerate(args)]
    fn = _lookup(ns, name)
    with rec:
        out = fn(*args)
    if not isinstance(out, torch.Tensor):
        raise ProbeError(f"{name} returned {type(out).__name__}, not a tensor")
    result: dict[str, Any] = {"value": out.detach(), "has_graph": out.grad_fn is not None}
    if out.grad_fn is None:
        result["grads"] = [None for _ in wrt]
        return result
    out.sum().backward()
    result["grads"] = [args[i].grad for i in wrt]
    return result


def _net_hidden(net: Any) -> Any:
    hidden = getattr(net, "hidden", None)
    if hidden is None:
        raise ProbeError("the network has no attribute 'hidden'; store the layers in self.hidden")
    return hidden


def net_structure(ns: dict[str, Any], rec: CallRecorder, layers: list[int]) -> dict[str, Any]:
    """Build ``Net(layers)`` and describe its modules."""
    with rec:
        net = _lookup(ns, "Net")(layers)
    hidden = getattr(net, "hidden", None)
    linears: list[Any] = []
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


def net_forward(
    ns: dict[str, Any], rec: CallRecorder, layers: list[int],
    weights: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor,
) -> torch.Tensor:
    """Build ``Net(layers)``, load ``weights`` into ``hidden[i]``, return ``net(x)``."""
    with rec:
        net = _lookup(ns, "Net")(layers)
    hidden = list(_net_hidden(net))
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
    with rec:
        out = net(x)
    return out.detach() if isinstance(out, torch.Tensor) else out


# --- training and evaluation ------------------------------------------------------------------

class ProbeCNN(nn.Module):
    """A small CNN for 1x8x8 images (the digits), with optional dropout."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * 4 * 4, 10)
        self.forward_log: list[tuple[bool, bool, str]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forward_log.append((self.training, torch.is_grad_enabled(), x.device.type))
        h = self.pool(torch.relu(self.conv(x)))
        return self.fc(self.drop(h.flatten(1)))


class _WatchedLoader:
    """Iterate over fixed batches, registering each yielded tensor with the recorder."""

    def __init__(self, rec: CallRecorder, X: torch.Tensor, y: torch.Tensor, batch_size: int):
        self.rec, self.X, self.y, self.batch_size = rec, X, y, batch_size
        self.dataset = torch.utils.data.TensorDataset(X, y)  # students use len(loader.dataset)
        self.yielded = 0

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.X), self.batch_size):
            xb = self.rec.watch(self.X[start:start + self.batch_size].clone())
            yb = self.rec.watch(self.y[start:start + self.batch_size].clone())
            self.yielded += 2
            yield xb, yb


def _model_from(spec: dict[str, Any]) -> ProbeCNN:
    model = ProbeCNN(dropout=spec.get("dropout", 0.0))
    model.load_state_dict(spec["state"])
    return model


def train(ns: dict[str, Any], rec: CallRecorder, spec: dict[str, Any]) -> dict[str, Any]:
    """Run the student's ``train_model`` on a fixed model, data set and optimizer."""
    model = _model_from(spec)
    if spec.get("start_in_eval", False):
        model.eval()
    loader = _WatchedLoader(rec, spec["X"], spec["y"], spec["batch_size"])
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    torch.manual_seed(spec["seed"])
    device = torch.device(spec["device"])
    with rec:
        losses = _lookup(ns, "train_model")(
            model, loader, criterion, optimizer, device, epochs=spec["epochs"]
        )
    log = model.forward_log
    return {
        "losses": losses,
        "state": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
        "model_device": next(model.parameters()).device.type,
        "forward_devices": sorted({d for _, _, d in log}),
        "forwards_in_train_mode": sum(t for t, _, _ in log),
        "forwards": len(log),
        "batches_moved": len(rec.moved),
        "batch_tensors": loader.yielded,
    }


def evaluate(ns: dict[str, Any], rec: CallRecorder, spec: dict[str, Any]) -> dict[str, Any]:
    """Run the student's ``evaluate`` on a fixed model (left in train mode) and data set."""
    model = _model_from(spec)
    model.train()
    loader = _WatchedLoader(rec, spec["X"], spec["y"], spec["batch_size"])
    torch.manual_seed(spec["seed"])
    device = torch.device(spec["device"])
    with rec:
        accuracy = _lookup(ns, "evaluate")(model, loader, device)
    log = model.forward_log
    return {
        "accuracy": accuracy,
        "forwards": len(log),
        "forwards_in_train_mode": sum(t for t, _, _ in log),
        "forwards_with_grad": sum(g for _, g, _ in log),
        "forward_devices": sorted({d for _, _, d in log}),
        "batches_moved": len(rec.moved),
        "batch_tensors": loader.yielded,
    }


PROBES: dict[str, Callable[..., Any]] = {
    "call": call,
    "call_backward": call_backward,
    "net_structure": net_structure,
    "net_forward": net_forward,
    "train": train,
    "evaluate": evaluate,
}


def run_probe(ns: dict[str, Any], probe: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run one probe and return an outcome: value, torch calls made, and error if any."""
    rec = CallRecorder()
    try:
        value = PROBES[probe](ns, rec, *args, **kwargs)
        error = None
    except Exception as exc:  # the student's exception is data here, not a grader failure
        value, error = None, describe_error(exc)
    return {"value": value, "torch_calls": sorted(rec.names), "error": error}
