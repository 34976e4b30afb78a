"""Public checks for a11_transfer: students see these and run them from the check cells.

``build_transfer_model`` is checked through the probe ``transfer_model``, which builds the
student's network after ``torch.manual_seed`` and reports its head, which parameters require
gradients, its logits once the same weights are loaded into it as into the reference's, and
which parameters one optimiser step changed. ``make_transform`` is checked through
``transform_images`` on fixed digit-like images; a wrong image is matched against the known
mistakes (dividing by 255, normalising before scaling, the channel statistics reversed, ...)
so that the message can name the one the student made.
"""

import torch
from torch.nn import functional as F

from autograder.checks import assert_close, check, expect, fail, hint, randint, randn

# --- build_transfer_model -----------------------------------------------------------------------

MODEL_HINT = hint("Build models.resnet18(weights=None), set requires_grad to False on every one "
                  "of its parameters, and only then replace model.fc with a new "
                  "nn.Linear(512, num_classes): a new layer's parameters require gradients, so "
                  "the head alone is trainable.",
                  formula="model = models.resnet18(weights=None); model.requires_grad_(False); "
                          "model.fc = nn.Linear(model.fc.in_features, num_classes)")
HEAD = ["fc.bias", "fc.weight"]


def describe_call(num_classes):
    return f"build_transfer_model({num_classes})"


def model_report(subject, num_classes, *, seed, device):
    """The probe ``transfer_model`` on a batch of four 32x32 images; the student's error (other
    than the stub's) explained."""
    x = randn(4, 3, 32, 32, seed=seed + 1, device=device)
    target = randint(4, seed=seed + 2, high=num_classes, device=device)
    outcome = subject.run("transfer_model", num_classes, seed, x, target)
    error = outcome.error
    if error is not None and error.is_a("ProbeError"):
        fail(f"{error.describe().rstrip('.')}. {MODEL_HINT}")
    if error is not None and not error.is_a("NotImplementedError"):
        fail(f"{describe_call(num_classes)} raised an error: {error.describe()}\n{MODEL_HINT}")
    return outcome.unwrap()


def head_advice(report, num_classes):
    """What is wrong with the head the report describes, or ""."""
    head = report["head"]
    if head == "none":
        return ("The model has no attribute fc. Keep torchvision's resnet18 and assign the new "
                "head to model.fc; do not wrap the network in another module.")
    if not head.startswith("Linear("):
        return (f"model.fc is a {head}; it must be one nn.Linear(512, {num_classes}) that returns "
                "logits. No nn.Softmax or extra layers: nn.CrossEntropyLoss applies log-softmax "
                "itself, and a softmax before it slows learning down.")
    inputs, outputs = (int(n) for n in head.removeprefix("Linear(").split(",")[:2])
    if inputs != 512:
        return (f"model.fc takes {inputs} features; resnet18's last hidden layer has 512 "
                "(other ResNets have 512 or 2048): build models.resnet18, and use "
                "model.fc.in_features rather than a number you typed.")
    if outputs == 1000:
        return ("model.fc is still resnet18's own 1000-class ImageNet head: replace it with "
                f"nn.Linear(512, num_classes), here nn.Linear(512, {num_classes}).")
    if outputs != num_classes:
        seven = " (7 is the example in the course notes)" if outputs == 7 else ""
        return (f"model.fc has {outputs} outputs{seven}; it needs one per class: "
                f"nn.Linear(512, num_classes), here {num_classes}.")
    return ""


def check_structure(report, num_classes):
    """Fail unless the model has resnet18's layers and a Linear(512, num_classes) head."""
    advice = head_advice(report, num_classes)
    if report["load_error"] or advice:
        layers = (f" Compared with models.resnet18 with a {num_classes}-class head, its "
                  f"parameters and buffers are {report['load_error']}." if report["load_error"] else "")
        advice = advice or ("Its layers are not resnet18's: build models.resnet18 (resnet34, "
                            "resnet50 and the others have more blocks or wider ones) and change "
                            "nothing but fc.")
        fail(f"{describe_call(num_classes)} is not torchvision's resnet18 with a new "
             f"nn.Linear(512, {num_classes}) head.{layers} {advice} {MODEL_HINT}")


def trainable_advice(trainable, names, num_classes):
    """Explain a wrong set of trainable parameters."""
    backbone = [n for n in trainable if not n.startswith("fc.")]
    frozen_head = [n for n in HEAD if n not in trainable and n in names]
    if not trainable:
        return ("Nothing in your model requires gradients: the new head is frozen too, so "
                "training cannot change anything. Freeze the backbone first and replace fc "
                "afterwards (a new nn.Linear's parameters require gradients); freezing every "
                "parameter after the replacement freezes the head as well.")
    if backbone and len(backbone) == len([n for n in names if not n.startswith("fc.")]):
        return (f"All {len(backbone)} parameter tensors of the backbone still require gradients: "
                "it is not frozen, so training would update all 11 million parameters. Set "
                "requires_grad = False on each of model.parameters() (or call "
                "model.requires_grad_(False)) before replacing fc. Note that "
                "model.requires_grad = False only sets an attribute nobody reads, and "
                "model.eval() or torch.no_grad() freeze nothing.")
    if backbone and all(".bn" in n or n.startswith("bn") or "downsample.1" in n for n in backbone):
        return (f"{len(backbone)} batch norm parameters of the backbone still require gradients "
                f"({', '.join(backbone[:3])}, ...): a BatchNorm2d's weight and bias are learnable "
                "parameters too. Freeze every parameter of the backbone, not only the "
                "convolutions.")
    if backbone:
        shown = ", ".join(backbone[:4]) + (f" and {len(backbone) - 4} more" if len(backbone) > 4 else "")
        return (f"These backbone parameters still require gradients: {shown}. Freeze every "
                "parameter of resnet18 before you replace fc.")
    if frozen_head:
        return (f"{', '.join(frozen_head)} does not require gradients: the new head must be "
                "trainable. Replace fc after freezing the backbone, and do not freeze the head.")
    return ""


def check_trainable(got, want, num_classes, *, what):
    """Compare which parameters require gradients, and how many numbers they hold."""
    names = list(got["parameters"])
    trainable = sorted(n for n, (_, grad) in got["parameters"].items() if grad)
    want_trainable = sorted(n for n, (_, grad) in want["parameters"].items() if grad)
    if trainable != want_trainable:
        count = sum(torch.Size(got["parameters"][n][0]).numel() for n in trainable)
        fail(f"{what}: {len(trainable)} parameter tensors ({count:,} numbers) require gradients; "
             f"expected exactly {', '.join(want_trainable)}, the new head "
             f"({512 * num_classes + num_classes:,} numbers). "
             f"{trainable_advice(trainable, names, num_classes) or MODEL_HINT}")


@check("build_transfer_model", points=3)
def test_transfer_model_structure_and_logits(student, reference, device):
    got = model_report(student, 10, seed=1101, device=device)
    want = model_report(reference, 10, seed=1101, device=device)
    check_structure(got, 10)
    assert_close(got["logits"], want["logits"],
                 what=f"{describe_call(10)} with the same weights loaded as resnet18's, in eval "
                      "mode, on 4 images of shape (3, 32, 32): the logits",
                 hint=MODEL_HINT)


@check("build_transfer_model", points=4)
def test_transfer_model_only_head_trainable(student, reference, device):
    got = model_report(student, 10, seed=1111, device=device)
    want = model_report(reference, 10, seed=1111, device=device)
    check_trainable(got, want, 10, what=describe_call(10))


# --- make_transform -----------------------------------------------------------------------------

TRANSFORM_HINT = hint("The transform takes one digit as load_digits gives it, a uint8 tensor "
                      "[1, 8, 8] of values 0 to 16. Convert it to float32, divide by 16 so that "
                      "it lies in [0, 1], resize it to size x size (bilinear, v2.Resize's "
                      "default), repeat the grey channel three times, then normalise each "
                      "channel with ImageNet's mean and std, in that order (red, green, blue).",
                      formula="v2.Compose([v2.ToDtype(torch.float32), v2.Normalize([0.0], [16.0]), "
                              "v2.Resize((size, size)), v2.Lambda(lambda x: x.repeat(3, 1, 1)), "
                              "v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def digit_images(count, *, seed, device="cpu"):
    """``count`` uint8 images [1, 8, 8] of values 0..16, the first blank and the second full."""
    images = [torch.zeros(1, 8, 8, dtype=torch.uint8, device=device),
              torch.full((1, 8, 8), 16, dtype=torch.uint8, device=device)]
    images += [randint(1, 8, 8, seed=seed + k, high=17, dtype=torch.uint8, device=device)
               for k in range(count)]
    return images


def transform_report(subject, size, images):
    """The probe ``transform_images``; the student's error (other than the stub's) explained."""
    outcome = subject.run("transform_images", size, images)
    error = outcome.error
    if error is not None and error.is_a("ProbeError"):
        fail(f"{error.describe().rstrip('.')}. {TRANSFORM_HINT}")
    if error is not None and not error.is_a("NotImplementedError"):
        totensor = (" transforms.ToTensor() (the course notes' step) converts a PIL image or a "
                    "NumPy array; the digits here are already tensors: use v2.ToDtype."
                    if "pic should be" in error.message or "PIL" in error.message else "")
        fail(f"make_transform({size}) applied to a uint8 tensor of shape (1, 8, 8) raised an "
             f"error: {error.describe()}\n{totensor} {TRANSFORM_HINT}")
    return outcome.unwrap()


def _normalise(x, mean, std):
    mean = torch.tensor(mean, dtype=x.dtype).view(3, 1, 1)
    return (x - mean) / torch.tensor(std, dtype=x.dtype).view(3, 1, 1)


def _resize(x, size, mode="bilinear"):
    extra = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(x[None], size=(size, size), mode=mode, **extra)[0]


def slips(image, size):
    """Known wrong transforms of ``image``: (wrong image [3, size, size], what to say)."""
    from torchvision.transforms.v2 import functional as TF

    x = image.detach().to("cpu", torch.float64)
    grey = _resize(x / 16, size).expand(3, -1, -1)
    rounded = TF.resize(image.detach().cpu(), [size, size], antialias=True).to(torch.float64)
    return [
        (_normalise(_resize(x / 255, size).expand(3, -1, -1), MEAN, STD),
         "You divided by 255, as for 8-bit photographs (v2.ToDtype(..., scale=True) does that "
         "for uint8), but the digits' values go from 0 to 16: divide by 16 to bring them to "
         "[0, 1]."),
        (_normalise(_resize(x, size).expand(3, -1, -1), MEAN, STD),
         "Your values were never scaled: the digits go from 0 to 16, ImageNet's mean and std "
         "are for images in [0, 1]. Divide by 16 before normalising."),
        (_normalise(_resize(x, size).expand(3, -1, -1), MEAN, STD) / 16,
         "You normalised before scaling: (x - mean) / std must be computed on the image in "
         "[0, 1], so divide by 16 first and normalise last."),
        (_normalise(grey, MEAN[::-1], STD[::-1]),
         "Your channels use ImageNet's mean and std in reverse order (blue, green, red); "
         "torchvision's models take red, green, blue: mean [0.485, 0.456, 0.406], std "
         "[0.229, 0.224, 0.225]."),
        (grey, "Your image is not normalised: finish with v2.Normalize(mean, std) using "
               "ImageNet's statistics, which the pretrained network was trained with."),
        (_normalise(_resize(x / 16, size, "nearest").expand(3, -1, -1), MEAN, STD),
         "You resized with nearest-neighbour interpolation (blocky pixels); use bilinear "
         "interpolation, v2.Resize's default for tensors."),
        (_normalise((rounded / 16).expand(3, -1, -1), MEAN, STD),
         "You resized the uint8 image before converting it to float, so every interpolated "
         "value was rounded to a whole number of the 0..16 scale. Convert to float32 (and "
         "scale) first, then resize."),
    ]


def transform_diagnosis(got, image, size):
    """The known mistake ``got`` shows, or ""."""
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (3, size, size):
        return ""
    got = got.detach().to("cpu", torch.float64)
    return next((text + " " for wrong, text in slips(image, size)
                 if torch.allclose(got, wrong, rtol=1e-4, atol=1e-4)), "")


def shape_advice(got, size):
    """Explain an output of the wrong shape, or ""."""
    shape = tuple(got.shape)
    if shape == (3, size, size):
        return ""
    if shape == (size, size, 3):
        return ("Your image is channels-last (height, width, channels), as PIL and matplotlib "
                "order it; PyTorch's models take channels first: [3, size, size].")
    if shape == (1, size, size):
        return ("Your image has one channel; resnet18 takes three. Repeat the grey channel "
                "(x.repeat(3, 1, 1) or x.expand(3, -1, -1)).")
    if len(shape) == 3 and shape[0] == 3 and shape[1:] != (size, size):
        return (f"Your image is {shape[1]}x{shape[2]}, not {size}x{size}: resize it with "
                "v2.Resize((size, size)).")
    if len(shape) == 4:
        return "Return one image [3, size, size], without a batch dimension."
    return ""


def check_transform(student, reference, size, images, *, what):
    got = transform_report(student, size, images)["outputs"]
    want = transform_report(reference, size, images)["outputs"]
    for k, (g, w, image) in enumerate(zip(got, want, images, strict=True)):
        label = ("a blank digit (all 0)", "a full digit (all 16)")[k] if k < 2 else f"digit {k - 1}"
        where = f"{what}, {label}, uint8 of shape (1, 8, 8)"
        advice = shape_advice(g, size)
        if advice:
            fail(f"{where}: the transform returned shape {tuple(g.shape)}; expected (3, {size}, "
                 f"{size}). {advice} {TRANSFORM_HINT}")
        assert_close(g, w, what=where, inputs={"image": image},
                     hint=transform_diagnosis(g, image, size) + TRANSFORM_HINT)


@check("make_transform", points=4)
def test_make_transform_digits_at_32(student, reference):
    check_transform(student, reference, 32, digit_images(3, seed=1201), what="make_transform(32)")


@check("make_transform", points=1, kind="property")
def test_make_transform_is_v2(student):
    report = transform_report(student, 16, digit_images(0, seed=1211))
    expect(report["is_v2"],
           "make_transform(16) returned a transform that is not from torchvision.transforms.v2. "
           "Build it with v2.Compose([...]) of v2 transforms (from torchvision.transforms import "
           "v2); the older torchvision.transforms module is kept for compatibility only.")
