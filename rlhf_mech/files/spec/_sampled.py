"""``sampled:``: the mark of a game whose outcomes are samples of the initial policy.

A game built from samples (a trainer's completions per prompt, a file of responses) is the
*empirical* mechanism: its ``pi_init`` is the sample frequencies ``counts / N`` and its
figures are plug-in estimates of the service's (docs/uncertainty.md). The mark is one small
record, on a core game's top level or on each prompt of a game of many prompts::

    sampled: true                  # every outcome drawn once (pi_init uniform)
    sampled: {counts: [3, 1, 1]}   # outcome j drawn counts[j] times (pi_init = counts / N)

With ``counts`` the initial distribution is the frequencies; an ``initial:`` written beside
them must agree within 1e-9.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlhf_mech.core._internal import NORMALIZATION_TOL
from rlhf_mech.files.spec._document import ArrayLoader, Document, Path_, shown, vector
from rlhf_mech.files.spec._schemas import FILE_REFERENCE, MAX_OUTCOMES

#: Largest count of one outcome (2^53: counts stay exact in float64).
MAX_COUNT = 1 << 53

SAMPLED_SCHEMA: dict[str, Any] = {
    "description": "the outcomes are samples of the initial policy: true (each drawn once) or "
    "{counts: [...]} (how often each was drawn; pi_init = counts / N)",
    "anyOf": [
        {"type": "boolean"},
        {
            "type": "object",
            "properties": {
                "counts": {
                    "anyOf": [
                        {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
                            "minItems": 1,
                            "maxItems": MAX_OUTCOMES,
                        },
                        FILE_REFERENCE,
                    ]
                }
            },
            "required": ["counts"],
            "additionalProperties": False,
        },
    ],
}


def sample_counts(
    doc: Document,
    arrays: ArrayLoader,
    value: Any,
    path: Path_,
    outcomes: tuple[str, ...],
) -> np.ndarray | None:
    """``sampled:`` at ``path`` -> (m,) int64 counts (``true``: ones), or ``None`` (absent or
    ``false``)."""
    if value is None or value is False:
        return None
    if value is True:
        return np.ones(len(outcomes), dtype=np.int64)
    if not isinstance(value, dict) or set(value) != {"counts"}:
        raise doc.error(path, "expected true, false or {counts: [...]}")
    counts = vector(doc, arrays, value["counts"], (*path, "counts"), outcomes)
    bad = np.flatnonzero((counts < 1) | (counts > MAX_COUNT) | (counts != np.round(counts)))
    if bad.size:
        j = int(bad[0])
        raise doc.error(
            (*path, "counts", j),
            f"count of {shown(outcomes[j])} is {float(counts[j])!r}; a count is an integer >= 1",
        )
    return counts.astype(np.int64)


def sampled_initial(
    doc: Document, counts: np.ndarray, pi_init: np.ndarray, given: bool, path: Path_
) -> np.ndarray:
    """The initial distribution of a sampled game: ``counts / N``; an ``initial:`` written in
    the file (``given``) must be that within 1e-9."""
    frequencies = counts / counts.sum()
    if given and np.max(np.abs(pi_init - frequencies)) > NORMALIZATION_TOL:
        j = int(np.argmax(np.abs(pi_init - frequencies)))
        raise doc.error(
            path,
            f"initial probability {pi_init[j]!r} of outcome {j} is not its sample frequency "
            f"{frequencies[j]!r} (sampled: counts / N); omit initial or write the frequencies",
        )
    return frequencies
