"""The limits of a game file and the JSON Schema of the fields the loader reads itself.

Fields whose meaning depends on other fields (a reward vector's length is the number of
outcomes; its keys are outcome names) are read by the loader's own code; their JSON Schema
is written here, next to the limits both the schema and the loader use, so that
``rlhf-mech schema`` is as strict as the loader wherever a schema can say it. What no JSON
Schema can express is listed in :data:`LOADER_ONLY`.
"""

from __future__ import annotations

from typing import Any

from rlhf_mech.errors import UNPRINTABLE_RANGE

#: Most outcomes a game may have (``outcomes: 100000000`` would allocate gigabytes of names).
MAX_OUTCOMES = 10_000_000
#: Largest group size and ``max_size``: with rewards in [0, 1] every score any report can
#: produce stays many orders of magnitude inside the float range.
SIZE_LIMIT = 1e12
#: The range of lambda the solvers are checked over (tests/test_numerics.py): below it the
#: scores divided by lambda leave the float range for games within :data:`SIZE_LIMIT`;
#: above it every payment is below the rounding of the values it is a difference of.
LAMBDA_MIN = 1e-100
LAMBDA_MAX = 1e100
#: Largest magnitude of a candidate model's score or a preference weight.
SCORE_LIMIT = 1e100

#: What only the loader checks (the schema cannot relate one field to another).
LOADER_ONLY = (
    "vector lengths equal the number of outcomes; mapping keys are the outcome names",
    "rewards satisfy the normalisation (sum or max 1, within 1e-9); initial sums to 1",
    "sizes and reported sizes at most max_size",
    "group, outcome, candidate and reward-model names unique; expect: names known groups",
    "array files exist, lie inside the game file's folder and hold finite numbers",
    "no NaN (JSON has none; YAML's .nan passes a schema's bounds)",
    "no key twice in one mapping (a YAML parser keeps the last)",
    "scores and preferences name only declared reward models",
    "payment parameters that name outcomes (checkpoints:) name the game's own",
)

_FLOAT_MAX = 1.7976931348623157e308
FINITE_NUMBER: dict[str, Any] = {"type": "number", "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}
_NON_NEGATIVE: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": _FLOAT_MAX}
_POSITIVE: dict[str, Any] = {"type": "number", "minimum": 2.2250738585072014e-308, "maximum": 1}

FILE_REFERENCE: dict[str, Any] = {
    "type": "object",
    "description": "an array in a .npy or .csv file beside the game file; row: k picks row k of a 2-D one",
    "properties": {
        "file": {"type": "string", "minLength": 1, "pattern": r"\.(npy|csv)$"},
        "row": {"type": "integer", "minimum": 0},
    },
    "required": ["file"],
    "additionalProperties": False,
}


def _vector(item: dict[str, Any], what: str) -> dict[str, Any]:
    """A list of numbers, an {outcome: number} mapping or a file reference."""
    return {
        "description": f"{what}: a list (one per outcome), an {{outcome: value}} mapping or {{file: ...}}",
        "anyOf": [
            {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_OUTCOMES},
            {
                "type": "object",
                "not": {"required": ["file"]},
                "additionalProperties": item,
                "minProperties": 1,
            },
            FILE_REFERENCE,
        ],
    }


#: Names: not empty, no control characters (C0, DEL, C1) and none of the Unicode format and
#: separator characters that reorder or break a line (bidi overrides, U+2028/2029): nothing
#: :func:`rlhf_mech.errors.printable` would escape, as names are printed as they are.
NAME_PATTERN = f"^[^{UNPRINTABLE_RANGE}]+$"
#: Longest name (of a game, group, outcome, reward model, candidate), as prompts are capped at
#: 1 MiB: names are printed in every table and message, and a 10-million-character group name
#: kept the table renderer busy for minutes (issue 23).
MAX_NAME_CHARS = 1024
NAME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_CHARS,
    "pattern": NAME_PATTERN,
}
REWARD_SCHEMA = _vector(_NON_NEGATIVE, "rm_i, rewards >= 0")
INITIAL_SCHEMA: dict[str, Any] = {
    "anyOf": [{"const": "uniform"}, *_vector(_POSITIVE, "pi_init, probabilities > 0 summing to 1")["anyOf"]],
    "description": "pi_init: uniform (default), a list, an {outcome: p} mapping or {file: ...}",
}
OUTCOMES_SCHEMA: dict[str, Any] = {
    "description": "outcome names, or their number m (names x0..x{m-1})",
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_OUTCOMES},
        {"type": "array", "items": NAME_SCHEMA, "minItems": 1, "maxItems": MAX_OUTCOMES, "uniqueItems": True},
    ],
}
LAMBDA_SCHEMA: dict[str, Any] = {
    "type": "number",
    "minimum": LAMBDA_MIN,
    "maximum": LAMBDA_MAX,
    "default": 1.0,
    "description": f"the weight of the divergence, in [{LAMBDA_MIN:g}, {LAMBDA_MAX:g}]",
}
