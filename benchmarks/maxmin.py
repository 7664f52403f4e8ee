"""Benchmark: the MaxMin training rule against a CVXPY model of the same problem (issue 25).

The problem: ``max_pi min_i <pi, rm_i> - lambda D(pi || pi_init)`` over the simplex
(``maxmin``, ``over: agents``), on the tests' random games (``_common.make_problem``:
max-normalised rewards U[0, 1] with exact zeros, Dirichlet(1) ``pi_init``, lambda = 1).
The library solves it through its dual (``solve_fair``: projected Newton on the simplex,
``core/_duals.py``); CVXPY is handed the primal as a researcher would write it, an epigraph
variable ``t <= <pi, rm_i>`` and the divergence (KL by ``rel_entr``: exponential cones;
chi^2 as a QP), solved by Clarabel at ``--tol`` (default 1e-10; ``max_step_fraction`` 0.9, as
in ``vs_cvxpy.py``). Each CVXPY solve runs in a subprocess killed after ``--cap`` seconds
(default 60): a size it does not finish in time is shown as such, and larger m are not tried
for that n. The library's time is the best of ``--repeat`` runs (interleaved with CVXPY's
where both run); the answers must agree: objective within ``--agree`` (default 1e-7), or the
script exits 1.

Run::

    pip install -e '.[bench]'
    python benchmarks/maxmin.py               # m = 10^3 .. 10^6, n = 4, 16, 64
    python benchmarks/maxmin.py --quick       # m = 10^3, 10^4; n = 4, 16, 64
    python benchmarks/maxmin.py --ms 1000 --ns 4,64 --divergences kl

The last line is machine-readable: ``RESULT min_speedup_kl=... finished_1e6_64=...``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
from _common import machine, make_problem, result_line

from rlhf_mech.core._fair import solve_fair


def ours(problem, divergence: str) -> tuple[float, float]:
    """(objective, seconds) of the library's MaxMin solve."""
    start = time.perf_counter()
    solution = solve_fair("maxmin", problem.rewards, problem.sizes, problem.pi_init, divergence, problem.lam)
    seconds = time.perf_counter() - start
    if int(solution.solve.status) != 0:
        raise RuntimeError(f"the library's MaxMin did not converge ({divergence})")
    return float(solution.solve.value), seconds


def cvxpy_maxmin(problem, divergence: str, tol: float) -> float:
    """The objective of the CVXPY/Clarabel MaxMin model (module docstring)."""
    import cvxpy as cp

    r, q, lam = problem.rewards, problem.pi_init, problem.lam
    pi, t = cp.Variable(r.shape[1]), cp.Variable()
    if divergence == "kl":
        penalty = cp.sum(cp.rel_entr(pi, q))
    else:
        penalty = cp.sum(cp.multiply(1.0 / q, cp.square(pi - q)))
    constraints = [cp.sum(pi) == 1, r @ pi >= t] + ([] if divergence == "kl" else [pi >= 0])
    model = cp.Problem(cp.Maximize(t - lam * penalty), constraints)
    tolerances = dict(tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, tol_ktratio=min(1e-8, 100 * tol))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.solve(solver=cp.CLARABEL, max_step_fraction=0.9, **tolerances)
    if model.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"CVXPY/Clarabel: {model.status}")
    return float(model.solution.opt_val)


def child(n: int, m: int, divergence: str, tol: float) -> None:
    """One CVXPY solve, timed after a warm-up on a tiny game (imports); prints JSON."""
    cvxpy_maxmin(make_problem(n, 20), divergence, tol)
    problem = make_problem(n, m)
    start = time.perf_counter()
    value = cvxpy_maxmin(problem, divergence, tol)
    print(json.dumps({"seconds": time.perf_counter() - start, "value": value}))


def cvxpy_timed(n: int, m: int, divergence: str, tol: float, cap: float) -> dict[str, float] | None:
    """CVXPY's (value, seconds) in a subprocess; ``None`` past ``cap`` seconds or on failure."""
    command = [
        sys.executable,
        __file__,
        "--child",
        f"{n},{m}",
        "--divergences",
        divergence,
        "--tol",
        str(tol),
    ]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=cap, check=True).stdout
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return None
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ms", default="1000,10000,100000,1000000")
    parser.add_argument("--ns", default="4,16,64")
    parser.add_argument("--divergences", default="kl,chi2")
    parser.add_argument("--tol", type=float, default=1e-10)
    parser.add_argument("--agree", type=float, default=1e-7)
    parser.add_argument("--cap", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="m = 10^3, 10^4")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    divergences = args.divergences.split(",")
    if args.child:
        n, m = (int(x) for x in args.child.split(","))
        child(n, m, divergences[0], args.tol)
        return 0
    ms = [1000, 10000] if args.quick else [int(x) for x in args.ms.split(",")]
    ns = [int(x) for x in args.ns.split(",")]
    print(f"machine: {machine()}")
    print(f"{'div':>5} {'n':>3} {'m':>9} {'ours s':>9} {'cvxpy s':>9} {'speedup':>8} {'|dobj|':>9}")
    fields: dict[str, float] = {}
    failed = False
    for divergence in divergences:
        speedups = []
        for n in ns:
            cvxpy_on = True
            for m in ms:
                problem = make_problem(n, m)
                ours(problem, divergence)  # warm-up: imports, caches
                runs = [ours(problem, divergence) for _ in range(args.repeat)]
                value, seconds = runs[0][0], min(t for _, t in runs)
                theirs = cvxpy_timed(n, m, divergence, args.tol, args.cap) if cvxpy_on else None
                if theirs is None:
                    said = "> cap" if cvxpy_on else "not run"  # not above a size it did not finish
                    cvxpy_on = False
                    print(f"{divergence:>5} {n:>3} {m:>9,} {seconds:>9.4f} {said:>9} {'':>8} {'':>9}")
                else:
                    difference = abs(theirs["value"] - value)
                    speedup = theirs["seconds"] / seconds
                    speedups.append(speedup)
                    failed |= difference > args.agree * (1.0 + abs(value))
                    print(
                        f"{divergence:>5} {n:>3} {m:>9,} {seconds:>9.4f} {theirs['seconds']:>9.3f} "
                        f"{speedup:>8.1f} {difference:>9.1e}",
                        flush=True,
                    )
                fields[f"ours_{divergence}_{n}_{m}"] = seconds
        if speedups:
            fields[f"min_speedup_{divergence}"] = min(speedups)
    if failed:
        print(f"FAILED: an objective differs from CVXPY's by more than {args.agree:g}")
    print(result_line(**fields))
    return 1 if failed else 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
