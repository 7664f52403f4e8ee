"""Benchmark: start-up of the command line, ``rlhf-mech --help``, against ``import numpy``.

Issue #10's goal: ``--help`` within 2.5x of ``python -c "import numpy"`` on the same machine,
measured in one run. Both run as fresh interpreters (the console script of this environment
and ``python -c``), interleaved round after round; each figure is the best of ``--repeat``
rounds (the machine is shared; the minimum is the least disturbed run).

Run::

    python benchmarks/startup.py [--repeat 15]

The last line is machine-readable: ``RESULT help_s=... numpy_s=... ratio=...``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import machine, result_line


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("rlhf-mech")
    commands = {
        "help": [str(script), "--help"],
        "numpy": [sys.executable, "-c", "import numpy"],
        "python": [sys.executable, "-c", "pass"],
    }
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(args.repeat):
        for name, command in commands.items():
            best[name] = min(best[name], _seconds(command))
    print(machine())
    for name, seconds in best.items():
        print(f"{name:>7}: {seconds * 1e3:7.1f} ms  ({' '.join(commands[name][1:])})")
    ratio = best["help"] / best["numpy"]
    print(f"--help / import numpy: {ratio:.2f} (goal <= 2.5)")
    print(result_line(help_s=best["help"], numpy_s=best["numpy"], python_s=best["python"], ratio=ratio))


if __name__ == "__main__":
    main()
