"""The long fuzz campaign of issue 14: hostile and broken input through the command line.

Inputs, in the proportions of the issue's own campaign:

* mutated bundled games (:func:`fuzzing.mutate`: lines dropped, doubled, swapped; YAML, number
  and name tokens put in), run through ``solve --format json``; every tenth accepted one also
  through ``audit`` (a search over weird but valid games: lambda 1e-100, sizes 1e12, ...);
* generated documents (:func:`fuzzing.spec_texts`: the format's keys, values of any shape);
* mutated import files (the CSVs of games/import_example with cells, rows and the header
  edited), run through ``import``; an import that succeeds must write a game that loads;
* the hostile files of the issue (:data:`fuzzing.HOSTILE`), each in a process of its own, for
  its exit code, its message and its peak memory.

Each input ends as one of: a clean error (exit 2, only ``error: FILE...`` lines), accepted, a
traceback (any other exit, a stray exception, or an audit's "internal error"), a hang (past
``--timeout``), or a wrong accept (a loaded game that breaks a documented constraint, output
that is not finite, an import that writes an unloadable game, a hostile file accepted).

    python benchmarks/fuzz.py --n 10000        # ~10 min on 2 cores
    python benchmarks/fuzz.py --quick          # 300 inputs
    python benchmarks/fuzz.py --n 500 --seed 2 --no-hostile   # one more chunk of a long campaign

Ends with ``RESULT inputs=... clean=... accepted=... tracebacks=... hangs=... wrong_accepts=...
hostile_peak_mib=...``; exits 1 if any input gave a traceback, a hang or a wrong accept.
"""

from __future__ import annotations

import argparse
import collections
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

sys.path.insert(0, str(ROOT / "benchmarks"))

from _surfaces import SURFACES  # noqa: E402
from fuzzing import BUNDLED, HOSTILE, TOKENS, Hang, classify, clean_error, mutate, run_cli, spec_texts  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

#: The verdicts that fail the campaign.
BAD = ("traceback", "hang", "wrong_accept", "unescaped")

IMPORT_FILES = sorted((ROOT / "games" / "import_example").glob("*.csv"))


def _mutate_csv(text: str, rng: np.random.Generator) -> str:
    rows = [line.split(",") for line in text.splitlines()]
    for _ in range(int(rng.integers(1, 4))):
        r = int(rng.integers(len(rows)))
        kind = int(rng.integers(4))
        if kind == 0 and rows[r]:
            rows[r][int(rng.integers(len(rows[r])))] = TOKENS[int(rng.integers(len(TOKENS)))]
        elif kind == 1 and len(rows) > 1:
            del rows[r]
        elif kind == 2:
            rows.insert(r, list(rows[r]))
        else:
            rows[r] = rows[r][: int(rng.integers(len(rows[r]) + 1))]
    return "\n".join(",".join(row) for row in rows) + "\n"


def _judge_import(folder: Path, timeout_s: float) -> str:
    from rlhf_mech.errors import RlhfMechError
    from rlhf_mech.files import load_game

    out = folder / "out.yaml"
    try:
        result = run_cli(["import", str(folder / "model.csv"), "-o", str(out), "--force"], timeout_s)
    except Hang:
        return "hang"
    if result.exit_code == 2:
        return "clean" if clean_error(result) else "traceback"
    if result.exit_code != 0:
        return "traceback"
    try:
        load_game(out)
    except RlhfMechError:
        return "wrong_accept"
    return "accepted"


def _judge_audit(path: Path, timeout_s: float) -> str | None:
    try:
        result = run_cli(
            ["audit", str(path), "--budget", "10", "-q", "--time-limit", str(timeout_s)], timeout_s * 2
        )
    except Hang:
        return "hang"
    if "internal error" in result.stderr or result.exit_code not in (0, 1, 2):
        return "traceback"
    if "stopped after the time limit" in result.stderr:
        return "hang"
    return None


#: Run in the child: the CLI, then its own peak RSS (VmHWM: this process image's high-water
#: mark; ``ru_maxrss`` would report the forked parent's size from before ``exec``).
_CHILD = (
    "import atexit, runpy, sys\n"
    "report = sys.argv.pop(1)\n"
    "def peak():\n"
    "    line = next(x for x in open('/proc/self/status') if x.startswith('VmHWM'))\n"
    "    open(report, 'w').write(line.split()[1])\n"
    "atexit.register(peak)\n"
    "sys.argv[0] = 'rlhf-mech'\n"
    "runpy.run_module('rlhf_mech', run_name='__main__')\n"
)


def _peak_mib(argv: list[str], timeout_s: float, folder: Path) -> tuple[int, float, str]:
    """Exit code (-9 past ``timeout_s``), peak RSS (MiB) and stderr of ``rlhf-mech argv`` in a
    process of its own."""
    report = folder / "peak.txt"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(report), *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return -9, float("nan"), (exc.stderr or b"").decode("utf-8", "replace")
    peak = int(report.read_text()) / 1024 if report.exists() else float("nan")
    return proc.returncode, peak, proc.stderr.decode("utf-8", "replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="random inputs (besides the hostile files)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timeout", type=float, default=20.0, help="seconds an input may take (a hang past it)"
    )
    parser.add_argument("--quick", action="store_true", help="300 inputs")
    parser.add_argument(
        "--no-hostile", action="store_true", help="leave out the hostile files (a chunk after the first)"
    )
    parser.add_argument(
        "--save", type=Path, help="write every input that gave a traceback, hang or wrong accept here"
    )
    args = parser.parse_args()
    n = 300 if args.quick else args.n
    rng = np.random.default_rng(args.seed)
    counts: collections.Counter[str] = collections.Counter()
    by_source: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    examples: dict[str, list[str]] = collections.defaultdict(list)
    start = time.monotonic()

    def record(source: str, verdict: str, text: str) -> None:
        counts[verdict] += 1
        by_source[source][verdict] += 1
        if verdict in BAD:
            if len(examples[verdict]) < 3:
                examples[verdict].append(text[:400])
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{verdict}-{counts[verdict]}.txt").write_text(text, encoding="utf-8")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        game = folder / "game.yaml"
        n_surfaces = {name: int(share * n) for name, (share, _) in SURFACES.items()}
        n_mutated, n_generated = int(0.20 * n), int(0.12 * n)
        n_imports = max(0, n - n_mutated - n_generated - sum(n_surfaces.values()))
        for k in range(n_mutated):
            source = BUNDLED[int(rng.integers(len(BUNDLED)))]
            text = mutate(source.read_text(encoding="utf-8"), rng, int(rng.integers(1, 5)))
            game.write_text(text, encoding="utf-8")
            verdict = classify(game, args.timeout)
            if verdict == "accepted" and k % 10 == 0:
                verdict = _judge_audit(game, args.timeout) or verdict
            record("mutated games", verdict, text)

        @settings(
            max_examples=n_generated,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(spec_texts())
        def generated(text: str) -> None:
            game.write_text(text, encoding="utf-8")
            record("generated documents", classify(game, args.timeout), text)

        generated()
        for _ in range(n_imports):
            source = IMPORT_FILES[int(rng.integers(len(IMPORT_FILES)))]
            text = _mutate_csv(source.read_text(encoding="utf-8"), rng)
            (folder / "model.csv").write_text(text, encoding="utf-8")
            record("mutated imports", _judge_import(folder, args.timeout), text)
        for name, count in n_surfaces.items():
            surface = SURFACES[name][1]
            for _ in range(count):
                verdict, text = surface(rng, folder, args.timeout)
                record(name, verdict, text)
        campaign_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        hostile_rows = []
        for case in () if args.no_hostile else HOSTILE:
            sub = folder / f"hostile-{case.name}"
            sub.mkdir()
            argv = case.build(sub)
            code, peak, stderr = _peak_mib(argv, args.timeout, sub)
            lines = stderr.splitlines()
            clean = code == 2 and lines and all(re.match(r"^error: \S", line) for line in lines)
            if code == -9:
                verdict = "hang"
            elif code == case.exit_code and (code != 2 or clean) and case.stderr in stderr:
                verdict = "clean" if code == 2 else "accepted"
            elif code == 0:
                verdict = "wrong_accept"
            else:
                verdict = "traceback"
            record("hostile files", verdict, case.name)
            hostile_rows.append((case.name, code, peak, verdict))

    elapsed = time.monotonic() - start
    total = sum(counts.values())
    print(f"fuzz campaign: {total} inputs in {elapsed:.0f} s (seed {args.seed}, timeout {args.timeout:g} s)")
    verdicts = ("clean", "accepted", *BAD)
    print(f"{'source':<22}" + "".join(f"{v:>13}" for v in verdicts))
    for source, c in by_source.items():
        print(f"{source:<22}" + "".join(f"{c[v]:>13}" for v in verdicts))
    print(f"{'all':<22}" + "".join(f"{counts[v]:>13}" for v in verdicts))
    print("\nhostile files (each in its own process):")
    for name, code, peak, verdict in hostile_rows:
        print(f"  {name:<36} exit {code:>3}  peak {peak:7.1f} MiB  {verdict}")
    hostile_peak = max((row[2] for row in hostile_rows), default=float("nan"))
    print(
        f"\npeak RSS: hostile files {hostile_peak:.0f} MiB (worst), "
        f"the in-process campaign {campaign_peak:.0f} MiB"
    )
    for verdict, texts in examples.items():
        print(f"\nfirst {verdict} inputs:")
        for text in texts:
            print("  " + text.replace("\n", "\n  "))
    print(
        f"RESULT inputs={total} clean={counts['clean']} accepted={counts['accepted']} "
        f"tracebacks={counts['traceback']} hangs={counts['hang']} wrong_accepts={counts['wrong_accept']} "
        f"unescaped={counts['unescaped']} "
        f"hostile_peak_mib={hostile_peak:.0f} seconds={elapsed:.0f}"
    )
    return 1 if any(counts[v] for v in BAD) else 0


if __name__ == "__main__":
    raise SystemExit(main())
