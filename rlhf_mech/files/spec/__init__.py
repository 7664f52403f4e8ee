"""Game files (YAML): file -> validated spec -> :class:`~rlhf_mech.core.Game`, and their schemas.

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

from rlhf_mech.core import Game
from rlhf_mech.errors import SpecError
from rlhf_mech.files.spec._candidates import CandidateGameSpec, candidate_game_from_spec
from rlhf_mech.files.spec._core import GameSpec, core_game
from rlhf_mech.files.spec._document import Document, source_lines, validated

#: The name a game read from standard input goes by in messages (``rlhf-mech solve -``).
STDIN_NAME = "<stdin>"


def load_game(path: str | Path, text: str | None = None) -> Game:
    """Read and validate a game file (either format).

    Parameters
    ----------
    path : the file; with ``text``, the name the text goes by in messages (array files are
        then found relative to the current directory when ``path`` has no directory part,
        as for :data:`STDIN_NAME`).
    text : the file's content when it was read elsewhere (standard input).

    Raises
    ------
    SpecError
        naming the file, line and field of the first problem.
    """
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(path, None, "", f"cannot read the file: {exc}") from None
    doc = Document(path, text)
    if not isinstance(doc.data, Mapping):
        raise SpecError(path, 1, "", "a game file is a YAML mapping (outcomes:, groups:, ...)")
    if "candidates" in doc.data:
        game = candidate_game_from_spec(doc, validated(doc, CandidateGameSpec))
    else:
        game = core_game(doc, validated(doc, GameSpec))
    return dataclasses.replace(
        game, lines=source_lines(doc), digest=hashlib.sha256(text.encode("utf-8")).hexdigest()
    )


def _schema(model: type[GameSpec] | type[CandidateGameSpec], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    schema["title"] = title
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def game_schema() -> dict[str, Any]:
    """The JSON Schema of the core game-file format v1 (``rlhf-mech schema``)."""
    return _schema(GameSpec, "rlhf-mech game file, format v1")


def candidate_game_schema() -> dict[str, Any]:
    """The JSON Schema of the candidate-game file format (``rlhf-mech schema --candidates``)."""
    return _schema(CandidateGameSpec, "rlhf-mech candidate-model game file")


__all__ = ["STDIN_NAME", "candidate_game_schema", "game_schema", "load_game"]
