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

Reported per setting and interval (percentile, basic, BCa, BCa minus the jackknife bias):
coverage of each quantity (groups pooled), over all replications and over the intervals not
flagged (no ESS warning, jackknife bias within BIAS_WARN standard errors); the share of
replications whose ESS diagnostic warns, the share of intervals flagged, the median mean
per-prompt ESS.

``--raw FILE`` appends each setting's replications (their diagnostics, and whether each
interval covered) as a JSON line; ``--summarise FILE...`` pools them into coverage by the
replication's mean per-prompt ESS.

``--speed``: B = 1,000 replicates of a 1,000-prompt x 16-sample, 4-group KL game against the
exponentials they must form (B x (n + 1) x outcomes, ``np.exp`` into a preallocated array,
same run).

Run::

    python benchmarks/coverage.py [--quick] [--reps 1000] [--resamples 1000] [--speed]
        [--divergence kl chi2] [--lam 0.1 1] [--groups 3] [--prompts 1 20] [--samples 32 128]
        [--raw FILE]
    python benchmarks/coverage.py --summarise FILE...
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from unittest.mock import patch

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

from rlhf_mech.analysis import BootstrapOptions, bootstrap
from rlhf_mech.analysis._internal import Misreported
from rlhf_mech.core import Mechanism, Normalization, Profile, PromptGame, _resample, solve_prompts


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


#: The intervals compared: the three of INTERVALS, and BCa and basic shifted by the jackknife bias.
METHODS = ("percentile", "basic", "bca", "bca-jackknife", "basic-jackknife")
QUANTITIES = ("payment", "utility", "social_welfare", "gain")


def _ends(u: object, figures: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each method's (low, high) of the figures at ``figures``, and under ``"biased"`` their
    flags (the jackknife bias over BIAS_WARN standard errors)."""
    out = {name: tuple(end[figures] for end in u.interval(name)) for name in METHODS[:3]}
    bias = np.array([u.figures[d].bias for d in figures])
    for name in ("bca", "basic"):
        low, high = out[name]
        out[f"{name}-jackknife"] = (low - bias, high - bias)
    out["biased"] = np.array([u.figures[d].biased for d in figures])
    return out


def replicate(
    game: PromptGame, misreport: np.ndarray, options: BootstrapOptions
) -> tuple[dict, bool, dict[str, float]]:
    """Each quantity's intervals by every method on one sampled game, whether the
    diagnostics warn, and the diagnostics' figures (the smaller ESS and the larger top-1%
    share of the two bootstraps)."""
    u = bootstrap(game, options)
    none = replace(game, mechanism=replace(game.mechanism, payment_rule="none"))
    polarised = Misreported("misreport", 0, Profile(misreport, game.truth.sizes), game.truth)
    g = bootstrap(none, options, misreports=(polarised,))
    index = {(f.profile, f.quantity, f.group): d for d, f in enumerate(u.figures)}
    names = game.group_names
    picks = {
        "payment": [index["truthful", "payment", i] for i in names],
        "utility": [index["truthful", "utility", i] for i in names],
        "social_welfare": [index["truthful", "social_welfare", ""]],
    }
    out = {q: _ends(u, d) for q, d in picks.items()}
    gain = next(d for d, f in enumerate(g.figures) if f.profile == "misreport" and f.quantity == "gain")
    out["gain"] = _ends(g, [gain])
    warn = u.diagnostics.warn or g.diagnostics.warn
    both = (u.diagnostics, g.diagnostics)
    diag = {
        "mean_ess": min(d.mean_ess for d in both),
        "pooled_ess": min(d.pooled_ess for d in both),
        "min_ess": min(float(d.ess.min()) for d in both),
        "top_share": max(d.pooled_top_share for d in both),
    }
    return out, warn, diag


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
) -> tuple[dict[str, float], dict[str, list]]:
    """Coverage per method and quantity (all replications, and those without a warning), the
    share of replications that warn and the median mean per-prompt ESS; and the raw
    replications (each one's diagnostics, and per method and quantity whether each interval
    covered), from which coverage under any other warning rule is counted."""
    game, misreport = population(P, m, n, divergence, lam, seed)
    exact = truth_values(game, misreport)
    rng = np.random.default_rng(seed + 1)
    hits: dict[tuple[str, str], list[np.ndarray]] = {(k, q): [] for k in METHODS for q in QUANTITIES}
    flags: dict[str, list[np.ndarray]] = {q: [] for q in QUANTITIES}
    warns: list[bool] = []
    diags: dict[str, list[float]] = {}
    for _ in range(reps):
        small, mis = sampled(game, misreport, N, rng)
        got, warn, diag = replicate(small, mis, options)
        warns.append(warn)
        for key, value in diag.items():
            diags.setdefault(key, []).append(value)
        for q in QUANTITIES:
            flags[q].append(got[q]["biased"] | warn)
            for k in METHODS:
                low, high = got[q][k]
                hits[k, q].append((low <= exact[q]) & (exact[q] <= high))
    row: dict[str, float] = {"warn": float(np.mean(warns)), "ess": float(np.median(diags["mean_ess"]))}
    for q in QUANTITIES:
        row[f"flagged:{q}"] = float(np.mean(flags[q]))
    for (k, q), h in hits.items():
        covered = np.array(h)  # (reps, groups)
        quiet = ~np.array(flags[q])
        row[f"{k}:{q}"] = float(covered.mean())
        row[f"{k}:{q}:quiet"] = float(covered[quiet].mean()) if quiet.any() else float("nan")
    raw: dict[str, list] = {"warn": warns, **diags}
    raw |= {f"biased:{q}": np.array(flags[q]).tolist() for q in QUANTITIES}
    raw |= {f"{k}:{q}": np.array(h).tolist() for (k, q), h in hits.items()}
    return row, raw


def _best(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The shortest wall-clock and the shortest CPU time (this process, all its threads) of
    ``repeats`` runs of ``run``: under other load the CPU time is the steadier measure."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def speed(B: int = 1000, P: int = 1000, N: int = 16, n: int = 4, repeats: int = 3) -> None:
    """The speed check (module docstring): the best of ``repeats`` runs of the exponentials and
    of the bootstrap (its Gibbs shortcut), one run through the kernel (the shortcut switched
    off), and a loop of ``solve`` estimated from one solve; wall-clock and CPU seconds."""
    game, _ = population(P, N * 4, n, "kl", 1.0, 0)
    small, _ = sampled(game, game.truth.rewards, N, np.random.default_rng(1))
    outcomes = int(small.sample_counts.sum())
    work = np.empty((B, n + 1, outcomes))
    np.random.default_rng(2).random(out=work)
    options = BootstrapOptions(resamples=B, design="responses")
    exps = _best(lambda: np.exp(work, out=work), repeats)
    boot = _best(lambda: bootstrap(small, options), repeats)
    with patch.object(_resample, "gibbs_applies", lambda mechanism, estimand: False):
        kernel = _best(lambda: bootstrap(small, options), 1)
    loop = tuple(B * t for t in _best(lambda: solve_prompts(small), repeats))
    print(
        f"speed: B={B} replicates of {P} prompts x {N} samples, {n} groups, KL (best of {repeats}); "
        f"np.exp of B x (n+1) x {outcomes} = {B * (n + 1) * outcomes:.3g} values"
    )
    for k, clock in enumerate(("wall", "CPU")):
        print(
            f"  {clock:4s}: np.exp {exps[k]:.2f} s; bootstrap {boot[k]:.2f} s = {boot[k] / exps[k]:.1f}x; "
            f"through the kernel {kernel[k]:.2f} s = {kernel[k] / exps[k]:.1f}x; a loop of {B} solves "
            f"~{loop[k]:.1f} s = {loop[k] / exps[k]:.0f}x"
        )


#: The bins of a replication's mean per-prompt ESS in :func:`summarise` (the warning's
#: threshold, ESS_WARN = 100, is one of their edges).
ESS_BINS = (0.0, 10.0, 30.0, 60.0, 100.0, 150.0, 250.0, np.inf)


def summarise(paths: list[Path]) -> None:
    """Coverage by the replication's mean per-prompt ESS, every setting of the ``--raw``
    files pooled: what the warning's threshold rests on."""
    cells = [json.loads(line) for path in paths for line in path.read_text().splitlines()]
    print(f"{len(cells)} settings; coverage by the replication's mean per-prompt ESS, settings pooled")
    print("method          ESS bin       reps | pay   util  SW    gain")
    for method in METHODS:
        for low, high in itertools.pairwise(ESS_BINS):
            hits = {q: [] for q in QUANTITIES}
            reps = 0
            for cell in cells:
                ess = np.array(cell["mean_ess"])
                rows = (ess >= low) & (ess < high)
                reps += int(rows.sum())
                for q in QUANTITIES:
                    hits[q].append(np.array(cell[f"{method}:{q}"]).reshape(ess.size, -1)[rows].ravel())
            if reps:
                shares = " ".join(f"{np.concatenate(hits[q]).mean():.3f}" for q in QUANTITIES)
                print(f"{method:15s} [{low:g}, {high:g}) {reps:6d} | {shares}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small grid, m = 10^4, few replications")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--resamples", type=int, default=None)
    parser.add_argument("--speed", action="store_true", help="only the speed check")
    parser.add_argument("--lam", type=float, nargs="*", help="only these lambda")
    parser.add_argument("--prompts", type=int, nargs="*", help="only these numbers of prompts")
    parser.add_argument("--samples", type=int, nargs="*", help="only these N")
    parser.add_argument("--divergence", nargs="*", help="only these divergences")
    parser.add_argument("--groups", type=int, nargs="*", help="only these numbers of groups")
    parser.add_argument("--raw", type=Path, help="append each setting's replications here (JSON lines)")
    parser.add_argument("--summarise", type=Path, nargs="*", help="only the coverage by ESS of --raw files")
    args = parser.parse_args()
    print(machine())
    if args.summarise:
        summarise(args.summarise)
        return
    if args.speed:
        speed()
        return
    if args.quick:
        m, reps, B = 10_000, args.reps or 30, args.resamples or 200
        axes = [("kl", "chi2"), (0.1, 1.0), (3,), (1, 20), (32, 128)]
    else:
        m, reps, B = 100_000, args.reps or 1000, args.resamples or 1000
        axes = [("kl", "chi2"), (0.1, 1.0, 10.0), (2, 4), (1, 20, 200), (8, 32, 128, 512)]
    for k, chosen in (
        (0, args.divergence),
        (1, args.lam),
        (2, args.groups),
        (3, args.prompts),
        (4, args.samples),
    ):
        if chosen:
            axes[k] = tuple(chosen)
    grid = itertools.product(*axes)
    options = BootstrapOptions(level=0.95, resamples=B, design="responses")
    print(f"m = {m} outcomes per prompt, {reps} replications, B = {B}, nominal 95%")
    print("coverage of payment, utility, social welfare, no-payment gain: all | not flagged")
    print(
        "div   lambda n P   N   method         | pay  util SW   gain | pay  util SW   gain | "
        "ESS warns, flagged: pay util SW gain | mean ESS"
    )
    for seed, (div, lam, n, P, N) in enumerate(grid):
        r, raw = setting(P, m, n, div, lam, N, reps, options, 1000 + seed)
        if args.raw:
            cell = {"divergence": div, "lam": lam, "groups": n, "prompts": P, "samples": N, "m": m}
            with args.raw.open("a") as f:
                f.write(json.dumps({**cell, "resamples": B, "reps": reps, **raw}) + "\n")
        for k in METHODS:
            every = " ".join(f"{r[f'{k}:{q}']:.2f}" for q in QUANTITIES)
            quiet = " ".join(f"{r[f'{k}:{q}:quiet']:.2f}" for q in QUANTITIES)
            flagged = " ".join(f"{r[f'flagged:{q}']:.2f}" for q in QUANTITIES)
            print(
                f"{div:5s} {lam:<6g} {n} {P:<3d} {N:<4d}{k:15s}| {every} | {quiet} | {r['warn']:.2f}, "
                f"{flagged} | {r['ess']:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
