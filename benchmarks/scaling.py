"""Benchmark: how the mechanism's time grows with the outcomes m and the groups n.

Times the mechanism (``solve_sw_max`` + ``affine_maximizer_payments``, truthful reports,
the tests' random games, lambda = 1) against m at fixed n, and against n at fixed m, each
point with the KL floor of ``benchmarks/solver.py`` measured alongside it (interleaved,
best of ``--repeat``). The work is one pass over the n x m rewards with one exponential per
entry, so the time should grow linearly in n * m: the script fits the slope of
log(time) against log(n * m) by least squares, over the points with n * m >= 10^6 (where
fixed per-call costs no longer matter), over every point, and along each sweep alone.

Run::

    python benchmarks/scaling.py            # m = 10^3 .. 10^7 (n = 8), n = 2 .. 256 (m = 10^5)
    python benchmarks/scaling.py --quick    # m = 10^3 .. 10^5, n = 2 .. 32 (seconds)
    python benchmarks/scaling.py --divergence chi2

The last line is machine-readable: ``RESULT scaling_slope=... scaling_slope_all=... ...``.

Games of many prompts (issue 25), ``--prompts``: for P = 10^3 .. 10^5 prompts of 16
samples (3 groups, ``pi_init`` of each prompt its sample counts, as ``import`` builds it),
the time of each step against P, with the reader it is measured against in the same run:
writing the game (YAML; ``.npz`` table), loading it (YAML against ``yaml.CSafeLoader`` on
the same text; the ``.npz`` table against ``np.load`` of its members; the ``.parquet``
table against ``pyarrow.parquet.read_table``), ``solve`` and ``audit`` in process, and
``import`` of a TRL completions file of P x 16 rows against ``pyarrow.parquet.read_table``
of it; the peak memory of ``rlhf-mech solve`` (``/usr/bin/time -v``) against the table's
size; and the log-log slope of each step's time on P. The YAML form is left out above
``--max-yaml`` prompts (its text passes the loader's 64 MiB limit near 6 x 10^4 prompts),
the audit above ``--max-audit``.

Workers, ``--workers``: ``rlhf-mech audit`` of ``--audit-games`` (default: a folder of
games of many prompts) with ``-j W`` and with ``--backend dask`` on a local cluster of W
single-thread worker processes, W = 1 .. ``--max-workers``: wall times, their ratio, the
same bytes out, and whether anything was printed on stderr.

Implementability, ``--implementability``: ``implementability`` against the number of types
K (``--ks``), SW-Max (monotone) and MaxMin (a negative cycle), by the numpy (default) and the
scipy Bellman-Ford, with the log-log slope of each.

    python benchmarks/scaling.py --prompts [--sizes 1000,10000,100000]
    python benchmarks/scaling.py --workers [--max-workers 2]
    python benchmarks/scaling.py --implementability [--ks 200,400,800,1600]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from _common import floor_functions, interleaved_best, machine, make_problem, mechanism, result_line


def measure(n: int, m: int, divergence: str, lam: float, repeat: int) -> dict[str, float]:
    problem = make_problem(n, m, lam)
    # small problems take microseconds: more repeats there, so the best is a clean figure
    reps = repeat if n * m >= 10**6 else max(repeat, int(3 * 10**6 / (n * m)) // 10 + repeat)
    floor = floor_functions(problem)["floor_prealloc"]
    return interleaved_best(
        {"floor": floor, "mechanism": lambda: mechanism(problem, divergence)}, min(reps, 200)
    )


def slope(points: list[tuple[int, int, float]], least: int = 0) -> float:
    """Least-squares slope of log(time) on log(n m) over the points with n m >= ``least``."""
    chosen = [(n * m, t) for n, m, t in points if n * m >= least]
    if len(chosen) < 2:
        return float("nan")
    x = np.log([c[0] for c in chosen])
    y = np.log([c[1] for c in chosen])
    return float(np.polyfit(x, y, 1)[0])


# --- games of many prompts -----------------------------------------------------------------------

SAMPLES = 16
REWARDS = ("length", "vowel", "cat")
REWARD_WEIGHTS = (1.0, 0.5, 2.0)


def prompt_game(P: int, seed: int = 0):
    """P prompts of up to 16 distinct responses (16 samples, some repeated), 3 groups."""
    from rlhf_mech.core import Mechanism, Profile, PromptGame

    rng = np.random.default_rng(seed)
    samples = rng.integers(1, 4, (P, SAMPLES))  # how often each distinct response was sampled
    counts = np.full(P, SAMPLES)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pi_init = (samples / samples.sum(axis=1, keepdims=True)).ravel()
    raw = rng.random((3, P, SAMPLES)) + 1e-3
    rewards = (raw / raw.sum(axis=2, keepdims=True)).reshape(3, -1)
    truth = Profile(rewards, np.array([1.0, 2.0, 3.0]))
    return PromptGame(
        name=f"prompts-{P}",
        prompts=tuple(f"prompt {x}: tell me about item {x}" for x in range(P)),
        group_names=REWARDS,
        mechanism=Mechanism(pi_init[:SAMPLES], "kl", 1.0),
        normalization="sum",
        offsets=offsets,
        pi_init=pi_init,
        truth=truth,
        reports=truth,
        weights=np.full(P, 1.0 / P),
        max_size=10.0,
    )


def write_trl_log(folder: Path, P: int, seed: int = 0) -> Path:
    """A GRPO completions file of P prompts x 16 generations (tests/trainer_logs.py's layout)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from trainer_logs import _grpo_advantages

    rng = np.random.default_rng(seed)
    n = P * SAMPLES
    values = rng.random((n, len(REWARDS)))
    table = {
        "step": pa.array(np.ones(n, dtype=np.int64)),
        "prompt": pa.array([f"prompt {x}" for x in range(P) for _ in range(SAMPLES)], pa.large_string()),
        "completion": pa.array([f"answer {j}" for _ in range(P) for j in range(SAMPLES)], pa.large_string()),
    }
    for k, name in enumerate(REWARDS):
        table[name] = pa.array(values[:, k])
    table["advantage"] = pa.array(_grpo_advantages(values, np.array(REWARD_WEIGHTS), SAMPLES))
    (folder / "completions").mkdir(parents=True, exist_ok=True)
    path = folder / "completions" / "completions_00001.parquet"
    pq.write_table(pa.table(table), path)
    config = {"num_generations": SAMPLES, "reward_weights": list(REWARD_WEIGHTS)}
    config["multi_objective_aggregation"] = "sum_then_normalize"
    (folder / "training_args.json").write_text(json.dumps(config))
    return path


def timed(func: Callable[[], object], repeat: int = 1) -> float:
    """Best CPU-and-wait time of ``repeat`` runs (wall clock: the steps read files)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def peak_mib(command: list[str]) -> float:
    """Maximum resident set of a command (``/usr/bin/time -v``), MiB."""
    out = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=True)
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)[1]) / 1024


def prompt_row(prompts: int, max_yaml: int, max_audit: int, repeat: int) -> dict[str, float]:
    """Every step's time on a game of ``prompts`` prompts, with its reader's (module docstring)."""
    import pyarrow.parquet as pq
    import yaml

    from rlhf_mech.analysis import AuditOptions, run_audits
    from rlhf_mech.core import solve
    from rlhf_mech.files import load_game, write_game
    from rlhf_mech.files._internal import ImportRequest, run_import

    script = str(Path(sys.executable).with_name("rlhf-mech"))
    row: dict[str, float] = {"P": prompts}
    game = prompt_game(prompts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if prompts <= max_yaml:
            row["write_yaml"] = timed(lambda: write_game(game, folder / "y.yaml", table="yaml"))
            text = (folder / "y.yaml").read_text()
            row["yaml_mb"] = len(text) / 1e6
            row["load_yaml"] = timed(lambda: load_game(folder / "y.yaml"), repeat)
            row["c_loader"] = timed(lambda: yaml.load(text, Loader=yaml.CSafeLoader), repeat)
        row["write_npz"] = timed(lambda: write_game(game, folder / "n.yaml", table="npz"))
        write_game(game, folder / "p.yaml", table="parquet")
        table = folder / "n.prompts.npz"
        row["npz_mb"] = table.stat().st_size / 1e6

        def np_load() -> None:
            with np.load(table) as archive:
                [archive[name] for name in archive.files]

        row["load_npz"] = timed(lambda: load_game(folder / "n.yaml"), repeat)
        row["np_load"] = timed(np_load, repeat)
        row["load_parquet"] = timed(lambda: load_game(folder / "p.yaml"), repeat)
        row["pq_read"] = timed(lambda: pq.read_table(folder / "p.prompts.parquet"), repeat)
        loaded = load_game(folder / "n.yaml")
        row["solve"] = timed(lambda: solve(loaded), repeat)
        row["peak_solve_mib"] = peak_mib([script, "solve", str(folder / "n.yaml"), "--format", "json"])
        if prompts <= max_audit:
            row["audit"] = timed(lambda: run_audits([loaded], AuditOptions()))
        log = write_trl_log(folder / "run", prompts)
        row["pq_read_log"] = timed(lambda: pq.read_table(log), repeat)
        request = ImportRequest(files=(str(folder / "run"),), output=folder / "i.yaml", force=True)
        row["import"] = timed(lambda: run_import(request))
    return row


#: Each step of the table and the reader it is measured against (``None``: none).
PAIRS = {
    "load_yaml": "c_loader",
    "load_npz": "np_load",
    "load_parquet": "pq_read",
    "import": "pq_read_log",
    "write_yaml": None,
    "write_npz": None,
    "solve": None,
    "audit": "solve",
}


def prompts_table(sizes: list[int], max_yaml: int, max_audit: int, repeat: int) -> dict[str, float]:
    rows = []
    for P in sizes:
        rows.append(prompt_row(P, max_yaml, max_audit, repeat))
        print(" ".join(f"{k}={v:.4g}" for k, v in rows[-1].items()), flush=True)
    print()
    print(f"{'P':>7} {'step':>14} {'time s':>9} {'reader s':>9} {'ratio':>6}")
    for row in rows:
        for step, reader in PAIRS.items():
            if step in row:
                base = row[reader] if reader else float("nan")
                print(
                    f"{int(row['P']):>7} {step:>14} {row[step]:>9.4f} {base:>9.4f} {row[step] / base:>6.2f}"
                )
    print("log-log slope of time on P:")
    slopes: dict[str, float] = {}
    for step in PAIRS:
        points = np.log([(r["P"], r[step]) for r in rows if step in r])
        if len(points) >= 2:
            slopes[f"slope_{step}"] = float(np.polyfit(points[:, 0], points[:, 1], 1)[0])
            print(f"  {step}: {slopes[f'slope_{step}']:.2f}")
    last = rows[-1]
    return {
        **slopes,
        "P_max": last["P"],
        "load_npz_over_np_load": last["load_npz"] / last["np_load"],
        "import_over_read": last["import"] / last["pq_read_log"],
        "peak_solve_over_table": last["peak_solve_mib"] * 2**20 / (last["npz_mb"] * 1e6),
    }


# --- import of a TRL log: time against its rows -----------------------------------------------


def imports_table(rows: list[int], repeat: int) -> dict[str, float]:
    """``rlhf-mech import`` (``run_import``: read, build, write, load back) of a TRL
    completions file of ``rows`` rows (16 samples per prompt) against
    ``pyarrow.parquet.read_table`` of it, interleaved, best of ``repeat``; the log-log slope."""
    import pyarrow.parquet as pq

    from rlhf_mech.files._internal import ImportRequest, run_import

    print(f"{'rows':>9} {'prompts':>8} {'import s':>9} {'read s':>8} {'ratio':>6}")
    out: dict[str, float] = {}
    points = []
    for n in rows:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            log = write_trl_log(folder / "run", n // SAMPLES)
            request = ImportRequest(files=(str(folder / "run"),), output=folder / "i.yaml", force=True)
            contenders = {"read": partial(pq.read_table, log), "import": partial(run_import, request)}
            best = interleaved_best(contenders, repeat)
        ratio = best["import"] / best["read"]
        points.append((n, best["import"]))
        print(
            f"{n:>9,} {n // SAMPLES:>8,} {best['import']:>9.3f} {best['read']:>8.4f} {ratio:>6.2f}",
            flush=True,
        )
        out[f"import_over_read_{n}"] = ratio
    if len(points) >= 2:
        logs = np.log(points)
        out["slope_import"] = float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0])
        print(f"log-log slope of import time on rows: {out['slope_import']:.2f}")
    return out


# --- implementability: time against the number of types K -------------------------------------


def implementability_table(ks: list[int]) -> dict[str, float]:
    """``implementability`` on ``games/chi2_three_groups.yaml`` (group 0, K random types) for
    SW-Max (monotone: the whole Bellman-Ford) and MaxMin (a negative cycle), by both graph
    methods; the log-log slope of time on K of each."""
    import dataclasses

    from rlhf_mech.analysis import implementability, type_set
    from rlhf_mech.core import get_payment_rule, get_training_rule
    from rlhf_mech.files import load_game

    base = load_game(Path(__file__).resolve().parent.parent / "games" / "chi2_three_groups.yaml")
    out: dict[str, float] = {}
    print(f"{'rule':>7} {'graph':>6} " + " ".join(f"{'K=' + str(k):>9}" for k in ks) + "  slope")
    for name in ("sw_max", "maxmin"):
        rule = get_training_rule(name)
        payment = base.mechanism.payment_rule if rule.additive else get_payment_rule("none")
        mechanism = dataclasses.replace(base.mechanism, training_rule=rule, payment_rule=payment)
        game = dataclasses.replace(base, mechanism=mechanism)
        types = {k: type_set(game, 0, "random", k - 1, seed=0, max_types=10**6) for k in ks}
        for graph in ("numpy", "scipy"):
            implementability(game, 0, types[ks[0]], graph=graph)  # imports and caches: not K's cost
            times = [implementability(game, 0, types[k], graph=graph).seconds for k in ks]
            slope = float(np.polyfit(np.log(ks), np.log(times), 1)[0])
            out[f"slope_{name}_{graph}"] = slope
            print(f"{name:>7} {graph:>6} " + " ".join(f"{t:>9.3f}" for t in times) + f"  {slope:.2f}")
    return out


# --- workers: -j against dask --------------------------------------------------------------------


def workers_table(folder: Path | None, max_workers: int, prompts: int, games: int) -> dict[str, float]:
    from dask.distributed import LocalCluster

    from rlhf_mech.files import write_game

    script = str(Path(sys.executable).with_name("rlhf-mech"))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if folder is None:
            folder = Path(tmp) / "games"
            folder.mkdir()
            for g in range(games):
                write_game(prompt_game(prompts, seed=g), folder / f"g{g}.yaml")
        print(f"audit of {folder} ({games} games of {prompts} prompts)")
        print(f"{'W':>3} {'-j W s':>8} {'dask s':>8} {'ratio':>6} {'same bytes':>10} {'stderr':>7}")
        for w in range(1, max_workers + 1):
            base = [script, "audit", str(folder), "--format", "json"]
            start = time.perf_counter()
            local = subprocess.run([*base, "-j", str(w)], capture_output=True)
            local_s = time.perf_counter() - start
            with LocalCluster(
                n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster:
                start = time.perf_counter()
                remote = subprocess.run(
                    [*base, "--backend", "dask", "--scheduler", cluster.scheduler_address],
                    capture_output=True,
                )
                dask_s = time.perf_counter() - start
            same = remote.stdout == local.stdout and remote.returncode == local.returncode
            quiet = remote.stderr.strip() == local.stderr.strip()
            said = "" if quiet else "printed"
            print(f"{w:>3} {local_s:>8.2f} {dask_s:>8.2f} {dask_s / local_s:>6.2f} {same!s:>10} {said:>7}")
            if not quiet:
                print("    " + remote.stderr.decode(errors="replace")[-600:])
            out[f"ratio_dask_{w}"] = dask_s / local_s
            out[f"same_{w}"] = int(same)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", action="store_true", help="the table of games of many prompts")
    parser.add_argument("--sizes", default="1000,10000,100000", help="--prompts: the numbers of prompts")
    parser.add_argument(
        "--max-yaml", type=int, default=10_000, help="--prompts: most prompts written as YAML"
    )
    parser.add_argument("--max-audit", type=int, default=10_000, help="--prompts: most prompts audited")
    parser.add_argument("--imports", action="store_true", help="import of a TRL log against read_table")
    parser.add_argument("--rows", default="10000,100000,1000000", help="--imports: the rows of the logs")
    parser.add_argument("--implementability", action="store_true", help="implementability against K")
    parser.add_argument("--ks", default="200,400,800,1600", help="--implementability: the numbers of types")
    parser.add_argument("--workers", action="store_true", help="audit time against workers, -j and dask")
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--audit-games", type=Path, default=None, help="--workers: a folder of games")
    parser.add_argument("--audit-prompts", type=int, default=300, help="--workers: prompts per game")
    parser.add_argument("--audit-count", type=int, default=4, help="--workers: games")
    parser.add_argument("--quick", action="store_true", help="m up to 10^5, n up to 32")
    parser.add_argument("--divergence", default="kl")
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n-fixed", type=int, default=8, help="n of the sweep over m")
    parser.add_argument("--m-fixed", type=int, default=100_000, help="m of the sweep over n")
    args = parser.parse_args()
    if args.prompts or args.workers or args.implementability or args.imports:
        print(f"machine: {machine()}")
        fields: dict[str, float] = {}
        if args.prompts:
            sizes = [int(x) for x in args.sizes.split(",")]
            fields |= prompts_table(sizes, args.max_yaml, args.max_audit, args.repeat)
        if args.imports:
            fields |= imports_table([int(x) for x in args.rows.split(",")], args.repeat)
        if args.implementability:
            fields |= implementability_table([int(k) for k in args.ks.split(",")])
        if args.workers:
            fields |= workers_table(args.audit_games, args.max_workers, args.audit_prompts, args.audit_count)
        print(result_line(**fields))
        return
    ms = [10**k for k in range(3, 6 if args.quick else 8)]
    ns = [2**k for k in range(1, 6 if args.quick else 9)]
    m_fixed = 10_000 if args.quick else args.m_fixed

    print(f"machine: {machine()}")
    print(f"divergence {args.divergence}, lambda = {args.lam}")
    print("/floor: over np.exp into a preallocated (n+1) x m array + w @ R, measured alongside")
    print(f"{'n':>5} {'m':>10} {'n*m':>11} {'time s':>10} {'ns/entry':>9} {'/floor':>7}")
    points: list[tuple[int, int, float]] = []
    grid = [(args.n_fixed, m) for m in ms] + [
        (n, m_fixed) for n in ns if (n, m_fixed) != (args.n_fixed, m_fixed)
    ]
    for n, m in dict.fromkeys(grid):
        t = measure(n, m, args.divergence, args.lam, args.repeat)
        mech = t["mechanism"]
        points.append((n, m, mech))
        per_entry = mech / ((n + 1) * m) * 1e9
        print(f"{n:>5} {m:>10,} {n * m:>11,} {mech:>10.5f} {per_entry:>9.2f} {mech / t['floor']:>7.2f}")
    big = 10**6 if not args.quick else 10**5
    s_big, s_all = slope(points, big), slope(points)
    # each sweep alone, past the sizes where fixed per-call costs dominate
    s_m = slope([p for p in points if p[0] == args.n_fixed and p[1] >= big // 10])
    s_n = slope([p for p in points if p[1] == m_fixed and p[0] * m_fixed >= big // 2])
    print(f"log-log slope of time on n*m: {s_big:.3f} over n*m >= {big:,}; {s_all:.3f} over all points")
    print(f"  along m alone (n = {args.n_fixed}, m >= {big // 10:,}): {s_m:.3f}", end="; ")
    print(f"along n alone (m = {m_fixed:,}, n*m >= {big // 2:,}): {s_n:.3f}")
    fields = dict(scaling_slope=s_big, scaling_slope_all=s_all, scaling_slope_m=s_m, scaling_slope_n=s_n)
    print(result_line(divergence=args.divergence, **fields, from_nm=big))


if __name__ == "__main__":
    main()
