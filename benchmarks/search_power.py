"""Benchmark: how much of each group's true best-response gain the audit's search finds, for
every mechanism family (issues #11 and #22).

Target: on every family, at the default budget and at every seed tried, at least 99% of the
groups with a real gain reach 0.99 of the reference gain and none falls below 0.9.

Families (:data:`FAMILIES`): SW-Max under each payment rule (none, the affine maximizer of
eq. (1), Heuristic 1 at T = 1, 5, 100 with the initial model among the checkpoints and
without, Heuristic 2), MaxMin over agents and over groups, Nash and alpha-fair (appendix E)
without payment; each on KL and chi^2 games.

Games come from two generators: ``tune`` (the generator the search was developed on: m 3..8,
n 2..4, uniform rewards) and ``holdout`` (never looked at while tuning: Dirichlet(0.4) or
squared-uniform rewards, real sizes, a flatter or sharper pi_init, lambda 10^[-1.3, 0.7],
max_size 12). The default is ``holdout``.

The reference ("true gain") is the best of independent computations, none of which uses the
search's code, its report space or its gradients; every value is a utility of
:func:`rlhf_mech.core.outcome` (the plain profile kernel) at a valid report:

1. every vertex of the reports' polytope of contributions ``z = size * reward`` at the sizes
   1, the true size and W (sum: ``c e_x``; max: ``c 1_S`` for every set S, m <= 8), and
   random reports (Dirichlet rewards, uniform sizes);
2. multi-start SLSQP over ``z`` (bounds ``[0, W]``, ``sum z <= W`` for sum-normalised rewards;
   the report is ``z / |z|`` at size ``clip(|z|, 1, W)``, ``|z|`` the total or the largest
   entry) with finite-difference gradients, from the ``--starts`` best points of 1;
3. Nelder-Mead (bounded, scipy) from the three best points so far: it needs no gradient, so
   it is not misled at a kink;
4. the search itself at ``--strong`` times the budget with a seed of its own (99).

Every search result is replayed: its best report is evaluated with ``outcome`` and must give
the gain the search reported to 1e-6 (a mismatch is printed and counts as a failure).

Run::

    python benchmarks/search_power.py [--families all|NAME,...] [--games 8] [--seeds 0,1]
        [--budget B] [--generator holdout|tune] [--cache FILE] [--worst DIR] [--quick]

It prints per family: groups with a gain, share at 0.99 of the reference, worst ratio (per
seed and the worst over seeds), then ``RESULT ...``. ``--worst DIR`` writes the worst group of
every family as a replayable game file (the game with the reference's best misreport; replay
with ``rlhf-mech solve``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, result_line

from rlhf_mech.analysis import Misreport, search_misreports
from rlhf_mech.analysis._internal import DEFAULT_BUDGET
from rlhf_mech.core import (
    AFFINE_MAXIMIZER,
    EARLY_STOPPED,
    INTERMEDIATE_CHECKPOINTS,
    NONE,
    Game,
    Mechanism,
    Normalization,
    PaymentRule,
    Profile,
    outcome,
)
from rlhf_mech.files._internal import write_counterexample

#: Replayed gains must match the search's to this.
REPLAY_TOL = 1e-6


@dataclass(frozen=True)
class Family:
    """One mechanism family: a training rule (and its ``over``), a payment rule; ``cheap``
    families (an SW-Max solve) get larger games and a stronger reference."""

    name: str
    training: str
    payment: PaymentRule
    over: str | None = None
    cheap: bool = True

    def mechanism(self, base: Mechanism) -> Mechanism:
        mechanism = base.with_payment_rule(self.payment).with_training_rule(self.training)
        if self.over is not None:
            rule = mechanism.training_rule.with_parameters(over=self.over)
            mechanism = dataclasses.replace(mechanism, training_rule=rule)
        return mechanism


def heuristic(rule: PaymentRule, steps: int, initial: str | None = None) -> PaymentRule:
    """A heuristic payment with a run of ``steps``, a checkpoint every ``max(1, steps // 5)``
    (Heuristic 1) and the initial model among the checkpoints or not (``initial``)."""
    settings: dict[str, object] = {"steps": steps, "step_size": 0.5}
    if any(p.name == "checkpoint_every" for p in rule.schema):
        settings["checkpoint_every"] = max(1, steps // 5)
    if initial is not None:
        settings["initial"] = initial
    return rule.with_parameters(**settings)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("sw_max/none", "sw_max", NONE),
        Family("sw_max/affine_maximizer", "sw_max", AFFINE_MAXIMIZER),
        # the checkpoint set of the measurements (step 0 left out), where the gains are
        # largest, and the rule's default (step 0 included)
        Family("sw_max/h1_T1", "sw_max", heuristic(INTERMEDIATE_CHECKPOINTS, 1, "excluded")),
        Family("sw_max/h1_T5", "sw_max", heuristic(INTERMEDIATE_CHECKPOINTS, 5, "excluded")),
        Family("sw_max/h1_T100", "sw_max", heuristic(INTERMEDIATE_CHECKPOINTS, 100, "excluded")),
        Family("sw_max/h1_T1_initial", "sw_max", heuristic(INTERMEDIATE_CHECKPOINTS, 1, "included")),
        Family("sw_max/h1_T5_initial", "sw_max", heuristic(INTERMEDIATE_CHECKPOINTS, 5, "included")),
        Family("sw_max/h1_T100_initial", "sw_max", heuristic(INTERMEDIATE_CHECKPOINTS, 100, "included")),
        Family("sw_max/h2_T5", "sw_max", heuristic(EARLY_STOPPED, 5)),
        Family("maxmin_agents/none", "maxmin", NONE, "agents", cheap=False),
        Family("maxmin_groups/none", "maxmin", NONE, "groups", cheap=False),
        Family("nash/none", "nash", NONE, cheap=False),
        Family("alpha_fair/none", "alpha_fair", NONE, cheap=False),
    )
}


# --------------------------------------------------------------------------------------------
# Game generators
# --------------------------------------------------------------------------------------------


def make_game(
    name: str, mechanism: Mechanism, normalization: Normalization, truth: Profile, w: float
) -> Game:
    """A game of the truthful profile ``truth`` (outcomes ``x0..``, groups ``g0..``), max_size ``w``."""
    n, m = truth.rewards.shape
    return Game(
        name=name,
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=tuple(f"g{i}" for i in range(n)),
        mechanism=mechanism,
        normalization=normalization,
        truth=truth,
        reports=truth,
        max_size=w,
    )


def tune_game(rng: np.random.Generator, k: int, family: Family) -> Game:
    """The generator the search was developed on: m 3..8 (3..5 for the costly rules), n 2..4,
    uniform rewards with some zeros, sizes 1..10, lambda 10^[-1, 1]."""
    m = int(rng.integers(3, 9 if family.cheap else 6))
    n = int(rng.integers(2, 5 if family.cheap else 4))
    normalization = Normalization(("sum", "max")[k % 2])
    raw = rng.uniform(0.0, 1.0, (n, m))
    raw[rng.uniform(size=n) < 0.3, rng.integers(0, m)] = 0.0
    base = Mechanism(rng.dirichlet(np.ones(m)), ("kl", "chi2")[(k // 2) % 2], float(10 ** rng.uniform(-1, 1)))
    truth = Profile(normalization.normalise(raw), rng.integers(1, 11, n).astype(float))
    return make_game(f"tune-{k}", family.mechanism(base), normalization, truth, 10.0)


def holdout_game(rng: np.random.Generator, k: int, family: Family) -> Game:
    """Never tuned on: m 3..6 (3..4 for the costly rules), n 2..4 (2..3), sparse Dirichlet(0.4)
    rewards (sum) or squared-uniform ones (max), real sizes in [1, 8], pi_init Dirichlet(0.5)
    or Dirichlet(5), lambda 10^[-1.3, 0.7], max_size 12."""
    m = int(rng.integers(3, 7 if family.cheap else 5))
    n = int(rng.integers(2, 5 if family.cheap else 4))
    normalization = Normalization(("sum", "max")[k % 2])
    raw = rng.dirichlet(0.4 * np.ones(m), n) if k % 2 == 0 else rng.uniform(0, 1, (n, m)) ** 2
    raw = np.maximum(raw, 0.0)
    raw[raw.sum(axis=1) == 0] = 1.0
    pi_init = rng.dirichlet((0.5, 5.0)[(k // 4) % 2] * np.ones(m))
    pi_init = np.maximum(pi_init, 1e-3)
    pi_init /= pi_init.sum()
    base = Mechanism(pi_init, ("kl", "chi2")[(k // 2) % 2], float(10 ** rng.uniform(-1.3, 0.7)))
    truth = Profile(normalization.normalise(raw), rng.uniform(1.0, 8.0, n).round(3))
    return make_game(f"holdout-{k}", family.mechanism(base), normalization, truth, 12.0)


GENERATORS = {"tune": tune_game, "holdout": holdout_game}


# --------------------------------------------------------------------------------------------
# The independent reference
# --------------------------------------------------------------------------------------------


class Utility:
    """Group ``i``'s gain from the report of contribution ``z`` (rows), from ``outcome``."""

    def __init__(self, game: Game, i: int) -> None:
        self.game, self.i = game, i
        self.w = float(game.max_size or 10.0)
        self.total = game.normalization is Normalization.SUM
        self.truth_utility = float(outcome(game.mechanism, game.truth, game.truth).utilities[i])
        self.calls = 0

    def report(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``z`` (B, m) -> rewards ``z / |z|`` and sizes ``clip(|z|, 1, W)``."""
        z = np.clip(np.atleast_2d(z), 0.0, self.w)
        extent = z.sum(axis=1) if self.total else z.max(axis=1)
        if self.total:
            over = extent > self.w
            z[over] *= (self.w / extent[over])[:, None]
            extent = np.minimum(extent, self.w)
        empty = extent <= 1e-300
        rewards = np.where(empty[:, None], 1.0, z) / np.where(empty, 1.0, extent)[:, None]
        if not self.total:
            rewards = rewards / rewards.max(axis=1, keepdims=True)
        else:
            rewards = rewards / rewards.sum(axis=1, keepdims=True)
        return rewards, np.clip(extent, 1.0, self.w)

    def gains(self, z: np.ndarray) -> np.ndarray:
        rewards, sizes = self.report(z)
        return self.of_reports(rewards, sizes)

    def of_reports(self, rewards: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        truth = self.game.truth
        b = len(sizes)
        all_rewards = np.broadcast_to(truth.rewards, (b, *truth.rewards.shape)).copy()
        all_sizes = np.broadcast_to(truth.sizes, (b, truth.sizes.size)).copy()
        all_rewards[:, self.i] = rewards
        all_sizes[:, self.i] = sizes
        self.calls += b
        result = outcome(
            self.game.mechanism,
            Profile(
                np.broadcast_to(truth.rewards, all_rewards.shape),
                np.broadcast_to(truth.sizes, all_sizes.shape),
            ),
            Profile(all_rewards, all_sizes),
        )
        return np.asarray(result.utilities)[:, self.i] - self.truth_utility

    def __call__(self, z: np.ndarray) -> float:
        return float(self.gains(z)[0])


def _starts(f: Utility, rng: np.random.Generator, randoms: int) -> np.ndarray:
    game, i = f.game, f.i
    m = game.n_outcomes
    caps = np.unique([1.0, float(game.truth.sizes[i]), f.w])
    if f.total:
        corners = np.eye(m)
    else:
        codes = np.arange(1, 2**m)
        corners = ((codes[:, None] >> np.arange(m)) & 1).astype(float)
    vertices = (caps[:, None, None] * corners[None]).reshape(-1, m)
    sizes = rng.uniform(1.0, f.w, randoms)
    if f.total:
        rewards = rng.dirichlet(np.full(m, 0.7), randoms)
    else:
        rewards = rng.uniform(0, 1, (randoms, m)) ** 2
        rewards /= rewards.max(axis=1, keepdims=True)
    truth = game.truth.sizes[i] * game.truth.rewards[i]
    return np.vstack([truth[None], vertices, sizes[:, None] * rewards])


def reference_gain(
    game: Game, i: int, starts: int, rng: np.random.Generator
) -> tuple[float, str, list[float]]:
    """The best gain of methods 1-3 of the module docstring, which found it, and its ``z``."""
    f = Utility(game, i)
    m, w = game.n_outcomes, f.w
    points = _starts(f, rng, 4 * starts)
    values = f.gains(points)
    order = np.argsort(-values, kind="stable")
    k = int(order[0])
    best, how, best_z = (
        float(values[k]),
        "vertex" if 0 < k <= len(points) - 4 * starts else "random",
        points[k],
    )
    if k == 0:
        how = "truth"
    tried: list[np.ndarray] = []
    found: list[tuple[float, np.ndarray]] = [(float(values[j]), points[j]) for j in order[:3]]
    bounds = [(0.0, w)] * m
    constraints = (
        [{"type": "ineq", "fun": lambda z: w - z.sum(), "jac": lambda z: -np.ones_like(z)}] if f.total else []
    )
    for j in order:
        if len(tried) == starts:
            break
        if any(np.abs(points[j] - t).max() < 1e-6 * w for t in tried):
            continue
        tried.append(points[j])
        with np.errstate(all="ignore"):
            res = minimize(
                lambda z: -f(z),
                points[j],
                method="SLSQP",
                bounds=bounds,
                constraints=constraints,
                options={"maxiter": 60 if game.mechanism.training_rule.additive else 15, "ftol": 1e-12},
            )
        value = f(res.x)
        found.append((value, res.x))
        if value > best:
            best, how, best_z = value, "slsqp", res.x
    found.sort(key=lambda t: -t[0])
    evals = 400 if game.mechanism.training_rule.additive else 100
    for _, x0 in found[:3]:
        res = minimize(
            lambda z: -f(z),
            np.clip(x0, 0.0, w),
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxfev": evals, "xatol": 1e-10 * w, "fatol": 1e-14, "adaptive": True},
        )
        value = f(res.x)
        if value > best:
            best, how, best_z = value, "nelder-mead", res.x
    return best, how, [float(v) for v in best_z]


def replay(game: Game, i: int, report: Misreport) -> float:
    """The gain of ``report`` recomputed with ``outcome`` on the game's truth."""
    f = Utility(game, i)
    return float(f.of_reports(report.reward[None], np.array([report.size]))[0])


# --------------------------------------------------------------------------------------------
# The campaign
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    game: Game
    group: int
    true_gain: float
    method: str
    z: tuple[float, ...]


def _search(game: Game, i: int, budget: int, seed: int) -> tuple[float, float]:
    """The search's gain and its replay error."""
    result = search_misreports(game, i, game.mechanism.payment_rule, budget, np.random.default_rng([seed, i]))
    return result.best.gain, abs(replay(game, i, result.best) - result.best.gain)


def references(family: Family, args: argparse.Namespace, cached: dict) -> list[Case]:
    generator = GENERATORS[args.generator]
    cases = []
    games = args.games if family.cheap else max(2, args.games // 2)
    for k in range(games):
        game = generator(np.random.default_rng([args.game_seed, k]), k, family)
        for i in range(game.n_groups):
            key = f"{family.name}:{args.generator}:{args.game_seed}:{k}:{i}"
            if key not in cached:
                rng = np.random.default_rng([args.game_seed, k, i])
                starts = args.starts if family.cheap else max(2, args.starts // 3)
                cached[key] = reference_gain(game, i, starts, rng)
            gain, how, z = cached[key]
            # a MaxMin solve is ~100 SW-Max solves (a barrier method): a shorter strong search
            strong = (args.strong if family.cheap else min(args.strong, 2)) * args.budget
            if strong:
                strong_key = f"{key}:strong{strong}"
                if strong_key not in cached:
                    cached[strong_key] = _search(game, i, strong, 99)[0]
                if cached[strong_key] > gain:
                    gain, how = cached[strong_key], f"search@{strong}"
            if gain > args.min_gain:
                cases.append(Case(game, i, gain, how, tuple(z)))
    return cases


def write_worst(case: Case, ratio: float, directory: Path, family: Family) -> Path:
    """The game with the reference's best report of the worst group, as a replayable file."""
    f = Utility(case.game, case.group)
    z = np.array(case.z)
    rewards, sizes = f.report(z)
    gain = float(f.of_reports(rewards, sizes)[0])
    report = Misreport(
        rewards[0], float(sizes[0]), gain, f"reference ({case.method}; search ratio {ratio:.4f})"
    )
    stem = family.name.replace("/", "-")
    return write_counterexample(case.game, case.group, report, directory / f"{stem}.{case.game.name}.yaml")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="all", help=f"comma-separated, of {', '.join(FAMILIES)}")
    parser.add_argument("--games", type=int, default=8, help="games per family (half for the costly rules)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--generator", choices=tuple(GENERATORS), default="holdout")
    parser.add_argument("--starts", type=int, default=6, help="SLSQP starts of the reference")
    parser.add_argument("--game-seed", type=int, default=2026)
    parser.add_argument("--strong", type=int, default=5, help="the search at this many budgets (0: none)")
    parser.add_argument("--min-gain", type=float, default=1e-6, help="groups with a gain above this count")
    parser.add_argument("--quick", action="store_true", help="4 games per family, one seed")
    parser.add_argument("--cache", type=Path, help="read/write the reference gains here (JSON)")
    parser.add_argument("--worst", type=Path, help="write each family's worst group here as a game file")
    parser.add_argument("--show", type=int, default=3, help="print this many of the worst groups")
    args = parser.parse_args()
    if args.quick:
        args.games, args.seeds = 4, "0"
    seeds = [int(s) for s in args.seeds.split(",")]
    names = list(FAMILIES) if args.families == "all" else args.families.split(",")
    print(machine())
    print(f"generator {args.generator}, budget {args.budget}, seeds {seeds}")
    cached = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    table = []
    overall_share, overall_worst, replay_failures, total = 1.0, np.inf, 0, 0
    for name in names:
        family = FAMILIES[name]
        start = time.perf_counter()
        cases = references(family, args, cached)
        if args.cache:
            args.cache.write_text(json.dumps(cached))
        reference_s = time.perf_counter() - start
        share, worst, worst_case = 1.0, np.inf, None
        start = time.perf_counter()
        for seed in seeds:
            ratios = []
            for c in cases:
                gain, error = _search(c.game, c.group, args.budget, seed)
                replay_failures += error > REPLAY_TOL
                ratios.append(gain / c.true_gain)
            ratios_a = np.array(ratios) if ratios else np.ones(1)
            share = min(share, float(np.mean(ratios_a >= 0.99)))
            if ratios and ratios_a.min() < worst:
                worst, worst_case = float(ratios_a.min()), (cases[int(np.argmin(ratios_a))], seed)
            for j in np.argsort(ratios_a)[: args.show] if ratios else []:
                c = cases[j]
                if ratios_a[j] < 0.99:
                    print(
                        f"    {name} seed {seed}: {c.game.name} g{c.group}: {ratios_a[j]:.4f} "
                        f"({c.game.mechanism.divergence.name}, {c.game.normalization}, "
                        f"m={c.game.n_outcomes}, n={c.game.n_groups}, true {c.true_gain:.4g} by {c.method})"
                    )
        total += len(cases)
        overall_share, overall_worst = min(overall_share, share), min(overall_worst, worst)
        table.append((name, len(cases), share, worst))
        print(
            f"{name:<26} groups {len(cases):>3}  share>=0.99 {share:7.1%}  worst {worst:.4f}  "
            f"(reference {reference_s:.0f} s, search {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        if args.worst and worst_case is not None:
            path = write_worst(worst_case[0], worst, args.worst, family)
            print(f"    worst written to {path}")
    print("\n| mechanism | groups with a gain | share >= 0.99 of reference | worst ratio |")
    print("|---|---|---|---|")
    for name, groups, share, worst in table:
        print(f"| {name} | {groups} | {share:.1%} | {worst:.4f} |")
    print(f"replays off by more than {REPLAY_TOL:g}: {replay_failures}")
    print(
        result_line(
            groups=total,
            share_099=overall_share,
            worst=overall_worst,
            replay_failures=replay_failures,
            seeds=len(seeds),
            budget=args.budget,
        )
    )


if __name__ == "__main__":
    main()
