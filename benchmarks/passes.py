"""Benchmark: passes over the scores per Newton solve, over random problems (issue #6).

Issue #6 asks for at most 8 passes over the data per solve for the divergences without a
closed form (chi^2, Hellinger, reverse KL, JS). ``solver.py`` counts them on its one
benchmark game; this script counts them over many problems from the regimes where the
multiplier iteration is slowest (``tests/cases.random_multiplier_problem``): scores
uniform, normal, exponential or tied; pi_init uniform, Dirichlet(1), Dirichlet(0.05) or
log-uniform down to 1e-300 (``extreme``); lambda log-uniform over 1e-6 .. 1e6; m from 2
to 10^4. Passes are ``SolveResult.nit`` (the histogram start of chi^2 included). Every
solve must converge (status and KKT residual); the script exits 1 otherwise.

It prints, per divergence and pi_init family, the mean and the worst passes and how many
problems needed more than 8, then the settings of the worst problem.

Run::

    python benchmarks/passes.py            # 1,000 problems (about a minute)
    python benchmarks/passes.py --quick    # 200 problems, m <= 1,000 (seconds)

The last line is machine-readable: ``RESULT chi2_worst_passes=... ...``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import machine, result_line
from cases import PI_INIT_FAMILIES, random_multiplier_problem

from rlhf_mech.core import kkt_residual, solve_sw_max

NEWTON = ("chi2", "hellinger", "reverse_kl", "js")
#: A solve whose KKT residual exceeds this counts as a failure (relative to max(1, |y|)).
KKT_LIMIT = 1e-8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 problems, m <= 1,000")
    parser.add_argument("--problems", type=int, default=None, help="default 1,000 (200 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = args.problems or (200 if args.quick else 1000)
    sizes = (2, 10, 100, 1000) if args.quick else (2, 10, 100, 1000, 10_000)

    rng = np.random.default_rng(args.seed)
    draw = lambda: random_multiplier_problem(rng, sizes=sizes, pi_init_families=PI_INIT_FAMILIES)  # noqa: E731
    problems = [draw() for _ in range(count)]
    print(f"machine: {machine()}")
    print(f"{count} problems, m in {sizes}, lambda 1e-6 .. 1e6, seed {args.seed}")
    print(
        "{:<11} {:<17} {:>5} {:>6} {:>6} {:>5}".format(
            "divergence", "pi_init", "count", "mean", "worst", "> 8"
        )
    )
    fields: dict[str, object] = {}
    failures = 0
    for name in NEWTON:
        passes = np.empty(count, dtype=int)
        for k, p in enumerate(problems):
            result = solve_sw_max(p.scores, p.pi_init, name, p.lam)
            passes[k] = result.nit
            residual = float(np.max(kkt_residual(result, p.scores, p.pi_init, name, p.lam)))
            if not result.success or residual > KKT_LIMIT:
                failures += 1
                where = f"m={p.scores.size}, lambda={p.lam:.3g}, {p.score_family}, {p.pi_init_family}"
                print(f"FAILED {name}: {result.message}, KKT {residual:.1e}, {where}")
        for family in PI_INIT_FAMILIES:
            mine = passes[[p.pi_init_family == family for p in problems]]
            if mine.size:
                row = (name, family, mine.size, mine.mean(), mine.max(), int((mine > 8).sum()))
                print("{:<11} {:<17} {:>5d} {:>6.2f} {:>6d} {:>5d}".format(*row))
        regular = passes[[p.pi_init_family != "extreme" for p in problems]]
        worst = problems[int(np.argmax(passes))]
        print(
            f"{'':11} worst: {passes.max()} passes at m={worst.scores.size}, lambda={worst.lam:.3g}, "
            f"scores {worst.score_family}, pi_init {worst.pi_init_family}"
        )
        fields[f"{name}_worst_passes"] = int(regular.max())
        fields[f"{name}_worst_passes_extreme"] = int(passes.max())
        fields[f"{name}_mean_passes"] = float(passes.mean())
    fields["failures"] = failures
    print("worst_passes: pi_init uniform or Dirichlet; _extreme: also pi_init down to 1e-300")
    print(result_line(problems=count, **fields))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
