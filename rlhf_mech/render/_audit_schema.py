"""The JSON Schema of ``rlhf-mech audit --format json`` (``rlhf-mech schema --audit``).

Versioned with :data:`~rlhf_mech.render.AUDIT_SCHEMA_VERSION`: a change that removes or
retypes a field raises the version; new optional fields do not. Every object lists its
required keys; numbers that may be non-finite are ``null`` in the JSON.
"""

from __future__ import annotations

from typing import Any

NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
STRING_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }


_NUMBERS = {"type": "array", "items": NUMBER_OR_NULL}

#: ``--ci``: a sampled game's figures with their sampling error (render/_uncertainty.py).
UNCERTAINTY_SCHEMA = _object(
    {
        "level": {"type": "number"},
        "resamples": {"type": "integer"},
        "seed": {"type": "integer"},
        "interval": {"type": "string"},
        "design": {"type": "string"},
        "estimand": {"type": "string"},
        "bias_corrected": {"type": "boolean"},
        "prompts": {"type": "integer"},
        "samples": {"type": "integer"},
        "figures": {
            "type": "array",
            "items": _object(
                {
                    "profile": {"type": "string"},
                    "quantity": {"type": "string"},
                    "group": {"type": "string"},
                    "estimate": NUMBER_OR_NULL,
                    "se": NUMBER_OR_NULL,
                    "ci": {**_NUMBERS, "minItems": 2, "maxItems": 2},
                    "bias": NUMBER_OR_NULL,
                    "biased": {"type": "boolean"},
                    "verdict": {"type": "string"},
                },
                optional=("verdict",),
            ),
        },
        "diagnostics": _object(
            {
                "pooled_ess": NUMBER_OR_NULL,
                "pooled_relative_ess": NUMBER_OR_NULL,
                "pooled_top_share": NUMBER_OR_NULL,
                "min_prompt_ess": NUMBER_OR_NULL,
                "mean_prompt_ess": NUMBER_OR_NULL,
                "ess": _NUMBERS,
                "top_share": _NUMBERS,
                "ess_threshold": {"type": "number"},
                "top_share_threshold": {"type": "number"},
                "bias_threshold": {"type": "number"},
                "warn": {"type": "boolean"},
            }
        ),
        "theorem_4_12": {
            "type": "array",
            "items": _object(
                {
                    "group": {"type": "string"},
                    "size": {"type": "number"},
                    "eps": NUMBER_OR_NULL,
                    "bound": NUMBER_OR_NULL,
                }
            ),
        },
    },
    optional=("theorem_4_12",),
)


_VECTOR = {"type": ["array", "null"], "items": {"type": "number"}}

_MISREPORT = _object(
    {
        "gain": NUMBER_OR_NULL,
        "size": NUMBER_OR_NULL,
        "reward": _VECTOR,
        "found_by": {"type": "string"},
    }
)

_PROMPT_GAINS = _object(
    {
        "description": {"const": "the best gain found on each prompt (the terms of the whole game's)"},
        "weights": {"type": "array", "items": {"type": "number"}},
        "whole": {"type": "array", "items": NUMBER_OR_NULL},
        "at_true_size": {"type": "array", "items": NUMBER_OR_NULL},
    }
)
#: Added to layout 2 after its release (a game of many prompts only): optional, no new version.
_SEARCH_OPTIONAL = ("prompts",)

_SEARCH_FIELDS: dict[str, Any] = {
    "payment_rule": {"type": "string"},
    "max_gain": NUMBER_OR_NULL,
    "gain_is": {"enum": ["exact", "lower_bound"]},
    "best_misreport": _MISREPORT,
    "best_at_true_size": _MISREPORT,
    "evaluations": {"type": "integer", "minimum": 0},
    "min_payment": NUMBER_OR_NULL,
    "priced": {"type": "integer", "minimum": 0},
    "stalled": {"type": "integer", "minimum": 0},
    "converged": {"type": "boolean"},
    "status": {"type": "integer"},
    "message": {"type": "string"},
    "prompts": _PROMPT_GAINS,
}

_PREDICTION = _object(
    {"predicted": {"type": "boolean"}, "theorem": STRING_OR_NULL, "reason": {"type": "string"}}
)

_NOISY = _object(
    {
        "eps": {"type": "number"},
        "samples": {"type": "integer"},
        "bound": NUMBER_OR_NULL,
        "gain": NUMBER_OR_NULL,
        "stderr": NUMBER_OR_NULL,
        "max_sample_gain": NUMBER_OR_NULL,
        "search_gain": NUMBER_OR_NULL,
        "candidates": {"type": "integer"},
        "reward": _VECTOR,
    }
)

_REPORT = _object({"reward": _VECTOR, "size": {"type": "number"}})

_GROUP = _object(
    {
        "name": {"type": "string"},
        "size": {"type": "number"},
        "epsilon_ic": _object(
            {
                "value": NUMBER_OR_NULL,
                "profile": {"type": "integer", "minimum": 0},
                "others": {"type": "object", "additionalProperties": _REPORT},
            }
        ),
        "profile_gains": {"type": "array", "items": NUMBER_OR_NULL},
        "truthful": _object(
            {
                "valuation": NUMBER_OR_NULL,
                "group_valuation": NUMBER_OR_NULL,
                "payment": NUMBER_OR_NULL,
                "utility": NUMBER_OR_NULL,
            }
        ),
        "dsic": _object(_SEARCH_FIELDS, _SEARCH_OPTIONAL),
        "no_payment": _object({**_SEARCH_FIELDS, "prediction": _PREDICTION}, _SEARCH_OPTIONAL),
        "noisy": {"oneOf": [{"type": "null"}, _NOISY]},
        "counterexample": STRING_OR_NULL,
        "prompts": _object(
            {
                "description": {
                    "const": "the best gain found on each prompt (the terms of the whole game's)"
                },
                "weights": {"type": "array", "items": {"type": "number"}},
                "whole": {"type": "array", "items": NUMBER_OR_NULL},
                "at_true_size": {"type": "array", "items": NUMBER_OR_NULL},
            }
        ),
    },
    optional=("prompts",),  # a game of many prompts only
)

_LINE: dict[str, Any] = {"type": ["integer", "null"], "minimum": 1}

_FINDING = _object(
    {
        "check": {"type": "string"},
        "line": _LINE,
        "group": STRING_OR_NULL,
        "quantity": STRING_OR_NULL,
        "value": NUMBER_OR_NULL,
        "passed": {"type": "boolean"},
        "holds": {"type": "boolean"},
        "expected": {"type": ["boolean", "null"]},
        "statement": {"type": "string"},
        "detail": {"type": "string"},
    }
)

#: ``--types``: each group's audit over a set of true types (render/_audit.py ``_types_json``).
_TYPES = _object(
    {
        "set": {"type": "string", "description": "vertices, grid K, random N or user"},
        "groups": {
            "type": "array",
            "items": _object(
                {
                    "group": {"type": "string"},
                    "types": {"type": "integer", "minimum": 1},
                    "epsilon": NUMBER_OR_NULL,
                    "worst_type": _object({"parameters": _VECTOR, "size": NUMBER_OR_NULL}),
                    "best_misreport": _MISREPORT,
                    "replay": STRING_OR_NULL,
                }
            ),
        },
    }
)

_GAME = _object(
    {
        "source": STRING_OR_NULL,
        "part": {
            "type": "string",
            "description": "the part of the file (prompt k of a game of many prompts); empty: the whole",
        },
        "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
        "game": {"type": "string"},
        "passed": {"type": "boolean"},
        "epsilon_ic": _object({"value": NUMBER_OR_NULL, "group": {"type": "string"}}),
        "health": _object(
            {
                "max_kkt_residual": NUMBER_OR_NULL,
                "stalled_solves": {"type": "integer", "minimum": 0},
                "healthy": {"type": "boolean"},
            }
        ),
        "payment_rule": {"type": "string"},
        "training_rule": _object({"rule": {"type": "string"}, "parameters": {"type": "object"}}),
        "normalization": {"type": "string"},
        "divergence": _object({"kind": {"type": "string"}, "lambda": {"type": "number"}}),
        "outcomes": {"type": "integer", "minimum": 1},
        "search": _object(
            {
                "seed": {"type": "integer"},
                "budget": {"type": "integer"},
                "tol": {"type": "number"},
                "noise": NUMBER_OR_NULL,
                "samples": {"type": ["integer", "null"]},
                "others": {"type": "string"},
                "size_bound": {"type": "number"},
                "size_bound_source": {"type": "string"},
                "reward_bound": NUMBER_OR_NULL,
            }
        ),
        "truthful": _object({"social_welfare": NUMBER_OR_NULL, "asw": NUMBER_OR_NULL}),
        "groups": {"type": "array", "items": _GROUP},
        "findings": {"type": "array", "items": _FINDING},
        "notes": {"type": "array", "items": {"type": "string"}},
        "uncertainty": UNCERTAINTY_SCHEMA,
        "types": _TYPES,
    },
    optional=(
        "training_rule",
        "part",
        "uncertainty",
        "types",
    ),  # added to layout 1 after its release: optional, no new version
)

_INVALID = _object({"source": {"type": "string"}, "line": _LINE, "error": {"type": "string"}})


def audit_schema(version: int) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an audit's JSON of layout ``version``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://rlhf-mech.invalid/schemas/audit-{version}.json",
        "title": f"rlhf-mech audit, JSON layout {version}",
        **_object(
            {
                "schema_version": {"const": version},
                "games": {"type": "array", "items": {"oneOf": [_GAME, _INVALID]}},
                "summary": _object(
                    {
                        "games": {"type": "integer", "minimum": 0},
                        "groups": {"type": "integer", "minimum": 0},
                        "invalid": {"type": "integer", "minimum": 0},
                        "passed": {"type": "integer", "minimum": 0},
                        "failed": {"type": "integer", "minimum": 0},
                        "exit_code": {"enum": [0, 1, 2]},
                    }
                ),
            }
        ),
    }
