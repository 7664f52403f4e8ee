"""Benchmark: a batched beta sweep against separate ``rlhf_mech.core.outcome`` calls.

A game with 10^4 outcomes and 8 groups (KL, lambda 1e-3, random pi_init); group 0 sweeps
Strategy 2 (beta) over 1,000 points in [0, 3] (truth included). The same 1,000 profiles are
then evaluated with one :func:`rlhf_mech.core.outcome` call each (the
reference the tests use point by point), in the same run. The goal of issue #3: the sweep
costs at most 5% of the separate calls.

Run::

    python benchmarks/sweep.py [--points 1000] [--outcomes 10000] [--groups 8] [--repeat 3]
                               [--tune-malloc]

The last line is machine-readable: ``RESULT sweep_s=... separate_s=... ratio=...``; each
time is the best of ``--repeat`` runs, the two kinds alternating.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np

from rlhf_mech.analysis import mixing_misreports, sweep
from rlhf_mech.analysis._internal import others_reward
from rlhf_mech.core import Game, Mechanism, Normalization, Profile, outcome


def make_game(groups: int, outcomes: int, seed: int = 0) -> Game:
    """A random sum-normalised game: rewards U[0,1]^m, sizes in 1..10, Dirichlet pi_init."""
    rng = np.random.default_rng(seed)
    rewards = rng.random((groups, outcomes))
    rewards /= rewards.sum(axis=1, keepdims=True)
    sizes = rng.integers(1, 11, groups).astype(float)
    return Game(
        name=f"random-{groups}x{outcomes}",
        outcomes=tuple(f"x{j}" for j in range(outcomes)),
        group_names=tuple(f"g{i}" for i in range(groups)),
        mechanism=Mechanism(rng.dirichlet(np.ones(outcomes)), "kl", 1e-3),
        normalization=Normalization.SUM,
        truth=Profile(rewards, sizes),
        reports=Profile(rewards, sizes),
    )


def separate_calls(game: Game, group: int, betas: np.ndarray) -> tuple[float, np.ndarray]:
    """One report and one ``outcome`` call per point; returns (seconds, utilities)."""
    utilities = np.empty(betas.size)
    start = time.perf_counter()
    truth, reports = game.truth, game.reports
    others = others_reward(reports.rewards, reports.sizes, group)
    for k, beta in enumerate(betas):
        own_reward, own_size = truth.rewards[group], truth.sizes[group]
        report = mixing_misreports(own_reward, own_size, others, [beta], game.normalization)
        point = reports.with_report(group, report.rewards[0], float(reports.sizes[group]))
        utilities[k] = outcome(game.mechanism, truth, point).utilities[group]
    return time.perf_counter() - start, utilities


def tune_malloc() -> bool:
    """Stop glibc from returning freed blocks to the OS (and page-faulting them back in).

    By default glibc mmaps blocks above a threshold that adapts to what was freed before, and
    trims the heap top; the 8-row leave-one-out temporaries of ``outcome`` at
    m = 10^4 (640 KB) then cost fresh page faults on most calls, which makes the separate
    calls 2-3x slower depending on what ran earlier in the process. With fixed thresholds both
    sides are measured on compute. Returns whether it worked (glibc only).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


def _seconds(times: list[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--outcomes", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tune-malloc", action="store_true", help="fixed glibc thresholds (see tune_malloc)")
    args = parser.parse_args()
    malloc = "tuned (mallopt)" if args.tune_malloc and tune_malloc() else "default"
    game = make_game(args.groups, args.outcomes)
    betas = np.linspace(0.0, 3.0, args.points - 1)  # + beta = 1 -> `points` points
    sweep(game, 0, "mixing", betas[:5])  # warm-up: imports, first allocations
    # Alternate the two so that a busy machine slows both alike; keep the best of each.
    sweep_times, separate_times, figures_times = [], [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = sweep(game, 0, "mixing", betas)
        sweep_times.append(time.perf_counter() - start)
        seconds, utilities = separate_calls(game, 0, result.parameters)
        separate_times.append(seconds)
        start = time.perf_counter()  # what `rlhf-mech sweep --format table|csv` computes
        sweep(game, 0, "mixing", betas, keep_distributions=False)
        figures_times.append(time.perf_counter() - start)
    sweep_s, separate_s = min(sweep_times), min(separate_times)
    error = float(np.max(np.abs(utilities - result.utilities)))
    ratio = sweep_s / separate_s
    lam = game.mechanism.lam
    print(f"game: {args.groups} groups x {args.outcomes} outcomes, KL lambda {lam}; malloc {malloc}")
    print(f"beta sweep, {result.parameters.size} points (batched): {sweep_s:.3f} s")
    print(f"{result.parameters.size} separate outcome calls: {separate_s:.3f} s")
    median = float(np.median(sweep_times) / np.median(separate_times))
    print(f"(best of {args.repeat} alternating runs; median ratio {median:.4f})")
    print(f"sweep runs: {_seconds(sweep_times)}; separate runs: {_seconds(separate_times)}")
    figures = min(figures_times)
    print(f"sweep without the (P, m) distributions: {figures:.3f} s, ratio {figures / separate_s:.4f}")
    print(f"ratio sweep / separate: {ratio:.4f} (goal <= 0.05); max |utility difference| {error:.1e}")
    print(f"RESULT sweep_s={sweep_s:.4f} separate_s={separate_s:.4f} ratio={ratio:.4f}")


if __name__ == "__main__":
    main()
