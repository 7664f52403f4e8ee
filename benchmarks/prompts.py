"""Benchmark: a game of many prompts, batched, against a Python loop over its prompts.

``solve_prompts`` solves the prompts that share an initial distribution as one batch of the
mechanism kernel (issue 16: "the mechanism runs per prompt, batched, not a Python loop over
prompts"). This script builds a game of P prompts with k responses each (the GRPO layout:
``pi_init`` uniform on k, one batch) and times it against the loop a user would write,
``core.solve`` on each prompt's game, checking that both give the same valuations and payments
(to 1e-12). It also times a game whose prompts all have their own ``pi_init`` (P batches of
one: the cost of the fallback). Ends with ``RESULT``.

Run::

    python benchmarks/prompts.py [--prompts 2000] [--k 8] [--groups 4] [--divergence kl] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, result_line

from rlhf_mech.core import Game, Mechanism, Profile, PromptGame, solve, solve_prompts


def build(P: int, k: int, n: int, divergence: str, shared: bool, seed: int) -> PromptGame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 10, n).astype(float)
    games = []
    for x in range(P):
        pi_init = np.full(k, 1.0 / k) if shared else rng.dirichlet(np.ones(k))
        rewards = rng.random((n, k))
        rewards /= rewards.sum(axis=1, keepdims=True)
        reports = rewards.copy()
        reports[0] = rng.dirichlet(np.ones(k))
        games.append(
            Game(
                name=f"p{x}",
                outcomes=tuple(f"x{j}" for j in range(k)),
                group_names=tuple(f"g{i}" for i in range(n)),
                mechanism=Mechanism(pi_init, divergence, 1.0),
                normalization="sum",
                truth=Profile(rewards, sizes),
                reports=Profile(reports, sizes),
            )
        )
    return PromptGame.from_games("bench", tuple(f"p{x}" for x in range(P)), games, np.full(P, 1.0 / P))


def best_of(func, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = func()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--divergence", default="kl")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    P = 200 if args.quick else args.prompts
    print(machine())
    print(f"P = {P} prompts, k = {args.k} responses, n = {args.groups} groups, {args.divergence}")
    print(
        f"{'initial distributions':<24} {'batched s':>10} {'loop s':>10} {'loop/batched':>13} "
        f"{'max |diff|':>11}"
    )
    ratios = {}
    for shared in (True, False):
        game = build(P, args.k, args.groups, args.divergence, shared, seed=1)
        batched, solution = best_of(lambda g=game: solve_prompts(g), args.repeat)
        loop, per_prompt = best_of(lambda g=game: [solve(p) for p in g.games], args.repeat)
        q = game.weights
        diff = 0.0
        for label in ("truthful", "reported"):
            got = getattr(solution, label)
            for name in ("valuations", "payments"):
                expected = sum(
                    w * getattr(getattr(s, label), name) for w, s in zip(q, per_prompt, strict=True)
                )
                diff = max(diff, float(np.max(np.abs(getattr(got, name) - expected))))
        if diff > 1e-12:
            sys.exit(f"batched and per-prompt results differ by {diff:.3g}")
        label = "shared (1 batch)" if shared else f"own ({P} batches)"
        ratios["shared" if shared else "own"] = loop / batched
        print(f"{label:<24} {batched:>10.3f} {loop:>10.3f} {loop / batched:>13.1f} {diff:>11.1e}")
    print(
        result_line(
            prompts=P, k=args.k, speedup_shared=f"{ratios['shared']:.1f}", speedup_own=f"{ratios['own']:.2f}"
        )
    )


if __name__ == "__main__":
    main()
