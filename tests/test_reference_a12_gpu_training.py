"""The a12_gpu_training reference against PyTorch itself, and the checks against false failures.

validate is compared with the loss and accuracy of the whole validation set computed at once
(``F.cross_entropy`` over every sample, the argmax over every row), for models with dropout given
in either mode and for loaders whose last batch is smaller. fit is compared with a plain loop
written here that keeps a deep copy of the weights after every epoch: the histories must agree,
best_epoch must be the first epoch of highest validation accuracy, and the model must end with
that epoch's copy.

Then the checks' own comparisons run over many seeds on every correct variant of
``variants.py`` (none may fail once, so the fixed seeds of the checks cannot have been picked to
hide a false failure), the checks' inputs are shown to have the margins a GPU's rounding needs,
and each known mistake's message names that mistake.
"""

from __future__ import annotations

import copy
import functools
import sys
from pathlib import Path

import pytest
import torch
from conftest import import_checks, variant_subject
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks import CheckFailed
from autograder.course import load_assignment, reference_namespace
from autograder.variants import variants_of

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
ASSIGNMENT = load_assignment("a12_gpu_training", SOLUTIONS)

# the check files import their probe file as `probes`, under that name only while they load
_saved_probes = sys.modules.get("probes")
sys.modules["probes"] = import_checks(ASSIGNMENT, "probes.py", "a12_probes")
try:
    checks = import_checks(ASSIGNMENT, "public_checks.py", "a12_public_checks")
    hidden = import_checks(ASSIGNMENT, "hidden_checks.py", "a12_hidden_checks", public=checks)
finally:
    if _saved_probes is None:
        del sys.modules["probes"]
    else:
        sys.modules["probes"] = _saved_probes
VARIANTS = variants_of(ASSIGNMENT)


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(ASSIGNMENT)


subject = functools.partial(variant_subject, ASSIGNMENT)


def _correct(exercise):
    return [("reference", None)] + [(v.name, v.source) for v in VARIANTS
                                    if v.exercise == exercise and (v.correct or v.device == "cuda")]


# --- the reference against PyTorch ------------------------------------------------------------

def _mlp(seed: int, dropout: float) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Dropout(dropout), nn.Linear(10, 3))


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("n", "batch_size"), [(30, 30), (30, 7), (64, 16), (17, 5), (5, 1)])
def test_validate_is_the_whole_set_at_once(ref, n, batch_size, training):
    model = _mlp(n, dropout=0.5).train(training)
    X, y = _data(n, seed=batch_size)
    before = copy.deepcopy(model.state_dict())
    loss, accuracy = ref["validate"](model, DataLoader(TensorDataset(X, y), batch_size=batch_size),
                                     nn.CrossEntropyLoss(), torch.device("cpu"))
    assert model.training == training
    model.eval()
    with torch.no_grad():
        scores = model(X)
    assert type(loss) is float and type(accuracy) is float
    assert loss == pytest.approx(F.cross_entropy(scores, y).item(), rel=1e-6)
    assert accuracy == (scores.argmax(dim=1) == y).double().mean().item()
    for key, value in before.items():
        assert torch.equal(value, model.state_dict()[key])


def test_validate_restores_the_mode_and_records_no_graph(ref):
    model = _mlp(0, dropout=0.5)
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append((m.training, o.requires_grad)))
    X, y = _data(12, seed=1)
    for training in (True, False):
        model.train(training)
        ref["validate"](model, DataLoader(TensorDataset(X, y), batch_size=4),
                        nn.CrossEntropyLoss(), "cpu")
        assert model.training is training
    assert seen and all(mode is False and not grad for mode, grad in seen)


def _plain_fit(model, train_loader, val_loader, optimizer, epochs):
    """Train, validate, and keep every epoch's weights; pick the best at the end."""
    criterion = nn.CrossEntropyLoss()
    train_loss, val_loss, val_accuracy, states = [], [], [], []
    for _ in range(epochs):
        model.train()
        losses = []
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        train_loss.append(sum(losses) / len(losses))
        model.eval()
        with torch.no_grad():
            X = torch.cat([x for x, _ in val_loader])
            Y = torch.cat([y for _, y in val_loader])
            scores = model(X)
        val_loss.append(F.cross_entropy(scores, Y).item())
        val_accuracy.append((scores.argmax(1) == Y).sum().item() / len(Y))
        states.append(copy.deepcopy(model.state_dict()))
    best = val_accuracy.index(max(val_accuracy))
    return {"train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_accuracy,
            "best_epoch": best}, states


@pytest.mark.parametrize("seed", range(4))
def test_fit_matches_a_plain_loop_and_ends_at_the_best_epoch(ref, seed):
    X, y = _data(48, seed=seed)
    X_val, y_val = _data(32, seed=100 + seed)
    train_loader = DataLoader(TensorDataset(X, y), batch_size=8)
    val_loader = DataLoader(TensorDataset(X_val, y_val), batch_size=10)
    ours, theirs = _mlp(seed, 0.0), _mlp(seed, 0.0)
    ours.eval()  # the reference must switch to training mode itself
    epochs = 4 + seed % 3
    got = ref["fit"](ours, train_loader, val_loader, nn.CrossEntropyLoss(),
                     torch.optim.SGD(ours.parameters(), lr=0.5, momentum=0.9), epochs, "cpu")
    want, states = _plain_fit(theirs, train_loader, val_loader,
                              torch.optim.SGD(theirs.parameters(), lr=0.5, momentum=0.9), epochs)
    assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6)
    assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-5)
    assert got["val_accuracy"] == want["val_accuracy"]
    assert got["best_epoch"] == want["best_epoch"]
    for key, value in states[want["best_epoch"]].items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)


def test_the_reference_keeps_the_first_of_tied_epochs(ref):
    """lr = 0: every epoch has the same weights and accuracy; the first is the best."""
    X, y = _data(16, seed=3)
    loader = DataLoader(TensorDataset(X, y), batch_size=8)
    model = _mlp(3, 0.0)
    history = ref["fit"](model, loader, loader, nn.CrossEntropyLoss(),
                         torch.optim.SGD(model.parameters(), lr=0.0), 4, "cpu")
    assert len(set(history["val_accuracy"])) == 1 and history["best_epoch"] == 0


# --- the checks' inputs ---------------------------------------------------------------------------

def test_specs_are_deterministic():
    a = checks.fit_spec("cpu", seed=1450, epochs=5, lr=0.3)
    b = checks.fit_spec("cpu", seed=1450, epochs=5, lr=0.3)
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key])
    v1 = checks.validate_spec("cpu", seed=1200, n=48, batch_size=16)
    v2 = checks.validate_spec("cpu", seed=1200, n=48, batch_size=16)
    assert torch.equal(v1["X"], v2["X"]) and torch.equal(v1["y"], v2["y"])


FIT_SPECS = {
    "public": dict(seed=1450, epochs=5, lr=0.3),
    "ties": dict(seed=1560, epochs=6, lr=0.5),
}


@pytest.mark.parametrize("name", sorted(FIT_SPECS))
def test_fit_specs_show_the_mistakes_with_margins_a_gpu_cannot_flip(name):
    spec = checks.fit_spec("cpu", **FIT_SPECS[name])
    got = subject("reference").run("fit", spec).unwrap()
    accuracy, loss = got["history"]["val_accuracy"], got["history"]["val_loss"]
    best = got["history"]["best_epoch"]
    top = [e for e, a in enumerate(accuracy) if a == max(accuracy)]
    assert got["val_smallest_gap"] > 2e-3  # no validation prediction is near a tie
    assert best == top[0] and best != len(accuracy) - 1  # keeping the last epoch is wrong
    assert loss.index(min(loss)) != best  # choosing by validation loss is wrong
    assert accuracy.index(min(accuracy)) != best
    if name == "ties":
        assert len(top) >= 2 and top[-1] != len(accuracy) - 1
    else:
        assert len(top) == 1
    assert all(w is not None for w in got["validated"])  # validated once after every epoch


def test_validate_specs_have_clear_predictions():
    for seed, n, batch_size in [(1200, 48, 16), (1400, 50, 16), (1210, 24, 8), (1220, 16, 8)]:
        spec = checks.validate_spec("cpu", seed=seed, n=n, batch_size=batch_size)
        got = subject("reference").run("validate", spec).unwrap()
        assert got["val_smallest_gap"] > 0.02
        assert 0.2 < got["accuracy"] < 0.95


# --- the checks never fail correct code ---------------------------------------------------------

@functools.cache
def reference_validate(seed):
    """The reference's answer to random_validate_spec(seed), once per test process."""
    return checks.run_validate(subject("reference"), random_validate_spec(seed))


@functools.cache
def reference_fit(seed):
    """The reference's answer to random_fit_spec(seed), once per test process."""
    return checks.run_fit(subject("reference"), random_fit_spec(seed))


def random_validate_spec(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(5, 60, (1,), generator=g))
    batch_size = int(torch.randint(1, 20, (1,), generator=g))
    return checks.validate_spec("cpu", seed=3000 + 10 * seed, n=n, batch_size=batch_size,
                                mode=("train", "eval")[seed % 2], dropout=(0.0, 0.5)[seed % 3 > 0])


@pytest.mark.parametrize(("name", "source"), _correct("validate"),
                         ids=[n for n, _ in _correct("validate")])
def test_correct_validate_passes_the_comparison_on_many_inputs(name, source):
    student = subject(name, source)
    failures = []
    for seed in range(20):
        spec = random_validate_spec(seed)
        try:
            got = checks.run_validate(student, spec)
            checks.compare_validate(got, reference_validate(seed), spec)
            assert got["training_after"] == (spec["mode"] == "train")
            assert got["val_forwards_in_train_mode"] == got["val_forwards_with_grad"] == 0
            assert got["inputs_moved"] == got["inputs"] and got["weights_unchanged"]
        except (CheckFailed, AssertionError) as failure:
            failures.append((seed, str(failure)[:300]))
    assert failures == []


def random_fit_spec(seed):
    g = torch.Generator().manual_seed(seed)
    epochs = int(torch.randint(1, 7, (1,), generator=g))
    lr = (0.05, 0.2, 0.5)[seed % 3]
    return checks.fit_spec("cpu", seed=5000 + 10 * seed, epochs=epochs, lr=lr,
                           mode=("train", "eval")[seed % 2])


@pytest.mark.parametrize(("name", "source"), _correct("fit"), ids=[n for n, _ in _correct("fit")])
def test_correct_fit_passes_the_comparison_on_many_inputs(name, source):
    student = subject(name, source)
    failures = []
    for seed in range(12):
        spec = random_fit_spec(seed)
        try:
            got, want = checks.run_fit(student, spec), reference_fit(seed)
            checks.compare_history(got["history"], want["history"], spec)
            checks.compare_best(got, want, spec)
            checks.compare_final_weights(got, want, spec)
            assert got["train_forwards_in_eval_mode"] == got["val_forwards_in_train_mode"] == 0
            assert got["val_forwards_with_grad"] == got["train_forwards_without_grad"] == 0
            assert got["inputs_moved"] == got["inputs"]
        except (CheckFailed, AssertionError) as failure:
            failures.append((seed, str(failure)[:300]))
    assert failures == []


FIT_VALUE_MISTAKES = [(v.name, v.source) for v in VARIANTS if v.exercise == "fit" and not v.correct
                      and v.device is None and not set(v.must_fail) <= {
                          "fit_modes_and_gradients", "fit_moves_every_input_batch"}]


@pytest.mark.parametrize(("name", "source"), FIT_VALUE_MISTAKES, ids=[n for n, _ in FIT_VALUE_MISTAKES])
def test_the_random_fit_comparison_is_not_vacuous(name, source):
    """The random cases above would catch the value mistakes: each in some of them."""
    student = subject(name, source)
    caught = 0
    for seed in range(8):
        spec = random_fit_spec(seed)
        try:
            got, want = checks.run_fit(student, spec), reference_fit(seed)
            checks.compare_history(got["history"], want["history"], spec)
            checks.compare_best(got, want, spec)
            checks.compare_final_weights(got, want, spec)
        except CheckFailed:
            caught += 1
    assert caught >= 2


# --- each mistake is named in its message -------------------------------------------------------

DIAGNOSED = {
    "train_mode": ("test_validate_loss_and_accuracy", "call model.eval() before the loop"),
    "no_no_grad": ("test_validate_eval_mode_without_gradients", "with gradient recording on"),
    "leaves_eval_mode": ("test_validate_restores_the_mode", "left it in eval mode"),
    "always_back_to_train": ("test_validate_restores_the_mode", "left it in train mode"),
    "mean_of_batch_losses": ("test_validate_smaller_last_batch", "plain mean of the batch losses"),
    "sum_of_batch_losses": ("test_validate_loss_and_accuracy", "sum of the batch losses"),
    "correct_count": ("test_validate_loss_and_accuracy", "the number of correct predictions"),
    "inputs_not_moved": ("test_validate_moves_every_input_batch", "x = x.to(device)"),
    "state_dict_without_copy": ("test_fit_keeps_the_best_weights", "not a copy"),
    "best_weights_never_loaded": ("test_fit_keeps_the_best_weights", "weights of the last epoch"),
    "rebinds_model_to_the_copy": ("test_fit_keeps_the_best_weights", "rebinding the name"),
    "lowest_accuracy": ("test_fit_best_epoch", "LOWEST validation accuracy"),
    "lowest_validation_loss": ("test_fit_best_epoch", "lowest validation loss"),
    "ties_go_to_the_latest": ("test_fit_ties_go_to_the_earliest", "strictly greater"),
    "best_epoch_counted_from_one": ("test_fit_best_epoch", "one too large"),
    "validates_before_training": ("test_fit_history", "one epoch behind"),
    "validation_inline_in_train_mode": ("test_fit_modes_and_gradients", "ran in training mode"),
    "train_mode_set_once_before_the_loop": ("test_fit_modes_and_gradients",
                                            "Call model.train() at the start of every"),
    "validation_with_gradients": ("test_fit_modes_and_gradients", "with gradient recording on"),
    "no_zero_grad": ("test_fit_history", "zero_grad"),
    "training_batches_not_moved": ("test_fit_moves_every_input_batch", "x.to(device)"),
}


def _run_check(check_name, student):
    module = checks if hasattr(checks, check_name) else hidden
    fn = getattr(module, check_name)
    kwargs = {"student": student, "device": "cpu"}
    if "reference" in fn.__code__.co_varnames[:fn.__code__.co_argcount]:
        kwargs["reference"] = subject("reference")
    with pytest.raises(CheckFailed) as failure:
        fn(**kwargs)
    return str(failure.value)


def test_every_wrong_variant_has_a_diagnosis():
    wrong = {v.name for v in VARIANTS if not v.correct and v.device is None}
    assert wrong == set(DIAGNOSED)


@pytest.mark.parametrize("name", sorted(DIAGNOSED))
def test_each_mistake_gets_a_message_that_names_it(name):
    source = next(v.source for v in VARIANTS if v.name == name)
    check_name, text = DIAGNOSED[name]
    assert text in _run_check(check_name, subject(name, source))


def test_a_device_mismatch_is_explained():
    """What the notes' mistake (labels left on the CPU) raises on a GPU, simulated here."""
    def validate(model, loader, criterion, device):
        raise RuntimeError("Expected all tensors to be on the same device, but found at least "
                           "two devices, cuda:0 and cpu!")

    message = _run_check("test_validate_loss_and_accuracy", subject("mismatch", validate=validate))
    assert "the course notes say the labels need not be moved" in message
