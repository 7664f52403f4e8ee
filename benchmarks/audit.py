"""Benchmark: ``rlhf-mech audit`` of every bundled game (``games/``), end to end.

Runs the audit command in-process on ``games/`` (all *.yaml / *.yml below it, the large
32-group x 10^5-outcome game included) with the default budget, and reports the wall time
(loading, every group's searches, the checks; no rendering cost worth noting). The target
of issue #4 is under 30 s on a 2-core machine with ``-j 2``.

Run::

    python benchmarks/audit.py [--workers 2] [--budget 200] [--repeat 1] [PATH ...]

It prints one line per run, then the largest DSIC gain found under the affine-maximizer
payment and the largest gain without payment over all bundled games. The last line is
machine-readable: ``RESULT audit_s=... games=... groups=... workers=... budget=...``
(the best of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rlhf_mech.analysis import AuditOptions, run_audits
from rlhf_mech.analysis._internal import DEFAULT_BUDGET, summarise
from rlhf_mech.files import load_game

ROOT = Path(__file__).resolve().parent.parent


def game_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "games")])
    parser.add_argument("--workers", "-j", type=int, default=2)
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    options = AuditOptions(budget=args.budget)
    best = float("inf")
    for run in range(args.repeat):
        start = time.perf_counter()
        games = [load_game(path) for path in game_files(args.paths)]
        audits = run_audits(games, options, seed=0, workers=args.workers)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        summary = summarise(audits)
        print(
            f"run {run + 1}: {elapsed:.2f} s, {summary.games} games, {summary.groups} groups, "
            f"{summary.passed} passed, {summary.failed} failed"
        )
    dsic = [
        (g.dsic.best.gain, a.game.name, g.name)
        for a in audits
        for g in a.groups
        if g.dsic.payment_rule == "affine_maximizer"
    ]
    unpaid = [(g.no_payment.best.gain, a.game.name, g.name) for a in audits for g in a.groups]
    if dsic:
        gain, game, group = max(dsic)
        print(f"largest DSIC gain under affine_maximizer: {gain:+.3g} ({game} / {group})")
    gain, game, group = max(unpaid)
    print(f"largest gain without payment: {gain:+.3g} ({game} / {group})")
    print(
        f"RESULT audit_s={best:.3f} games={summary.games} groups={summary.groups} "
        f"workers={args.workers} budget={args.budget}"
    )


if __name__ == "__main__":
    main()
