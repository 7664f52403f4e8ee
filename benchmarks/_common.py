"""Shared helpers of the benchmarks: test problems, interleaved timing, peak RSS, machine.

Not part of the library and not run in CI. Timings on a shared box are noisy, so every
figure that matters is a *ratio* of times measured in the same process, the contenders
interleaved, each the best of ``repeat`` runs.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cases import random_pi_init, random_rewards  # noqa: E402  (the tests' generators)


@dataclass(frozen=True)
class Problem:
    """One profile of reports: ``rewards`` (n, m), ``sizes`` (n,), ``pi_init`` (m,), ``lam``."""

    rewards: np.ndarray
    sizes: np.ndarray
    pi_init: np.ndarray
    lam: float


def make_problem(n: int, m: int, lam: float = 1.0, seed: int = 0) -> Problem:
    """Max-normalised rewards (U[0,1], some exact zeros), sizes 1..10, Dirichlet(1) pi_init.

    The generators are the property tests' own (``tests/cases.py``).
    """
    rng = np.random.default_rng(seed)
    rewards = random_rewards(rng, n, m, "max")
    sizes = rng.integers(1, 11, size=n).astype(float)
    return Problem(rewards=rewards, sizes=sizes, pi_init=random_pi_init(rng, m), lam=lam)


def mechanism(problem: Problem, divergence: str):
    """Solve + affine-maximizer payments for truthful reports (what the benchmarks time)."""
    from rlhf_mech.core import Mechanism, Profile, affine_maximizer_payments, solve_sw_max

    p = problem
    solution = solve_sw_max(p.sizes @ p.rewards, p.pi_init, divergence, p.lam)
    mechanism = Mechanism(p.pi_init, divergence, p.lam)
    payment = affine_maximizer_payments(mechanism, Profile(p.rewards, p.sizes), solution=solution)
    return solution, payment


def interleaved_best(funcs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` wall time of each function, the functions run in turn each round."""
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(repeat):
        for name, fn in funcs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def floor_functions(problem: Problem) -> dict[str, Callable[[], object]]:
    """The KL floor of issue #6: one ``np.exp`` over an (n + 1) x m array plus one ``w @ R``.

    ``floor`` is that literally (``np.exp`` allocates its result); ``floor_prealloc`` writes
    into a preallocated array, so it leaves out the page faults of a fresh 8 (n + 1) m-byte
    result: the stricter floor.
    """
    n, m = problem.rewards.shape
    rng = np.random.default_rng(1)
    x = -30.0 * rng.random((n + 1, m))  # exponents of the size KL meets (gaps / lambda)
    out = np.empty_like(x)
    r, w = problem.rewards, problem.sizes
    return {
        "floor": lambda: (np.exp(x), w @ r),
        "floor_prealloc": lambda: (np.exp(x, out=out), w @ r),
    }


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


_RSS_CHILD = """
import json, re, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {bench!r})
from _common import _status_kib, make_problem, mechanism
import rlhf_mech.analysis, rlhf_mech.files  # loaded lazily: load the package before the baseline
base = _status_kib("VmRSS")  # interpreter + numpy + rlhf_mech
p = make_problem({n}, {m}, {lam}, {seed})
try:
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the generator's temporaries
    reset = True                                   # are not the mechanism's
except OSError:
    reset = False
before = _status_kib("VmRSS")
mechanism(p, {divergence!r})
peak = _status_kib("VmHWM")
print(json.dumps(dict(base=base, before=before, peak=peak, nbytes=p.rewards.nbytes, reset=reset)))
"""


def peak_rss(n: int, m: int, divergence: str, lam: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Peak RSS of one mechanism run, in a fresh interpreter (Linux ``/proc``).

    Returns ``ratio = (VmHWM - RSS after imports) / R.nbytes``: the reward matrix itself
    counts 1.0, everything the mechanism allocates on top of it the rest. VmHWM is reset
    after the problem is generated (``/proc/self/clear_refs``), so the generator's own
    temporaries are left out; without that reset they would count too (an upper bound).
    """
    import json

    code = _RSS_CHILD.format(
        bench=str(Path(__file__).resolve().parent), n=n, m=m, lam=lam, seed=seed, divergence=divergence
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    kib = 1024.0
    data["ratio"] = (data["peak"] - data["base"]) * kib / data["nbytes"]
    data["extra_mib"] = (data["peak"] - data["before"]) / kib
    return data


def machine() -> str:
    """One line: CPU, cores, Python, numpy and its BLAS (threadpoolctl if installed)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "BLAS: unknown"
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        info.sort(key=lambda i: "numpy" not in i.get("filepath", ""))  # numpy's own BLAS first
        if info:
            i = info[0]
            blas = f"BLAS: {i['internal_api']} {i['version']} ({i.get('architecture')}, "
            blas += f"{i['num_threads']} threads)"
    except ImportError:
        pass
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    extra = f", OPENBLAS_CORETYPE={coretype}" if coretype else ""
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{blas}{extra}"
    )


def result_line(**fields: object) -> str:
    """The machine-readable last line: ``RESULT key=value ...``."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    return "RESULT " + " ".join(f"{k}={fmt(v)}" for k, v in fields.items())
