"""Benchmark: the audit of a game of many prompts, batched across prompts (issue 25).

Two questions:

1. **Same figures as a per-prompt audit.** On random games of many prompts (KL, chi^2,
   Hellinger; sum and max rewards; payment none and the affine maximizer; 3-16 outcomes per
   prompt, with repeats), each prompt's best gain found by the batched search
   (:func:`rlhf_mech.analysis.search_prompts`, every prompt at once) against the one-prompt
   search (:func:`rlhf_mech.analysis.search_misreports` on that prompt's game, at twice the
   budget), at the true size and over the whole space: the share of prompts (with a gain
   above 1e-6) where the batched search reaches 0.99 of the reference, and the worst ratio.
   The whole game's gain is replayed through the game (it must be the weighted sum of the
   prompts' gains to 1e-12).
2. **Cost.** The audit of a P-prompt, 16-sample, 3-group game (`rlhf_mech.analysis.audit_game`)
   against one `solve` of that game, in one process: the ratio (issue 25's goal: <= 1,000 at
   P = 10^4).

Run::

    python benchmarks/prompt_audit.py [--games 12] [--prompts 10000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, result_line

from rlhf_mech.analysis import AuditOptions, audit_game, search_misreports
from rlhf_mech.analysis._internal import search_prompts
from rlhf_mech.core import Game, Mechanism, Normalization, Profile, PromptGame, solve

DIVERGENCES = ("kl", "chi2", "hellinger")


def random_prompt_game(
    rng: np.random.Generator,
    prompts: int,
    divergence: str,
    normalization: str,
    payment: str,
    samples: tuple[int, int] = (3, 9),
) -> PromptGame:
    """Prompts with their own outcome counts and ``pi_init`` (sample counts), 3 groups."""
    n = 3
    norm = Normalization(normalization)
    sizes = rng.integers(1, 8, n).astype(float)
    lam = float(10.0 ** rng.uniform(-1, 0.5))
    games = []
    for x in range(prompts):
        k = int(rng.integers(*samples))
        counts = rng.integers(1, 3, k).astype(float)
        raw = rng.random((n, k))
        raw[rng.random((n, k)) < 0.15] = 0.0
        raw[:, 0] += 1e-3
        truth = Profile(norm.normalise(raw), sizes)
        games.append(
            Game(
                name=f"p{x}",
                outcomes=tuple(f"x{j}" for j in range(k)),
                group_names=("a", "b", "c"),
                mechanism=Mechanism(counts / counts.sum(), divergence, lam, payment_rule=payment),
                normalization=norm,
                truth=truth,
                reports=truth,
                max_size=10.0,
            )
        )
    weights = rng.random(prompts) + 0.5
    return PromptGame.from_games(
        "bench", tuple(f"p{x}" for x in range(prompts)), games, weights / weights.sum(), max_size=10.0
    )


def agreement(games: int, prompts: int, budget: int, seed: int) -> tuple[int, float, float, float]:
    """(prompts with a gain, share reaching 0.99, worst ratio, largest replay error)."""
    ratios: list[float] = []
    replay_error = 0.0
    for g in range(games):
        rng = np.random.default_rng([seed, g])
        payment = ("none", "affine_maximizer")[g % 2]
        game = random_prompt_game(rng, prompts, DIVERGENCES[g % 3], ("sum", "max")[(g // 3) % 2], payment)
        for i in range(game.n_groups):
            result = search_prompts(game, i, payment, budget, np.random.default_rng([seed, g, i]))
            gains = result.prompts
            assert gains is not None
            replayed = (
                game.with_report(i, result.best.reward, result.best.size).solve().reported.utilities[i]
                - game.with_report(i, game.truth.rewards[i], game.truth.sizes[i])
                .solve()
                .reported.utilities[i]
            )
            replay_error = max(replay_error, abs(float(replayed) - result.best.gain))
            for x in range(game.n_prompts):
                one = search_misreports(
                    game.game(x), i, payment, 2 * budget, np.random.default_rng([seed, g, i, x])
                )
                for ours, reference in (
                    (gains.whole[x], one.best.gain),
                    (gains.at_true_size[x], one.best_at_true_size.gain),
                ):
                    if reference > 1e-6:
                        ratios.append(ours / reference)
    r = np.array(ratios)
    return r.size, float(np.mean(r >= 0.99)), float(r.min()) if r.size else 1.0, replay_error


def cost(prompts: int, budget: int, seed: int) -> tuple[float, float]:
    """(seconds of one solve, seconds of the audit) of a ``prompts``-prompt, 16-sample game."""
    rng = np.random.default_rng(seed)
    game = random_prompt_game(rng, prompts, "kl", "sum", "affine_maximizer", samples=(10, 17))
    start = time.perf_counter()
    solve(game)
    one = time.perf_counter() - start
    start = time.perf_counter()
    audit_game(game, AuditOptions(budget=budget))
    return one, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=12)
    parser.add_argument("--prompts-per-game", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=10_000, help="prompts of the timed game")
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 games, a 1,000-prompt timed game")
    args = parser.parse_args()
    if args.quick:
        args.games, args.prompts = 4, 1000
    print(machine())
    start = time.perf_counter()
    count, share, worst, replay = agreement(args.games, args.prompts_per_game, args.budget, args.seed)
    print(
        f"agreement: {count} prompt gains above 1e-6; {share:.1%} reach 0.99 of the one-prompt search at "
        f"twice the budget; worst ratio {worst:.4f}; largest replay error {replay:.2e} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    one, audit = cost(args.prompts, args.budget, args.seed)
    print(
        f"cost: {args.prompts} prompts x 10-16 samples x 3 groups: solve {one:.3f} s, audit {audit:.1f} s, "
        f"ratio {audit / one:.0f}"
    )
    print(
        result_line(
            prompt_gains=count,
            share_099=share,
            worst=worst,
            replay_error=replay,
            prompts=args.prompts,
            solve_s=one,
            audit_s=audit,
            ratio=audit / one,
        )
    )


if __name__ == "__main__":
    main()
