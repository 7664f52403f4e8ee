"""The other groups' reports a best response is searched against (DSIC versus ex-post IC).

Definition 3.2 asks truth to be a best response *whatever the others report*. An audit at the
file's profile checks one point of that; the other kinds sample the others' report space:

============  ===========================================================================
kind          the others' report profiles
============  ===========================================================================
``file``      the reports in the game file (the truth where the file gives none)
``truthful``  every other group reports its type
``grid K``    the file's, ``K`` points of a Halton sequence over the others' reports and sizes,
              and the finest exhaustive lattice of the others' reports with at most ``K``
              profiles (every other group at every point of the reward domain's grid of
              resolution ``r``, at the sizes ``W`` and 1)
``random N``  the file's, and ``N`` drawn uniformly over the others' reports and sizes (seeded)
============  ===========================================================================

The sampled kinds include the file's profile first, so that the worst case over them is at
least the file's. A worst profile of the others is often an extreme one (a group that puts all
its weight on one outcome, at the largest size, pulls the model furthest), sometimes a point
between the vertices or inside; ``grid K`` has both the lattice (where even the coarsest,
the vertices at sizes ``W`` and 1, has more than ``K`` profiles: ``K`` of them spread by a
Halton sequence, the largest size first) and the ``K`` interior points, so that its epsilon
is at least that of an exhaustive grid of the others' reports with ``K`` profiles.
A profile's reports are valid (:class:`~rlhf_mech.analysis.ReportSpace`): a point of each
other group's polytope of contributions, mapped back to a report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._implementability import _grid as reward_grid
from rlhf_mech.analysis._implementability import _grid_count as reward_grid_count
from rlhf_mech.analysis._space import ReportSpace
from rlhf_mech.core import Game, Profile

Array = np.ndarray


@dataclass(frozen=True)
class OthersSpec:
    """Which profiles of the other groups' reports to audit against.

    Attributes
    ----------
    kind : a key of :data:`OTHERS_KINDS`.
    count : how many profiles (``grid``, ``random``); 1 for ``file`` and ``truthful``.
    """

    kind: str = "file"
    count: int = 1

    def __post_init__(self) -> None:
        if self.kind not in OTHERS_KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(OTHERS_KINDS)}, got {self.kind!r}")
        sampled = OTHERS_KINDS[self.kind][1]
        if int(self.count) != self.count or self.count < 1 or (not sampled and self.count != 1):
            raise ValueError(f"`count` must be a positive integer (1 for {self.kind!r}), got {self.count!r}")

    @property
    def label(self) -> str:
        return self.kind if not OTHERS_KINDS[self.kind][1] else f"{self.kind} {self.count}"


def _file(game: Game, i: int, spec: OthersSpec, rng: np.random.Generator) -> list[Profile]:
    return [game.reports]


def _truthful(game: Game, i: int, spec: OthersSpec, rng: np.random.Generator) -> list[Profile]:
    return [game.truth]


def point_reports(space: ReportSpace, uniform: Array) -> tuple[Array, Array]:
    """Valid reports from points of ``[0, 1)^(d + 1)`` (rows): ``d`` coordinates of a
    contribution and one of its size; ``(parameters (B, d), sizes (B,))``."""
    d = space.dimension
    uniform = np.atleast_2d(uniform)
    thetas, sizes = np.empty((len(uniform), d)), np.empty(len(uniform))
    for k, u in enumerate(uniform):
        size = 1.0 + (space.size_bound - 1.0) * u[-1]
        cap = space.cap(size)
        # a simplex's points spread over it; a box's fill it
        z = space.project((u[:-1] * cap / (d if space.simplex else 1))[None], cap)
        theta, reported = space.report(z, size)
        thetas[k], sizes[k] = theta[0], reported[0]
    return thetas, sizes


def _points(game: Game, i: int, uniform: Array) -> list[Profile]:
    """Profiles from points of ``[0, 1)^((n - 1)(d + 1))``: per other group, ``d`` coordinates
    of a contribution and one of its size."""
    space = ReportSpace.of(game)
    d = space.dimension
    others = [j for j in range(game.n_groups) if j != i]
    profiles = []
    for row in uniform:
        profile = game.truth
        for k, j in enumerate(others):
            theta, sizes = point_reports(space, row[k * (d + 1) : (k + 1) * (d + 1)])
            reward = space.rewards(theta)[0]
            preference = theta[0] if space.basis is not None else None
            profile = profile.with_report(j, reward, float(sizes[0]), preference)
        profiles.append(profile)
    return profiles


def _lattice(space: ReportSpace, r: int) -> tuple[Array, Array]:
    """One group's reports on the lattice of resolution ``r``: the reward domain's grid
    (the implementability check's) at the sizes ``W`` and 1 (a report's pull grows with its
    size: the extreme sizes bracket it); ``(parameters, sizes)``, the largest size first."""
    points = reward_grid(space, r)
    levels = np.array([space.size_bound, 1.0])
    return np.tile(points, (len(levels), 1)), np.repeat(levels, len(points))


def lattice_profiles(game: Game, i: int, count: int) -> list[Profile]:
    """Up to ``count`` profiles of the others' reports on an exhaustive lattice: the finest
    resolution ``r`` whose lattice (every other group at every point of :func:`_lattice`) has
    at most ``count`` profiles. Where even ``r = 1`` (the vertices of the reward domain at
    sizes ``W`` and 1) has more, ``count`` of those spread along a Halton sequence over the
    choices (the largest size in the first half)."""
    from scipy.stats import qmc

    space = ReportSpace.of(game)
    others = [j for j in range(game.n_groups) if j != i]
    if count <= 0 or not others:
        return []
    r = 1
    while (2 * reward_grid_count(space, r + 1)) ** len(others) <= count:
        r += 1
    theta, sizes = _lattice(space, r)
    if len(sizes) ** len(others) <= count:
        picks = np.array(list(itertools.product(range(len(sizes)), repeat=len(others))))
    else:
        u = qmc.Halton(len(others), scramble=False).random(4 * count + 1)[1:]
        half = len(sizes) // 2
        second = (np.arange(len(u)) >= len(u) // 2)[:, None]  # the second half at size 1
        picks = np.floor(u * half).astype(int) + half * second
        _, first = np.unique(picks, axis=0, return_index=True)
        picks = picks[np.sort(first)][:count]
    profiles = []
    for row in picks:
        profile = game.truth
        for j, k in zip(others, row, strict=True):
            preference = theta[k] if space.basis is not None else None
            profile = profile.with_report(j, space.rewards(theta[k][None])[0], float(sizes[k]), preference)
        profiles.append(profile)
    return profiles


def _grid(game: Game, i: int, spec: OthersSpec, rng: np.random.Generator) -> list[Profile]:
    from scipy.stats import qmc

    d = ReportSpace.of(game).dimension
    dims = max(1, (game.n_groups - 1) * (d + 1))
    halton = qmc.Halton(dims, scramble=False).random(spec.count + 1)[1:]
    return [game.reports, *_points(game, i, halton), *lattice_profiles(game, i, spec.count)]


def _random(game: Game, i: int, spec: OthersSpec, rng: np.random.Generator) -> list[Profile]:
    d = ReportSpace.of(game).dimension
    return [game.reports, *_points(game, i, rng.random((spec.count, max(1, (game.n_groups - 1) * (d + 1)))))]


#: kind -> (the profiles of group ``i``'s others, whether ``count`` applies).
OTHERS_KINDS: dict[
    str, tuple[Callable[[Game, int, OthersSpec, np.random.Generator], list[Profile]], bool]
] = {
    "file": (_file, False),
    "truthful": (_truthful, False),
    "grid": (_grid, True),
    "random": (_random, True),
}


def others_profiles(game: Game, i: int, spec: OthersSpec, rng: np.random.Generator) -> list[Profile]:
    """The profiles of the others' reports group ``i`` is audited against (its own row is
    its truth and is ignored by the search)."""
    return OTHERS_KINDS[spec.kind][0](game, i, spec, rng)
