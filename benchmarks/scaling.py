"""Benchmark: how the mechanism's time grows with the outcomes m and the groups n.

Times the mechanism (``solve_sw_max`` + ``affine_maximizer_payments``, truthful reports,
the tests' random games, lambda = 1) against m at fixed n, and against n at fixed m, each
point with the KL floor of ``benchmarks/solver.py`` measured alongside it (interleaved,
best of ``--repeat``). The work is one pass over the n x m rewards with one exponential per
entry, so the time should grow linearly in n * m: the script fits the slope of
log(time) against log(n * m) by least squares, over the points with n * m >= 10^6 (where
fixed per-call costs no longer matter), over every point, and along each sweep alone.

Run::

    python benchmarks/scaling.py            # m = 10^3 .. 10^7 (n = 8), n = 2 .. 256 (m = 10^5)
    python benchmarks/scaling.py --quick    # m = 10^3 .. 10^5, n = 2 .. 32 (seconds)
    python benchmarks/scaling.py --divergence chi2

The last line is machine-readable: ``RESULT scaling_slope=... scaling_slope_all=... ...``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import floor_functions, interleaved_best, machine, make_problem, mechanism, result_line


def measure(n: int, m: int, divergence: str, lam: float, repeat: int) -> dict[str, float]:
    problem = make_problem(n, m, lam)
    # small problems take microseconds: more repeats there, so the best is a clean figure
    reps = repeat if n * m >= 10**6 else max(repeat, int(3 * 10**6 / (n * m)) // 10 + repeat)
    floor = floor_functions(problem)["floor_prealloc"]
    return interleaved_best(
        {"floor": floor, "mechanism": lambda: mechanism(problem, divergence)}, min(reps, 200)
    )


def slope(points: list[tuple[int, int, float]], least: int = 0) -> float:
    """Least-squares slope of log(time) on log(n m) over the points with n m >= ``least``."""
    chosen = [(n * m, t) for n, m, t in points if n * m >= least]
    if len(chosen) < 2:
        return float("nan")
    x = np.log([c[0] for c in chosen])
    y = np.log([c[1] for c in chosen])
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="m up to 10^5, n up to 32")
    parser.add_argument("--divergence", default="kl")
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n-fixed", type=int, default=8, help="n of the sweep over m")
    parser.add_argument("--m-fixed", type=int, default=100_000, help="m of the sweep over n")
    args = parser.parse_args()
    ms = [10**k for k in range(3, 6 if args.quick else 8)]
    ns = [2**k for k in range(1, 6 if args.quick else 9)]
    m_fixed = 10_000 if args.quick else args.m_fixed

    print(f"machine: {machine()}")
    print(f"divergence {args.divergence}, lambda = {args.lam}")
    print("/floor: over np.exp into a preallocated (n+1) x m array + w @ R, measured alongside")
    print(f"{'n':>5} {'m':>10} {'n*m':>11} {'time s':>10} {'ns/entry':>9} {'/floor':>7}")
    points: list[tuple[int, int, float]] = []
    grid = [(args.n_fixed, m) for m in ms] + [
        (n, m_fixed) for n in ns if (n, m_fixed) != (args.n_fixed, m_fixed)
    ]
    for n, m in dict.fromkeys(grid):
        t = measure(n, m, args.divergence, args.lam, args.repeat)
        mech = t["mechanism"]
        points.append((n, m, mech))
        per_entry = mech / ((n + 1) * m) * 1e9
        print(f"{n:>5} {m:>10,} {n * m:>11,} {mech:>10.5f} {per_entry:>9.2f} {mech / t['floor']:>7.2f}")
    big = 10**6 if not args.quick else 10**5
    s_big, s_all = slope(points, big), slope(points)
    # each sweep alone, past the sizes where fixed per-call costs dominate
    s_m = slope([p for p in points if p[0] == args.n_fixed and p[1] >= big // 10])
    s_n = slope([p for p in points if p[1] == m_fixed and p[0] * m_fixed >= big // 2])
    print(f"log-log slope of time on n*m: {s_big:.3f} over n*m >= {big:,}; {s_all:.3f} over all points")
    print(f"  along m alone (n = {args.n_fixed}, m >= {big // 10:,}): {s_m:.3f}", end="; ")
    print(f"along n alone (m = {m_fixed:,}, n*m >= {big // 2:,}): {s_n:.3f}")
    fields = dict(scaling_slope=s_big, scaling_slope_all=s_all, scaling_slope_m=s_m, scaling_slope_n=s_n)
    print(result_line(divergence=args.divergence, **fields, from_nm=big))


if __name__ == "__main__":
    main()
