"""Hidden checks for a11_transfer: run by `grade`, never shipped to students."""

import torch
from torch import nn
from torchvision import models
from torchvision.transforms import v2

from autograder.checks import assert_close, assert_same_kind, check, fail, oracle

from public_checks import (  # helpers shared with the public checks
    HEAD,
    MEAN,
    MODEL_HINT,
    STD,
    TRANSFORM_HINT,
    check_structure,
    check_trainable,
    check_transform,
    describe_call,
    digit_images,
    model_report,
    transform_report,
)


def transfer_by_module_api(num_classes):
    """The model built another way: frozen with Module.requires_grad_, the head's width read
    from the old head. An independent check on the reference."""
    model = models.resnet18(weights=None).requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def transform_by_hand(size):
    """The pipeline as plain tensor operations, wrapped in a v2 transform."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)

    def apply(image):
        x = image.to(torch.float32)[None] / 16.0
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return (x[0].expand(3, -1, -1) - mean) / std

    return v2.Lambda(apply)


# grade build checks that the reference agrees with these on every value check's inputs
oracle("build_transfer_model", transfer_by_module_api)
oracle("make_transform", transform_by_hand)


@check("build_transfer_model", points=2)
def test_transfer_model_step_changes_only_head(student, reference, device):
    """One SGD step over model.parameters() in train mode: only the head moves."""
    got = model_report(student, 3, seed=1121, device=device)
    want = model_report(reference, 3, seed=1121, device=device)
    check_structure(got, 3)
    what = (f"{describe_call(3)}, then one step of torch.optim.SGD(model.parameters(), lr=0.5) on "
            "the cross-entropy of 4 images of shape (3, 32, 32)")
    if got["changed"] != want["changed"]:
        moved = [n for n in got["changed"] if n not in HEAD]
        if not got["changed"]:
            advice = ("nothing changed: the head is frozen too, or got no gradient. Replace fc "
                      "after freezing the backbone, so that its new parameters require gradients.")
        elif moved:
            shown = ", ".join(moved[:3]) + (f" and {len(moved) - 3} more" if len(moved) > 3 else "")
            advice = (f"{len(moved)} backbone parameters changed ({shown}): the backbone is not "
                      "frozen. Set requires_grad = False on every parameter of resnet18.")
        else:
            advice = f"only {', '.join(got['changed'])} changed; both the head's weight and bias must."
        fail(f"{what}: {advice} {MODEL_HINT}")
    assert_close(got["logits"], want["logits"], what=f"{describe_call(3)}: the logits in eval mode",
                 hint=MODEL_HINT)


@check("build_transfer_model", points=1)
def test_transfer_model_other_class_counts(student, reference, device):
    """37 classes: the head follows num_classes, the backbone stays frozen."""
    for num_classes, seed in ((37, 1131),):
        got = model_report(student, num_classes, seed=seed, device=device)
        want = model_report(reference, num_classes, seed=seed, device=device)
        check_structure(got, num_classes)
        check_trainable(got, want, num_classes, what=describe_call(num_classes))
        assert_close(got["logits"], want["logits"],
                     what=f"{describe_call(num_classes)}: the logits in eval mode on 4 images",
                     hint=MODEL_HINT)


@check("make_transform", points=3)
def test_make_transform_other_sizes(student, reference):
    """8 (no resizing at all), an odd 20, and 64."""
    for size, seed in ((8, 1221), (20, 1231), (64, 1241)):
        check_transform(student, reference, size, digit_images(2, seed=seed),
                        what=f"make_transform({size})")


@check("make_transform", points=1)
def test_make_transform_blank_and_full(student, reference):
    """A blank digit is -mean/std in every pixel and a full one (1 - mean)/std, per channel."""
    check_transform(student, reference, 12, digit_images(0, seed=0), what="make_transform(12)")


@check("make_transform", points=1, kind="property")
def test_make_transform_float32(student):
    report = transform_report(student, 24, digit_images(2, seed=1251))
    for out in report["outputs"]:
        assert_same_kind(out, torch.zeros(1), what="make_transform(24) applied to a uint8 digit",
                         hint="Convert the image with v2.ToDtype(torch.float32): resnet18's "
                              "weights are float32, and a float64 image would not go through it. "
                              + TRANSFORM_HINT)
