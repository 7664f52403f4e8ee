"""The JSON text of every ``--format json`` (``rlhf_mech.render.json_chunks``), issue 15.

Indented structure, arrays on one line, floats in one format whichever encoder runs: orjson
(the ``fast`` extra) and the standard-library fallback write the same bytes; the text reads
back as the same numbers.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rlhf_mech.render._internal import float_text, json_chunks, json_text


def _floats(rng: np.random.Generator) -> np.ndarray:
    """Floats of every magnitude (subnormals to 1e308), signs, zeros and round numbers."""
    magnitudes = 10.0 ** rng.integers(-320, 300, 20_000).astype(float)
    values = np.concatenate(
        [
            rng.random(20_000) * magnitudes,
            -rng.random(2_000),
            10.0 ** np.arange(-20, 25),
            [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 1e-5, 1.5e-5],
        ]
    )
    return values[np.isfinite(values)]


def test_floats_read_back_exactly(rng) -> None:
    values = _floats(rng)
    assert json.loads(json_text(values)) == values.tolist()


def test_float_format_is_repr_with_the_exponent_written_as_orjson_does() -> None:
    cases = {
        0.1: "0.1",
        1e-4: "0.0001",
        1e-5: "0.00001",
        -1.5e-5: "-0.000015",
        1e-6: "1e-6",
        1.5e-7: "1.5e-7",
        1e16: "1e+16",
        123.0: "123.0",
        5e-324: "5e-324",
        math.inf: "null",
        math.nan: "null",
    }
    assert {x: float_text(x) for x in cases} == cases


def test_the_fallback_writes_the_bytes_orjson_writes(rng) -> None:
    pytest.importorskip("orjson")
    values = _floats(rng)
    names = ["a", "é", 'quote " and \\ backslash', "tab\t", "\x01\x1f\x7f", "\u2028", "日本", "😀"]
    data = {"distribution": values, "names": names, "x": 1e-5, "n": 3, "ok": True, "none": None}
    assert json_text(data, fast=False) == json_text(data, fast=True)


def test_structure_is_indented_and_arrays_are_one_line() -> None:
    data = {"game": "g", "profiles": [{"distribution": np.array([0.25, 0.75]), "groups": []}], "empty": {}}
    assert json_text(data) == (
        '{\n  "game": "g",\n  "profiles": [\n    {\n      "distribution": [0.25,0.75],\n'
        '      "groups": []\n    }\n  ],\n  "empty": {}\n}\n'
    )


def test_non_finite_values_are_null_and_numpy_scalars_are_plain() -> None:
    data = {"a": np.float64(np.nan), "b": np.int64(7), "c": np.bool_(True), "d": [np.inf, 1.0]}
    assert json.loads(json_text(data)) == {"a": None, "b": 7, "c": True, "d": [None, 1.0]}


@pytest.mark.slow
def test_a_million_entries_stream_in_pieces() -> None:
    values = np.linspace(0.0, 1.0, 1_000_000)
    chunks = list(json_chunks({"distribution": values}))
    assert len(chunks) >= 3  # the key, the array, the end
    assert json.loads(b"".join(chunks))["distribution"][-1] == 1.0


def test_unknown_types_are_an_error() -> None:
    with pytest.raises(TypeError, match="cannot write object as JSON"):
        json_text({"x": object()})
