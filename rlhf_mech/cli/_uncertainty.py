"""The options of a sampled game's intervals (``--ci``, docs/uncertainty.md), shared by the
commands that take them, and the one function that turns them into a bootstrap."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import typer

from rlhf_mech.cli._config import BOUNDS
from rlhf_mech.cli._numbers import number
from rlhf_mech.errors import RlhfMechError, printable

CiOption = Annotated[
    float | None,
    typer.Option(
        "--ci",
        parser=number(low=0.5, high=0.999),
        help="For a sampled game (sampled: in the file; every import): the interval level, e.g. "
        "0.95; every figure gets an estimate, a standard error and a bootstrap interval.",
        show_default=False,
    ),
]
ResamplesOption = Annotated[
    int,
    typer.Option(
        "--resamples",
        parser=number(integer=True, low=2, high=BOUNDS["samples"].high),
        help="Bootstrap replicates for --ci.",
    ),
]
CiSeedOption = Annotated[
    int, typer.Option("--seed", parser=number(integer=True, low=0), help="Seed of the --ci resamples.")
]
IntervalOption = Annotated[str, typer.Option("--interval", help="--ci interval: percentile, basic or bca.")]
DesignOption = Annotated[
    str | None,
    typer.Option(
        "--design",
        help="--ci resampling: two_stage (prompts, then responses; default for many prompts) or "
        "responses (the prompts fixed; default for one).",
        show_default=False,
    ),
]
EstimandOption = Annotated[
    str,
    typer.Option(
        "--estimand",
        help="--ci estimand: fixed (rewards on the file's scale) or renormalised (each draw "
        "normalised again, as the importers normalise).",
    ),
]


def bootstrap_options(
    ci: float | None, resamples: int, seed: int, interval: str, estimand: str, design: str | None
) -> Any:
    """The ``--ci`` options as one :class:`~rlhf_mech.analysis.BootstrapOptions`, built once
    where the command line is read, or ``None`` without ``--ci``.

    Raises
    ------
    RlhfMechError
        for an unknown interval, estimand or design.
    """
    if ci is None:
        return None
    from rlhf_mech.analysis import BootstrapOptions

    try:
        return BootstrapOptions(
            level=ci, resamples=resamples, seed=seed, interval=interval, estimand=estimand, design=design
        )
    except ValueError as exc:
        raise RlhfMechError(f"--ci: {exc}") from None


def uncertainty(game: Any, options: Any) -> Any:
    """The bootstrap of ``game`` with ``options``, or ``None`` without ``--ci``.

    Raises
    ------
    RlhfMechError
        for a game not marked as sampled.
    """
    if options is None:
        return None
    from rlhf_mech.analysis import bootstrap

    if game.sample_counts is None:
        raise RlhfMechError(
            f"--ci: game {printable(game.name)!r} is not marked as sampled (sampled: in its file, "
            "written by every import); its pi_init is taken as exact"
        )
    return bootstrap(game, options)


def audit_intervals(run: Any, options: Any) -> Any:
    """``run`` with the sampling error of every sampled game's audit (``--ci``; population
    games: ``None``), or ``run`` itself without ``--ci``."""
    if options is None:
        return run
    from rlhf_mech.analysis._internal import audit_uncertainty

    return replace(run, uncertainty=tuple(audit_uncertainty(a, options) for a in run.audits))


def sweep_intervals(results: Any, options: Any) -> Any:
    """Each sweep with the sampling error of its points (``--ci``; population games: none),
    or ``results`` themselves without ``--ci``."""
    if options is None:
        return results
    from rlhf_mech.analysis._internal import sweep_uncertainty

    return [replace(r, uncertainty=sweep_uncertainty(r, options)) for r in results]
