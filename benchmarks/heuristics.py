"""Benchmark: what section 4.4's cheap payments cost in incentives, against the training budget.

For random games (KL and chi^2, m 4..8 outcomes, n 2..4 groups, lambda 10^[-1, 1]) and a
grid of training budgets T (the model run of ``rlhf_mech.core.mirror_ascent``, step size
0.5, Heuristic 1 with a checkpoint every max(1, T // 5) steps), it tabulates per payment rule:

* ``dsic_gain``: the largest utility gain over truth the audit's best-response search finds
  (the others truthful; ``--budget`` evaluations per group), over all groups and games;
* ``negative``: the share of payments below -1e-12, over the truthful profiles and the
  reports the search evaluated (Heuristic 2 may charge less than nothing);
* ``gap``: the largest ``|p_i - p^AFF_i|`` at the truthful profile.

It prints one table per rule, writes the plot (``--plot``, default
``benchmarks/heuristics.png``; needs matplotlib) and ends with a ``RESULT`` line.

Run::

    python benchmarks/heuristics.py [--games 20] [--budget 100] [--steps 1,2,5,10,20,50,100] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, result_line

from rlhf_mech.analysis import search_misreports
from rlhf_mech.core import (
    AFFINE_MAXIMIZER,
    EARLY_STOPPED,
    INTERMEDIATE_CHECKPOINTS,
    Game,
    Mechanism,
    Normalization,
    PaymentRule,
    Profile,
    solve,
)

RULES = (INTERMEDIATE_CHECKPOINTS, EARLY_STOPPED)


def random_game(rng: np.random.Generator, k: int) -> Game:
    m, n = int(rng.integers(4, 9)), int(rng.integers(2, 5))
    rewards = Normalization.SUM.normalise(rng.uniform(0.05, 1.0, (n, m)))
    truth = Profile(rewards, rng.integers(1, 11, n).astype(float))
    mechanism = Mechanism(rng.dirichlet(np.ones(m)), ("kl", "chi2")[k % 2], float(10 ** rng.uniform(-1, 1)))
    return Game(
        name=f"random-{k}",
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=tuple(f"g{i}" for i in range(n)),
        mechanism=mechanism,
        normalization=Normalization.SUM,
        truth=truth,
        reports=truth,
        max_size=10.0,
    )


def configured(rule: PaymentRule, steps: int) -> PaymentRule:
    settings = {"steps": steps, "step_size": 0.5}
    if any(p.name == "checkpoint_every" for p in rule.schema):
        settings["checkpoint_every"] = max(1, steps // 5)
    return rule.with_parameters(**settings)


def measure(games: list[Game], rule: PaymentRule, budget: int, seed: int) -> tuple[float, float, float]:
    gains, negatives, payments, gap = [], 0, 0, 0.0
    for k, game in enumerate(games):
        exact = solve(game, AFFINE_MAXIMIZER).truthful.payments
        truthful = solve(game, rule).truthful.payments
        gap = max(gap, float(np.abs(truthful - exact).max()))
        negatives += int(np.sum(truthful < -1e-12))
        payments += truthful.size
        for i in range(game.n_groups):
            result = search_misreports(game, i, rule, budget, np.random.default_rng([seed, k, i]))
            gains.append(result.best.gain)
            negatives += int(result.min_payment < -1e-12)
            payments += 1
    return float(max(gains)), negatives / payments, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--steps", default="1,2,5,10,20,50,100")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path(__file__).resolve().parent / "heuristics.png")
    parser.add_argument("--quick", action="store_true", help="6 games, T in 1,5,20,100, budget 60")
    args = parser.parse_args()
    if args.quick:
        args.games, args.steps, args.budget = 6, "1,5,20,100", 60
    budgets = [int(t) for t in args.steps.split(",")]
    rng = np.random.default_rng(args.seed)
    games = [random_game(rng, k) for k in range(args.games)]
    print(machine())
    print(f"{args.games} random games (KL, chi2; m 4..8; n 2..4), search budget {args.budget}")
    start = time.perf_counter()
    exact = measure(games, AFFINE_MAXIMIZER, args.budget, args.seed)
    print(f"affine_maximizer (exact eq. 1): largest DSIC gain {exact[0]:+.2e}, negative share {exact[1]:.3f}")
    table: dict[str, list[tuple[float, float, float]]] = {}
    for rule in RULES:
        rows = [measure(games, configured(rule, t), args.budget, args.seed) for t in budgets]
        table[rule.name] = rows
        print(f"\n{rule.name} ({rule.reference})")
        print(f"{'T':>6} {'dsic_gain':>12} {'negative':>9} {'gap':>12}")
        for t, (gain, negative, gap) in zip(budgets, rows, strict=True):
            print(f"{t:>6} {gain:>+12.3e} {negative:>9.3f} {gap:>12.3e}")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: no plot")
    else:
        fig = Figure(figsize=(11, 3.4), layout="constrained")
        axes = fig.subplots(1, 3)
        labels = ("largest DSIC gain found", "share of negative payments", "max |p - p^AFF| (truthful)")
        for col, (ax, label) in enumerate(zip(axes, labels, strict=True)):
            for rule in RULES:
                values = np.array([row[col] for row in table[rule.name]])
                ax.plot(
                    budgets, np.maximum(values, 1e-17) if col != 1 else values, marker="o", label=rule.name
                )
            ax.set_xscale("log")
            if col != 1:
                ax.set_yscale("log")
            ax.set_xlabel("training steps T")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle("Section 4.4's heuristic payments against the training budget (random games)")
        fig.savefig(args.plot, dpi=110)
        print(f"plot written to {args.plot}")
    h1, h2 = table["intermediate_checkpoints"][-1], table["early_stopped"][-1]
    print(
        result_line(
            games=args.games,
            h1_dsic_gain=h1[0],
            h1_gap=h1[2],
            h2_dsic_gain=h2[0],
            h2_negative=table["early_stopped"][0][1],
            h2_gap=h2[2],
            steps=budgets[-1],
        )
    )


if __name__ == "__main__":
    main()
