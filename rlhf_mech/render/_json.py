"""JSON text of every ``--format json``: indented, arrays on one line, written as a stream.

The structure (objects, lists of objects) is indented by two spaces; a list of scalars or a
numpy array is written on one line, so that a million-entry distribution is one line that
the C encoders write at memory speed. Floats are written in one format whichever encoder
runs: the shortest text that reads back as the same float (Python's ``repr`` digits), with
an exponent below ``1e-5`` and from ``1e16`` on, the exponent without leading zeros
(``1e-7``, ``1.5e+16``) -- the format of orjson, which writes arrays when it is installed
(the ``fast`` extra); without it the standard library writes the same bytes, only slower.
Non-finite floats become ``null``. The output is the same bytes for the same data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np

from rlhf_mech.errors import has_unprintable, printable_json

try:  # pragma: no cover - which branch runs depends on the environment
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

#: Items of a list written per chunk by the standard-library path (bounded memory).
_CHUNK = 1 << 16

_encoder = json.JSONEncoder(ensure_ascii=False).encode


def _encode_string(text: str) -> str:
    """A JSON string, non-ASCII kept, printable (a prompt from a log may hold a bidi override)."""
    return printable_json(_encoder(text))


def float_text(x: float) -> str:
    """One float as this module writes it (orjson's format; ``null`` when not finite)."""
    if not math.isfinite(x):
        return "null"
    text = repr(float(x))
    mantissa, e, exponent = text.partition("e")
    if not e:
        return text
    power = int(exponent)
    if power == -5:  # orjson writes 1e-05 positionally: 0.00001
        digits = mantissa.lstrip("-").replace(".", "")
        return ("-" if text.startswith("-") else "") + "0.0000" + digits
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


#: The types written as JSON scalars (numpy scalars too, see :func:`_is_scalar_type`).
_SCALARS = (str, bool, int, float, type(None))


def _is_scalar_type(kind: type) -> bool:
    return issubclass(kind, _SCALARS) or issubclass(kind, np.generic)


def _is_scalar(value: Any) -> bool:
    return _is_scalar_type(type(value))


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return float_text(float(value))
    if isinstance(value, str):
        return _encode_string(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _array_chunks(values: np.ndarray, fast: bool) -> Iterator[str | bytes]:
    """A 1-D array of numbers as one JSON line, in pieces (orjson when ``fast`` and installed;
    else the standard library's C encoder, its float text rewritten to orjson's format)."""
    if values.dtype.kind in "iub":
        values = values.astype(np.int64 if values.dtype.kind != "b" else bool)
    else:
        values = np.ascontiguousarray(values, dtype=np.float64)
    if fast and orjson is not None:
        yield orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
        return
    if values.dtype.kind != "f":
        yield json.dumps(values.tolist(), separators=(",", ":"))
        return
    yield "["
    for start in range(0, values.size, _CHUNK):
        yield ("," if start else "") + _orjson_floats(values[start : start + _CHUNK])
    yield "]"


def _orjson_floats(values: np.ndarray) -> str:
    """Floats as orjson writes them, by the standard library's C encoder: its text (Python's
    ``repr``) differs only in zero-padded negative exponents (``1e-07``), exponents of -5
    (orjson: ``0.00001``) and NaN/Infinity (``null``), each fixed on the whole text."""
    text = json.dumps(values.tolist(), separators=(",", ":"))[1:-1].replace("e-0", "e-")
    if "N" in text or "I" in text:
        text = text.replace("-Infinity", "null").replace("Infinity", "null").replace("NaN", "null")
    if "e-5," in text or text.endswith("e-5"):
        text = ",".join(float_text(float(t)) if t.endswith("e-5") else t for t in text.split(","))
    return text


def _scalar_list(values: list[Any], kinds: set[type], fast: bool) -> Iterator[str | bytes]:
    """A list of scalars on one line; ``kinds`` are the types of its items."""
    if values and kinds == {str} and any(map(has_unprintable, values)):
        yield "[" + ",".join(map(_encode_string, values)) + "]"
    elif values and kinds == {str}:
        if fast and orjson is not None:
            yield orjson.dumps(values)
        else:
            yield json.dumps(values, ensure_ascii=False, separators=(",", ":"))  # C speed
    elif values and kinds == {float}:
        yield from _array_chunks(np.asarray(values, dtype=np.float64), fast)
    else:
        yield "[" + ",".join(_scalar(v) for v in values) + "]"


def _chunks(value: Any, indent: str, fast: bool) -> Iterator[str | bytes]:
    if isinstance(value, np.ndarray):
        if value.ndim == 1:
            yield from _array_chunks(value, fast)
        else:
            yield from _chunks(list(value), indent, fast)
    elif _is_scalar(value):
        yield _scalar(value)
    elif isinstance(value, Mapping):
        if not value:
            yield "{}"
            return
        inner = indent + "  "
        yield "{"
        for k, (key, item) in enumerate(value.items()):
            yield ("," if k else "") + "\n" + inner + _encode_string(str(key)) + ": "
            yield from _chunks(item, inner, fast)
        yield "\n" + indent + "}"
    elif isinstance(value, list | tuple):
        items = list(value)
        kinds = set(map(type, items))  # one C-speed pass, even over a million names
        if all(_is_scalar_type(kind) for kind in kinds):
            yield from _scalar_list(items, kinds, fast)
            return
        inner = indent + "  "
        yield "["
        for k, item in enumerate(items):
            yield ("," if k else "") + "\n" + inner
            yield from _chunks(item, inner, fast)
        yield "\n" + indent + "]"
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def json_chunks(data: Any, fast: bool = True) -> Iterator[bytes]:
    """``data`` (dicts, lists, scalars, 1-D numpy arrays) as UTF-8 JSON text, in pieces,
    ending with a newline. ``fast=False`` writes with the standard library even where
    orjson is installed (the same bytes, slower)."""
    for chunk in _chunks(data, "", fast):
        yield chunk if isinstance(chunk, bytes) else chunk.encode("utf-8")
    yield b"\n"


def json_text(data: Any, fast: bool = True) -> str:
    """:func:`json_chunks` as one string."""
    return b"".join(json_chunks(data, fast)).decode("utf-8")


def write_json(data: Any, stream: IO[bytes]) -> None:
    """Stream :func:`json_chunks` to a binary file (standard output)."""
    for chunk in json_chunks(data):
        stream.write(chunk)
