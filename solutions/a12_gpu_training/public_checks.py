"""Public checks for a12_gpu_training: students see these and run them from the check cells.

Every check runs the student's function through a probe (``probes.py``) on a small MLP with
fixed weights and fixed batches, runs the reference through the same probe, and compares. The
probe's model logs every forward pass (train or eval mode, gradients on or off, device), so the
checks can tell how the student validated, not only what came out.
"""

import math

import torch

from autograder.checks import assert_close, check, expect, fail, hint, rand, randint, randn

from probes import ProbeMLP

# Scores on a GPU differ from the CPU's in the last bits (the check cell compares with answers
# recorded on the CPU); every mistake these checks catch changes the numbers by percents.
LOSS_TOL = {"rtol": 1e-3, "atol": 1e-5}
WEIGHT_TOL = {"rtol": 1e-3, "atol": 1e-5}

VALIDATE_HINT = hint(
    "Validation measures the model without changing it: evaluation mode (dropout off), no "
    "gradient recording, every batch's inputs on the device. The mean loss is over samples, so "
    "a smaller last batch counts for fewer samples; the accuracy is the fraction of all samples "
    "whose largest score is at the label.",
    formula="was_training = model.training; model.eval(); with torch.no_grad(): for each batch "
            "x, y = x.to(device), y.to(device); scores = model(x); total += criterion(scores, "
            "y).item() * len(y); correct += (scores.argmax(1) == y).sum().item(); then "
            "model.train(was_training); return total / n, correct / n")
FIT_HINT = hint(
    "Each epoch: one training pass in training mode (zero_grad, forward, backward, step for "
    "every batch), then one validation pass; record the three numbers. Keep a COPY of the "
    "weights whenever the validation accuracy beats the best so far (strictly: a tie keeps the "
    "earlier epoch), and load that copy into the model at the end.",
    formula="if val_accuracy > best: best, best_epoch = val_accuracy, epoch; best_state = "
            "copy.deepcopy(model.state_dict()) ... after the loop: "
            "model.load_state_dict(best_state)")
DEVICE_ERROR = ("Every tensor an operation uses must be on one device. Move each batch with "
                "x, y = x.to(device), y.to(device): the course notes say the labels need not be "
                "moved for testing, but the loss and the comparison with the predictions use "
                "them, on the model's device.")


def mlp_state(seed, dropout=0.0):
    """The initial weights of the probe's MLP, made without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ProbeMLP(dropout).state_dict()


def _explain(outcome, what):
    """The student's error as a failure that says what to do; the stub's stays 'not
    implemented'."""
    error = outcome.error
    if error is None or error.is_a("NotImplementedError"):
        return outcome.unwrap()
    if error.is_a("ProbeError"):
        fail(f"{error.describe().rstrip('.')}.")
    advice = DEVICE_ERROR if "same device" in error.message or "device" in error.message.lower() \
        else ""
    fail(f"{what} raised an error: {error.describe()} {advice}".rstrip())
    return None


# --- validate -------------------------------------------------------------------------------------

def validate_spec(device, *, seed, n, batch_size, mode="train", dropout=0.5, share_right=0.6):
    """A model with dropout and n samples it gets about ``share_right`` (plus chance) right in
    evaluation mode, each with a clear lead of its best score (so that a GPU's rounding cannot
    flip a prediction)."""
    state = mlp_state(seed, dropout)
    candidates = randn(4 * n, 8, seed=seed + 1, scale=2.0)
    with torch.random.fork_rng(devices=[]):
        model = ProbeMLP(dropout)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        scores = model(candidates)
    top2 = scores.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.02
    X, predicted = candidates[clear][:n], scores.argmax(dim=1)[clear][:n]
    if len(X) < n:
        raise RuntimeError(f"seed {seed} gives only {len(X)} clear samples; pick another seed")
    noise = randint(n, seed=seed + 2, high=4)
    keep = rand(n, seed=seed + 3) < share_right
    y = torch.where(keep, predicted, noise)
    return {"state": state, "dropout": dropout, "X": X, "y": y, "batch_size": batch_size,
            "mode": mode, "seed": seed, "device": device}


def describe_validate(spec):
    return (f"validate on {len(spec['X'])} samples in batches of {spec['batch_size']}, a model "
            f"with dropout {spec['dropout']} given in {spec['mode']} mode")


def run_validate(subject, spec):
    return _explain(subject.run("validate", spec), describe_validate(spec))


def _loss_hint(got, want, spec):
    """Name the mistake behind a wrong mean loss when the numbers show it."""
    n, b = len(spec["X"]), spec["batch_size"]
    batches = -(-n // b)
    if math.isclose(got, want * n, rel_tol=1e-4):
        return f"Your loss is {n} times too large: divide the summed loss by the {n} samples."
    if math.isclose(got, want * batches, rel_tol=1e-4):
        return (f"Your loss is {batches} times too large: you return the sum of the batch "
                "losses. Weight each batch's mean loss by its size and divide by the number of "
                "samples.")
    if n % b:
        return (f"The last batch has {n % b} samples, the others {b}: the mean over samples "
                "weights each batch's mean loss by its size (loss.item() * len(y)), and divides "
                "the total by the number of samples. The plain mean of the batch losses gives "
                "the small batch too much weight.")
    return VALIDATE_HINT


def _accuracy_hint(got, want, n):
    if math.isclose(got, want * n, rel_tol=1e-6):
        return f"You return the number of correct predictions; divide it by the {n} samples."
    if math.isclose(got, want * 100, rel_tol=1e-6):
        return "You return a percentage; return a fraction in [0, 1]."
    return VALIDATE_HINT


def compare_validate(got, want, spec):
    what = describe_validate(spec)
    n = len(spec["X"])
    mode_note = ""
    if got["val_forwards_in_train_mode"]:
        mode_note = ("Your model was in training mode for the forward passes, so dropout "
                     "changed the scores: call model.eval() before the loop. ")
    assert_close(got["loss"], want["loss"], what=f"{what}: the mean loss", **LOSS_TOL,
                 hint=mode_note + _loss_hint(got["loss"], want["loss"], spec))
    assert_close(got["accuracy"], want["accuracy"], what=f"{what}: the accuracy",
                 rtol=1e-6, atol=1e-9, hint=mode_note + _accuracy_hint(got["accuracy"],
                                                                       want["accuracy"], n))


@check("validate", points=3)
def test_validate_loss_and_accuracy(student, reference, device):
    spec = validate_spec(device, seed=1200, n=48, batch_size=16)
    compare_validate(run_validate(student, spec), run_validate(reference, spec), spec)


@check("validate", points=1, kind="property")
def test_validate_eval_mode_without_gradients(student, device):
    spec = validate_spec(device, seed=1210, n=24, batch_size=8)
    got = run_validate(student, spec)
    forwards = got["val_forwards"]
    expect(forwards > 0, "validate never called the model on a batch.")
    expect(got["val_forwards_in_train_mode"] == 0,
           f"validate ran {got['val_forwards_in_train_mode']} of {forwards} forward passes with "
           "the model in training mode (we passed in a model with dropout in training mode, as "
           "in the middle of fit): dropout was active and the numbers are random. Call "
           "model.eval() before the loop.")
    expect(got["val_forwards_with_grad"] == 0,
           f"validate ran {got['val_forwards_with_grad']} of {forwards} forward passes with "
           "gradient recording on: nothing calls backward() on a validation loss, so autograd "
           "only costs memory and time. Run the loop inside `with torch.no_grad():` (or "
           "`torch.inference_mode()`).")
    expect(got["weights_unchanged"],
           "validate changed the model's weights; it must only measure the model.")


@check("validate", points=1, kind="property")
def test_validate_restores_the_mode(student, device):
    for mode in ("train", "eval"):
        spec = validate_spec(device, seed=1220, n=16, batch_size=8, mode=mode)
        got = run_validate(student, spec)
        after = "train" if got["training_after"] else "eval"
        expect(after == mode,
               f"validate was given a model in {mode} mode and left it in {after} mode. It must "
               "put the model back in the mode it found it in, so that the training that "
               "follows keeps its dropout: remember was_training = model.training before "
               "model.eval(), and call model.train(was_training) before returning.")


# --- fit ------------------------------------------------------------------------------------------

def fit_spec(device, *, seed, epochs, lr, momentum=0.9, n=32, batch_size=8, n_val=16,
             val_batch_size=8, dropout=0.0, mode="train"):
    """A learnable rule with noisy labels: the validation accuracy rises, then wanders, so the
    best epoch is not the last. 16 validation samples: every accuracy is k/16, exact in any
    float type, so equal accuracies compare equal however they were computed."""
    rule = randn(8, 4, seed=seed)
    X = randn(n, 8, seed=seed + 1)
    X_val = randn(n_val, 8, seed=seed + 2)
    flip = rand(n + n_val, seed=seed + 3) < 0.3
    noise = randint(n + n_val, seed=seed + 4, high=4)
    labels = torch.where(flip, noise, torch.cat([X, X_val]).matmul(rule).argmax(dim=1))
    return {"state": mlp_state(seed + 5, dropout), "dropout": dropout,
            "X": X, "y": labels[:n], "batch_size": batch_size,
            "X_val": X_val, "y_val": labels[n:], "val_batch_size": val_batch_size,
            "lr": lr, "momentum": momentum, "epochs": epochs, "mode": mode,
            "seed": seed, "device": device}


def describe_fit(spec):
    return (f"fit for {spec['epochs']} epochs ({len(spec['X'])} training samples in batches of "
            f"{spec['batch_size']}, {len(spec['X_val'])} validation samples, "
            f"SGD(lr={spec['lr']}, momentum={spec['momentum']}))")


def run_fit(subject, spec):
    return _explain(subject.run("fit", spec), describe_fit(spec))


def compare_history(got, want, spec):
    what = describe_fit(spec)
    for key in ("train_loss", "val_loss", "val_accuracy"):
        advice = FIT_HINT
        if key != "train_loss" and _close_lists(got[key][1:], want[key][:-1]):
            advice = ("Your validation numbers are one epoch behind: validate AFTER each epoch's "
                      "training pass, so that they describe the weights the epoch produced. ")
        assert_close(torch.tensor(got[key], dtype=torch.float64),
                     torch.tensor(want[key], dtype=torch.float64),
                     what=f"{what}: history[{key!r}], one value per epoch", **LOSS_TOL,
                     hint=advice)


def _close_lists(a, b):
    return len(a) == len(b) > 0 and all(math.isclose(x, y, rel_tol=1e-3, abs_tol=1e-5)
                                        for x, y in zip(a, b, strict=True))


def best_epoch_hint(got_best, want_best, history):
    """Name the mistake behind a wrong best_epoch when the history shows it."""
    accuracy, loss = history["val_accuracy"], history["val_loss"]
    top = max(accuracy)
    if 0 <= got_best < len(accuracy) and accuracy[got_best] == top and got_best > want_best:
        return ("Several epochs share the best accuracy; the earliest of them is the best "
                "epoch. Replace the best only when an accuracy is strictly greater (>, not >=).")
    if got_best == want_best + 1:
        return ("Your best_epoch is one too large: it is an index into the history lists "
                "(0 for the first epoch), so history['val_accuracy'][best_epoch] is the best "
                "accuracy.")
    if 0 <= got_best < len(accuracy):
        if accuracy[got_best] == min(accuracy) and accuracy[got_best] < top:
            return ("Your best_epoch has the LOWEST validation accuracy; keep the highest.")
        if loss[got_best] == min(loss) and accuracy[got_best] < top:
            return ("Your best_epoch has the lowest validation loss; this assignment picks the "
                    "epoch with the highest validation accuracy.")
        if got_best == len(accuracy) - 1:
            return ("Your best_epoch is the last epoch, which is not the one with the highest "
                    "validation accuracy. Update best_epoch only when the accuracy beats the "
                    "best so far.")
    return FIT_HINT


def compare_best(got, want, spec):
    history = got["history"]
    best, want_best = history["best_epoch"], want["history"]["best_epoch"]
    expect(best == want_best,
           f"{describe_fit(spec)}: best_epoch is {best}, expected {want_best}. The validation "
           f"accuracies were {want['history']['val_accuracy']}. "
           + best_epoch_hint(best, want_best, want["history"]))


def _same_weights(a, b):
    return a is not None and all(torch.allclose(a[k].double(), b[k].double(), **WEIGHT_TOL)
                                 for k in b)


def compare_final_weights(got, want, spec):
    """The model must end with the weights of the best epoch; when it holds another epoch's,
    say which."""
    best = want["history"]["best_epoch"]
    epochs = spec["epochs"]
    advice = FIT_HINT
    if not _same_weights(got["state"], want["state"]):
        held = [e for e, w in enumerate(got["validated"]) if _same_weights(got["state"], w)]
        if held == [epochs - 1] or (held and held[-1] == epochs - 1):
            advice = (f"Your model ends with the weights of the last epoch ({epochs - 1}), not "
                      f"those of the best ({best}). model.state_dict() returns the model's live "
                      "tensors, not a copy: kept as it is, it changes with every later step. "
                      "Keep copy.deepcopy(model.state_dict()) (or {k: v.clone() for k, v in "
                      "...}), and call model.load_state_dict on it after the loop, on the model "
                      "you were given (rebinding the name `model` inside fit does not change the "
                      "caller's model).")
        elif held:
            advice = (f"Your model ends with the weights of epoch {held[0]}, but the best "
                      f"validation accuracy is at epoch {best}. " + FIT_HINT)
    for name, value in want["state"].items():
        assert_close(got["state"][name], value,
                     what=f"{describe_fit(spec)}: parameter {name} of the model after fit "
                          "(the weights of the best epoch)", **WEIGHT_TOL, hint=advice)


@check("fit", points=3)
def test_fit_history(student, reference, device):
    spec = fit_spec(device, seed=1450, epochs=5, lr=0.3)
    compare_history(run_fit(student, spec)["history"], run_fit(reference, spec)["history"], spec)


@check("fit", points=2)
def test_fit_best_epoch(student, reference, device):
    spec = fit_spec(device, seed=1450, epochs=5, lr=0.3)
    compare_best(run_fit(student, spec), run_fit(reference, spec), spec)


@check("fit", points=2)
def test_fit_keeps_the_best_weights(student, reference, device):
    spec = fit_spec(device, seed=1450, epochs=5, lr=0.3)
    compare_final_weights(run_fit(student, spec), run_fit(reference, spec), spec)


@check("fit", points=1, kind="property")
def test_fit_modes_and_gradients(student, device):
    spec = fit_spec(device, seed=1310, epochs=3, lr=0.1, dropout=0.5, mode="eval")
    got = run_fit(student, spec)
    expect(got["train_forwards"] > 0 and got["val_forwards"] > 0,
           f"fit made {got['train_forwards']} training and {got['val_forwards']} validation "
           "forward passes; it must train on train_loader and validate on val_loader every epoch.")
    expect(got["train_forwards_in_eval_mode"] == 0,
           f"fit ran {got['train_forwards_in_eval_mode']} of {got['train_forwards']} training "
           "forward passes in evaluation mode (we passed in a model with dropout in eval mode, "
           "and validation switches to eval mode too). Call model.train() at the start of every "
           "epoch's training pass.")
    expect(got["train_forwards_without_grad"] == 0,
           f"fit ran {got['train_forwards_without_grad']} of {got['train_forwards']} training "
           "forward passes without gradient recording; only validation goes under no_grad.")
    expect(got["val_forwards_in_train_mode"] == 0 and got["val_forwards_with_grad"] == 0,
           f"of fit's {got['val_forwards']} validation forward passes, "
           f"{got['val_forwards_in_train_mode']} ran in training mode and "
           f"{got['val_forwards_with_grad']} with gradient recording on. Validate in eval mode "
           "under torch.no_grad() (calling your validate does both).")
