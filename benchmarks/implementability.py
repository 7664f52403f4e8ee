"""Benchmark: ``rlhf-mech implementability`` time against the number of types K (issue 13).

On a typical game (``games/chi2_three_groups.yaml``: 5 outcomes, 3 groups, chi^2) the group
``writers`` gets ``K - 1`` random types (plus its true type), and the whole analysis runs:
K training solves in one batch, the (K, m) x (m, K) gain matrix, Bellman-Ford on the complete
digraph (scipy, O(K^3)), the DSIC check and p^AFF. Under SW-Max the rule is monotone (the
full Bellman-Ford runs to the end); under MaxMin a negative cycle is found, by the numpy
search after scipy's detection (``--graph numpy``: the numpy search alone, which stops as
soon as it sees the cycle). K doubles until one run takes longer than ``--budget`` seconds
(or reaches ``--max-k``); one more run between the last two, at the K a cubic fit of the
last time puts at 95% of the budget, refines the largest K within the budget.

Run::

    python benchmarks/implementability.py            # K = 50 .. until a run passes 60 s
    python benchmarks/implementability.py --quick    # K <= 400
    python benchmarks/implementability.py --rules sw_max --budget 30

The last line is machine-readable: ``RESULT sw_max_largest_k=... maxmin_largest_k=...``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from _common import machine, result_line

from rlhf_mech.analysis import implementability, type_set
from rlhf_mech.core import Game, get_payment_rule, get_training_rule
from rlhf_mech.files import load_game

GAME = Path(__file__).resolve().parent.parent / "games" / "chi2_three_groups.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds one run may take")
    parser.add_argument("--start", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="stop at K = 400")
    parser.add_argument(
        "--max-k", type=int, default=12800, help="stop doubling here (memory ~6 K^2 doubles: 8 GB at 12800)"
    )
    parser.add_argument("--rules", default="sw_max,maxmin")
    parser.add_argument("--graphs", default="scipy,numpy", help="shortest-path methods to time")
    args = parser.parse_args()
    print(machine())
    base = load_game(GAME)
    results: dict[str, int] = {}
    for name, graph in ((r, g) for r in args.rules.split(",") for g in args.graphs.split(",")):
        rule = get_training_rule(name)
        payment = base.mechanism.payment_rule if rule.additive else get_payment_rule("none")
        game = dataclasses.replace(
            base, mechanism=dataclasses.replace(base.mechanism, training_rule=rule, payment_rule=payment)
        )
        print(f"\n{name}, graph {graph}: K, seconds (all), seconds in the K solves, verdict")

        def run(k: int, game: Game = game, graph: str = graph) -> float:
            types = type_set(game, 0, "random", k - 1, seed=0, max_types=10**6)
            result = implementability(game, 0, types, graph=graph)
            verdict = "monotone" if result.monotone else f"cycle of {result.cycle.size}"  # type: ignore[union-attr]
            print(f"  K = {result.K:6d}  {result.seconds:9.3f} s  {result.solve_seconds:8.3f} s  {verdict}")
            return result.seconds

        largest, last, k = 0, 0.0, args.start
        while True:
            seconds = run(k)
            if seconds > args.budget:
                break
            largest, last = k, seconds
            if (args.quick and k >= 400) or 2 * k > args.max_k:
                break
            k *= 2
        if not args.quick and largest and last > 0.5:  # one step between: K^3 from the last fit
            guess = int(largest * (args.budget / last) ** (1 / 3) * 0.95)
            if largest < guess < min(k, args.max_k) and seconds > args.budget and run(guess) <= args.budget:
                largest = guess
        print(f"  largest K within {args.budget:g} s: {largest}")
        results[f"{name}_{graph}_largest_k"] = largest
    print(result_line(**results))


if __name__ == "__main__":
    main()
