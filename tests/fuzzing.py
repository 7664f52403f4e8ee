"""Hostile input for the fuzz tests (tests/test_fuzz.py) and the long campaign (benchmarks/fuzz.py).

* :data:`HOSTILE`: the files of issue 14, each a builder that writes it into a folder and
  returns the command line that reads it, the exit code it must give and what stderr must say;
* :func:`mutate`: a random edit of a game file's text (lines dropped, doubled, swapped; tokens
  that YAML, numbers or names treat specially put in);
* :func:`game_texts` and :func:`spec_texts`: hypothesis strategies for game-file texts, the
  first mutating the bundled games, the second building documents of any shape from the
  format's own keys and hostile values;
* :func:`run_cli` and :func:`classify`: one command through the CLI in this process, and what
  came of it: ``clean`` (exit 2 with only ``error: FILE...`` lines), ``accepted``,
  ``traceback``, ``hang``, or ``wrong_accept`` (a loaded game breaks a documented constraint,
  or output that is not finite).

Every builder writes only inside the folder it is given.
"""

from __future__ import annotations

import io
import os
import re
import signal
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from cases import VALID_GAME
from hypothesis import strategies as st
from typer.testing import CliRunner

from rlhf_mech.core import Game, PromptGame

ROOT = Path(__file__).resolve().parent.parent
GAMES = ROOT / "games"
#: The bundled core and candidate games small enough to mutate (not the 10^5-outcome one).
BUNDLED = tuple(p for p in sorted(GAMES.rglob("*.yaml")) if "large" not in p.parts)

#: A small valid core game that the hostile builders edit (tests/cases.py's).
BASE = VALID_GAME

#: A small valid candidate-model game.
CANDIDATES = """\
reward_models: [helpful, harmless]
scale: none
candidates:
  - {name: c1, scores: {helpful: 1.0, harmless: 0.0}}
  - {name: c2, scores: {helpful: 0.2, harmless: 0.9}}
groups:
  - {name: g1, size: 2, preference: {helpful: 1}}
  - {name: g2, size: 1, preference: {harmless: 1}}
"""


@dataclass(frozen=True)
class Hostile:
    """One hostile input: ``build(folder) -> argv``; the exit code and a stderr pattern it must give."""

    name: str
    build: Callable[[Path], list[str]]
    exit_code: int = 2
    stderr: str = ""
    notes: str = field(default="", compare=False)


def _game(text: str, name: str = "game.yaml") -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return ["solve", str(path)]

    return build


def _with_reward_file(
    write: Callable[[Path], None], reference: str = "rm.npy"
) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        write(folder / reference)
        text = BASE.replace("reward: [0.2, 0.3, 0.5]", f"reward: {{file: {reference!r}}}")
        (folder / "game.yaml").write_text(text, encoding="utf-8")
        return ["solve", str(folder / "game.yaml")]

    return build


def _npy_header(shape: tuple[int, ...], descr: str = "<f8", data: bytes = b"") -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue() + data


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


def _outside(path: Path) -> None:
    """``path``: a symlink to an array beside the game file's folder, not inside it."""
    outside = path.parent.parent / "outside"
    outside.mkdir(exist_ok=True)
    np.save(outside / "secret.npy", np.array([0.2, 0.3, 0.5]))
    path.symlink_to(outside / "secret.npy")


def _sweep_report(write: Callable[[Path], None], name: str) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        (folder / "game.yaml").write_text(BASE, encoding="utf-8")
        write(folder / name)
        return ["sweep", str(folder / "game.yaml"), "--group", "g1", "--report-reward", str(folder / name)]

    return build


def _import(rows: str, *options: str) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        (folder / "model.jsonl").write_text(rows, encoding="utf-8")
        return ["import", str(folder / "model.jsonl"), "-o", str(folder / "out.yaml"), *options]

    return build


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n" + BASE


_BIG = "9" * 401

#: The hostile files of issue 14 (and a few of the same kinds): each must give a clean error.
HOSTILE: tuple[Hostile, ...] = (
    Hostile(
        "int_401_digits_size",
        _game(BASE.replace("size: 2", f"size: {_BIG}")),
        stderr="401 digits",
    ),
    Hostile(
        "int_401_digits_candidate_score",
        _game(CANDIDATES.replace("helpful: 1.0,", f"helpful: {_BIG},")),
        stderr="401 digits",
    ),
    Hostile(
        "int_401_digits_preference",
        _game(CANDIDATES.replace("{helpful: 1}", f"{{helpful: {_BIG}}}")),
        stderr="401",
    ),
    Hostile(
        "import_jsonl_int_401_digits",
        _import(f'{{"helpful": {_BIG}, "harmless": 1}}\n', "--reward-col", "helpful=helpful"),
        stderr="is not a finite number",
    ),
    Hostile(
        "import_jsonl_nested_1e5_deep",
        _import('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n"),
        stderr="deep",
    ),
    Hostile(
        "import_column_named_markup",
        _import('{"[/]": 1.0, "[bold]x": 2.0}\n{"[/]": 2.0, "[bold]x": 1.0}\n'),
        0,
    ),
    Hostile(
        "mapping_as_key",
        _game(BASE + "[1, 2]: 3\n"),
        stderr="a key must be a name, not a list",
    ),
    Hostile(
        "mapping_as_mapping_key",
        _game(BASE + "? {a: 1}\n: 2\n"),
        stderr="not a mapping",
    ),
    Hostile(
        "self_referencing_alias", _game("x: &a [*a]\n" + BASE), stderr="alias refers to a node that contains"
    ),
    Hostile(
        "alias_bomb_506_bytes",
        _game(_bomb(9)),
        stderr="aliases expand",
    ),
    Hostile(
        "alias_bomb_562_bytes",
        _game(_bomb(10)),
        stderr="aliases expand",
    ),
    Hostile(
        "outcomes_100000000",
        _game(BASE.replace("outcomes: [a, b, c]", "outcomes: 100000000")),
        stderr="outcomes must be in 1..10000000",
    ),
    Hostile(
        "candidate_score_1e308",
        _game(CANDIDATES.replace("helpful: 1.0,", "helpful: 1.0e308,")),
        stderr="<= 1e+100",
    ),
    Hostile(
        "lambda_subnormal_1e-320", _game(BASE.replace("lambda: 1.0", "lambda: 1e-320")), stderr="outside"
    ),
    Hostile(
        "lambda_1e-6_is_a_number",
        _game(BASE.replace("lambda: 1.0", "lambda: 1e-6")),
        0,
    ),
    Hostile(
        "name_empty",
        _game(BASE.replace("name: base", 'name: ""')),
        stderr="at least 1 character",
    ),
    Hostile(
        "outcome_names_not_strings",
        _game(BASE.replace("[a, b, c]", "[[a], null, true]")),
        stderr="outcome name",
    ),
    Hostile(
        "outcome_names_yes_no_are_strings",
        _game(
            BASE.replace("[a, b, c]", "[yes, no, on]").replace("{a: 0.6, b: 0.2, c: 0.2}", "[0.6, 0.2, 0.2]")
        ),
        0,
    ),
    Hostile(
        "divergence_alias",
        _game(BASE.replace("kind: kl", "kind: kullback_leibler")),
        stderr="Input should be",
    ),
    Hostile(
        "unknown_key_with_escape",
        _game(BASE + '"\\e[2J\\e[31mred\\nline": 1\n'),
        stderr="'\\x1b[2J",
    ),
    Hostile(
        "group_name_with_escape",
        _game(BASE.replace("name: g1", 'name: "g\\e[31m1"')),
        stderr="control",
    ),
    Hostile(
        "file_reference_nul_byte", _game(BASE.replace("[0.2, 0.3, 0.5]", '{file: "rm\\0.npy"}')), stderr="NUL"
    ),
    Hostile(
        "file_reference_absolute",
        _game(BASE.replace("[0.2, 0.3, 0.5]", "{file: /etc/passwd.npy}")),
        stderr="outside the game file's folder",
    ),
    Hostile(
        "file_reference_dotdot",
        _game(BASE.replace("[0.2, 0.3, 0.5]", "{file: ../../x.csv}")),
        stderr="outside the game file's folder",
    ),
    Hostile(
        "file_reference_symlink_out",
        _with_reward_file(_outside, "link.npy"),
        stderr="outside the game",
    ),
    Hostile(
        "file_reference_symlink_loop",
        _with_reward_file(_symlink_loop),
        stderr="cannot read 'rm.npy'",
    ),
    Hostile(
        "file_reference_fifo",
        _with_reward_file(_fifo),
        stderr="not a regular file",
    ),
    Hostile(
        "npy_empty_file",
        _with_reward_file(lambda p: p.write_bytes(b"")),
        stderr="not a .npy file",
    ),
    Hostile(
        "npz_saved_as_npy",
        _with_reward_file(
            lambda p: np.savez(p.with_suffix(".npz"), a=np.ones(3)) or p.with_suffix(".npz").rename(p)
        ),
        stderr="not a .npy file",
    ),
    Hostile(
        "npy_header_claims_1e12_values",
        _with_reward_file(lambda p: p.write_bytes(_npy_header((10**12,), data=b"\0" * 24))),
        stderr="header claims",
    ),
    Hostile(
        "npy_complex",
        _with_reward_file(lambda p: np.save(p, np.ones(3) + 1j)),
        stderr="complex",
    ),
    Hostile(
        "npy_object_pickle",
        _with_reward_file(lambda p: np.save(p, np.array([{}, 1, 2]), allow_pickle=True)),
        stderr="Python objects",
    ),
    Hostile(
        "csv_content_not_echoed",
        _with_reward_file(lambda p: p.write_text("0.2,0.3,SECRET_TOKEN=hunter2\n"), "rm.csv"),
        stderr="row 1, column 3 is not a number",
    ),
    Hostile(
        "sweep_report_reward_2x2",
        _sweep_report(lambda p: np.save(p, np.eye(2) / 2), "r.npy"),
        stderr="(2, 2)",
    ),
    Hostile(
        "sweep_report_reward_complex",
        _sweep_report(lambda p: np.save(p, np.ones(3) / 3 + 0j), "r.npy"),
        stderr="complex",
    ),
    Hostile(
        "game_file_is_a_fifo",
        lambda folder: (_fifo(folder / "g.yaml"), ["solve", str(folder / "g.yaml")])[1],
        stderr="not a regular file",
    ),
    Hostile(
        "game_file_empty",
        _game(""),
        stderr="the file is empty",
    ),
    Hostile(
        "game_file_not_utf8",
        lambda folder: (
            (folder / "g.yaml").write_bytes(b"name: caf\xe9\n"),
            ["solve", str(folder / "g.yaml")],
        )[1],
        stderr="not UTF-8",
    ),
)

#: Texts of the form "token" put into game files by :func:`mutate`.
# fmt: off
TOKENS = (
    "*a",
    "&a",
    "[",
    "]",
    "{",
    "}",
    ":",
    "- ",
    "? ",
    "!!python/object:os.system",
    "!!binary",
    "~",
    "null",
    "yes",
    "1e400",
    "1e-400",
    "-0",
    ".nan",
    ".inf",
    "0x1F",
    "0o17",
    "1_000",
    "1:30",
    "2024-01-01",
    _BIG,
    "1e-320",
    '"\\e[31m"',
    '"\\0"',
    '"\\n"',
    "<<",
    "{file: x.npy}",
    "{file: /etc/passwd}",
    "{file: ../x.csv}",
    "''",
    "-1",
    "0",
    "1e308",
    "1e-300",
    "100000000",
    "[1, 2]",
    "{a: 1}",
    "true",
    "é",
    "\t",
)


def mutate(text: str, rng: np.random.Generator, edits: int = 3) -> str:
    """``text`` with ``edits`` random edits: a line dropped, doubled or swapped with another, a
    token of :data:`TOKENS` put in place of a word, a character deleted or repeated."""
    lines = text.splitlines()
    for _ in range(edits):
        if not lines:
            lines = [""]
        k = int(rng.integers(len(lines)))
        kind = int(rng.integers(6))
        if kind == 0 and len(lines) > 1:
            del lines[k]
        elif kind == 1:
            lines.insert(k, lines[k])
        elif kind == 2:
            j = int(rng.integers(len(lines)))
            lines[k], lines[j] = lines[j], lines[k]
        elif kind in (3, 4):
            words = re.split(r"(\W+)", lines[k])
            spots = [i for i, w in enumerate(words) if w.strip()]
            if spots:
                words[spots[int(rng.integers(len(spots)))]] = TOKENS[int(rng.integers(len(TOKENS)))]
            lines[k] = "".join(words)
        elif lines[k]:
            i = int(rng.integers(len(lines[k])))
            lines[k] = lines[k][:i] + (lines[k][i + 1 :] if rng.random() < 0.5 else lines[k][i:])
    return "\n".join(lines) + "\n"


@st.composite
def game_texts(draw: st.DrawFn) -> str:
    """A bundled game (core or candidate) with a few random edits (:func:`mutate`)."""
    source = draw(st.sampled_from(BUNDLED))
    seed = draw(st.integers(0, 2**32 - 1))
    edits = draw(st.integers(1, 4))
    return mutate(source.read_text(encoding="utf-8"), np.random.default_rng(seed), edits)


#: Keys of both formats, and a few that are not.
# fmt: off
KEYS = (
    "name",
    "outcomes",
    "initial",
    "normalization",
    "divergence",
    "kind",
    "lambda",
    "max_size",
    "payment",
    "groups",
    "size",
    "reward",
    "report",
    "expect",
    "dsic",
    "ir",
    "utility",
    "file",
    "row",
    "reward_models",
    "scale",
    "candidates",
    "scores",
    "preference",
    "colour",
    "<<",
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.sampled_from([10**400, -(10**400), 2**63, 0, 1, 3]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-320, 5e-324, 1e308, 1e-300, 1.0, 0.5, 0.25]),
    st.text(alphabet=string.printable + "\x1b\x00\x85\u2028é", max_size=12),
    st.sampled_from(
        ["uniform", "sum", "max", "kl", "chi2", "tv", "js", "none", "minmax", "affine_maximizer"]
    ),
)


def _nest(children: st.SearchStrategy) -> st.SearchStrategy:
    keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=4))
    return st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6))


#: Documents of any shape: the scalars above in lists and mappings, nested.
DOCUMENTS = st.recursive(_SCALARS, _nest, max_leaves=40)


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    """A game-file text built from the format's keys: a core or candidate skeleton whose fields
    are replaced by, or extended with, documents of any shape and hostile scalars."""
    base = yaml.safe_load(draw(st.sampled_from([BASE, CANDIDATES])))
    for _ in range(draw(st.integers(1, 4))):
        target = base
        path = draw(st.lists(st.sampled_from((*KEYS, 0, 1)), min_size=1, max_size=3))
        for key in path[:-1]:
            nxt = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, list) and isinstance(key, int) and key < len(target):
                nxt = target[key]
            if not isinstance(nxt, dict | list):
                break
            target = nxt
        value = draw(DOCUMENTS)
        if isinstance(target, dict):
            target[path[-1]] = value
        elif isinstance(target, list) and target:
            target[min(len(target) - 1, path[-1] if isinstance(path[-1], int) else 0)] = value
    try:
        return yaml.safe_dump(base, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError, OverflowError):
        return BASE


# --- running and judging ------------------------------------------------------------------------

runner = CliRunner()


class Hang(Exception):
    """A command that ran past its time limit."""


def run_cli(argv: list[str], timeout_s: float = 20.0):
    """``rlhf-mech argv`` in this process (Typer's runner), stopped after ``timeout_s`` (raises
    :class:`Hang`)."""
    from rlhf_mech.cli import app

    def expire(signum, frame):
        raise Hang(" ".join(argv))

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        result = runner.invoke(app, argv)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if isinstance(result.exception, Hang):  # the runner catches it as the command's exception
        raise result.exception
    return result


_ERROR_LINE = re.compile(r"^error: \S")


def clean_error(result, path: str | None = None) -> bool:
    """Exit 2, nothing on stdout, and every stderr line ``error: ...`` (naming ``path``)."""
    lines = result.stderr.splitlines()
    if result.exit_code != 2 or result.stdout or not lines:
        return False
    return all(
        _ERROR_LINE.match(line) and (path is None or line.startswith(f"error: {path}")) for line in lines
    )


def constraint_violation(game: Game | PromptGame) -> str | None:
    """The first documented constraint a loaded game breaks (README "Game files"), or ``None``;
    a game of many prompts: its weights, then each prompt's game."""
    if isinstance(game, PromptGame):
        w = game.weights
        if not (np.all(np.isfinite(w)) and w.min() > 0 and abs(w.sum() - 1) <= 1e-9):
            return "prompt weights are not a distribution"
        return next(filter(None, map(constraint_violation, game.games)), None)
    q = game.mechanism.pi_init
    if not (np.all(np.isfinite(q)) and q.min() >= np.finfo(float).tiny and abs(q.sum() - 1) <= 1e-9):
        return "initial is not a distribution"
    for label, profile in (("truth", game.truth), ("reports", game.reports)):
        if not (np.all(np.isfinite(profile.rewards)) and profile.rewards.min() >= 0):
            return f"{label}: a reward is negative or not finite"
        if profile.sizes.min() < 1 or (game.max_size is not None and profile.sizes.max() > game.max_size):
            return f"{label}: a size is outside [1, max_size]"
        if game.report_basis is None:
            for row in profile.rewards:
                problem = game.normalization.violation(row, game.outcomes)
                if problem is not None:
                    return f"{label}: {problem}"
    names = (game.name, *game.outcomes, *game.group_names)
    if any(not n or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in n) for n in names):
        return "a name is empty or has control characters"
    if len(set(game.outcomes)) != len(game.outcomes) or len(set(game.group_names)) != len(game.group_names):
        return "names repeat"
    lam = game.mechanism.lam
    if not 1e-100 <= lam <= 1e100:
        return f"lambda {lam} outside the documented range"
    return None


def classify(path: Path, timeout_s: float = 20.0) -> str:
    """What ``rlhf-mech solve --format json PATH`` makes of a game file: ``clean``, ``accepted``,
    ``traceback``, ``hang`` or ``wrong_accept`` (with the loaded game checked against
    :func:`constraint_violation` and the JSON output against non-finite numbers)."""
    import json
    import math

    from rlhf_mech.errors import RlhfMechError
    from rlhf_mech.files import load_game

    try:
        result = run_cli(["solve", str(path), "--format", "json"], timeout_s)
    except Hang:
        return "hang"
    if result.exit_code == 2:
        return "clean" if clean_error(result, str(path)) else "traceback"
    if result.exit_code != 0 or (
        result.exception is not None and not isinstance(result.exception, SystemExit)
    ):
        return "traceback"
    try:
        game = load_game(path)
    except RlhfMechError:
        return "wrong_accept"
    if constraint_violation(game) is not None:
        return "wrong_accept"
    try:
        data = json.loads(result.stdout, parse_constant=lambda c: math.nan)
    except ValueError:
        return "wrong_accept"

    def finite(value) -> bool:
        if isinstance(value, float):
            return math.isfinite(value)
        if isinstance(value, dict):
            return all(finite(v) for v in value.values())
        if isinstance(value, list):
            return all(finite(v) for v in value)
        return True

    return "accepted" if finite(data) else "wrong_accept"
