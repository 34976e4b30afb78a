"""Probes for a5_cnn: run the student's ``train_model`` and ``evaluate`` on a fixed small CNN.

Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks (the check cell runs these probes in the student's kernel; the checks
also build ``ProbeCNN``'s initial weights from here).
"""

import torch
from torch import nn

from autograder.probes import probe


class ProbeCNN(nn.Module):
    """A small CNN for 1x8x8 images (the digits), with optional dropout.

    Every forward pass is logged as (training mode, gradients on, device of the input).
    """

    def __init__(self, dropout=0.0):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * 4 * 4, 10)
        self.forward_log = []

    def forward(self, x):
        self.forward_log.append((self.training, torch.is_grad_enabled(), x.device.type))
        h = self.pool(torch.relu(self.conv(x)))
        return self.fc(self.drop(h.flatten(1)))


class WatchedLoader:
    """Iterate over fixed batches of (X [N, 1, 8, 8], y [N]); every batch tensor is watched, so
    the probe can count how many the student moved to the device."""

    def __init__(self, ns, X, y, batch_size):
        self.ns, self.X, self.y, self.batch_size = ns, X, y, batch_size
        self.dataset = torch.utils.data.TensorDataset(X, y)  # students use len(loader.dataset)
        self.yielded = 0

    def __len__(self):
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.X), self.batch_size):
            xb = self.ns.watch(self.X[start:start + self.batch_size].clone())
            yb = self.ns.watch(self.y[start:start + self.batch_size].clone())
            self.yielded += 2
            yield xb, yb


def _model_from(spec):
    model = ProbeCNN(dropout=spec.get("dropout", 0.0))
    model.load_state_dict(spec["state"])
    return model


@probe
def train(ns, spec):
    """Run the student's ``train_model`` on a fixed model, data set and SGD optimizer."""
    model = _model_from(spec)
    if spec.get("start_in_eval", False):
        model.eval()
    loader = WatchedLoader(ns, spec["X"], spec["y"], spec["batch_size"])
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    torch.manual_seed(spec["seed"])
    device = torch.device(spec["device"])
    losses = ns.call("train_model", model, loader, criterion, optimizer, device,
                     epochs=spec["epochs"])
    log = model.forward_log
    return {
        "losses": losses,
        "state": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
        "model_device": next(model.parameters()).device.type,
        "forward_devices": sorted({d for _, _, d in log}),
        "forwards_in_train_mode": sum(t for t, _, _ in log),
        "forwards": len(log),
        "batches_moved": ns.moved,
        "batch_tensors": loader.yielded,
    }


@probe
def evaluate(ns, spec):
    """Run the student's ``evaluate`` on a fixed model (left in train mode) and data set."""
    model = _model_from(spec)
    model.train()
    loader = WatchedLoader(ns, spec["X"], spec["y"], spec["batch_size"])
    torch.manual_seed(spec["seed"])
    device = torch.device(spec["device"])
    accuracy = ns.call("evaluate", model, loader, device)
    log = model.forward_log
    return {
        "accuracy": accuracy,
        "forwards": len(log),
        "forwards_in_train_mode": sum(t for t, _, _ in log),
        "forwards_with_grad": sum(g for _, g, _ in log),
        "forward_devices": sorted({d for _, _, d in log}),
        "batches_moved": ns.moved,
        "batch_tensors": loader.yielded,
    }
