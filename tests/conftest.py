"""Shared fixtures: every registry entry gets every test; terminal output is stable.

The registry fixtures (``divergence``, ``payment_rule``, ``training_rule``,
``normalization``) run a test once per entry, so a new divergence, payment rule, training
rule or file normalisation gets every test that asks for one.

The Rich consoles of :mod:`rlhf_mech.cli` are built when that module is imported, and read
``COLUMNS`` then, so width and colour are fixed here, before any test module imports it,
and again around every test (for consoles that read the environment when they print).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

_TERMINAL = {"COLUMNS": "120", "LINES": "50", "NO_COLOR": "1", "TERMINAL_WIDTH": "120", "TERM": "dumb"}
os.environ.update(_TERMINAL)
for _name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
    os.environ.pop(_name, None)

from rlhf_mech.core import DIVERGENCES, PAYMENT_RULES, TRAINING_RULES, Normalization  # noqa: E402
from rlhf_mech.core._internal import FILE_NORMALIZATIONS  # noqa: E402

#: Every registered divergence (the registry fixture of scipy's ``test_distance.py``).
DIVERGENCE_NAMES: tuple[str, ...] = tuple(DIVERGENCES)
#: Divergences solved by the Newton iteration on the multiplier (they invert g').
NEWTON_DIVERGENCES: tuple[str, ...] = tuple(
    n for n, d in DIVERGENCES.items() if d.g_prime_inverse is not None
)
#: Divergences with an exact closed-form maximiser (KL, TV, the argmax rule).
CLOSED_FORM_DIVERGENCES: tuple[str, ...] = tuple(
    n for n, d in DIVERGENCES.items() if d.closed_form is not None
)
#: Divergences that regularise (every one but the argmax rule of candidate games).
REGULARISING_DIVERGENCES: tuple[str, ...] = tuple(n for n in DIVERGENCES if n != "none")
#: Divergences whose maximiser has full support (g'(0+) = -inf): Theorem 4.2's setting.
FULL_SUPPORT_DIVERGENCES: tuple[str, ...] = tuple(
    n for n, d in DIVERGENCES.items() if d.g_prime_at_zero == -np.inf
)
#: Every registered payment rule (section 3), by name.
PAYMENT_RULE_NAMES: tuple[str, ...] = tuple(PAYMENT_RULES)
#: Every registered training rule (section 3), by name.
TRAINING_RULE_NAMES: tuple[str, ...] = tuple(TRAINING_RULES)
#: The normalisations a core game file may declare (section 2).
FILE_NORMALIZATION_NAMES: tuple[str, ...] = tuple(n.value for n in FILE_NORMALIZATIONS)


@pytest.fixture(autouse=True)
def _stable_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _TERMINAL.items():
        monkeypatch.setenv(name, value)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=DIVERGENCE_NAMES)
def divergence(request: pytest.FixtureRequest) -> str:
    """Each divergence of the registry in turn, so a new entry gets every test."""
    return request.param


@pytest.fixture(params=PAYMENT_RULE_NAMES)
def payment_rule(request: pytest.FixtureRequest) -> str:
    """Each payment rule of the registry in turn, so a new entry gets every test."""
    return request.param


@pytest.fixture(params=TRAINING_RULE_NAMES)
def training_rule(request: pytest.FixtureRequest) -> str:
    """Each training rule of the registry in turn, so a new entry gets every test."""
    return request.param


@pytest.fixture(params=FILE_NORMALIZATION_NAMES)
def normalization(request: pytest.FixtureRequest) -> Normalization:
    """Each normalisation a game file may declare (``sum``, ``max``), as its member."""
    return Normalization(request.param)


@pytest.fixture(params=NEWTON_DIVERGENCES)
def newton_divergence(request: pytest.FixtureRequest) -> str:
    """Each divergence that the Newton multiplier iteration solves."""
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator: every run draws the same games."""
    return np.random.default_rng(20240917)


def write_arrays(directory: Path, files: dict[str, tuple]) -> None:
    """Write ``name -> array`` next to a game file, as .npy or .csv by suffix."""
    for name, values in files.items():
        array = np.asarray(values, dtype=float)
        if name.endswith(".npy"):
            np.save(directory / name, array)
        else:
            np.savetxt(directory / name, np.atleast_2d(array), delimiter=",")


@pytest.fixture
def write_game(tmp_path: Path) -> Callable[..., Path]:
    """``write_game(text, name="game.yaml", files={...}) -> path`` in a fresh directory."""

    def write(text: str, name: str = "game.yaml", files: dict[str, tuple] | None = None) -> Path:
        write_arrays(tmp_path, files or {})
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
