"""Benchmark: ``rlhf-mech solve`` end to end on a large game, against the mechanism's own time.

Issue 15's goal: the whole command on a 10^6-outcome, 32-group KL game (arrays in ``.npy``)
within 2.5x the time the mechanism itself takes in the same run. The game is written to a
temporary folder (max-normalised U[0, 1] rewards, sizes 1..10, a random ``pi_init``; group
``g00`` misreports its size, so both the truthful and the reported profile are solved, each
with its 32 leave-one-out problems). Each variant runs as a fresh ``rlhf-mech ... -v``
process with stdout to a file; ``-v`` prints the time of every step, so the ratio is taken
within one run: wall time of the process / its ``solve`` step. The best of ``--repeat``
rounds is kept (the box is shared).

The peak memory of the ``json`` variant (``/usr/bin/time -v``: its maximum resident set)
is reported against the input arrays' bytes (``rewards.npy`` and ``initial.npy``); issue 25's
goal is 1.5x at m = 10^6, n = 64 (the loader keeps the memory-mapped rewards, not a copy).

Run::

    python benchmarks/end_to_end.py [--m 1000000] [--n 32] [--repeat 3] [--quick]
    python benchmarks/end_to_end.py --n 64 --repeat 1     # issue 25's memory goal

The last line is machine-readable: ``RESULT ... ratio_json=...``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, result_line

STEP = re.compile(r"rlhf-mech: (?P<step>\w+)[^:]*: (?P<seconds>[0-9.]+) s")


def write_game(folder: Path, m: int, n: int, seed: int = 0) -> Path:
    """A KL game of ``n`` groups over ``m`` outcomes with its arrays in .npy files."""
    rng = np.random.default_rng(seed)
    rewards = rng.random((n, m))
    rewards /= rewards.max(axis=1, keepdims=True)
    np.save(folder / "rewards.npy", rewards)
    pi_init = rng.random(m) + 0.1
    np.save(folder / "initial.npy", pi_init / pi_init.sum())
    lines = [
        f"name: end-to-end-{n}x{m}",
        f"outcomes: {m}",
        "initial: {file: initial.npy}",
        "normalization: max",
        "divergence: {kind: kl, lambda: 1.0}",
        "max_size: 10",
        "groups:",
    ]
    for i in range(n):
        lines += [
            f"  - name: g{i:02d}",
            f"    size: {1 + i % 10}",
            f"    reward: {{file: rewards.npy, row: {i}}}",
        ]
        if i == 0:
            lines.append("    report: {size: 3}")
    path = folder / "game.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def peak_mib(command: list[str], stdout: Path) -> float:
    """The maximum resident set of ``command`` (``/usr/bin/time -v``), MiB."""
    with stdout.open("wb") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", *command], stdout=out, stderr=subprocess.PIPE, text=True
        )
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return int(match[1]) / 1024 if match else float("nan")


def run(command: list[str], stdout: Path) -> tuple[float, dict[str, float]]:
    """Wall time of one process and the step times it printed with ``-v``."""
    with stdout.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, check=True, text=True)
        wall = time.perf_counter() - start
    steps = {m["step"]: float(m["seconds"]) for m in STEP.finditer(proc.stderr)}
    return wall, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="m = 10^5, one round")
    args = parser.parse_args()
    if args.quick:
        args.m, args.repeat = 100_000, 1
    script = str(Path(sys.executable).with_name("rlhf-mech"))
    try:
        import orjson  # noqa: F401

        encoder = "orjson"
    except ImportError:
        encoder = "standard library (pip install 'rlhf-mech[fast]' for orjson)"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        game = write_game(folder, args.m, args.n)
        variants = {
            "json": [script, "solve", str(game), "--format", "json", "-v"],
            "json+npy": [
                script,
                "solve",
                str(game),
                "--format",
                "json",
                "--save-distribution",
                str(folder / "distributions.npy"),
                "-v",
            ],
            "table": [script, "solve", str(game), "-v"],
        }
        best: dict[str, tuple[float, dict[str, float]]] = {}
        for _ in range(args.repeat):
            for name, command in variants.items():
                wall, steps = run(command, folder / f"out.{name}")
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, steps)
        size = (folder / "out.json").stat().st_size
        inputs = sum((folder / name).stat().st_size for name in ("rewards.npy", "initial.npy")) / 2**20
        peak = peak_mib(variants["json"][:-1], folder / "out.peak")
    print(machine())
    print(f"game: {args.n} groups x {args.m} outcomes, KL, arrays in .npy; JSON encoder: {encoder}")
    print(f"{'variant':>10} {'wall s':>8} {'load':>7} {'solve':>7} {'write':>7} {'wall/solve':>11}")
    ratios = {}
    for name, (wall, steps) in best.items():
        ratios[name] = wall / steps["solve"]
        cells = "".join(f"{steps.get(step, float('nan')):>8.3f}" for step in ("load", "solve", "write"))
        print(f"{name:>10} {wall:>8.3f}{cells} {ratios[name]:>11.2f}")
    print(f"JSON output: {size / 1e6:.1f} MB; goal: wall / solve <= 2.5 (the mechanism's own time, same run)")
    print(
        f"peak memory of solve --format json: {peak:.0f} MiB, "
        f"{peak / inputs:.2f}x its input arrays ({inputs:.0f} MiB)"
    )
    print(
        result_line(
            m=args.m,
            n=args.n,
            wall_json_s=best["json"][0],
            solve_s=best["json"][1]["solve"],
            load_s=best["json"][1]["load"],
            write_s=best["json"][1]["write"],
            ratio_json=ratios["json"],
            ratio_npy=ratios["json+npy"],
            ratio_table=ratios["table"],
            peak_mib=peak,
            peak_over_inputs=peak / inputs,
        )
    )


if __name__ == "__main__":
    main()
