"""assert_close, kind and show on NumPy arrays (the exercises of a6_numpy return them).

When the reference answers with an ``np.ndarray``, the student must too: a tensor, a list or a
number fails with what to return instead; an array is compared exactly as a tensor would be, with
the same messages (shape, how many values differ, the worst index, the dtype). Values are passed
through the wire first, as the grader sees them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder import wire
from autograder.compare import CheckFailed, assert_close, assert_equal, kind, show


def grading(value):
    """``value`` as it reaches a check from the sandbox."""
    return wire.roundtrip(value)


def message_of(got, want, **kwargs) -> str:
    with pytest.raises(CheckFailed) as caught:
        assert_close(grading(got), grading(want), what="sigmoid(a)", **kwargs)
    return str(caught.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_reference_answer_passes(dtype):
    want = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    assert_close(grading(want.copy()), grading(want), what="sigmoid(a)")


def test_an_array_computed_another_way_passes_within_the_dtypes_tolerance():
    a = np.random.default_rng(1).standard_normal(50) * 3
    want = 1 / (1 + np.exp(-a))
    assert_close(grading(0.5 * (1 + np.tanh(a / 2))), grading(want), what="sigmoid(a)")
    # float64 inside, float32 reference: compared with float32's tolerances
    assert_close(grading(want), grading(want.astype(np.float32)), what="sigmoid(a)")


def test_a_tensor_instead_of_an_array_fails_saying_to_return_an_ndarray():
    want = np.linspace(0.1, 0.9, 5)
    text = message_of(torch.from_numpy(want.copy()), want)
    assert text.startswith("sigmoid(a): returned a torch.Tensor (tensor (5,) float64 on cpu), "
                           "expected an np.ndarray of shape (5,) (float64).")
    assert "works on NumPy arrays" in text and "return an np.ndarray" in text


def test_a_list_or_a_number_instead_of_an_array_fails_with_what_to_return():
    want = np.linspace(0.1, 0.9, 3)
    text = message_of(want.tolist(), want)
    assert "returned a list of 3 items, expected an np.ndarray of shape (3,)" in text
    assert "np.asarray" in text
    assert "returned float, expected an np.ndarray of shape (3,) (float64)" in message_of(0.5, want)
    assert "Did you forget a return statement?" in message_of(None, want)


def test_a_wrong_shape_fails_with_both_shapes():
    want = np.zeros((4, 5))
    text = message_of(np.zeros((4, 1)), want, inputs={"a": np.ones((4, 5))})
    assert text.startswith("sigmoid(a): shape (4, 1), expected (4, 5).")
    assert "Input: a = np.ndarray (4, 5) float64, min 1, max 1." in text


def test_wrong_values_fail_with_the_count_and_the_worst_index():
    want = np.arange(12, dtype=np.float64).reshape(3, 4)
    got = want.copy()
    got[2, 1] += 0.5
    got[0, 3] += 0.01
    text = message_of(got, want, hint="Exponentiate only numbers <= 0.")
    assert ("2 of 12 values differ (max abs diff 0.5, tolerance 1e-08 + 1e-06*|expected|; worst: "
            "expected 9, got 9.5 at index (2, 1)); shape (3, 4), float64.") in text
    assert text.endswith(" Exponentiate only numbers <= 0.")


def test_nan_where_a_number_was_expected_is_counted():
    want = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    text = message_of(np.array([0.0, np.nan, 0.5], dtype=np.float32), want)
    assert "expected 1, got nan at index (1,)" in text and "1 NaN where a number was expected" in text
    assert "float32" in text


def test_an_array_of_no_numbers_fails_and_a_bad_reference_is_the_authors_error():
    want = np.zeros(2)
    with pytest.raises(CheckFailed, match="returned an np.ndarray of dtype object"):
        assert_close(np.array([None, 1], dtype=object), want, what="sigmoid(a)")
    with pytest.raises(TypeError, match="cannot compare a reference array of dtype object"):
        assert_close(want, np.array([None, 1], dtype=object), what="sigmoid(a)")


def test_an_array_where_a_tensor_was_expected_says_to_return_a_tensor():
    with pytest.raises(CheckFailed) as caught:
        assert_close(np.zeros(3), torch.zeros(3), what="softmax(z)")
    assert str(caught.value).startswith("softmax(z): returned np.ndarray (3,) float64, expected "
                                        "tensor (3,) float32 on cpu. This exercise works on torch "
                                        "tensors: return a torch.Tensor")


def test_kind_and_show_describe_arrays():
    assert kind(np.zeros((2, 3), dtype=np.float32)) == "np.ndarray (2, 3) float32"
    assert kind(np.float64(1.5)) == "np.float64"
    assert show(np.array([0.25, 0.5])) == "[0.25, 0.5] (np.ndarray (2,) float64)"
    assert show(np.array(0.75)) == "0.75 (np.ndarray () float64)"
    assert show(np.linspace(-2, 3, 40)) == "np.ndarray (40,) float64, min -2, max 3"
    assert show(np.array(["a"])) == "np.ndarray (1,) <U1"
    assert kind(torch.zeros(2)) == "tensor (2,) float32 on cpu"  # tensors as before


@pytest.mark.parametrize("got", [np.array(0.25), np.float32(0.25), np.float64(0.25), 0.25],
                         ids=["0-d array", "np.float32", "np.float64", "float"])
@pytest.mark.parametrize("want", [np.array(0.25), np.float64(0.25), 0.25],
                         ids=["0-d array", "np.float64", "float"])
def test_a_number_may_come_back_as_any_kind_of_number(got, want):
    """NumPy code returns np.float32, np.float64 or a 0-d array where Python returns a float:
    all the same answer (a false negative otherwise), and a wrong value still fails."""
    assert_close(got, want, what="db")
    with pytest.raises(CheckFailed, match="expected 0.5, got 0.25"):
        assert_close(got, want * 2, what="db")


def test_a_tensor_exercise_still_wants_a_tensor_not_a_numpy_number():
    with pytest.raises(CheckFailed, match="works on torch tensors"):
        assert_close(np.array(0.5), torch.tensor(0.5), what="loss")
    with pytest.raises(CheckFailed, match="returned bool"):
        assert_close(True, 1.0, what="flag")


def test_assert_equal_compares_arrays_instead_of_raising():
    assert_equal(np.array([1, 2]), np.array([1, 2]), what="labels")
    assert_equal(np.int64(3), 3, what="count")
    assert_equal(np.array(3), 3, what="count")
    for got in (np.array([1, 3]), np.array([[1, 2]]), [1, 2]):
        with pytest.raises(CheckFailed, match="labels: got"):
            assert_equal(got, np.array([1, 2]), what="labels")
    with pytest.raises(CheckFailed, match="count: got"):
        assert_equal(np.array([3, 3]), 3, what="count")
