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

from rlhf_mech.errors import RlhfMechError

SECTION = "tool.rlhf-mech"


def _integer(minimum: int) -> tuple[Callable[[Any], bool], str]:
    return (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
        f"an integer >= {minimum}",
    )


def _number(positive: bool) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return (
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and (v > 0 if positive else v >= 0)
        )

    return ok, "a number > 0" if positive else "a number >= 0"


#: key -> (check, what it must be), in the order of the documentation.
_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "paths": (
        lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
        "a list of paths (strings)",
    ),
    "budget": _integer(10),
    "tol": _number(positive=False),
    "seed": _integer(0),
    "output-format": (lambda v: isinstance(v, str), "a format name"),
    "noise": _number(positive=True),
    "samples": _integer(1),
    "workers": _integer(1),
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
            raise RlhfMechError(f"{candidate}: cannot read it: {exc}") from None
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
    if not isinstance(table, dict):
        raise RlhfMechError(f"{path}: [{SECTION}] must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise RlhfMechError(
                f"{path}: [{SECTION}]: unknown key {key!r} (expected one of: {', '.join(_KEYS)})"
            )
        ok, what = _KEYS[key]
        if not ok(value):
            raise RlhfMechError(f"{path}: [{SECTION}] {key}: expected {what}, got {value!r}")
        values[key] = value
    fmt = values.get("output-format")
    if fmt is not None and fmt not in formats:
        raise RlhfMechError(f"{path}: [{SECTION}] output-format: {fmt!r} is not one of {', '.join(formats)}")
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
    ``samples``, ``seed``; ``None`` where not given) and the other options, merged with the
    nearest ``[tool.rlhf-mech]`` table.

    Raises
    ------
    RlhfMechError
        for a bad table or value, ``--backend dask`` without ``--scheduler`` (or the reverse),
        or nothing to audit.
    """
    from rlhf_mech.analysis import DEFAULT_BUDGET, DEFAULT_SAMPLES, DEFAULT_TOL, AuditOptions
    from rlhf_mech.cli._options import parse_others

    config = load_config(formats)
    if (backend == "dask") != (scheduler is not None):
        raise RlhfMechError("--backend dask and --scheduler go together")
    noise = config.get("noise", flags.get("noise"), None)
    if noise is not None and not noise > 0:
        raise RlhfMechError(f"--noise must be > 0, got {noise}")
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
