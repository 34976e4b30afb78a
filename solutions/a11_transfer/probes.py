"""Probes for a11_transfer: drive ``build_transfer_model`` and ``make_transform``.

- ``transfer_model`` builds the student's model (after ``torch.manual_seed``) and reports what a
  plain call cannot send back: its structure (the head, the parameter names, shapes and which
  require gradients), its logits once the same weights are loaded into it as into the
  reference's, and which parameters one optimiser step over ``model.parameters()`` changed.
- ``transform_images`` builds the student's ``make_transform(size)`` and applies it to each
  image, on a copy.

Nothing may download: while the student's function runs, torch.hub's downloader is replaced by
one that raises, so ``pretrained=True`` (or ``weights=ResNet18_Weights.DEFAULT``) fails at once
with a message that says why, in the sandbox (which has no network anyway) and in the student's
own kernel (which may have one).
Trusted course material: sent to the sandbox and run before the student's code, and released
with the public checks.
"""

import contextlib

import torch
import torch.hub
from torch import nn
from torch.nn import functional as F

from autograder.probes import ProbeError, probe

DOWNLOAD = ("build_transfer_model tried to download pretrained weights ({url}). This course "
            "downloads nothing: build the network with models.resnet18(weights=None). "
            "pretrained=True is the old, deprecated spelling of "
            "weights=ResNet18_Weights.DEFAULT, which downloads ImageNet weights")


@contextlib.contextmanager
def no_downloads():
    """Make every torch.hub download raise ProbeError while the block runs."""
    import torchvision.models._api as api

    def refuse(url, *args, **kwargs):
        raise ProbeError(DOWNLOAD.format(url=url))

    saved = [(torch.hub, "load_state_dict_from_url", torch.hub.load_state_dict_from_url),
             (torch.hub, "download_url_to_file", torch.hub.download_url_to_file)]
    if hasattr(api, "load_state_dict_from_url"):
        saved.append((api, "load_state_dict_from_url", api.load_state_dict_from_url))
    for owner, name, _ in saved:
        setattr(owner, name, refuse)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _build(ns, num_classes, seed):
    """The student's model, built after torch.manual_seed(seed), without downloads."""
    torch.manual_seed(seed)
    with no_downloads():
        model = ns.call("build_transfer_model", num_classes)
    if not isinstance(model, nn.Module):
        raise ProbeError(f"build_transfer_model({num_classes}) returned {type(model).__name__}; it "
                         "must return the model, an nn.Module (the resnet18 whose fc you replaced)")
    return model


def _describe_head(model):
    fc = getattr(model, "fc", None)
    if fc is None:
        return "none"
    if isinstance(fc, nn.Linear):
        return f"Linear({fc.in_features}, {fc.out_features}, bias={fc.bias is not None})"
    return type(fc).__name__


_BACKBONE = {}  # resnet18's weights and buffers but fc's, built once per process


def _template(num_classes, seed):
    """The weights to load: a resnet18 (built once, from seed 0, its batch norm statistics moved
    away from 0 and 1 so that eval mode does something) with a num_classes head from ``seed``."""
    if not _BACKBONE:
        from torchvision import models

        torch.manual_seed(0)
        template = models.resnet18(weights=None)
        with torch.no_grad():
            for module in template.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
        _BACKBONE.update((k, v) for k, v in template.state_dict().items() if not k.startswith("fc."))
    generator = torch.Generator().manual_seed(seed)
    head = {"fc.weight": torch.randn(num_classes, 512, generator=generator) / 512 ** 0.5,
            "fc.bias": torch.randn(num_classes, generator=generator) * 0.1}
    return {**_BACKBONE, **head}


@probe
def transfer_model(ns, num_classes, seed, x, target, lr=0.5):
    """Build ``build_transfer_model(num_classes)`` after ``torch.manual_seed(seed)`` and report.

    Returns a dict: ``head`` (the fc layer in words), ``parameters`` ({name: [shape,
    requires_grad]}), ``logits`` (in eval mode on ``x``, once the weights of a seeded resnet18
    with a ``num_classes`` head are loaded into the model, so that the student's and the
    reference's logits can be compared; None when they cannot be loaded), ``load_error`` (why
    not), and ``changed``: the parameters that one step of ``torch.optim.SGD(model.parameters(),
    lr)`` on the cross-entropy of ``model(x)`` against ``target``, in train mode, changed.
    """
    model = _build(ns, num_classes, seed)
    parameters = {name: [list(p.shape), bool(p.requires_grad)] for name, p in model.named_parameters()}
    report = {"head": _describe_head(model), "parameters": parameters, "logits": None,
              "load_error": "", "changed": []}
    state = _template(num_classes, seed + 1)
    expected = {name: tuple(v.shape) for name, v in state.items()}
    mine = {name: tuple(v.shape) for name, v in model.state_dict().items()}
    if mine != expected:
        missing = sorted(set(expected) - set(mine))
        extra = sorted(set(mine) - set(expected))
        reshaped = sorted(n for n in set(mine) & set(expected) if mine[n] != expected[n])
        parts = []
        for label, names in (("missing", missing), ("unexpected", extra),
                             ("of another shape", reshaped)):
            if names:
                shown = ", ".join(f"{n} {list(mine.get(n, expected.get(n)))}" for n in names[:4])
                more = f" and {len(names) - 4} more" if len(names) > 4 else ""
                parts.append(f"{label}: {shown}{more}")
        report["load_error"] = "; ".join(parts)
        return report
    with ns.recording():
        model = model.to(x.device)
    with torch.no_grad():
        model.load_state_dict(state)
    with ns.recording():
        model.eval()
        with torch.no_grad():
            logits = model(x)
    if not isinstance(logits, torch.Tensor):
        raise ProbeError(f"the model returned {type(logits).__name__}; it must return the logits, "
                         "a tensor")
    report["logits"] = logits.detach().clone()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    if any(p.requires_grad for p in model.parameters()):
        # every parameter handed to the optimiser, as students often write it: SGD skips those
        # that got no gradient, so only what is frozen stays put
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        with ns.recording():
            model.train()
            optimizer.zero_grad()
            F.cross_entropy(model(x), target).backward()
            optimizer.step()
    report["changed"] = sorted(name for name, p in model.named_parameters()
                               if not torch.equal(p.detach(), before[name]))
    return report


@probe
def transform_images(ns, size, images):
    """Build ``make_transform(size)`` and apply it to a copy of each image of ``images`` (uint8
    tensors [1, 8, 8]). Returns ``outputs`` (what the transform returned) and ``is_v2`` (whether
    it is a ``torchvision.transforms.v2`` transform)."""
    from torchvision.transforms import v2

    transform = ns.call("make_transform", size)
    if not callable(transform):
        raise ProbeError(f"make_transform({size}) returned {type(transform).__name__}; it must "
                         "return the transform, a callable such as v2.Compose([...])")
    outputs = []
    for image in images:
        copy = image.clone()
        with ns.recording():
            out = transform(copy)
        if not isinstance(out, torch.Tensor):
            raise ProbeError(f"the transform of make_transform({size}) returned "
                             f"{type(out).__name__} for a uint8 tensor of shape (1, 8, 8); it "
                             "must return a tensor")
        outputs.append(out.detach().clone().as_subclass(torch.Tensor))
    return {"outputs": outputs, "is_v2": isinstance(transform, v2.Transform)}
