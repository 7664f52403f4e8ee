"""Counterexamples as game files: the audited game with one group's misreport (issue #4).

``rlhf-mech audit --save-counterexamples DIR`` writes, for every report that violates DSIC,
the game with a ``report:`` block for that group and the other groups truthful (as they
were audited), so that ``rlhf-mech solve FILE`` replays it and shows the same gain. The
file is written by :func:`rlhf_mech.files.write_game`, the canonical writer of both
game formats: a core game gets ``report: {reward, size}``, a candidate-model game
``report: {preference, size}``; rows longer than its inline limit go to ``.npy`` files
beside the YAML. Floats are written with ``repr``, which round-trips exactly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rlhf_mech.analysis import GameAudit, Misreport, TypeAudit, TypesSpec
from rlhf_mech.analysis._internal import audit_types, with_type
from rlhf_mech.core import Game
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.files._writer import write_game


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "game"


def counterexample_game(game: Game, i: int, report: Misreport) -> Game:
    """``game`` with group ``i`` reporting ``report`` and every other group truthful.

    The ``expect:`` block is dropped (it describes the original profile).
    """
    return dataclasses.replace(
        game,
        name=f"{game.name} ({game.group_names[i]} misreports)",
        reports=game.truth.with_report(i, report.reward, report.size, report.preference),
        expect=None,
        notes=(),
        digest=None,
    )


def write_counterexample(game: Game, i: int, report: Misreport, path: str | Path) -> tuple[Path, ...]:
    """Write :func:`counterexample_game` to ``path`` (YAML, plus ``.npy`` files for long rows).

    Returns
    -------
    The paths written, the YAML first.

    Raises
    ------
    RlhfMechError
        when the game cannot be written in a game-file format (e.g. a core game with
        normalisation ``none``) or a file cannot be written.
    """
    path = Path(path)
    comment = (
        f"Counterexample found by rlhf-mech audit in {game.source or game.name}:\n"
        f"group {game.group_names[i]!r} gains {report.gain:+.6g} "
        f"under payment {game.mechanism.payment_rule.name} "
        f"by the report below (found by {report.found_by});\n"
        "the other groups report truthfully. Replay: rlhf-mech solve " + path.as_posix()
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RlhfMechError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    try:
        return write_game(counterexample_game(game, i, report), path, comment=comment)
    except ValueError as exc:
        raise RlhfMechError(f"{game.name}: cannot write a counterexample file: {exc}") from None


def counterexample_stems(audits: Sequence[GameAudit]) -> list[str]:
    """A file-name stem per audit, unique within the run: the game file's stem, or where two
    files share it (``a/table.yaml``, ``b/table.yaml``) their paths relative to the nearest
    folder they share (``a_table``, ``b_table``); a stem still taken gets ``-2``, ``-3`` ..."""
    sources = [Path(a.game.source) if a.game.source else None for a in audits]
    stems = [_slug(p.stem if p is not None else a.game.name) for p, a in zip(sources, audits, strict=True)]
    clashing = [p for p, stem in zip(sources, stems, strict=True) if p is not None and stems.count(stem) > 1]
    if clashing:
        resolved = [p.resolve() for p in clashing]
        common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
        relative = {
            p: _slug(str(r.relative_to(common).with_suffix("")))
            for p, r in zip(clashing, resolved, strict=True)
        }
        stems = [
            relative.get(p, stem) if p is not None else stem for p, stem in zip(sources, stems, strict=True)
        ]
    taken: dict[str, int] = {}
    unique = []
    for stem in stems:
        taken[stem] = taken.get(stem, 0) + 1
        unique.append(stem if taken[stem] == 1 else f"{stem}-{taken[stem]}")
    return unique


def save_counterexamples(
    audits: Sequence[GameAudit],
    directory: str | Path,
    on_error: Callable[[int, str], None] | None = None,
) -> dict[tuple[int, str], str]:
    """Write every DSIC-violating best misreport of ``audits`` into ``directory``.

    A group violates when its DSIC finding does not hold (gain above the tolerance), whatever
    the file's ``expect:`` says. Files are named ``<stem>.<group>.yaml`` with the stems of
    :func:`counterexample_stems`, so that no two files of one run share a name.

    Parameters
    ----------
    on_error : where a game's counterexample cannot be written, call
        ``on_error(index of the audit, message)`` and go on with the others; without it the
        :class:`~rlhf_mech.errors.RlhfMechError` propagates.

    Returns
    -------
    {(index of the audit, group name): path of the YAML written}
    """
    directory = Path(directory)
    saved: dict[tuple[int, str], str] = {}
    for k, (audit, stem) in enumerate(zip(audits, counterexample_stems(audits), strict=True)):
        game = audit.game
        names: set[str] = set()
        for finding in audit.findings:
            if finding.check != "dsic" or finding.holds:
                continue
            group = next(g for g in audit.groups if g.name == finding.group)
            name = _slug(group.name)
            name = name if name not in names else f"{name}-{group.index}"
            names.add(name)
            try:
                path = write_counterexample(
                    game, group.index, group.dsic.best, directory / f"{stem}.{name}.yaml"
                )
            except RlhfMechError as exc:
                if on_error is None:
                    raise
                on_error(k, str(exc))
                break
            saved[(k, group.name)] = str(path[0])
    return saved


@dataclasses.dataclass(frozen=True)
class TypeRow:
    """One group's audit over a set of true types (``rlhf-mech audit --types``).

    Attributes
    ----------
    audit : the index of the game's audit in the run; group : the group's name.
    result : the audit over the type set; path : the worst type's replay file, or ``None``.
    """

    audit: int
    group: str
    result: TypeAudit
    path: str | None = None


def type_audits(
    audits: Sequence[GameAudit], spec: TypesSpec, seed: int, directory: str | Path | None = None
) -> tuple[TypeRow, ...]:
    """The audit over a set of true types (``rlhf-mech audit --types``) of every group of the
    one-prompt games audited, under each game's payment rule at the audit's budget; where the
    worst type gains, with ``directory``, that type with its best misreport as a game file
    (``<stem>.<group>.types.yaml``: the group's true type replaced, its report the misreport;
    ``rlhf-mech solve`` replays the gain).
    """
    rows: list[TypeRow] = []
    for k, (audit, stem) in enumerate(zip(audits, counterexample_stems(audits), strict=True)):
        game = audit.game
        if not isinstance(game, Game):  # a game of many prompts has no one type per group
            continue
        for i, name in enumerate(game.group_names):
            rng = np.random.default_rng([seed, i])
            result = audit_types(game, i, spec, game.mechanism.payment_rule, audit.options.budget, rng)
            path = None
            if directory is not None and result.epsilon > audit.options.tol:
                typed = with_type(game, i, result.types[result.worst], float(result.sizes[result.worst]))
                target = Path(directory) / f"{stem}.{_slug(name)}.types.yaml"
                path = str(write_counterexample(typed, i, result.best, target)[0])
            rows.append(TypeRow(k, name, result, path))
    return tuple(rows)
