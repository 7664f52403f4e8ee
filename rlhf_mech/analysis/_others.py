"""The other groups' reports a best response is searched against (DSIC versus ex-post IC).

Definition 3.2 asks truth to be a best response *whatever the others report*. An audit at the
file's profile checks one point of that; the other kinds sample the others' report space:

============  ===========================================================================
kind          the others' report profiles
============  ===========================================================================
``file``      the reports in the game file (the truth where the file gives none)
``truthful``  every other group reports its type
``grid K``    the file's, ``K`` points of a Halton sequence over the others' reports and sizes,
              and up to ``K`` extreme profiles (every other group at a vertex of its report
              space, at the largest or the smallest size)
``random N``  the file's, and ``N`` drawn uniformly over the others' reports and sizes (seeded)
============  ===========================================================================

The sampled kinds include the file's profile first, so that the worst case over them is at
least the file's. A worst profile of the others is often an extreme one (a group that puts all
its weight on one outcome, at the largest size, pulls the model furthest), and sometimes an
interior one, so ``grid K`` has both: the ``K`` interior points, and the extreme profiles,
all of them where there are at most ``K``, else ``K`` spread over them (a Halton sequence over
the vertex-and-size choices, the largest size first). An exhaustive grid of the others'
reports with ``K`` points (a lattice: mostly points on the boundary) thus finds no worse
profile than ``grid K`` unless one of its points between the vertices beats every extreme
profile and every Halton point. A profile's reports are valid (:class:`~rlhf_mech.analysis.ReportSpace`): a point of each
other group's polytope of contributions, mapped back to a report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._space import ReportSpace
from rlhf_mech.core import Game, Profile

Array = np.ndarray

#: The most vertices of one group's report space the extreme profiles choose from.
_MAX_CORNERS = 64


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


def corners(space: ReportSpace, rng: np.random.Generator) -> Array:
    """(V, d) the vertices of the report space at unit extent, the origin left out (no
    report has no weight): ``e_x`` (a capped simplex), ``1_S`` (a box; at most
    :data:`_MAX_CORNERS`, nested sets and random ones beyond)."""
    d = space.dimension
    orders = np.arange(d)[None]
    vertices = space.vertices(1.0, _MAX_CORNERS, orders, rng)
    return vertices[vertices.sum(axis=1) > 0]


def extreme_profiles(game: Game, i: int, count: int, rng: np.random.Generator) -> list[Profile]:
    """Up to ``count`` profiles in which every other group reports a vertex of its report
    space at size ``W`` or 1: all of them where there are at most ``count``, else distinct
    ones along a Halton sequence over the choices (size ``W`` in the first half)."""
    from scipy.stats import qmc

    space = ReportSpace.of(game)
    unit = corners(space, rng)
    others = [j for j in range(game.n_groups) if j != i]
    sizes = (space.size_bound, 1.0)
    per_group = len(unit) * len(sizes)
    if count <= 0 or not others:
        return []
    if per_group ** len(others) <= count:
        picks = np.array(list(itertools.product(range(per_group), repeat=len(others))))
        # the largest size first: those profiles pull hardest
        picks = picks[np.argsort((picks // len(unit)).sum(axis=1), kind="stable")]
    else:
        u = qmc.Halton(len(others), scramble=False).random(4 * count + 1)[1:]
        half = np.arange(len(u)) >= len(u) // 2  # the second half at the smallest size
        picks = np.floor(u * len(unit)).astype(int) + len(unit) * half[:, None]
        _, first = np.unique(picks, axis=0, return_index=True)
        picks = picks[np.sort(first)][:count]
    profiles = []
    for row in picks:
        profile = game.truth
        for j, choice in zip(others, row, strict=True):
            size = sizes[choice // len(unit)]
            z = space.cap(size) * unit[choice % len(unit)]
            theta, reported = space.report(z[None], size)
            preference = theta[0] if space.basis is not None else None
            profile = profile.with_report(j, space.rewards(theta)[0], float(reported[0]), preference)
        profiles.append(profile)
    return profiles


def _grid(game: Game, i: int, spec: OthersSpec, rng: np.random.Generator) -> list[Profile]:
    from scipy.stats import qmc

    d = ReportSpace.of(game).dimension
    dims = max(1, (game.n_groups - 1) * (d + 1))
    halton = qmc.Halton(dims, scramble=False).random(spec.count + 1)[1:]
    return [game.reports, *_points(game, i, halton), *extreme_profiles(game, i, spec.count, rng)]


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
