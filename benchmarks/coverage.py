"""Benchmark: do the ``--ci`` intervals of a sampled game cover the population's figures? (issue 26)

Population games whose exact answer is known: ``P`` prompts of ``m`` outcomes each (m = 10^5;
10^4 with ``--quick``), ``pi_init`` log-normal over the outcomes, every group's reward an
independent uniform [0, 1] score per outcome (the fixed-scale estimand), sizes 1..n, KL or
chi^2 at several lambda. The population game is solved exactly (the batched kernel on all
``m`` outcomes). Each replication draws ``N`` samples per prompt from ``pi_init``, builds the
sampled game (outcomes: the distinct draws, ``pi_init = counts / N``), runs
:func:`rlhf_mech.analysis.bootstrap` (responses design: the prompts are fixed, so the
population figures are these prompts') and counts whether each 95% interval covers the
population's

* payment and utility of every group (truthful reports), the social welfare;
* the no-payment gain of a fixed polarising misreport (group 0 reports ``rm_0^3``, a function of
  the outcome, so the sampled game's misreport is the same report on its samples).

Reported per setting: coverage of each quantity (groups pooled), the same with the jackknife
bias subtracted, the share of replications where the ESS diagnostic warns, the median mean
per-prompt ESS, and the coverage among the replications that do not warn.

``--speed``: B = 1,000 replicates of a 1,000-prompt x 16-sample, 4-group KL game against the
exponentials they must form (B x (n + 1) x outcomes, ``np.exp`` into a preallocated array,
same run).

Run::

    python benchmarks/coverage.py [--quick] [--reps 1000] [--resamples 1000] [--speed]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

from rlhf_mech.analysis import BootstrapOptions, Misreported, bootstrap
from rlhf_mech.core import Mechanism, Normalization, Profile, PromptGame, solve_prompts


def population(
    P: int, m: int, n: int, divergence: str, lam: float, seed: int
) -> tuple[PromptGame, np.ndarray]:
    """The population game (truthful) and the polarising misreport of group 0, (n, P m)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (P, m))
    pi = np.exp(logits - logits.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    rewards = rng.random((n, P * m))
    sizes = np.arange(1.0, n + 1.0)
    game = PromptGame(
        name="population",
        prompts=tuple(f"p{x}" for x in range(P)),
        group_names=tuple(f"g{i}" for i in range(n)),
        mechanism=Mechanism(pi_init=pi[0], divergence=divergence, lam=lam),
        normalization=Normalization.MAX,
        offsets=np.arange(P + 1) * m,
        pi_init=pi.ravel(),
        truth=Profile(rewards, sizes),
        reports=Profile(rewards, sizes),
        weights=np.full(P, 1.0 / P),
    )
    misreport = rewards.copy()
    misreport[0] = rewards[0] ** 3
    return game, misreport


def truth_values(game: PromptGame, misreport: np.ndarray) -> dict[str, np.ndarray]:
    """The population's exact figures."""
    truthful = solve_prompts(game).truthful
    no_payment = replace(game, reports=Profile(misreport, game.truth.sizes))
    gain = solve_prompts(no_payment, "none").gains[0]
    return {
        "payment": truthful.payments,
        "utility": truthful.utilities,
        "social_welfare": np.array([truthful.social_welfare]),
        "gain": np.array([gain]),
    }


def sampled(
    game: PromptGame, misreport: np.ndarray, N: int, rng: np.random.Generator
) -> tuple[PromptGame, np.ndarray]:
    """A sampled game: ``N`` draws per prompt from the population's ``pi_init``."""
    P, m = game.n_prompts, int(game.outcome_counts[0])
    cols, counts, offsets = [], [], [0]
    for x in range(P):
        draws = rng.choice(m, N, p=game.pi_init[x * m : (x + 1) * m])
        unique, count = np.unique(draws, return_counts=True)
        cols.append(unique + x * m)
        counts.append(count)
        offsets.append(offsets[-1] + unique.size)
    flat = np.concatenate(cols)
    c = np.concatenate(counts)
    pi_init = c / np.repeat([N] * P, np.diff(offsets))
    truth = Profile(game.truth.rewards[:, flat], game.truth.sizes)
    small = replace(
        game,
        offsets=np.array(offsets),
        pi_init=pi_init,
        mechanism=replace(game.mechanism, pi_init=pi_init[: offsets[1]]),
        truth=truth,
        reports=truth,
        sample_counts=c.astype(np.int64),
    )
    return small, misreport[:, flat]


def replicate(
    game: PromptGame, misreport: np.ndarray, options: BootstrapOptions
) -> dict[str, list[tuple[float, float, float, float]]]:
    """Each quantity's (estimate, low, high, bias) on one sampled game."""
    u = bootstrap(game, options)
    none = replace(game, mechanism=replace(game.mechanism, payment_rule="none"))
    polarised = Misreported("misreport", 0, Profile(misreport, game.truth.sizes), game.truth)
    g = bootstrap(none, options, misreports=(polarised,))
    names = game.group_names
    out = {
        q: [(f.estimate, f.low, f.high, f.bias) for f in (u.find("truthful", q, i) for i in names)]
        for q in ("payment", "utility")
    }
    out["social_welfare"] = [
        (lambda f: (f.estimate, f.low, f.high, f.bias))(u.find("truthful", "social_welfare"))
    ]
    f = g.find("misreport", "gain", names[0])
    out["gain"] = [(f.estimate, f.low, f.high, f.bias)]
    out["_warn"] = [(float(u.diagnostics.warn or g.diagnostics.warn), u.diagnostics.mean_ess, 0.0, 0.0)]
    return out


QUANTITIES = ("payment", "utility", "social_welfare", "gain")


def setting(
    P: int,
    m: int,
    n: int,
    divergence: str,
    lam: float,
    N: int,
    reps: int,
    options: BootstrapOptions,
    seed: int,
) -> dict[str, float]:
    game, misreport = population(P, m, n, divergence, lam, seed)
    exact = truth_values(game, misreport)
    rng = np.random.default_rng(seed + 1)
    hits = {q: [] for q in QUANTITIES}
    fixed = {q: [] for q in QUANTITIES}
    warns, ess = [], []
    for _ in range(reps):
        small, mis = sampled(game, misreport, N, rng)
        got = replicate(small, mis, options)
        warn = bool(got["_warn"][0][0])
        warns.append(warn)
        ess.append(got["_warn"][0][1])
        for q in QUANTITIES:
            for k, (_, low, high, bias) in enumerate(got[q]):
                t = exact[q][k]
                hits[q].append((low <= t <= high, warn))
                fixed[q].append(low - bias <= t <= high - bias)
    row: dict[str, float] = {"warn": float(np.mean(warns)), "ess": float(np.median(ess))}
    for q in QUANTITIES:
        h = np.array(hits[q])
        row[q] = float(h[:, 0].mean())
        row[q + "_bc"] = float(np.mean(fixed[q]))
        ok = ~h[:, 1].astype(bool)
        row[q + "_ok"] = float(h[ok, 0].mean()) if ok.any() else float("nan")
    return row


def speed(B: int = 1000, P: int = 1000, N: int = 16, n: int = 4) -> None:
    game, _ = population(P, N * 4, n, "kl", 1.0, 0)
    small, _ = sampled(game, game.truth.rewards, N, np.random.default_rng(1))
    outcomes = int(small.sample_counts.sum())
    work = np.empty((B, n + 1, outcomes))
    source = np.random.default_rng(2).random((B, n + 1, outcomes))
    start = time.perf_counter()
    np.exp(source, out=work)
    exps = time.perf_counter() - start
    start = time.perf_counter()
    bootstrap(small, BootstrapOptions(resamples=B, design="responses"))
    boot = time.perf_counter() - start
    print(
        f"speed: B={B} replicates of {P} prompts x {N} samples, {n} groups, KL: bootstrap "
        f"{boot:.2f} s, np.exp of B x (n+1) x {outcomes} = {B * (n + 1) * outcomes:.3g} values "
        f"{exps:.2f} s: ratio {boot / exps:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small grid, m = 10^4, few replications")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--resamples", type=int, default=None)
    parser.add_argument("--speed", action="store_true", help="only the speed check")
    args = parser.parse_args()
    print(machine())
    if args.speed:
        speed()
        return
    if args.quick:
        m, reps, B = 10_000, args.reps or 30, args.resamples or 200
        grid = itertools.product(("kl", "chi2"), (0.1, 1.0), (3,), (1, 20), (32, 128))
    else:
        m, reps, B = 100_000, args.reps or 1000, args.resamples or 1000
        grid = itertools.product(("kl", "chi2"), (0.1, 1.0, 10.0), (2, 4), (1, 20, 200), (8, 32, 128, 512))
    options = BootstrapOptions(level=0.95, resamples=B, design="responses")
    print(f"m = {m} outcomes per prompt, {reps} replications, B = {B}, {options.interval} 95% intervals")
    head = (
        "div   lambda n   P    N   | pay   util  SW    gain  | bias-corrected        | warn  ESS     "
        "| no warning: pay util SW gain"
    )
    print(head)
    for seed, (div, lam, n, P, N) in enumerate(grid):
        r = setting(P, m, n, div, lam, N, reps, options, 1000 + seed)
        cov = " ".join(f"{r[q]:.2f}" for q in QUANTITIES)
        bc = " ".join(f"{r[q + '_bc']:.2f}" for q in QUANTITIES)
        ok = " ".join(f"{r[q + '_ok']:.2f}" for q in QUANTITIES)
        print(
            f"{div:5s} {lam:<6g} {n:<3d} {P:<4d} {N:<4d}| {cov}  | {bc}   | {r['warn']:.2f}  "
            f"{r['ess']:<7.1f} | {ok}",
            flush=True,
        )


if __name__ == "__main__":
    main()
