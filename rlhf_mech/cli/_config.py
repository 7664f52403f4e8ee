"""``[tool.rlhf-mech]`` in ``pyproject.toml``: the defaults of ``rlhf-mech audit``.

Like ruff and pytest, the command looks for the nearest ``pyproject.toml`` with a
``[tool.rlhf-mech]`` table, from the current directory up; a flag given on the command line
overrides the file, and the file overrides the built-in default::

    [tool.rlhf-mech]
    paths = ["games"]          # what `rlhf-mech audit` audits when given no paths
    budget = 200               # --budget
    tol = 1e-9                 # --tol
    seed = 0                   # --seed
    output-format = "text"     # --output-format
    noise = 0.01               # --noise
    samples = 64               # --samples
    workers = 2                # -j / --workers

Paths are relative to the ``pyproject.toml``. A key that is unknown or of the wrong type is
an error (exit 2) naming the file and the key.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_mech.errors import RlhfMechError, printable, shown

SECTION = "tool.rlhf-mech"


@dataclass(frozen=True)
class Bound:
    """The values one numeric setting of ``rlhf-mech audit`` takes, on the command line and in
    ``[tool.rlhf-mech]`` alike (:data:`BOUNDS`).

    Attributes
    ----------
    option : the command-line flag (``--budget``); integer : an integer, else a float.
    low, high : the range (``low`` excluded where ``low_open``); a float is also finite.
    why : what a value past ``high`` would do, for the message.
    """

    option: str
    integer: bool
    low: float
    high: float
    low_open: bool = False
    why: str = ""

    @property
    def what(self) -> str:
        """The range in words: ``an integer in 10..1000000``, ``a number > 0 and <= 1e+100``."""
        if self.integer:
            return f"an integer in {int(self.low)}..{int(self.high)}"
        return f"a number {'>' if self.low_open else '>='} {self.low:g} and <= {self.high:g}"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (a parsed flag or a TOML value) is in range and of the right type."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):  # an int of 400 digits has no float
            return False
        above_low = value > self.low if self.low_open else value >= self.low
        return above_low and value <= self.high


#: key of ``[tool.rlhf-mech]`` -> the bound of the setting, for the flag and the file alike.
BOUNDS: dict[str, Bound] = {
    "budget": Bound("--budget", True, 10, 1_000_000, why="memory grows with the budget"),
    "tol": Bound("--tol", False, 0.0, 1e100),
    "seed": Bound("--seed", True, 0, 2**63 - 1),
    # noise is drawn uniform on [-eps, eps] and added to rewards of at most 1e100 (issue 23:
    # --noise 1e308 overflowed the draw's range)
    "noise": Bound("--noise", False, 0.0, 1e100, low_open=True),
    "samples": Bound("--samples", True, 1, 100_000, why="each sample holds every group's rewards"),
    # one process each: past a few hundred a machine spends its time starting them
    "workers": Bound("--workers", True, 1, 1024),
    "time-limit": Bound("--time-limit", False, 0.0, 1e9),
}


def _bounded(key: str) -> tuple[Callable[[Any], bool], str]:
    return BOUNDS[key].accepts, BOUNDS[key].what


def check_flag(key: str, value: Any) -> Any:
    """``value`` of the command-line flag of ``key`` (``None``: not given), checked against
    :data:`BOUNDS` as the file's value is.

    Raises
    ------
    RlhfMechError
        naming the flag and the range.
    """
    bound = BOUNDS[key]
    if value is not None and not bound.accepts(value):
        why = f" ({bound.why})" if bound.why else ""
        raise RlhfMechError(f"{bound.option} {shown(value)}: expected {bound.what}{why}")
    return value


#: key -> (check, what it must be), in the order of the documentation.
_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "paths": (
        lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
        "a list of paths (strings)",
    ),
    "budget": _bounded("budget"),
    "tol": _bounded("tol"),
    "seed": _bounded("seed"),
    "output-format": (lambda v: isinstance(v, str), "a format name"),
    "noise": _bounded("noise"),
    "samples": _bounded("samples"),
    "workers": _bounded("workers"),
}


@dataclass(frozen=True)
class AuditConfig:
    """What ``[tool.rlhf-mech]`` sets (``None``: not set); ``source`` is the file read."""

    paths: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def get(self, key: str, flag: Any, default: Any) -> Any:
        """The value in force: the flag if given, else the file's, else the default."""
        if flag is not None:
            return flag
        return self.values.get(key, default)


def find_pyproject(start: Path) -> tuple[Path, Any] | None:
    """The nearest ``pyproject.toml`` with a ``[tool.rlhf-mech]`` table, from ``start`` up,
    and that table."""
    import tomllib

    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problem = printable(str(exc))
            raise RlhfMechError(f"{printable(str(candidate))}: cannot read it: {problem}") from None
        except RecursionError:  # tomllib recurses once per level of nested arrays and tables
            raise RlhfMechError(f"{printable(str(candidate))}: cannot read it: nested too deeply") from None
        tool = data.get("tool", {})
        if isinstance(tool, dict) and "rlhf-mech" in tool:
            return candidate, tool["rlhf-mech"]
    return None


def load_config(formats: Sequence[str], start: Path | None = None) -> AuditConfig:
    """The ``[tool.rlhf-mech]`` table nearest to ``start`` (the current directory).

    Raises
    ------
    RlhfMechError
        for an unreadable file, an unknown key, a value of the wrong type or an unknown
        ``output-format`` (``formats``: the valid names).
    """
    found = find_pyproject((start or Path.cwd()).resolve())
    if found is None:
        return AuditConfig()
    path, table = found
    where = printable(str(path))
    if not isinstance(table, dict):
        raise RlhfMechError(f"{where}: [{SECTION}] must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise RlhfMechError(
                f"{where}: [{SECTION}]: unknown key {shown(key)} (expected one of: {', '.join(_KEYS)})"
            )
        ok, what = _KEYS[key]
        if not ok(value):
            raise RlhfMechError(f"{where}: [{SECTION}] {key}: expected {what}, got {shown(value)}")
        # TOML's `tol = 1` is an int: a float setting holds it as the float it is (an int of 30
        # digits reached numpy as an object it cannot test for finiteness)
        values[key] = float(value) if key in BOUNDS and not BOUNDS[key].integer else value
    fmt = values.get("output-format")
    if fmt is not None and fmt not in formats:
        raise RlhfMechError(
            f"{where}: [{SECTION}] output-format: {shown(fmt)} is not one of {', '.join(formats)}"
        )
    paths = tuple(_relative(path.parent / p) for p in values.pop("paths", []))
    return AuditConfig(paths=paths, values=values, source=path)


def _relative(path: Path) -> str:
    """``path`` as the user would type it from the current directory."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


@dataclass(frozen=True)
class AuditSettings:
    """What ``rlhf-mech audit`` runs with: the flags, else ``[tool.rlhf-mech]``, else the
    defaults (:func:`audit_settings`)."""

    paths: tuple[str, ...]
    options: Any  # rlhf_mech.analysis.AuditOptions (imported when the command runs)
    seed: int
    workers: int
    output_format: str


def audit_settings(
    paths: Sequence[str] | None,
    output_format: str | None,
    workers: int | None,
    others: str,
    backend: str,
    scheduler: str | None,
    formats: Sequence[str],
    **flags: Any,
) -> AuditSettings:
    """The settings of one audit: each of ``flags`` (``budget``, ``tol``, ``noise``,
    ``samples``, ``seed``, ``time-limit``; ``None`` where not given) and the other options,
    merged with the nearest ``[tool.rlhf-mech]`` table; every number within its
    :data:`BOUNDS`, whether a flag or the file gave it.

    Raises
    ------
    RlhfMechError
        for a bad table or value, ``--backend dask`` without ``--scheduler`` (or the reverse),
        or nothing to audit.
    """
    from rlhf_mech.analysis import AuditOptions
    from rlhf_mech.analysis._internal import DEFAULT_BUDGET, DEFAULT_SAMPLES, DEFAULT_TOL
    from rlhf_mech.cli._options import parse_others

    for key, value in (*flags.items(), ("workers", workers)):
        check_flag(key, value)
    config = load_config(formats)
    if (backend == "dask") != (scheduler is not None):
        raise RlhfMechError("--backend dask and --scheduler go together")
    noise = config.get("noise", flags.get("noise"), None)
    patterns = tuple(paths or config.paths)
    if not patterns:
        raise RlhfMechError(
            "nothing to audit: give game files or directories, or set paths in "
            "[tool.rlhf-mech] of pyproject.toml"
        )
    options = AuditOptions(
        budget=config.get("budget", flags.get("budget"), DEFAULT_BUDGET),
        tol=config.get("tol", flags.get("tol"), DEFAULT_TOL),
        noise=noise,
        samples=config.get("samples", flags.get("samples"), DEFAULT_SAMPLES),
        others=parse_others(others),
    )
    return AuditSettings(
        paths=patterns,
        options=options,
        seed=config.get("seed", flags.get("seed"), 0),
        workers=config.get("workers", workers, 1),
        output_format=str(config.get("output-format", output_format, "text")),
    )
