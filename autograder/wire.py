"""Encode and decode the plain data that crosses the sandbox boundary.

Only JSON comes back from the sandbox: no pickle, no ``torch.load`` of anything the student made.
Tensors travel as dtype, shape, device and their raw bytes in base64, and are rebuilt here as plain
``torch.Tensor`` objects, so a subclass or an object with a lying ``__eq__`` gains nothing.
Anything else the student returns is replaced by an :class:`Opaque` naming its type.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

MAX_DEPTH = 32

_DTYPES: dict[str, torch.dtype] = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float16, torch.bfloat16, torch.float32, torch.float64,
        torch.complex64, torch.complex128,
        torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool,
    )
}


class WireError(ValueError):
    """Raised when a message is malformed or too large."""


@dataclass(frozen=True)
class Opaque:
    """Stands in for a value that cannot cross the boundary (a model, a generator, ...)."""

    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


def _plain(t: torch.Tensor) -> torch.Tensor:
    """Return ``t`` as a plain CPU tensor, bypassing any ``__torch_function__`` override."""
    with torch._C.DisableTorchFunctionSubclass():
        return torch.Tensor.contiguous(torch.Tensor.to(torch.Tensor.detach(t), "cpu"))


def _tensor_bytes(plain: torch.Tensor) -> bytes:
    if plain.dtype == torch.bfloat16:
        plain = plain.view(torch.int16)
    return bytes(plain.numpy().tobytes())


def _encode(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return {"__opaque__": "deeply nested value"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else {"__float__": repr(float(value))}
    if isinstance(value, float):  # np.float64 too: repr(float(...)), not "np.float64(nan)"
        return value if math.isfinite(value) else {"__float__": repr(float(value))}
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            device = torch.Tensor.device.__get__(value).type
        plain = _plain(value)
        dtype = str(plain.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            return {"__opaque__": f"tensor of dtype {dtype}"}
        return {"__tensor__": {
            "dtype": dtype,
            "shape": list(plain.shape),
            "device": device,
            "data": base64.b64encode(_tensor_bytes(plain)).decode("ascii"),
        }}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _encode(value.item(), depth)
    if isinstance(value, np.ndarray):
        unsupported = {"__opaque__": f"np.ndarray of dtype {value.dtype}"}
        if value.dtype.kind not in "biufc":  # objects, strings, dates: not numbers
            return unsupported
        # a C-ordered plain copy of the data in native byte order: unlike np.ascontiguousarray
        # it keeps a 0-d array 0-d, and it reads the shape from the data, not from a subclass's
        try:
            contiguous = np.array(value, order="C", dtype=value.dtype.newbyteorder("="))
            encoded = _encode(torch.from_numpy(contiguous), depth + 1)
        except (TypeError, ValueError):
            return unsupported
        return unsupported if "__opaque__" in encoded else {"__ndarray__": encoded}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, depth + 1) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, depth + 1) for k, v in value.items()}}
    if isinstance(value, BaseException):
        return {"__opaque__": f"exception {type(value).__name__}"}
    if isinstance(value, Opaque):
        return {"__opaque__": value.type_name}
    return {"__opaque__": type(value).__name__}


def encode(value: Any) -> bytes:
    """Return ``value`` as JSON bytes; unsupported objects become :class:`Opaque`."""
    return json.dumps(_encode(value, 0), allow_nan=False).encode("utf-8")


def _decode_tensor(spec: Any, *, restore_device: bool) -> torch.Tensor:
    if not isinstance(spec, dict):
        raise WireError("tensor spec is not an object")
    dtype = _DTYPES.get(spec.get("dtype"))  # type: ignore[arg-type]
    shape = spec.get("shape")
    if dtype is None or not isinstance(shape, list) or not all(
        isinstance(n, int) and n >= 0 for n in shape
    ):
        raise WireError(f"bad tensor spec: dtype={spec.get('dtype')!r} shape={shape!r}")
    raw = base64.b64decode(spec.get("data", ""), validate=True)
    storage_dtype = torch.int16 if dtype == torch.bfloat16 else dtype
    numel = math.prod(shape)
    itemsize = torch.empty((), dtype=storage_dtype).element_size()
    if len(raw) != numel * itemsize:
        raise WireError(f"tensor data has {len(raw)} bytes, expected {numel * itemsize}")
    flat = (
        torch.frombuffer(bytearray(raw), dtype=storage_dtype)
        if raw
        else torch.empty(0, dtype=storage_dtype)
    )
    tensor = flat.clone().reshape(shape)
    if dtype == torch.bfloat16:
        tensor = tensor.view(torch.bfloat16)
    device = spec.get("device", "cpu")
    if restore_device and device == "cuda" and torch.cuda.is_available():
        tensor = tensor.to("cuda")
    return tensor


def _decode(value: Any, depth: int, restore_device: bool) -> Any:
    if depth > MAX_DEPTH + 2:
        raise WireError("message nested too deeply")
    if isinstance(value, list):
        return [_decode(v, depth + 1, restore_device) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise WireError(f"malformed object with keys {sorted(value)[:5]}")
    (tag, body), = value.items()
    if tag == "__tensor__":
        return _decode_tensor(body, restore_device=restore_device)
    if tag == "__ndarray__":
        return _decode(body, depth + 1, restore_device).numpy()
    if tag == "__tuple__" and isinstance(body, list):
        return tuple(_decode(v, depth + 1, restore_device) for v in body)
    if tag == "__dict__" and isinstance(body, dict):
        return {str(k): _decode(v, depth + 1, restore_device) for k, v in body.items()}
    if tag == "__float__" and isinstance(body, str):
        return float(body)
    if tag == "__opaque__" and isinstance(body, str):
        return Opaque(body[:200])
    raise WireError(f"unknown tag {tag!r}")


def decode(data: bytes, *, max_bytes: int | None = None, restore_device: bool = True) -> Any:
    """Rebuild a value from :func:`encode` output, refusing anything but plain data."""
    if max_bytes is not None and len(data) > max_bytes:
        raise WireError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not valid JSON: {exc}") from None
    return _decode(parsed, 0, restore_device)


def roundtrip(value: Any) -> Any:
    """Return ``value`` as it would look after crossing the boundary."""
    return decode(encode(value))
