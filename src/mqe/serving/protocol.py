"""The policy server's wire format: arrays in JSON, checked against the model's inputs.

An array travels as ``{"shape": [...], "dtype": "uint8" | "float32", "data": BASE64}`` (the raw
C-order bytes; exact, and a 64x64x3 frame is 16 KB of base64 instead of ~50 KB of JSON numbers) or as
plain nested JSON lists of numbers. Both name one input (``observation`` or ``goal``) of shape ``S``, the
model's observation shape, or a batch ``(N, *S)``.

Clients encode with ``mqe.serving.client.encode_array`` (the robot side's file stands alone).

Every check raises ``RequestError`` naming the field and what was expected, so that the server answers a
malformed request with a 400 and a sentence, and stays up.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np


WIRE_DTYPES = ("uint8", "float32")
MAX_RANK = 8  # dimensions of a decoded array (a batch of images is 4)
MAX_ELEMENTS = 2**28  # values in one decoded array (256 M: far beyond any batch a policy call takes)


class RequestError(ValueError):
    """A request the model cannot take; ``field`` is the request field it is about."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def decode_array(value: Any, field: str) -> np.ndarray:
    """The wire form or nested lists -> a numpy array (uint8 or float32 as sent; lists as float64)."""
    if isinstance(value, dict):
        missing = [k for k in ("shape", "dtype", "data") if k not in value]
        if missing:
            raise RequestError(field, f"an encoded array needs keys shape, dtype, data; missing {', '.join(missing)}")
        shape, dtype, data = value["shape"], value["dtype"], value["data"]
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                 for d in shape)):
            raise RequestError(field, f"shape must be a list of non-negative integers, got {_short(shape)}")
        _check_extent(field, shape)
        if dtype not in WIRE_DTYPES:
            raise RequestError(field, f"dtype must be one of {', '.join(WIRE_DTYPES)}, got {dtype!r}")
        if not isinstance(data, str):
            raise RequestError(field, "data must be a base64 string")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(field, "data is not valid base64") from None
        expected = math.prod(shape) * np.dtype(dtype).itemsize  # Python ints: a huge shape cannot wrap around
        if len(raw) != expected:
            raise RequestError(field, f"data holds {len(raw)} bytes; shape {shape} of {dtype} needs {expected}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    if isinstance(value, list):
        shape = _list_shape(value, field)
        _check_extent(field, shape)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise RequestError(field, "a list must hold numbers only (integers within float range), nested to a "
                                      "regular (rectangular) shape") from None
        return array
    raise RequestError(field, f"expected an encoded array {{shape, dtype, data}} or nested lists of numbers, "
                              f"got {type(value).__name__}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_extent(field: str, shape: list[int]) -> None:
    """A declared or nested shape is refused before anything is allocated: at most ``MAX_RANK`` dimensions and
    ``MAX_ELEMENTS`` values (Python integers: a huge shape cannot wrap around)."""
    if len(shape) > MAX_RANK:
        raise RequestError(field, f"{len(shape)} dimensions; expected at most {MAX_RANK}")
    # The nonzero dimensions too: numpy refuses a shape whose nonzero extents overflow even when one is 0.
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise RequestError(field, f"shape {_short(shape)} holds more than {MAX_ELEMENTS} values")


def _list_shape(value: list, field: str) -> list[int]:
    """The shape of nested lists whose leaves are numbers (``int`` or ``float``, never ``bool`` or ``str``),
    checked level by level; a ragged nesting or another leaf type is a ``RequestError``."""
    shape, level = [], [value]
    while level and isinstance(level[0], list):
        if len(shape) >= MAX_RANK:
            raise RequestError(field, f"lists nested deeper than {MAX_RANK} levels")
        width = len(level[0])
        if any(not isinstance(item, list) or len(item) != width for item in level):
            raise RequestError(field, "a list must hold numbers only, nested to a regular (rectangular) shape")
        shape.append(width)
        if math.prod(shape) > MAX_ELEMENTS:
            raise RequestError(field, f"more than {MAX_ELEMENTS} values")
        level = [inner for item in level for inner in item]
    if any(isinstance(leaf, bool) or not isinstance(leaf, (int, float)) for leaf in level):
        raise RequestError(field, "list values must be numbers (not strings, booleans or null)")
    return shape


def model_rows(array: np.ndarray, field: str, observation_shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """A decoded input -> (N, *observation_shape) rows of the model's dtype (``uint8`` frames or ``float32``).

    Frames stay uint8 end to end: an encoded float array for a frame model is refused (a silent cast would
    hide a client that normalised its images), and list values must be whole numbers in [0, 255]. Float
    models take either wire dtype or lists; every value must be finite."""
    shape = tuple(observation_shape)
    if array.shape == shape:
        array = array[None]
    if array.ndim != len(shape) + 1 or array.shape[1:] != shape or array.shape[0] == 0:
        raise RequestError(field, f"expected shape {shape} or (N, {', '.join(map(str, shape))}) with N >= 1, "
                                  f"got {tuple(array.shape)}")
    if array.dtype != np.uint8 and not np.isfinite(array).all():
        raise RequestError(field, "values must be finite (found NaN or infinity)")
    if dtype == "uint8":
        if array.dtype == np.uint8:
            return array
        if array.dtype == np.float32:
            raise RequestError(field, "this model takes uint8 frames; got float32 (send the camera's uint8 "
                                      "pixels, not normalised ones)")
        if (array < 0).any() or (array > 255).any() or (array != np.round(array)).any():
            raise RequestError(field, "this model takes uint8 frames: list values must be whole numbers in [0, 255]")
        return array.astype(np.uint8)
    return array.astype(np.float32)
