"""Negative cycles as game files: a certificate that no payment makes a training rule DSIC.

``rlhf-mech implementability GAME --group NAME --save-cycle DIR`` writes, for each type
``s_j`` of the negative cycle of :class:`~rlhf_mech.analysis.ImplementabilityResult`, one
game in which the group's *true* type is ``s_j`` and its report is the next type on the
cycle, ``s_{j+1}``; the other groups' true types are set to their (fixed) reports and the
payment rule to ``none``, so that ``rlhf-mech solve FILE`` shows the group's valuation gain
``g_j`` (the cycle's ``cycle_gains``). The gains sum to ``-cycle_sum > 0``: a payment rule
``p`` making every step unprofitable would need ``p(s_{j+1}) - p(s_j) >= g_j`` for every
``j``, and summing around the cycle, ``0 >= sum_j g_j`` (proof of Proposition E.2).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rlhf_mech.analysis import ImplementabilityResult
from rlhf_mech.core import NONE, Game, Profile
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.files._counterexamples import _slug
from rlhf_mech.files._writer import write_game


def cycle_games(result: ImplementabilityResult) -> list[Game]:
    """One game per step of the result's negative cycle (see the module notes); ``[]`` when
    the training rule is monotone on the type set."""
    if result.cycle is None:
        return []
    game, i, types = result.game, result.group, result.types
    basis = game.report_basis is not None
    # the others' true types are their reports: solve's "truthful" profile is then the
    # profile the analysis fixed, with the group truthful
    others = game.reports
    mechanism = game.mechanism.with_payment_rule(NONE)
    games = []
    cycle = [int(a) for a in result.cycle]
    for j, (own, report) in enumerate(zip(cycle, cycle[1:] + cycle[:1], strict=True)):

        def at(profile: Profile, a: int) -> Profile:
            preference = types.parameters[a] if basis else None
            return profile.with_report(i, types.rewards[a], float(types.sizes[a]), preference)

        truth = at(others, own)
        games.append(
            dataclasses.replace(
                game,
                name=f"{game.name} (cycle step {j}: {game.group_names[i]} type {own} reports type {report})",
                mechanism=mechanism,
                truth=truth,
                reports=at(truth, report),
                expect=None,
                notes=(),
                digest=None,
            )
        )
    return games


def save_cycle(result: ImplementabilityResult, directory: str | Path) -> list[Path]:
    """Write :func:`cycle_games` into ``directory`` as ``<game>.<group>.cycle<j>.yaml``.

    Returns
    -------
    The YAML paths written, in cycle order (``.npy`` files of long rows go beside them).

    Raises
    ------
    RlhfMechError
        when a file cannot be written (or the game has no file format).
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RlhfMechError(f"cannot create {directory}: {exc.strerror or exc}") from None
    game = result.game
    stem = _slug(Path(game.source).stem if game.source else game.name)
    group = _slug(result.group_name)
    written = []
    for j, step in enumerate(cycle_games(result)):
        assert result.cycle is not None and result.cycle_gains is not None
        own, report = int(result.cycle[j]), int(result.cycle[(j + 1) % len(result.cycle)])
        path = directory / f"{stem}.{group}.cycle{j}.yaml"
        comment = (
            f"Negative cycle found by rlhf-mech implementability in {game.source or game.name}\n"
            f"(training rule {result.training_rule}, group {result.group_name!r}, {result.K} types, "
            f"cycle sum {result.cycle_sum:.6g}).\n"
            f"Step {j} of {len(result.cycle)}: true type {own} reports type {report} and gains "
            f"{result.cycle_gains[j]:+.6g} in valuation;\n"
            "the other groups' types are their fixed reports; payment none. Replay: "
            f"rlhf-mech solve {path.as_posix()}"
        )
        try:
            written.append(write_game(step, path, comment=comment)[0])
        except ValueError as exc:
            raise RlhfMechError(f"{game.name}: cannot write a cycle file: {exc}") from None
    return written
