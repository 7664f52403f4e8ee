"""A reported reward vector given on the command line: a comma list or a ``.csv``/``.npy`` file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlhf_mech.core import Game
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.files._arrays import ARRAY_SUFFIXES, read_array

Array = np.ndarray


def read_reward(text: str, game: Game, option: str = "--report-reward") -> Array:
    """A reported reward for ``game``: ``m`` comma-separated numbers, or a file of them.

    A file is read by :func:`~rlhf_mech.files._arrays.read_array` (a 1-D array: a 2-D one is
    not flattened, a complex one not cast).

    Raises
    ------
    RlhfMechError
        naming ``option``: unreadable, not ``m`` finite numbers, or outside the game's reward
        domain (section 2: ``rm >= 0`` and the normalisation, within 1e-9).
    """
    path = Path(text)
    if path.suffix in ARRAY_SUFFIXES:
        try:
            values = read_array(path)
        except ValueError as exc:
            raise RlhfMechError(f"{option}: cannot read {text!r}: {exc}") from None
        if values.ndim != 1:
            raise RlhfMechError(
                f"{option}: {text!r} holds a {values.shape} array; "
                f"expected one row of {game.n_outcomes} rewards"
            )
    else:
        try:
            values = np.array([float(part) for part in text.split(",")])
        except ValueError:
            raise RlhfMechError(
                f"{option}: cannot read {text!r}; expected a comma list of rewards or a .csv/.npy file"
            ) from None
    if values.shape != (game.n_outcomes,):
        raise RlhfMechError(
            f"{option}: expected {game.n_outcomes} rewards (one per outcome), got {values.size}"
        )
    if not np.all(np.isfinite(values)):
        raise RlhfMechError(f"{option}: rewards must be finite numbers")
    problem = game.normalization.violation(values, game.outcomes)
    if problem is not None:
        raise RlhfMechError(f"{option}: {problem}")
    return values
