"""Game files (YAML): file -> validated spec -> :class:`~rlhf_mech.core.Game`, and their schema.

Two formats share one loader: core games (outcomes, reward vectors per group; README.md) and
candidate-model games (a ``candidates:`` list; docs/candidates.md). This package is the only
place that knows YAML and pydantic.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlhf_mech.core import Game, PromptGame
from rlhf_mech.errors import SpecError
from rlhf_mech.files._arrays import regular_file
from rlhf_mech.files.spec._candidates import CandidateGameSpec, candidate_game_from_spec
from rlhf_mech.files.spec._core import GameSpec, core_game
from rlhf_mech.files.spec._document import Document, source_lines
from rlhf_mech.files.spec._prompts import PromptGameSpec, PromptTableGameSpec, prompt_game
from rlhf_mech.files.spec._schemas import LOADER_ONLY
from rlhf_mech.files.spec._validation import validated

#: The name a game read from standard input goes by in messages (``rlhf-mech solve -``).
STDIN_NAME = "<stdin>"
#: Largest game file read (arrays this big belong in .npy files beside it).
MAX_FILE_BYTES = 64 << 20
_TOO_LARGE = f"larger than {MAX_FILE_BYTES >> 20} MiB (put big arrays in .npy files)"


def load_game(
    path: str | Path, text: str | bytes | None = None, *, allow_outside_refs: bool = False
) -> Game | PromptGame:
    """Read and validate a game file (any format: core, candidate-model, many prompts).

    Parameters
    ----------
    path : the YAML file (a regular file of at most :data:`MAX_FILE_BYTES`); with ``text``,
        the name the text goes by in messages (array files are then found relative to the
        current directory when ``path`` has no directory part, as for :data:`STDIN_NAME`).
    text : the file's content when it was read elsewhere (standard input): its bytes (UTF-8)
        or its text, at most :data:`MAX_FILE_BYTES` bytes either way.
    allow_outside_refs : let ``{file: ...}`` references leave the game file's folder tree
        (absolute paths, ``..``, symlinks pointing out). Off by default: a game file from a
        pull request reads only what lies beside it.

    Returns
    -------
    The game (a :class:`~rlhf_mech.core.PromptGame` for a file with ``prompts:``), with
    ``lines`` (where its groups and ``expect:`` entries are) and ``digest`` (the SHA-256 of
    the file's bytes) filled in.

    Raises
    ------
    SpecError
        carrying every problem of the file (``SpecError.problems``), each naming the file,
        line and field.
    """
    path = Path(path)
    try:
        if text is None:
            if regular_file(path).st_size > MAX_FILE_BYTES:
                raise ValueError(_TOO_LARGE)
            with open(path, "rb") as f:
                text = f.read(MAX_FILE_BYTES + 1)  # the file may have grown since
        data = text.encode("utf-8") if isinstance(text, str) else text
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(_TOO_LARGE)
        content = data.decode("utf-8")
    except (OSError, ValueError) as exc:
        reason = (
            "not UTF-8 text"
            if isinstance(exc, UnicodeDecodeError)
            else (getattr(exc, "strerror", None) or exc)
        )
        raise SpecError(path, None, "", f"cannot read the file: {reason}") from None
    doc = Document(path, content, allow_outside_refs=allow_outside_refs)
    if not isinstance(doc.data, Mapping):
        raise SpecError(path, 1, "", "a game file is a YAML mapping (outcomes:, groups:, ...)")
    game: Game | PromptGame
    if "candidates" in doc.data:
        game = candidate_game_from_spec(doc, validated(doc, CandidateGameSpec))
    elif "prompts" in doc.data:
        tabled = isinstance(doc.data["prompts"], Mapping)  # prompts: {file: NAME.npz}
        game = prompt_game(doc, validated(doc, PromptTableGameSpec if tabled else PromptGameSpec))
    else:
        game = core_game(doc, validated(doc, GameSpec))
    return dataclasses.replace(game, lines=source_lines(doc), digest=hashlib.sha256(data).hexdigest())


_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _schema(
    model: type[GameSpec] | type[CandidateGameSpec] | type[PromptGameSpec], title: str
) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    schema["title"] = title
    schema["$schema"] = _DRAFT
    return schema


def game_schema() -> dict[str, Any]:
    """The JSON Schema of game files, both formats (``rlhf-mech schema``).

    A file with a ``candidates:`` key is a candidate-model game, one with ``prompts:`` a game
    of many prompts (a list, or a mapping ``{file: ...}`` naming a table of prompts), any
    other a core game (the loader's own dispatch). Every constraint on
    a single field is here; what relates fields to each other is checked by the loader
    alone (the ``$comment``).
    """
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema(
        [
            (GameSpec, "validation"),
            (CandidateGameSpec, "validation"),
            (PromptGameSpec, "validation"),
            (PromptTableGameSpec, "validation"),
        ],
        by_alias=True,
    )
    return {
        "$schema": _DRAFT,
        "title": "rlhf-mech game file (format v1: core, candidate-model or many-prompt game)",
        "$comment": "Checked by the loader only: " + "; ".join(LOADER_ONLY) + ".",
        "type": "object",
        "if": {"required": ["candidates"]},
        "then": {"$ref": "#/$defs/CandidateGameSpec"},
        "else": {
            "if": {"required": ["prompts"]},
            "then": {
                # prompts: {file: NAME.npz}, a table of prompts beside the file
                "if": {"properties": {"prompts": {"type": "object"}}},
                "then": {"$ref": "#/$defs/PromptTableGameSpec"},
                "else": {"$ref": "#/$defs/PromptGameSpec"},
            },
            "else": {"$ref": "#/$defs/GameSpec"},
        },
        "$defs": top["$defs"],
    }


def candidate_game_schema() -> dict[str, Any]:
    """The JSON Schema of the candidate-game format alone (``rlhf-mech schema --candidates``)."""
    return _schema(CandidateGameSpec, "rlhf-mech candidate-model game file")


__all__ = ["MAX_FILE_BYTES", "STDIN_NAME", "candidate_game_schema", "game_schema", "load_game"]
