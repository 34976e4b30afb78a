# Alternative implementations of a11_transfer's exercises, graded by the project's tests and used
# to build the demo class. Instructor material: never copied to assignments/.

# %% build_transfer_model: module_requires_grad_ [correct]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    model.requires_grad_(False)
    model.fc = nn.Linear(512, num_classes)
    return model

# %% build_transfer_model: freeze_by_named_parameters [correct]
def build_transfer_model(num_classes):
    net = models.resnet18(weights=None, progress=False)
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(False)
    in_features = net.fc.in_features
    net.fc = torch.nn.Linear(in_features, num_classes, bias=True)
    return net

# %% build_transfer_model: resnet18_class_then_freeze_all_but_new_head [correct]
def build_transfer_model(num_classes):
    from torchvision.models import resnet18
    model = resnet18()
    head = nn.Linear(model.fc.in_features, num_classes)
    for p in model.parameters():
        p.requires_grad = False
    model.fc = head
    return model

# %% build_transfer_model: head_made_first_in_float64_then_cast [correct]
def build_transfer_model(num_classes):
    head = nn.Linear(512, num_classes, dtype=torch.float64)
    model = models.resnet18(weights=None, num_classes=1000)
    for module in model.children():
        for p in module.parameters():
            p.requires_grad = False
    model.fc = head.float()
    return model

# %% build_transfer_model: get_model_by_name [correct]
def build_transfer_model(num_classes):
    model = models.get_model("resnet18", weights=None)
    for p in model.parameters():
        p.requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    assert all(p.requires_grad for p in model.fc.parameters())
    return model

# %% build_transfer_model: material_pretrained_true [wrong: transfer_model_structure_and_logits, transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
# the course notes' spelling: deprecated, and it downloads ImageNet weights
def build_transfer_model(num_classes):
    model = models.resnet18(pretrained=True)
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, num_classes)
    return model

# %% build_transfer_model: weights_default_downloads [wrong: transfer_model_structure_and_logits, transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=models.ResNet18_Weights.DEFAULT)
    model.requires_grad_(False)
    model.fc = nn.Linear(512, num_classes)
    return model

# %% build_transfer_model: freeze_after_replacing_head [wrong: transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    model.fc = nn.Linear(512, num_classes)
    for param in model.parameters():
        param.requires_grad = False
    return model

# %% build_transfer_model: head_frozen_too [wrong: transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, num_classes)
    model.fc.weight.requires_grad = False
    model.fc.bias.requires_grad = False
    return model

# %% build_transfer_model: replace_without_freezing [wrong: transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    model.fc = nn.Linear(512, num_classes)
    return model

# %% build_transfer_model: module_attribute_instead_of_freezing [wrong: transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
# sets a plain attribute on the module: no parameter is frozen
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    model.requires_grad = False
    model.fc = nn.Linear(512, num_classes)
    return model

# %% build_transfer_model: freeze_convolutions_only [wrong: transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.requires_grad = False
    model.fc = nn.Linear(512, num_classes)
    return model

# %% build_transfer_model: material_seven_classes [wrong: transfer_model_structure_and_logits, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
# the course notes' example head, whatever num_classes says
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, 7)
    return model

# %% build_transfer_model: softmax_in_the_head [wrong: transfer_model_structure_and_logits, transfer_model_only_head_trainable, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Sequential(nn.Linear(512, num_classes), nn.Softmax(dim=1))
    return model

# %% build_transfer_model: head_not_replaced [wrong: transfer_model_structure_and_logits, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet18(weights=None)
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith("fc.")
    return model

# %% build_transfer_model: resnet34 [wrong: transfer_model_structure_and_logits, transfer_model_step_changes_only_head, transfer_model_other_class_counts]
def build_transfer_model(num_classes):
    model = models.resnet34(weights=None)
    model.requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model

# %% make_transform: normalize_for_scaling_then_repeat [correct]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=False),
        v2.Normalize(mean=[0.0], std=[16.0]),
        v2.Resize(size),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])

# %% make_transform: repeat_first_and_fold_the_scale_into_normalize [correct]
# (x / 16 - m) / s == (x - 16 m) / (16 s): one Normalize on the unscaled values
def make_transform(size):
    mean = [16 * m for m in IMAGENET_MEAN]
    std = [16 * s for s in IMAGENET_STD]
    return v2.Compose([
        v2.Lambda(lambda img: img.expand(3, -1, -1)),
        v2.ToDtype(torch.float32),
        v2.Resize((size, size), interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
        v2.Normalize(mean, std),
    ])

# %% make_transform: one_lambda_with_interpolate [correct]
def make_transform(size):
    import torch.nn.functional as F
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def to_input(image):
        x = image.float().div(16).unsqueeze(0)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = torch.cat([x[0]] * 3)
        return (x - mean) / std

    return v2.Compose([v2.Lambda(to_input)])

# %% make_transform: scale_true_then_correct_the_factor [correct]
# ToDtype(scale=True) divides uint8 by 255; multiplying by 255 / 16 puts it back on [0, 1]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=True),
        v2.Lambda(lambda x: x * (255.0 / 16.0)),
        v2.Resize([size, size]),
        v2.Normalize(IMAGENET_MEAN * 1, IMAGENET_STD * 1),
        v2.Lambda(lambda x: x.expand(3, size, size).clone()),
    ])

# %% make_transform: grayscale_to_rgb_after_normalising_once [correct]
def make_transform(size):
    return v2.Compose([
        v2.ToImage(),
        v2.ToDtype(torch.float32),
        v2.Lambda(lambda x: x / 16),
        v2.Resize(size=(size, size)),
        v2.Lambda(lambda x: torch.cat([x, x, x], dim=0)),
        v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])

# %% make_transform: material_totensor [wrong: make_transform_digits_at_32, make_transform_is_v2, make_transform_other_sizes, make_transform_blank_and_full, make_transform_float32]
# the course notes' old pipeline: ToTensor takes a PIL image or a NumPy array, not a tensor
def make_transform(size):
    from torchvision import transforms
    return transforms.Compose([transforms.Resize(size), transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

# %% make_transform: old_transforms_module [wrong: make_transform_is_v2]
# right values, but from the older torchvision.transforms, not v2
def make_transform(size):
    from torchvision import transforms
    return transforms.Compose([
        transforms.Lambda(lambda x: x.float() / 16),
        transforms.Resize((size, size), antialias=True),
        transforms.Lambda(lambda x: x.repeat(3, 1, 1)),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])

# %% make_transform: scale_by_255 [wrong: make_transform_digits_at_32, make_transform_other_sizes, make_transform_blank_and_full]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=True),
        v2.Resize((size, size)),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])

# %% make_transform: not_scaled [wrong: make_transform_digits_at_32, make_transform_other_sizes, make_transform_blank_and_full]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32),
        v2.Resize((size, size)),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])

# %% make_transform: normalise_before_scaling [wrong: make_transform_digits_at_32, make_transform_other_sizes, make_transform_blank_and_full]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32),
        v2.Resize((size, size)),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        v2.Lambda(lambda x: x / 16),
    ])

# %% make_transform: channel_statistics_reversed [wrong: make_transform_digits_at_32, make_transform_other_sizes, make_transform_blank_and_full]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32),
        v2.Lambda(lambda x: x / 16),
        v2.Resize((size, size)),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize([0.406, 0.456, 0.485], [0.225, 0.224, 0.229]),
    ])

# %% make_transform: not_normalised [wrong: make_transform_digits_at_32, make_transform_other_sizes, make_transform_blank_and_full]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32),
        v2.Lambda(lambda x: x / 16),
        v2.Resize((size, size)),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
    ])

# %% make_transform: channels_last [wrong: make_transform_digits_at_32, make_transform_other_sizes, make_transform_blank_and_full]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32),
        v2.Lambda(lambda x: x / 16),
        v2.Resize((size, size)),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        v2.Lambda(lambda x: x.permute(1, 2, 0)),
    ])

# %% make_transform: nearest_neighbour [wrong: make_transform_digits_at_32, make_transform_other_sizes]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float32),
        v2.Lambda(lambda x: x / 16),
        v2.Resize((size, size), interpolation=v2.InterpolationMode.NEAREST),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])

# %% make_transform: resize_the_uint8_image [wrong: make_transform_digits_at_32, make_transform_other_sizes]
def make_transform(size):
    return v2.Compose([
        v2.Resize((size, size)),
        v2.ToDtype(torch.float32),
        v2.Lambda(lambda x: x / 16),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])

# %% make_transform: float64_output [wrong: make_transform_float32]
def make_transform(size):
    return v2.Compose([
        v2.ToDtype(torch.float64),
        v2.Lambda(lambda x: x / 16),
        v2.Resize((size, size)),
        v2.Lambda(lambda x: x.repeat(3, 1, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
