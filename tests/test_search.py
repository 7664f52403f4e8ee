"""The best-response search: the polytope of contributions, exact gradients, the search itself.

* the report space: projections land in the polytope, every point maps back to a valid
  report whose contribution is the point up to a constant, vertices are vertices;
* the objective: gains equal the mechanism's own utilities (``solve`` on the replayed
  profile), gradients equal finite differences for every smooth divergence and both rules;
* the search: finds the vertex best responses of constructed games, the exact argmax best
  response of candidate games, never more than 1e-9 under the affine-maximizer payment, is
  deterministic in its seed, respects its budget, and searches against given others' reports;
* the noisy search of Theorem 4.12: its sample-average objective is optimised (it reaches
  the grid optimum of a 3-outcome game) and its estimate stays below ``2 w_i eps``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from cases import random_game

from rlhf_mech.analysis import ReportSpace, noisy_search, search_misreports
from rlhf_mech.analysis._internal import DEFAULT_BUDGET, group_objective, noisy_objective
from rlhf_mech.core import Game, Mechanism, Normalization, Profile, candidate_game, outcome, solve

SMOOTH = ("kl", "chi2", "hellinger", "reverse_kl", "js")


def make_game(
    rewards, sizes, *, normalization="sum", divergence="kl", lam=1.0, rule="none", pi_init=None, max_size=10.0
) -> Game:
    rewards = np.asarray(rewards, dtype=float)
    m = rewards.shape[1]
    truth = Profile(rewards, np.asarray(sizes, dtype=float))
    q = np.full(m, 1.0 / m) if pi_init is None else np.asarray(pi_init, dtype=float)
    return Game(
        name="g",
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=tuple(f"g{i}" for i in range(len(sizes))),
        mechanism=Mechanism(q, divergence, lam, payment_rule=rule),
        normalization=normalization,
        truth=truth,
        reports=truth,
        max_size=max_size,
    )


def random_small(rng: np.random.Generator, normalization: str, divergence: str, rule: str) -> Game:
    g = random_game(rng, max_groups=3, max_outcomes=5, log10_lambda=(-1.0, 1.0), normalization=normalization)
    return make_game(
        g.rewards,
        g.sizes,
        normalization=normalization,
        divergence=divergence,
        lam=g.lam,
        rule=rule,
        pi_init=g.pi_init,
        max_size=max(g.max_size, float(g.sizes.max())),
    )


def three_candidates(rule: str = "none") -> Game:
    return candidate_game(
        name="c",
        candidates=("a", "b", "c"),
        reward_models=("u", "v"),
        raw_scores=np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]]),
        scale="none",
        divergences=np.array([0.0, 0.1, 0.3]),
        lam=1.0,
        payment_rule=rule,
        group_names=("p", "q"),
        preferences=np.array([[1.0, 0.2], [0.1, 1.0]]),
        sizes=np.array([2.0, 3.0]),
        max_size=5.0,
    )


# --- the report space and its polytope -------------------------------------------------------


@pytest.mark.parametrize("normalization", ["sum", "max", "none"])
def test_every_point_of_the_polytope_is_a_valid_report(normalization, rng) -> None:
    rewards = Normalization(normalization).normalise(rng.uniform(0.1, 1.0, (2, 6))) * (
        2.0 if normalization == "none" else 1.0
    )
    game = make_game(rewards, [1.0, 2.0], normalization=normalization, max_size=4.0)
    space = ReportSpace.of(game)
    for size in (None, 1.0, 2.5):
        cap = space.cap(space.size_bound if size is None else size)
        z = space.project(rng.normal(0, cap, (300, 6)), cap)
        assert np.all(z >= 0)
        if space.simplex:
            assert np.all(z.sum(axis=1) <= cap * (1 + 1e-12))
        else:
            assert np.all(z <= cap)
        theta, sizes = space.report(z, size)
        assert space.contains(theta, sizes, tol=1e-12).all()
        if size is not None:
            np.testing.assert_array_equal(sizes, size)
        # the report's contribution is the point, up to a constant per row
        delta = sizes[:, None] * theta - z
        np.testing.assert_allclose(delta - delta[:, :1], 0.0, atol=1e-12 * max(1.0, cap))


def test_projection_onto_the_capped_simplex_is_the_closest_point(rng) -> None:
    from scipy.optimize import minimize

    game = make_game(np.full((1, 4), 0.25), [1.0], max_size=3.0)
    space = ReportSpace.of(game)
    for v in rng.normal(0, 3, (20, 4)):
        p = space.project(v[None], 3.0)[0]
        ref = minimize(
            lambda x, v=v: ((x - v) ** 2).sum(),
            np.full(4, 0.1),
            method="SLSQP",
            bounds=[(0, None)] * 4,
            constraints=[{"type": "ineq", "fun": lambda x: 3.0 - x.sum()}],
            options={"ftol": 1e-14},
        )
        np.testing.assert_allclose(p, ref.x, atol=1e-6)
        assert ((p - v) ** 2).sum() <= ((ref.x - v) ** 2).sum() * (1 + 1e-12)


def test_projection_keeps_points_inside() -> None:
    space = ReportSpace.of(make_game([[1.0, 0.0, 0.5, 0.2]], [1.0], normalization="max", max_size=3.0))
    z = np.array([[0.2, 3.0, 0.0, 1.5]])
    np.testing.assert_array_equal(space.project(z, 3.0), z)


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_vertices_are_the_corners(normalization, rng) -> None:
    game = make_game(
        np.full((1, 4), 0.25 if normalization == "sum" else 1.0), [1.0], normalization=normalization
    )
    space = ReportSpace.of(game)
    corners = space.vertices(2.0, 1000, np.array([np.arange(4)]), rng)
    if normalization == "sum":  # the origin and 2 e_x
        assert len(corners) == 5 and {tuple(c) for c in corners} >= {(2.0, 0, 0, 0), (0, 0, 0, 2.0)}
    else:  # every non-empty set, each as 2 * 1_S
        assert len(corners) == 2**4 - 1 and set(np.unique(corners)) == {0.0, 2.0}
    np.testing.assert_array_equal(space.project(corners, 2.0), corners)


# --- the objective ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["none", "affine_maximizer"])
@pytest.mark.parametrize("divergence", ["kl", "chi2", "tv"])
def test_gains_are_the_mechanisms_utilities(rule, divergence, rng) -> None:
    """The objective's gain of a contribution equals ``solve``'s gain of the report it maps to."""
    game = random_small(rng, "sum", divergence, rule)
    objective = group_objective(game, 0)
    space = objective.space
    cap = space.cap(space.size_bound)
    z = space.project(rng.uniform(0, cap, (6, game.n_outcomes)) * rng.uniform(0, 1, (6, 1)), cap)
    gains, _ = objective(z)
    theta, sizes = space.report(z)
    for k in range(6):
        replay = dataclasses.replace(game, reports=game.truth.with_report(0, theta[k], float(sizes[k])))
        assert solve(replay).gains[0] == pytest.approx(gains[k], abs=1e-10)
    truth = float(game.truth.sizes[0]) * game.truth.rewards[0]
    assert objective(truth[None])[0][0] == 0.0


@pytest.mark.parametrize("divergence", SMOOTH)
@pytest.mark.parametrize("rule", ["none", "affine_maximizer"])
@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_gradients_equal_finite_differences(divergence, rule, normalization, rng) -> None:
    """d u_i / d c by implicit differentiation of the KKT conditions (Definition 4.1)."""
    worst = 0.0
    for _ in range(4):
        game = random_small(rng, normalization, divergence, rule)
        objective = group_objective(game, 0)
        m = game.n_outcomes
        z = rng.uniform(0.2, 2.0, (1, m))
        _, slopes = objective(z, gradients=True)
        h = 1e-6
        eye = np.eye(m)
        fd = (objective(z + h * eye)[0] - objective(z - h * eye)[0]) / (2 * h)
        scale = max(1e-3, float(np.abs(fd).max()))
        worst = max(worst, float(np.abs(slopes[0] - fd).max()) / scale)
    assert worst <= 1e-5


def test_gradients_of_preference_reports(rng) -> None:
    """A basis game: the gradient in the preference weights is ``basis @ d u / d c``."""
    scores = rng.uniform(0, 1, (5, 2))
    game = candidate_game(
        name="c",
        candidates=tuple("abcde"),
        reward_models=("u", "v"),
        raw_scores=scores,
        scale="none",
        divergences=np.zeros(5),
        lam=1.0,
        payment_rule="none",
        group_names=("p", "q"),
        preferences=np.array([[1.0, 0.3], [0.2, 1.0]]),
        sizes=np.array([2.0, 1.0]),
    )
    smooth = dataclasses.replace(game, mechanism=dataclasses.replace(game.mechanism, divergence="kl"))
    objective = group_objective(smooth, 0)
    z = np.array([[0.7, 1.1]])
    _, slopes = objective(z, gradients=True)
    h = 1e-6
    fd = (objective(z + h * np.eye(2))[0] - objective(z - h * np.eye(2))[0]) / (2 * h)
    np.testing.assert_allclose(slopes[0], fd, rtol=1e-5, atol=1e-9)


# --- the search ------------------------------------------------------------------------------


def test_best_response_at_a_vertex_is_found() -> None:
    """Without payment a max-normalised group gains most by reporting 1 on what it likes and
    0 elsewhere at the largest size; the search finds that vertex and its gain exactly."""
    game = make_game(
        [[1.0, 0.9, 0.1, 0.0], [0.0, 0.2, 1.0, 0.8]], [2.0, 4.0], normalization="max", lam=0.5, max_size=6.0
    )
    result = search_misreports(game, 0, "none", 200, np.random.default_rng(0))
    space = ReportSpace.of(game)
    vertices = space.vertices(space.cap(6.0), 100, np.array([np.arange(4)]), np.random.default_rng(0))
    best_vertex = float(group_objective(game, 0)(vertices)[0].max())
    assert result.best.gain >= best_vertex - 1e-12
    assert result.best.size == pytest.approx(6.0)
    assert space.contains(result.best.reward, result.best.size, tol=1e-12).all()
    replay = dataclasses.replace(
        game, reports=game.truth.with_report(0, result.best.reward, result.best.size)
    )
    assert solve(replay).gains[0] == pytest.approx(result.best.gain, abs=1e-12)


def grid_best_gain(game: Game, i: int, points: int) -> float:
    """The best gain over a ``points`` x ``points`` grid of the 3-outcome polytope, one
    coordinate 0 (the others' scores only matter up to a constant)."""
    objective = group_objective(game, i)
    space = objective.space
    cap = space.cap(space.size_bound)
    a, b = (v.ravel() for v in np.meshgrid(np.linspace(0, cap, points), np.linspace(0, cap, points)))
    zero = np.zeros_like(a)
    z = np.vstack([np.c_[zero, a, b], np.c_[a, zero, b], np.c_[a, b, zero]])
    if space.simplex:
        z = z[z.sum(axis=1) <= cap]
    return float(objective(z)[0].max())


def test_chi2_best_response_past_a_plateau() -> None:
    """From the vertex ``10 e_0``, outcome 2 carries no mass until its score rises by 6.41
    (its support gap): the utility is flat, then rises, then bends down at 7.596, where the
    best response is. Every seed finds the bend (a quasi-Newton polish alone stops on the
    plateau at some seeds), at least as high as a 2001-point scan of the segment."""
    rewards = [
        [1.0, 0.723, 0.0, 0.144, 0.513],
        [1.0, 0.492, 0.577, 0.24, 0.249],
        [0.323, 0.368, 1.0, 0.455, 0.012],
        [0.033, 1.0, 0.0, 0.443, 0.697],
    ]
    game = make_game(
        rewards,
        [3, 10, 2, 6],
        normalization="max",
        divergence="chi2",
        lam=0.227,
        pi_init=[0.049, 0.383, 0.307, 0.148, 0.113],
        max_size=10.0,
    )
    objective = group_objective(game, 1)
    segment = np.zeros((2001, 5))
    segment[:, 0], segment[:, 2] = 10.0, np.linspace(0.0, 10.0, 2001)
    scan = objective(segment)[0]
    _, _, gaps = objective.probe(segment[:1])
    assert gaps is not None and gaps[0, 2] == pytest.approx(6.414, abs=1e-3)
    assert scan.max() > scan[0] + 0.1  # past the plateau lies more than the vertex gives
    for seed in range(5):
        found = search_misreports(game, 1, "none", DEFAULT_BUDGET, np.random.default_rng(seed))
        assert found.best.gain >= scan.max()


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_chi2_best_responses_on_kinks_reach_a_grid(normalization, rng) -> None:
    """chi^2 without payment: the utility is piecewise linear in the report (it bends where
    an outcome enters or leaves the support) and flat where an outcome carries no mass, so
    best responses sit on kinks past plateaus, where a quasi-Newton polish stalls. On random
    3-outcome games the search reaches 0.99 of a 121 x 121 grid over the whole polytope."""
    ratios = []
    for _ in range(10):
        g = random_game(
            rng, max_groups=3, max_outcomes=3, log10_lambda=(-1.0, 1.0), normalization=normalization
        )
        if g.rewards.shape[1] < 3:
            continue
        game = make_game(
            g.rewards,
            g.sizes,
            normalization=normalization,
            divergence="chi2",
            lam=g.lam,
            pi_init=g.pi_init,
            max_size=max(g.max_size, float(g.sizes.max())),
        )
        for i in range(game.n_groups):
            grid = grid_best_gain(game, i, 121)
            if grid > 1e-6:
                found = search_misreports(game, i, "none", DEFAULT_BUDGET, np.random.default_rng(i))
                ratios.append(found.best.gain / grid)
    assert len(ratios) >= 5
    assert min(ratios) >= 0.99


@pytest.mark.parametrize("divergence", ["kl", "chi2", "hellinger", "tv", "js"])
@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_no_gain_under_the_affine_maximizer(divergence, normalization, rng) -> None:
    """Proposition 4.4: the search never finds more than 1e-9 under p^AFF."""
    worst = -np.inf
    for k in range(4):
        game = random_small(rng, normalization, divergence, "affine_maximizer")
        for i in range(game.n_groups):
            result = search_misreports(game, i, "affine_maximizer", 120, np.random.default_rng(k))
            worst = max(worst, result.best.gain, result.best_at_true_size.gain)
    assert worst <= 1e-9


def test_exact_argmax_best_response_beats_every_sampled_report(rng) -> None:
    """The argmax rule: the linear programmes give the exact best response; no sampled
    report of the polytope does better."""
    game = three_candidates()
    for i in range(2):
        result = search_misreports(game, i, "none", 60, np.random.default_rng(0))
        assert result.exact
        objective = group_objective(game, i)
        space = objective.space
        cap = space.cap(space.size_bound)
        samples = space.project(rng.uniform(0, cap, (4000, 2)) * rng.uniform(0, 1, (4000, 1)), cap)
        assert float(objective(samples)[0].max()) <= result.best.gain + 1e-12


def test_search_is_deterministic_and_keeps_its_budget(rng) -> None:
    game = random_small(rng, "max", "kl", "none")
    a = search_misreports(game, 1, "none", 80, np.random.default_rng(7))
    b = search_misreports(game, 1, "none", 80, np.random.default_rng(7))
    assert np.array_equal(a.best.reward, b.best.reward) and a.best.gain == b.best.gain
    assert (a.best.size, a.evaluations, a.status) == (b.best.size, b.evaluations, b.status)
    assert a.evaluations <= 80
    assert a.stalled == 0


def test_search_against_other_reports() -> None:
    """``others`` fixes the other groups' reports: the first term of eq. (1) and the scores
    the group deviates against are theirs."""
    game = make_game([[0.1, 0.5, 0.4], [0.6, 0.2, 0.2]], [2.0, 3.0], rule="none")
    others = game.truth.with_report(1, np.array([0.0, 0.0, 1.0]), 9.0)
    at_truth = search_misreports(game, 0, "none", 100, np.random.default_rng(0))
    at_others = search_misreports(game, 0, "none", 100, np.random.default_rng(0), others=others)
    assert at_truth.best.gain != pytest.approx(at_others.best.gain)
    objective = group_objective(game, 0, others=others)
    truth_utility = outcome(game.mechanism, game.truth, others).utilities[0]
    assert objective.truth_utility == pytest.approx(truth_utility, abs=1e-14)


# --- Theorem 4.12 ----------------------------------------------------------------------------


def test_noisy_search_reaches_the_grid_optimum() -> None:
    """A 3-outcome KL game: the sample-average gain the search reaches is within 5% of the best
    of a grid over the true-size reports on the search's own samples (common random numbers):
    a coarse grid over the whole simplex and a fine one (step 1/800) around truth, where the
    optimum sits (the sample mean of the noise, ~eps / sqrt(samples), is far below the coarse
    step: on the coarse grid alone truth is the best point, gain 0)."""
    game = make_game([[0.2, 0.5, 0.3], [0.5, 0.1, 0.4]], [3.0, 2.0], rule="affine_maximizer", lam=0.3)
    eps, samples = 0.05, 48
    result = noisy_search(game, 0, eps, samples, np.random.SeedSequence(3), 160)
    # the search's own samples: the first of the three children it spawns (spawn is stateful,
    # so from a fresh SeedSequence of the same entropy)
    search_seed = np.random.SeedSequence(3).spawn(3)[0]
    space = ReportSpace.of(game)
    objective = noisy_objective(game, 0, space, eps, samples, search_seed)
    w = 3.0
    coarse = np.meshgrid(np.linspace(0, 1, 81), np.linspace(0, 1, 81))
    fine = np.meshgrid(np.linspace(0.1, 0.3, 161), np.linspace(0.4, 0.6, 161))
    a, b = (np.concatenate([c.ravel(), f.ravel()]) for c, f in zip(coarse, fine, strict=True))
    keep = a + b <= 1
    grid = w * np.stack([a[keep], b[keep], 1 - a[keep] - b[keep]], axis=1)
    best_grid = float(objective(grid)[0].max())
    assert best_grid > 1e-4
    assert result.search_gain >= 0.95 * best_grid
    assert result.gain <= result.bound + 4 * result.stderr
    assert result.max_sample_gain <= result.bound + 1e-12
