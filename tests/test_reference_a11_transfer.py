"""The a11_transfer reference against torchvision itself, and the checks against false failures.

build_transfer_model is compared with torchvision's resnet18 built the same way by hand: the
same layers and shapes, the same backbone weights from the same seed, exactly the head
trainable, and an optimiser step that moves the head alone. The probe's download guard is
shown to stop ``pretrained=True`` at once and to leave torch.hub as it was. make_transform is
compared with the pipeline computed by hand in float64 (scale by 16, bilinear resize, three
channels, ImageNet normalisation) over many random digits and sizes.

Then every correct variant of ``variants.py`` goes through the checks' own comparison on many
random seeds, numbers of classes, digits and sizes (it may never fail), and each realistic
mistake's message is shown to name that mistake.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from conftest import import_checks, variant_subject
from torch import nn
from torch.nn import functional as F
from torchvision import models

from autograder.checks import CheckFailed
from autograder.course import load_assignment, reference_namespace
from autograder.probes import ProbeError
from autograder.variants import variants_of

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
ASSIGNMENT = load_assignment("a11_transfer", SOLUTIONS)

checks = import_checks(ASSIGNMENT, "public_checks.py", "a11_public_checks")
hidden = import_checks(ASSIGNMENT, "hidden_checks.py", "a11_hidden_checks", public=checks)
probes = import_checks(ASSIGNMENT, "probes.py", "a11_probes")

VARIANTS = variants_of(ASSIGNMENT)


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(ASSIGNMENT)


subject = functools.partial(variant_subject, ASSIGNMENT)


def correct(exercise):
    return [("reference", None)] + [(v.name, v.source) for v in VARIANTS
                                    if v.exercise == exercise and v.correct]


# --- build_transfer_model against torchvision ---------------------------------------------------

@pytest.mark.parametrize("num_classes", [1, 10, 100])
def test_reference_model_is_resnet18_with_a_new_trainable_head(ref, num_classes):
    torch.manual_seed(3)
    model = ref["build_transfer_model"](num_classes)
    torch.manual_seed(3)
    plain = models.resnet18(weights=None)
    assert isinstance(model, models.ResNet)
    assert isinstance(model.fc, nn.Linear)
    assert (model.fc.in_features, model.fc.out_features) == (512, num_classes)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in models.resnet18(num_classes=num_classes).state_dict().items()}
    for name, value in plain.state_dict().items():  # the same backbone, drawn from the same seed
        if not name.startswith("fc."):
            assert torch.equal(value, model.state_dict()[name]), name
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, num_classes)


def test_reference_model_learns_only_in_its_head(ref):
    torch.manual_seed(0)
    model = ref["build_transfer_model"](4)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)  # all of them: frozen ones get no grad
    F.cross_entropy(model(torch.randn(3, 3, 32, 32)), torch.tensor([0, 1, 3])).backward()
    optimizer.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"fc.weight", "fc.bias"}


def test_the_oracle_model_agrees_with_the_reference(ref):
    report = subject("reference").run("transfer_model", 5, 9, torch.randn(2, 3, 32, 32),
                                      torch.tensor([0, 4])).unwrap()
    other = subject("oracle", build_transfer_model=hidden.transfer_by_module_api).run(
        "transfer_model", 5, 9, torch.randn(2, 3, 32, 32), torch.tensor([0, 4])).unwrap()
    assert report["parameters"] == other["parameters"] and report["changed"] == other["changed"]


def test_the_probe_loads_the_weights_it_says():
    """The logits the probe reports are those of torchvision's resnet18 holding the template."""
    x = torch.randn(3, 3, 32, 32)
    report = subject("reference").run("transfer_model", 6, 21, x, torch.tensor([0, 1, 5])).unwrap()
    model = models.resnet18(num_classes=6)
    model.load_state_dict(probes._template(6, 22))
    with torch.no_grad():
        want = model.eval()(x)
    torch.testing.assert_close(report["logits"], want)
    assert report["changed"] == ["fc.bias", "fc.weight"]
    assert report["head"] == "Linear(512, 6, bias=True)"


def test_the_download_guard_refuses_and_restores():
    import torch.hub

    original = torch.hub.load_state_dict_from_url
    with pytest.raises(ProbeError, match="pretrained=True is the old, deprecated spelling"), \
            pytest.warns(UserWarning), probes.no_downloads():
        models.resnet18(pretrained=True)
    assert torch.hub.load_state_dict_from_url is original


# --- make_transform against the computation by hand ---------------------------------------------

MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(3, 1, 1)


def by_hand(image, size):
    x = image.to(torch.float64)[None] / 16
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)[0]
    return (x.expand(3, -1, -1) - MEAN) / STD


@pytest.mark.parametrize("size", [8, 9, 16, 31, 32, 64, 100])
def test_reference_transform_is_the_pipeline_by_hand(ref, size):
    transform = ref["make_transform"](size)
    g = torch.Generator().manual_seed(size)
    for _ in range(10):
        image = torch.randint(0, 17, (1, 8, 8), dtype=torch.uint8, generator=g)
        out = transform(image)
        assert out.dtype == torch.float32 and out.shape == (3, size, size)
        torch.testing.assert_close(out.double(), by_hand(image, size), rtol=1e-5, atol=1e-5)


def test_reference_transform_of_blank_and_full_digits(ref):
    transform = ref["make_transform"](10)
    blank = transform(torch.zeros(1, 8, 8, dtype=torch.uint8)).double()
    full = transform(torch.full((1, 8, 8), 16, dtype=torch.uint8)).double()
    torch.testing.assert_close(blank, (-MEAN / STD).expand(3, 10, 10))
    torch.testing.assert_close(full, ((1 - MEAN) / STD).expand(3, 10, 10))


# --- the checks never fail correct code ---------------------------------------------------------

@pytest.mark.parametrize(("name", "source"), correct("build_transfer_model"),
                         ids=[n for n, _ in correct("build_transfer_model")])
def test_correct_models_pass_the_comparison(name, source):
    student, reference = subject(name, source), subject("reference")
    for num_classes, seed in ((2, 5), (13, 6)):
        got = checks.model_report(student, num_classes, seed=seed, device="cpu")
        want = checks.model_report(reference, num_classes, seed=seed, device="cpu")
        checks.check_structure(got, num_classes)
        checks.check_trainable(got, want, num_classes, what=name)
        assert got["changed"] == want["changed"] == ["fc.bias", "fc.weight"]
        torch.testing.assert_close(got["logits"], want["logits"])


@pytest.mark.parametrize(("name", "source"), correct("make_transform"),
                         ids=[n for n, _ in correct("make_transform")])
def test_correct_transforms_pass_the_comparison_on_many_digits(name, source):
    student, reference = subject(name, source), subject("reference")
    failures = []
    for seed in range(12):
        size = int(torch.randint(8, 70, (1,), generator=torch.Generator().manual_seed(seed)))
        try:
            checks.check_transform(student, reference, size, checks.digit_images(6, seed=100 * seed),
                                   what=f"make_transform({size})")
        except CheckFailed as failure:
            failures.append((seed, size, str(failure)[:300]))
    assert failures == []


# --- each mistake is named in its message -------------------------------------------------------

DIAGNOSED = {
    "material_pretrained_true": ("test_transfer_model_structure_and_logits",
                                 "pretrained=True is the old, deprecated spelling"),
    "weights_default_downloads": ("test_transfer_model_structure_and_logits",
                                  "tried to download pretrained weights"),
    "freeze_after_replacing_head": ("test_transfer_model_only_head_trainable",
                                    "freezing every parameter after the replacement"),
    "head_frozen_too": ("test_transfer_model_only_head_trainable", "the new head is frozen too"),
    "replace_without_freezing": ("test_transfer_model_only_head_trainable",
                                 "it is not frozen"),
    "module_attribute_instead_of_freezing": ("test_transfer_model_only_head_trainable",
                                             "model.requires_grad = False only sets an attribute"),
    "freeze_convolutions_only": ("test_transfer_model_only_head_trainable",
                                 "a BatchNorm2d's weight and bias are learnable"),
    "material_seven_classes": ("test_transfer_model_structure_and_logits",
                               "7 is the example in the course notes"),
    "softmax_in_the_head": ("test_transfer_model_structure_and_logits", "No nn.Softmax"),
    "head_not_replaced": ("test_transfer_model_structure_and_logits",
                          "still resnet18's own 1000-class ImageNet head"),
    "resnet34": ("test_transfer_model_structure_and_logits", "Its layers are not resnet18's"),
    "material_totensor": ("test_make_transform_digits_at_32", "ToTensor() (the course notes' step)"),
    "scale_by_255": ("test_make_transform_digits_at_32", "You divided by 255"),
    "not_scaled": ("test_make_transform_digits_at_32", "Your values were never scaled"),
    "normalise_before_scaling": ("test_make_transform_digits_at_32", "You normalised before scaling"),
    "channel_statistics_reversed": ("test_make_transform_digits_at_32", "in reverse order"),
    "not_normalised": ("test_make_transform_digits_at_32", "Your image is not normalised"),
    "channels_last": ("test_make_transform_digits_at_32", "channels-last"),
    "nearest_neighbour": ("test_make_transform_digits_at_32", "nearest-neighbour"),
    "resize_the_uint8_image": ("test_make_transform_digits_at_32", "You resized the uint8 image"),
    "float64_output": ("test_make_transform_float32", "v2.ToDtype(torch.float32)"),
    "old_transforms_module": ("test_make_transform_is_v2", "not from torchvision.transforms.v2"),
}


@pytest.mark.parametrize("name", sorted(DIAGNOSED))
def test_each_mistake_gets_a_message_that_names_it(name):
    source = next(v.source for v in VARIANTS if v.name == name)
    check_name, text = DIAGNOSED[name]
    fn = getattr(checks if hasattr(checks, check_name) else hidden, check_name)
    arguments = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    kwargs = {"student": subject(name, source)}
    if "reference" in arguments:
        kwargs["reference"] = subject("reference")
    if "device" in arguments:
        kwargs["device"] = "cpu"
    with pytest.raises(CheckFailed) as failure:
        fn(**kwargs)
    assert text in str(failure.value)


def test_every_wrong_variant_is_diagnosed():
    wrong = {v.name for v in VARIANTS if not v.correct}
    assert wrong == set(DIAGNOSED)
