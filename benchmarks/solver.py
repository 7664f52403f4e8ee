"""Benchmark: the mechanism against the memory-and-exp floor (issue #6).

For KL the mechanism cannot do less than read the reward matrix once and evaluate
(n + 1) x m exponentials. This measures that floor in the same run, interleaved with the
mechanism: ``floor`` is one ``np.exp`` over an (n + 1) x m array plus one ``w @ R``, as the
issue states it; ``floor_prealloc`` is the same with the exponentials written into a
preallocated array (no page faults for a fresh result), the stricter of the two. The
mechanism is ``solve_sw_max`` on ``w @ R`` plus ``affine_maximizer_payments`` (every
leave-one-out problem), truthful reports, on the tests' random games (``tests/cases.py``:
max-normalised rewards, sizes 1..10, Dirichlet pi_init), lambda = 1.

For every divergence it prints the time, the ratio to both floors, the Newton passes per
solve (``SolveResult.nit`` of the full problem and the most any leave-one-out problem
took; 0 for a closed form), and the peak RSS of one run in a fresh interpreter relative to
the size of the reward matrix (see ``_common.peak_rss``).

Run::

    python benchmarks/solver.py            # m = 10^6, n = 64 (about 2 minutes)
    python benchmarks/solver.py --quick    # m = 10^5, n = 16 (seconds)
    python benchmarks/solver.py --m 1000000 --n 64 --repeat 5 --divergences kl,chi2

The last line is machine-readable: ``RESULT kl_ratio_to_floor=... chi2_passes=... ...``.
"""

from __future__ import annotations

import argparse

from _common import floor_functions, interleaved_best, machine, make_problem, mechanism, peak_rss, result_line

import rlhf_mech.core._training as training_module
from rlhf_mech.core import get_divergence

ALL = ("kl", "tv", "chi2", "hellinger", "reverse_kl", "js", "none")


def leave_one_out_passes(problem, divergence: str) -> int:
    """Most Newton iterations any leave-one-out problem of one mechanism run took."""
    seen: list[int] = [0]
    original = training_module.optimal_values

    def counting(*args, **kwargs):
        result = original(*args, **kwargs)
        seen.append(int(result[2]))
        return result

    training_module.optimal_values = counting  # what the SW-Max rule's leave-one-out values call
    try:
        mechanism(problem, divergence)
    finally:
        training_module.optimal_values = original
    return max(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="m = 10^5, n = 16, fewer repeats")
    parser.add_argument("--m", type=int, default=None, help="outcomes (default 10^6; 10^5 with --quick)")
    parser.add_argument("--n", type=int, default=None, help="groups (default 64; 16 with --quick)")
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=None, help="best of this many runs (default 5; 3)")
    parser.add_argument("--divergences", default=",".join(ALL))
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    args = parser.parse_args()
    m = args.m or (100_000 if args.quick else 1_000_000)
    n = args.n or (16 if args.quick else 64)
    repeat = args.repeat or (3 if args.quick else 5)
    names = [get_divergence(d).name for d in args.divergences.split(",")]

    problem = make_problem(n, m, args.lam)
    print(f"machine: {machine()}")
    mib = problem.rewards.nbytes / 2**20
    print(f"problem: n = {n} groups, m = {m:,} outcomes, lambda = {args.lam}, R = {mib:.0f} MiB")
    floors = floor_functions(problem)
    head = ("divergence", "time s", "/floor", "/prealloc", "passes", "loo", "peak RSS/R")
    print("{:<11} {:>8} {:>7} {:>9} {:>8} {:>4} {:>10}".format(*head))
    fields: dict[str, object] = {}
    floor = prealloc = None
    for name in names:
        # Newton divergences take seconds per run: fewer repeats (the floor is re-measured
        # alongside every contender, so each ratio comes from one interleaved series).
        slow = get_divergence(name).closed_form is None
        reps = max(2, repeat - 2) if slow else repeat
        times = interleaved_best({**floors, name: lambda name=name: mechanism(problem, name)}, reps)
        floor = times["floor"] if floor is None else min(floor, times["floor"])
        prealloc = times["floor_prealloc"] if prealloc is None else min(prealloc, times["floor_prealloc"])
        solution, _ = mechanism(problem, name)
        loo = leave_one_out_passes(problem, name)
        passes = max(solution.nit, loo)
        rss = None if args.no_rss else peak_rss(n, m, name, args.lam)["ratio"]
        ratio = times[name] / times["floor"]
        ratio_pre = times[name] / times["floor_prealloc"]
        rss_text = "-" if rss is None else f"{rss:.2f}"
        row = (name, times[name], ratio, ratio_pre, solution.nit, loo, rss_text)
        print("{:<11} {:>8.4f} {:>7.2f} {:>9.2f} {:>8d} {:>4d} {:>10}".format(*row))
        fields[f"{name}_ratio_to_floor"] = ratio
        fields[f"{name}_ratio_to_floor_prealloc"] = ratio_pre
        if slow:
            fields[f"{name}_passes"] = passes
        if rss is not None:
            fields[f"{name}_peak_rss_ratio"] = rss
    if "kl" in names:
        # the same through the kernel's outcome(), which also values pi on the true types
        # (one more R @ pi) and checks the KKT residual of the solve
        from rlhf_mech.core import Mechanism, Profile
        from rlhf_mech.core import outcome as mechanism_outcome

        truth = Profile(problem.rewards, problem.sizes)
        kl = Mechanism(problem.pi_init, "kl", args.lam)
        outcome = lambda: mechanism_outcome(kl, truth, truth)  # noqa: E731
        times = interleaved_best({**floors, "outcome": outcome}, repeat)
        ratio, ratio_pre = times["outcome"] / times["floor"], times["outcome"] / times["floor_prealloc"]
        row = ("kl*", times["outcome"], ratio, ratio_pre, 0, 0, "")
        print("{:<11} {:>8.4f} {:>7.2f} {:>9.2f} {:>8d} {:>4d} {:>10}".format(*row))
        print("kl*: rlhf_mech.core.outcome (solve, payments, valuations on the true types, KKT residual)")
        fields["kl_outcome_ratio_to_floor"] = ratio
        fields["kl_outcome_ratio_to_floor_prealloc"] = ratio_pre
    print(f"floor (np.exp of (n+1) x m + w @ R): {floor:.4f} s; with a preallocated result: {prealloc:.4f} s")
    print("passes: Newton iterations of the full solve; loo: the most any leave-one-out solve took")
    print(result_line(m=m, n=n, floor_s=floor, floor_prealloc_s=prealloc, **fields))


if __name__ == "__main__":
    main()
