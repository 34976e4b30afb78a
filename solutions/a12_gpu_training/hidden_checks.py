"""Hidden checks for a12_gpu_training: run by `grade`, never shipped to students."""

from autograder.checks import check, expect

from public_checks import (  # helpers shared with the public checks
    compare_best,
    compare_final_weights,
    compare_history,
    compare_validate,
    fit_spec,
    run_fit,
    run_validate,
    validate_spec,
)


@check("validate", points=2)
def test_validate_smaller_last_batch(student, reference, device):
    """50 samples in batches of 16: the last batch has 2, and counts for 2 samples."""
    spec = validate_spec(device, seed=1400, n=50, batch_size=16, mode="eval", share_right=0.5)
    compare_validate(run_validate(student, spec), run_validate(reference, spec), spec)


@check("validate", points=1, kind="property")
def test_validate_moves_every_input_batch(student, device):
    spec = validate_spec(device, seed=1410, n=24, batch_size=8)
    got = run_validate(student, spec)
    expect(got["inputs_moved"] == got["inputs"],
           f"validate moved {got['inputs_moved']} of the {got['inputs']} input batches the "
           f"loader yielded to the device ({device} here). A DataLoader yields CPU tensors; on a "
           "GPU the model cannot read them: x = x.to(device) for every batch.")
    expect(got["forward_devices"] == [device],
           f"validate fed the model batches on {got['forward_devices']}, expected only {device}.")


@check("fit", points=2)
def test_fit_ties_go_to_the_earliest(student, reference, device):
    """Two epochs share the best validation accuracy: the earlier one is the best epoch, and
    its weights are the ones the model ends with."""
    spec = fit_spec(device, seed=1560, epochs=6, lr=0.5)
    got, want = run_fit(student, spec), run_fit(reference, spec)
    compare_history(got["history"], want["history"], spec)
    compare_best(got, want, spec)
    compare_final_weights(got, want, spec)


@check("fit", points=1, kind="property")
def test_fit_moves_every_input_batch(student, device):
    spec = fit_spec(device, seed=1510, epochs=2, lr=0.1)
    got = run_fit(student, spec)
    expect(got["inputs_moved"] == got["inputs"],
           f"fit moved {got['inputs_moved']} of the {got['inputs']} input batches its loaders "
           f"yielded to the device ({device} here). A DataLoader yields CPU tensors: move every "
           "training and validation batch with x, y = x.to(device), y.to(device).")


@check("fit", points=1, kind="property")
def test_fit_runs_on_the_device(student, device):
    spec = fit_spec(device, seed=1520, epochs=2, lr=0.1)
    got = run_fit(student, spec)
    expect(got["model_device"] == device,
           f"after fit the model is on {got['model_device']}, expected {device}. Call "
           "model.to(device) at the start of fit (it moves the parameters in place, so the "
           "optimizer made before keeps working).")
    expect(got["forward_devices"] == [device],
           f"fit fed the model batches on {got['forward_devices']}, expected only {device}.")
