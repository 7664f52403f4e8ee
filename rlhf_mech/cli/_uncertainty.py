"""The options of a sampled game's intervals (``--ci``, docs/uncertainty.md), shared by the
commands that take them, and the one function that turns them into a bootstrap."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rlhf_mech.errors import RlhfMechError

CiOption = Annotated[
    float | None,
    typer.Option(
        "--ci",
        min=0.5,
        max=0.999,
        help="For a sampled game (sampled: in the file; every import): the interval level, e.g. "
        "0.95; every figure gets an estimate, a standard error and a bootstrap interval.",
        show_default=False,
    ),
]
ResamplesOption = Annotated[int, typer.Option("--resamples", min=2, help="Bootstrap replicates for --ci.")]
CiSeedOption = Annotated[int, typer.Option("--seed", min=0, help="Seed of the --ci resamples.")]
IntervalOption = Annotated[str, typer.Option("--interval", help="--ci interval: percentile, basic or bca.")]
EstimandOption = Annotated[
    str,
    typer.Option(
        "--estimand",
        help="--ci estimand: fixed (rewards on the file's scale) or renormalised (each draw "
        "normalised again, as the importers normalise).",
    ),
]


def uncertainty(game: Any, ci: float | None, resamples: int, seed: int, interval: str, estimand: str) -> Any:
    """The bootstrap of ``game`` with these options, or ``None`` without ``--ci``.

    Raises
    ------
    RlhfMechError
        for a game not marked as sampled, or an unknown interval or estimand.
    """
    if ci is None:
        return None
    from rlhf_mech.analysis import BootstrapOptions, bootstrap

    if game.sample_counts is None:
        raise RlhfMechError(
            f"--ci: game {game.name!r} is not marked as sampled (sampled: in its file, written by "
            "every import); its pi_init is taken as exact"
        )
    try:
        options = BootstrapOptions(
            level=ci, resamples=resamples, seed=seed, interval=interval, estimand=estimand
        )
    except ValueError as exc:
        raise RlhfMechError(f"--ci: {exc}") from None
    return bootstrap(game, options)
