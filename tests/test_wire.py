"""The result channel carries plain data only, exactly, and rejects anything else."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autograder import wire


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.int64, torch.bool, torch.complex64])
def test_tensors_round_trip_exactly(dtype):
    t = (torch.arange(12, dtype=torch.float64).reshape(3, 4) - 5).to(dtype)
    back = wire.roundtrip(t)
    assert type(back) is torch.Tensor and back.dtype == dtype and back.shape == (3, 4)
    assert torch.equal(back, t)


def test_plain_containers_and_special_floats_round_trip():
    value = {"a": [1, 2.5, None, True, "x"], "b": (math.inf, -math.inf), "c": {"n": 3},
             "big": 2**70, "empty": torch.zeros(0, 3), "np": np.float32(1.5)}
    back = wire.roundtrip(value)
    assert back["a"] == [1, 2.5, None, True, "x"]
    assert back["b"] == (math.inf, -math.inf)
    assert back["c"] == {"n": 3} and back["big"] == float(2**70) and back["np"] == 1.5
    assert back["empty"].shape == (0, 3)
    assert math.isnan(wire.roundtrip(math.nan))


def test_numpy_arrays_and_scalars_round_trip_with_their_shape_and_value():
    for array in (np.arange(6.0).reshape(2, 3), np.array(0.5), np.zeros((0, 2), np.float32),
                  np.arange(8)[::2]):
        back = wire.roundtrip(array)
        assert type(back) is np.ndarray and back.shape == array.shape and back.dtype == array.dtype
        assert np.array_equal(back, array)
    class Liar(np.ndarray):  # an array subclass that lies about its shape
        shape = property(lambda self: (99,))

    back = wire.roundtrip(np.arange(3.0).view(Liar))
    assert type(back) is np.ndarray and back.shape == (3,) and back.tolist() == [0.0, 1.0, 2.0]
    # np.float64 is a float whose repr (NumPy 2) is "np.float64(nan)", not a float literal
    assert math.isnan(wire.roundtrip(np.float64("nan")))
    assert wire.roundtrip([np.float64("inf"), np.float64(-np.inf)]) == [math.inf, -math.inf]


def test_tensor_subclass_comes_back_as_a_plain_tensor():
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return torch.tensor(0.0)  # lies about every operation

    t = torch.tensor([1.0, 2.0]).as_subclass(Liar)
    back = wire.roundtrip(t)
    assert type(back) is torch.Tensor
    assert back.tolist() == [1.0, 2.0]


def test_objects_become_opaque_with_their_type_name():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    back = wire.roundtrip([AlwaysEqual(), torch.nn.Linear(2, 2)])
    assert back == [wire.Opaque("AlwaysEqual"), wire.Opaque("Linear")]
    assert back[0] != 1  # the lying __eq__ did not cross


@pytest.mark.parametrize("payload", [
    b"not json", b'{"__tensor__": {"dtype": "float32", "shape": [2], "data": "AAAA"}}',
    b'{"__pickle__": "gASVAAAA"}', b'{"a": 1, "b": 2}', b'{"__tensor__": {"dtype": "object"}}',
    b"\xff\xfe",
])
def test_malformed_messages_are_rejected(payload):
    with pytest.raises(wire.WireError):
        wire.decode(payload)


def test_size_limit_is_enforced():
    data = wire.encode(torch.zeros(1000))
    with pytest.raises(wire.WireError, match="exceeds the limit"):
        wire.decode(data, max_bytes=100)


def test_an_array_in_another_byte_order_arrives_with_its_values():
    got = wire.roundtrip(np.array([1.0, 2.5], dtype=">f8"))
    assert type(got) is np.ndarray and got.dtype == np.float64 and got.tolist() == [1.0, 2.5]


@pytest.mark.parametrize("array", [np.array([1, 2], dtype=np.uint16), np.array(["a", "b"]),
                                   np.array([None, 1], dtype=object)],
                         ids=["uint16", "strings", "objects"])
def test_an_array_the_wire_cannot_carry_arrives_as_opaque_naming_its_dtype(array):
    """Never a crash while decoding (the student would read an internal error)."""
    got = wire.roundtrip(array)
    assert isinstance(got, wire.Opaque) and str(array.dtype) in got.type_name
