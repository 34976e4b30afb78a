"""Probes for a12_gpu_training: run the student's ``validate`` and ``fit`` on a fixed small MLP.

- ``validate`` puts the model on the device in the mode a check asks for, calls the student's
  ``validate`` and reports the (loss, accuracy) it returned, in which mode and with or without
  gradient recording every forward pass ran, the mode the model was left in, and how many input
  batches were moved to the device.
- ``fit`` builds the model (on the CPU) and its SGD optimizer, calls the student's ``fit`` and
  reports the history, the weights the model ends with, the weights it had each time the
  validation loader was read (so a check can tell the last epoch's weights from the best's),
  and the same log of forward passes, split into training and validation passes.

Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel; the checks
also build ``ProbeMLP``'s initial weights from here).
"""

import torch
from torch import nn

from autograder.probes import ProbeError, probe

N_IN, N_HIDDEN, N_OUT = 8, 12, 4
HISTORY_KEYS = ("train_loss", "val_loss", "val_accuracy")


class ProbeMLP(nn.Module):
    """Linear(8, 12) -> ReLU -> Dropout -> Linear(12, 4).

    Every forward pass is logged as a dict: the phase (which loader yielded the batch last:
    "train" or "val"), whether the model was in training mode, whether gradients were being
    recorded, the device of the input, and the smallest gap between a sample's two largest
    scores (how close a prediction was to flipping).
    """

    def __init__(self, dropout=0.0):
        super().__init__()
        self.hidden = nn.Linear(N_IN, N_HIDDEN)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(N_HIDDEN, N_OUT)
        self.phase = "val"
        self.forward_log = []

    def forward(self, x):
        scores = self.out(self.drop(torch.relu(self.hidden(x))))
        with torch.no_grad():
            top2 = scores.detach().topk(2, dim=1).values
            gap = float((top2[:, 0] - top2[:, 1]).min()) if len(x) else float("inf")
        self.forward_log.append({"phase": self.phase, "training": self.training,
                                 "grad": torch.is_grad_enabled(), "device": x.device.type,
                                 "gap": gap})
        return scores


class WatchedLoader:
    """Iterate over fixed batches (x [B, 8], y [B]); every x is watched, so that the probe can
    count how many input batches the student moved to the device. Labels are not counted: a
    student may move them, or bring the scores back to the CPU instead.

    Each pass tells the model which phase its batches belong to and calls ``on_start`` first.
    """

    def __init__(self, ns, X, y, batch_size, *, model, phase, on_start=None):
        self.ns, self.X, self.y, self.batch_size = ns, X, y, batch_size
        self.model, self.phase, self.on_start = model, phase, on_start
        self.dataset = torch.utils.data.TensorDataset(X, y)  # students use len(loader.dataset)
        self.inputs = 0

    def __len__(self):
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        if self.on_start is not None:
            self.on_start()
        for start in range(0, len(self.X), self.batch_size):
            xb = self.ns.watch(self.X[start:start + self.batch_size].clone())
            yb = self.y[start:start + self.batch_size].clone()
            self.inputs += 1
            self.model.phase = self.phase
            yield xb, yb


def _model_from(spec):
    model = ProbeMLP(dropout=spec.get("dropout", 0.0))
    model.load_state_dict(spec["state"])
    return model


def _number(value, what):
    """A Python float from a number, a NumPy scalar or a one-element tensor."""
    if isinstance(value, bool):
        raise ProbeError(f"{what} is a bool; it must be a number")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ProbeError(f"{what} is a tensor of shape {tuple(value.shape)}; it must be a "
                             "single number (use .item())")
        return float(value.detach().cpu().double().reshape(()))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProbeError(f"{what} is {type(value).__name__}; it must be a number") from None


def _weights(model):
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _log_summary(log):
    train = [e for e in log if e["phase"] == "train"]
    val = [e for e in log if e["phase"] == "val"]
    return {
        "train_forwards": len(train),
        "train_forwards_in_eval_mode": sum(not e["training"] for e in train),
        "train_forwards_without_grad": sum(not e["grad"] for e in train),
        "val_forwards": len(val),
        "val_forwards_in_train_mode": sum(e["training"] for e in val),
        "val_forwards_with_grad": sum(e["grad"] for e in val),
        "forward_devices": sorted({e["device"] for e in log}),
        "val_smallest_gap": min((e["gap"] for e in val), default=float("inf")),
    }


@probe
def validate(ns, spec):
    """Run the student's ``validate`` on a fixed model, already on the device, left in the mode
    ``spec["mode"]`` names ("train" or "eval")."""
    device = torch.device(spec["device"])
    model = _model_from(spec).to(device)
    model.train(spec["mode"] == "train")
    loader = WatchedLoader(ns, spec["X"], spec["y"], spec["batch_size"], model=model, phase="val")
    before = _weights(model)
    torch.manual_seed(spec["seed"])
    result = ns.call("validate", model, loader, nn.CrossEntropyLoss(), device)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ProbeError(f"validate returned {type(result).__name__}; it must return the pair "
                         "(mean_loss, accuracy)")
    after = _weights(model)
    return {
        "loss": _number(result[0], "the mean loss validate returned"),
        "accuracy": _number(result[1], "the accuracy validate returned"),
        "training_after": model.training,
        "weights_unchanged": all(torch.equal(before[k], after[k]) for k in before),
        "inputs_moved": ns.moved,
        "inputs": loader.inputs,
        **_log_summary(model.forward_log),
    }


def _history(history, epochs):
    """The student's history as plain lists of floats and an int, or a ProbeError saying what
    is missing."""
    if not isinstance(history, dict):
        raise ProbeError(f"fit returned {type(history).__name__}; it must return a dict with the "
                         f"keys {', '.join(HISTORY_KEYS)} and best_epoch")
    missing = [k for k in (*HISTORY_KEYS, "best_epoch") if k not in history]
    if missing:
        raise ProbeError(f"the dict fit returned has no key {', '.join(map(repr, missing))} "
                         f"(it has {', '.join(map(repr, history)) or 'none'})")
    out = {}
    for key in HISTORY_KEYS:
        values = history[key]
        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().flatten().tolist()
        if not isinstance(values, (list, tuple)):
            raise ProbeError(f"history[{key!r}] is {type(values).__name__}; it must be a list "
                             f"with one number per epoch")
        if len(values) != epochs:
            raise ProbeError(f"history[{key!r}] has {len(values)} values for epochs={epochs}; "
                             "it must have one per epoch")
        out[key] = [_number(v, f"history[{key!r}][{i}]") for i, v in enumerate(values)]
    best = history["best_epoch"]
    number = _number(best, "history['best_epoch']")
    if number != int(number):
        raise ProbeError(f"history['best_epoch'] is {number}; it must be a whole number, an index "
                         "into the lists")
    out["best_epoch"] = int(number)
    return out


@probe
def fit(ns, spec):
    """Run the student's ``fit`` on a fixed model (built on the CPU, in the mode
    ``spec["mode"]`` names), fixed loaders, and SGD on the model's parameters."""
    model = _model_from(spec)
    model.train(spec["mode"] == "train")
    passes = {"train": 0}
    seen = {}

    def start_training():
        passes["train"] += 1

    def start_validation():  # the weights being validated, after the latest training pass
        seen[passes["train"]] = _weights(model)

    train_loader = WatchedLoader(ns, spec["X"], spec["y"], spec["batch_size"], model=model,
                                 phase="train", on_start=start_training)
    val_loader = WatchedLoader(ns, spec["X_val"], spec["y_val"], spec["val_batch_size"],
                               model=model, phase="val", on_start=start_validation)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    torch.manual_seed(spec["seed"])
    history = ns.call("fit", model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer,
                      spec["epochs"], torch.device(spec["device"]))
    return {
        "history": _history(history, spec["epochs"]),
        "state": _weights(model),
        "validated": [seen.get(k) for k in range(1, spec["epochs"] + 1)],
        "training_passes": passes["train"],
        "model_device": next(model.parameters()).device.type,
        "inputs_moved": ns.moved,
        "inputs": train_loader.inputs + val_loader.inputs,
        **_log_summary(model.forward_log),
    }
