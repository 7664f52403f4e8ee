"""Audits over a set of true types of one group: is the mechanism DSIC for *any* group that
might join, not only for the type in the file?

Definition 3.2 asks truth to be a best response for every type. An audit checks the types in
the file; ``--types`` checks a set of them per group, each with the best-response search of
:func:`~rlhf_mech.analysis.search_misreports` (the others truthful), and
reports ``epsilon`` over the set: the largest gain found, a lower bound on the group's
``epsilon_IC`` over every type (Definition 3.2).

The sets are :func:`~rlhf_mech.analysis.type_set`'s (the implementability check's): ``grid``
(resolution ``K`` over the reward domain), ``vertices`` (the domain's vertices), ``random``
(``N`` uniform points) or ``user`` (types given, e.g. every group of other game files, each
at its own size); the file's type comes first, so the worst case is at least the file's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from rlhf_mech.analysis._implementability import TYPE_KINDS, type_set
from rlhf_mech.analysis._objective import Misreport
from rlhf_mech.analysis._search import search_misreports
from rlhf_mech.analysis._space import ReportSpace
from rlhf_mech.core import Game, PaymentRule
from rlhf_mech.errors import RlhfMechError

Array = np.ndarray


@dataclass(frozen=True)
class TypesSpec:
    """Which true types of each group to audit (:func:`~rlhf_mech.analysis.type_set`'s).

    Attributes
    ----------
    kind : one of :data:`~rlhf_mech.analysis.TYPE_KINDS` (``user``: the types given).
    points : the grid's resolution, or the number of random types.
    parameters : (P, d) types given (``user``, e.g. the groups of other game files), or
        ``None``; sizes : their sizes (with ``parameters``), else ``None`` (the true size).
    """

    kind: str = "vertices"
    points: int = 4
    parameters: Array | None = field(default=None, compare=False)
    sizes: Array | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in TYPE_KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(TYPE_KINDS)}, got {self.kind!r}")
        if self.kind == "user" and self.parameters is None:
            raise ValueError("a 'user' type set needs its parameters")

    @property
    def label(self) -> str:
        return f"{self.kind} {self.points}" if self.kind in ("grid", "random") else self.kind


def types_of(game: Game, i: int, spec: TypesSpec, seed: int) -> tuple[Array, Array]:
    """``(parameters (T, d), sizes (T,))``: group ``i``'s true type first, then the spec's
    (:func:`~rlhf_mech.analysis.type_set`; the ``user`` types each at its own size)."""
    if spec.kind != "user" or spec.sizes is None:
        types = type_set(game, i, spec.kind, spec.points, None, seed, spec.parameters)
        return types.parameters, types.sizes
    space = ReportSpace.of(game)
    parameters = np.atleast_2d(np.asarray(spec.parameters, dtype=float))
    sizes = np.asarray(spec.sizes, dtype=float)
    if parameters.shape[1] != space.dimension or not space.contains(parameters, sizes).all():
        raise RlhfMechError(f"{game.name}: the given types are not valid reports of this game")
    return np.vstack([space.truth(game, i)[None], parameters]), np.r_[game.truth.sizes[i], sizes]


@dataclass(frozen=True)
class TypeAudit:
    """One group's audit over a set of true types.

    Attributes
    ----------
    group : the group's index.
    types : (T, d) the true types' parameters (the file's first); sizes : (T,).
    gains : (T,) the best gain found for each type (a lower bound on its best response's).
    worst : the index of the type with the largest gain.
    best : that type's best misreport.
    """

    group: int
    types: Array
    sizes: Array
    gains: Array
    worst: int
    best: Misreport

    @property
    def epsilon(self) -> float:
        """The largest gain over the set: a lower bound on ``epsilon_IC`` over every type."""
        return float(self.gains[self.worst])


def with_type(game: Game, i: int, theta: Array, size: float) -> Game:
    """``game`` with group ``i``'s true type (and report) replaced by ``(theta, size)``."""
    space = ReportSpace.of(game)
    reward = space.rewards(theta[None])[0]
    preference = theta if space.basis is not None else None
    return replace(
        game,
        truth=game.truth.with_report(i, reward, size, preference),
        reports=game.reports.with_report(i, reward, size, preference),
        expect=None,
        digest=None,
    )


def audit_types(
    game: Game,
    i: int,
    spec: TypesSpec,
    payment_rule: str | PaymentRule,
    budget: int,
    rng: np.random.Generator,
) -> TypeAudit:
    """Group ``i``'s best-response search (under ``payment_rule``, ``budget`` evaluations,
    the others truthful, so that a counterexample file replays it) for every true type of
    :func:`types_of`."""
    theta, sizes = types_of(game, i, spec, int(rng.integers(2**31)))
    results = [
        search_misreports(with_type(game, i, t, float(w)), i, payment_rule, budget, seed)
        for t, w, seed in zip(theta, sizes, rng.spawn(len(sizes)), strict=True)
    ]
    gains = np.array([r.best.gain for r in results])
    worst = int(np.argmax(gains))
    return TypeAudit(i, theta, sizes, gains, worst, results[worst].best)
