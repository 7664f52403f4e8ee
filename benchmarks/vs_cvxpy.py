"""Benchmark: the mechanism against what a researcher would otherwise write, a CVXPY model.

The CVXPY side does the whole mechanism as a researcher would write it: the problem
``max_pi <s, pi> - lambda D(pi || pi_init)`` over the simplex, built and solved 1 + n times,
for the scores ``s = w @ R`` and each leave-one-out ``s - w_i R_i``; payments by eq. (1)
from those optimal values and the full problem's ``pi``. (A parametrised DPP problem,
compiled once, is no faster at m = 2,000, 4x slower at m = 16,000, and at m = 32,000 its
canonicalisation needs more than the box's 24 GiB.) The models:

* KL through the exponential cone: ``lambda * sum(rel_entr(pi, pi_init))``;
* chi^2 as a QP: ``lambda * sum((pi - pi_init)^2 / pi_init)``;
* TV as an LP: ``lambda * ||pi - pi_init||_1``.

All are solved by Clarabel with ``tol_gap_abs = tol_gap_rel = tol_feas = --tol`` (default
1e-12; ``tol_ktratio`` 1e-10) and ``max_step_fraction = 0.9``: with the default 0.99,
Clarabel stops with "insufficient progress" on 3 of the 9 KL problems of the default game
(score spread ~36 at lambda = 1, so pi spans ~e^-36), and on 6 of 9 at m = 16,000; at
tolerance 1e-10 its KL payments are off by ~4e-7. The optimal values are the solver's
(``solution.opt_val``): CVXPY's ``problem.value`` re-evaluates ``rel_entr`` at a ``pi``
with entries of -1e-12 and returns -inf. The answers must agree with the library's to ``--agree``
(default 1e-7, absolute): ``pi``, the optimal value and every payment; otherwise the script
says so and exits 1.

Two figures: the speed ratio at m = 2,000, n = 8 (best of ``--repeat`` CVXPY runs against
the best of as many library runs, interleaved), and the largest m for which the CVXPY
mechanism (1 + n solves) finishes within ``--cap`` seconds, searched by doubling m from
2,000, each try in a fresh subprocess (warmed up on a tiny game, then timed) killed at the
cap (skipped with ``--quick``). The search asks for speed, not digits: it runs Clarabel at
its default tolerances (``--search-tol 1e-8``) and accepts ``optimal_inaccurate``: at 1e-12
Clarabel stops short of the tolerance (``optimal_inaccurate``) on larger KL games.

Run::

    pip install -e '.[bench]'
    python benchmarks/vs_cvxpy.py            # about 5 minutes, most of it the m search
    python benchmarks/vs_cvxpy.py --quick    # seconds: m = 2,000, KL/chi2/TV, no search

The last line is machine-readable: ``RESULT cvxpy_speedup=... cvxpy_largest_m=... ...``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
from _common import Problem, interleaved_best, machine, make_problem, mechanism, result_line

DIVERGENCES = ("kl", "chi2", "tv")


def cvxpy_mechanism(
    problem: Problem, divergence: str, tol: float, strict: bool = True
) -> tuple[np.ndarray, float, np.ndarray]:
    """``(pi, value, payments)`` from 1 + n CVXPY problems, one per score vector.

    ``strict``: anything but ``optimal`` raises; otherwise ``optimal_inaccurate`` passes too.
    """
    import cvxpy as cp

    r, w, q, lam = problem.rewards, problem.sizes, problem.pi_init, problem.lam
    n, m = r.shape
    tolerances = dict(tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, tol_ktratio=min(1e-8, 100 * tol))
    options = dict(tolerances, max_step_fraction=0.9)
    s = w @ r
    values = np.empty(n + 1)
    pi_full = None
    for k in range(n + 1):
        scores = s if k == 0 else s - w[k - 1] * r[k - 1]
        pi = cp.Variable(m)
        if divergence == "kl":
            penalty = cp.sum(cp.rel_entr(pi, q))  # sum pi log(pi / q)
        elif divergence == "chi2":
            penalty = cp.sum(cp.multiply(1.0 / q, cp.square(pi - q)))
        elif divergence == "tv":
            penalty = cp.norm1(pi - q)
        else:
            raise ValueError(divergence)
        constraints = [cp.sum(pi) == 1] + ([] if divergence == "kl" else [pi >= 0])
        model = cp.Problem(cp.Maximize(scores @ pi - lam * penalty), constraints)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.solve(solver=cp.CLARABEL, **options)
        if model.status != cp.OPTIMAL and (strict or model.status != cp.OPTIMAL_INACCURATE):
            raise RuntimeError(f"CVXPY/Clarabel: {model.status} ({divergence}, problem {k})")
        values[k] = model.solution.opt_val
        if k == 0:
            pi_full = np.asarray(pi.value, dtype=float).copy()
    payments = values[1:] - (values[0] - w * (r @ pi_full))
    return pi_full, float(values[0]), payments


def compare(problem: Problem, divergence: str, tol: float) -> dict[str, float]:
    """Largest absolute differences between the library's and CVXPY's answers."""
    solution, payment = mechanism(problem, divergence)
    pi, value, payments = cvxpy_mechanism(problem, divergence, tol)
    return {
        "pi": float(np.max(np.abs(pi - solution.pi))),
        "value": abs(value - float(solution.value)),
        "payments": float(np.max(np.abs(payments - payment.payments))),
    }


def child(m: int, n: int, divergence: str, tol: float, lam: float) -> None:
    """One timed CVXPY mechanism (the doubling search runs this in a subprocess)."""
    cvxpy_mechanism(make_problem(n, 50, lam), divergence, tol, strict=False)  # warm up: imports
    problem = make_problem(n, m, lam)
    t0 = time.perf_counter()
    try:
        cvxpy_mechanism(problem, divergence, tol, strict=False)
        error = None
    except Exception as err:  # the solver gave up: report when, as a failure
        error = f"{type(err).__name__}: {err}"
    print(json.dumps({"seconds": time.perf_counter() - t0, "error": error}))


def largest_m(n: int, divergence: str, tol: float, lam: float, cap: float, start: int) -> tuple[int, float]:
    """Largest m (doubling from ``start``) whose CVXPY mechanism finishes within ``cap`` s."""
    best_m, best_t, m = 0, float("nan"), start
    while True:
        cmd = [sys.executable, __file__, "--child", str(m), "--n", str(n), "--tol", str(tol)]
        cmd += ["--lam", str(lam), "--divergences", divergence]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, check=True).stdout
        except subprocess.TimeoutExpired:
            print(f"  m = {m:>9,}: over {cap:.0f} s (stopped)")
            return best_m, best_t
        except subprocess.CalledProcessError as err:  # e.g. killed for memory
            print(
                f"  m = {m:>9,}: exit status {err.returncode} {(err.stderr or '').strip().splitlines()[-1:]}"
            )
            return best_m, best_t
        report = json.loads(out.strip().splitlines()[-1])
        seconds = report["seconds"]
        if report["error"]:
            print(f"  m = {m:>9,}: the solver failed after {seconds:.1f} s ({report['error'][:90]})")
            return best_m, best_t
        print(f"  m = {m:>9,}: {seconds:7.2f} s")
        if seconds > cap:  # finished, but past the cap (the timeout counts the start-up too)
            return best_m, best_t
        best_m, best_t = m, seconds
        m *= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="no largest-m search")
    parser.add_argument("--m", type=int, default=2000)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=1e-12, help="Clarabel gap and feasibility tolerances")
    parser.add_argument("--agree", type=float, default=1e-7, help="required absolute agreement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds allowed to one CVXPY mechanism")
    parser.add_argument("--search-tol", type=float, default=1e-8, help="Clarabel tolerances of the m search")
    parser.add_argument("--divergences", default=",".join(DIVERGENCES))
    parser.add_argument("--search", default="kl", help="divergences for the largest-m search")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.divergences.split(",")
    if args.child is not None:
        child(args.child, args.n, names[0], args.tol, args.lam)
        return

    import cvxpy as cp

    problem = make_problem(args.n, args.m, args.lam)
    print(f"machine: {machine()}")
    print(f"cvxpy {cp.__version__}, Clarabel: tol_gap_abs = tol_gap_rel = tol_feas = {args.tol:g}, ", end="")
    print("max_step_fraction = 0.9")
    print(f"problem: n = {args.n} groups, m = {args.m:,} outcomes, lambda = {args.lam}; CVXPY: 1 + n solves")
    head = ("divergence", "cvxpy s", "ours s", "speedup", "|d pi|", "|d V|", "|d p|")
    print("{:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}".format(*head))
    fields: dict[str, object] = {}
    agree = True
    for name in names:
        diff = compare(problem, name, args.tol)
        ours_reps = max(args.repeat, 20)  # ours takes milliseconds: more repeats, same interleaving
        times = interleaved_best(
            {
                "cvxpy": lambda name=name: cvxpy_mechanism(problem, name, args.tol),
                "ours": lambda name=name, k=ours_reps: [mechanism(problem, name) for _ in range(k)],
            },
            args.repeat,
        )
        ours = times["ours"] / ours_reps
        speedup = times["cvxpy"] / ours
        ok = max(diff.values()) <= args.agree
        agree &= ok
        print(
            f"{name:<11} {times['cvxpy']:>9.3f} {ours:>9.5f} {speedup:>9.0f} "
            f"{diff['pi']:>9.1e} {diff['value']:>9.1e} {diff['payments']:>9.1e}{'' if ok else '  DISAGREE'}"
        )
        fields[f"{name}_speedup"] = speedup
        fields[f"{name}_max_diff"] = max(diff.values())
    if "kl" in names:
        fields = {"cvxpy_speedup": fields["kl_speedup"], **fields}
    if not args.quick:
        for name in args.search.split(","):
            print(
                f"largest m the CVXPY mechanism ({name}, n = {args.n}) finishes in {args.cap:.0f} s ", end=""
            )
            print(f"(Clarabel tolerances {args.search_tol:g}, optimal_inaccurate accepted):")
            m_max, seconds = largest_m(args.n, name, args.search_tol, args.lam, args.cap, args.m)
            big = make_problem(args.n, m_max, args.lam) if m_max else None
            ours = float("nan")
            if big is not None:
                ours = interleaved_best({"ours": lambda big=big, name=name: mechanism(big, name)}, 3)["ours"]
            print(f"  -> m = {m_max:,}: CVXPY {seconds:.1f} s, ours {ours:.4f} s ({seconds / ours:.0f}x)")
            key = "cvxpy_largest_m" if name == "kl" else f"{name}_cvxpy_largest_m"
            fields[key] = m_max
            fields[key.replace("largest_m", "largest_m_speedup")] = seconds / ours
    fields["agree"] = int(agree)
    print(result_line(m=args.m, n=args.n, tol=args.tol, **fields))
    if not agree:
        print(f"the library and CVXPY disagree by more than {args.agree:g}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
