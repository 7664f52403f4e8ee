"""The layouts ``import`` reads (``--from``), their detection, and the options that belong to each."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlhf_mech.errors import RlhfMechError, SpecError, shown
from rlhf_mech.files._importer import CSV_SUFFIXES, JSONL_SUFFIXES, finite_number
from rlhf_mech.files.spec._document import is_name


@dataclass(frozen=True)
class LogLayout:
    """One layout ``rlhf-mech import`` reads (a ``--from`` value).

    Attributes
    ----------
    name : the ``--from`` value.
    title : the layout in words, as the report names it.
    options : the command-line options that belong to this layout (an option no layout lists,
        such as ``--group``, belongs to all); one given for another layout is an error.
    builds : what ``import`` makes of it: ``"candidates"`` (one candidate model per file),
        ``"prompts"`` (a multi-prompt game; not built yet, see docs/import.md) or ``"table"``
        (the generic importer's ``--as`` decides).
    """

    name: str
    title: str
    options: frozenset[str]
    builds: str


_TABLE_OPTIONS = frozenset({"--reward-col", "--as", "--candidate-col", "--logratio-col", "--logprob-col"})

#: Every layout, in the order ``--from`` lists them.
LAYOUTS: tuple[LogLayout, ...] = (
    LogLayout(
        "trl",
        "TRL GRPO completions (log_completions=True)",
        frozenset({"--reward-col", "--reward-weights", "--aggregation", "--step", "--trainer-config"}),
        "prompts",
    ),
    LogLayout(
        "openrlhf",
        "OpenRLHF reward-model batch inference (one JSONL per reward model)",
        frozenset(),
        "prompts",
    ),
    LogLayout("mod", "MOD evaluation CSVs (srzer/MOD)", frozenset({"--reward-names"}), "candidates"),
    LogLayout("ric", "RiC evaluation CSVs (Rewards-in-Context)", frozenset({"--reward-names"}), "candidates"),
    LogLayout("csv", "generic CSV evaluation files", _TABLE_OPTIONS, "table"),
    LogLayout("jsonl", "generic JSONL evaluation files", _TABLE_OPTIONS, "table"),
)
_LAYOUTS = {layout.name: layout for layout in LAYOUTS}


def get_layout(name: str) -> LogLayout:
    """The layout called ``name``.

    Raises
    ------
    RlhfMechError
        listing the layouts when there is none of that name.
    """
    try:
        return _LAYOUTS[name]
    except KeyError:
        raise RlhfMechError(f"--from must be one of {', '.join(_LAYOUTS)}, got {name!r}") from None


# --- which files, read as what ---------------------------------------------------------------


@dataclass(frozen=True)
class LogInputs:
    """The files one ``import`` reads, and the layout they are read as.

    Attributes
    ----------
    layout : the layout.
    files : the files in reading order (a folder expanded to its files).
    labels : per file, the reward-model name given as ``NAME=FILE`` (OpenRLHF), else ``None``.
    reason : why this layout, in words: ``--from mod``, or what detection saw.
    detected : whether the layout was detected (no ``--from``).
    """

    layout: LogLayout
    files: tuple[Path, ...]
    labels: tuple[str | None, ...]
    reason: str
    detected: bool


TRL_FILE = re.compile(r"completions_(\d+)\.parquet")
EVAL_FILE = re.compile(r"eval_data_pref(.*)\.csv")
OBTAINED = re.compile(r"obtained_score(\d+)")
DESIRED = re.compile(r"desired_score(\d+)")
#: pandas' index column: an empty header (``to_csv``) or ``Unnamed: 0`` (read and written again).
INDEX_COLUMN = re.compile(r"(Unnamed: \d+)?")
OPENRLHF_KEYS = ("input", "output", "reward")


def _completions_folder(folder: Path) -> Path:
    inner = folder / "completions"
    return inner if inner.is_dir() else folder


def _step_order(path: Path) -> tuple[float, str]:
    """Sort key of TRL files: the step in the name (a name without one last), then the path."""
    match = TRL_FILE.fullmatch(path.name)
    return (int(match[1]) if match else math.inf, str(path))


def _trl_files(folder: Path) -> list[Path]:
    """A run's completions files, in step order (``output_dir`` or its ``completions`` folder)."""
    found = [p for p in _completions_folder(folder).iterdir() if TRL_FILE.fullmatch(p.name) and p.is_file()]
    return sorted(found, key=_step_order)


def _eval_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if EVAL_FILE.fullmatch(p.name) and p.is_file())


def _csv_header(path: Path) -> list[str]:
    """The first row of a CSV file (for detection; empty when unreadable)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _jsonl_keys(path: Path) -> set[str]:
    """The keys of the first JSON object of a JSONL file (for detection; empty when unreadable)."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            line = next((text for text in handle if text.strip()), "")
        row = json.loads(line)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return set()
    return set(row) if isinstance(row, dict) else set()


def _detect_file(path: Path) -> tuple[str, str]:
    """(layout, what was seen) of one file, from its name and first line."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "trl", "parquet files (TRL writes completions_{step:05d}.parquet)"
    if suffix in CSV_SUFFIXES:
        if not EVAL_FILE.fullmatch(path.name):
            return "csv", "CSV files not named eval_data_pref*.csv"
        header = _csv_header(path)
        if any(DESIRED.fullmatch(c) for c in header):
            return "ric", "eval_data_pref*.csv files with desired_score columns"
        if any(OBTAINED.fullmatch(c) for c in header):
            return "mod", "eval_data_pref*.csv files with obtained_score columns and no desired_score"
        return "csv", "eval_data_pref*.csv files without obtained_score columns"
    if suffix in JSONL_SUFFIXES:
        if set(OPENRLHF_KEYS) <= _jsonl_keys(path):
            return "openrlhf", "JSONL files whose lines hold input, output and reward"
        return "jsonl", "JSONL files without input, output and reward keys"
    raise SpecError(path, None, "", "expected a .parquet, .csv, .jsonl or .ndjson file, or a folder")


def _expand_folder(folder: Path, layout: str | None) -> tuple[list[Path], str | None]:
    """The log files of a folder: a TRL run's completions, else MOD/RiC evaluation CSVs."""
    if layout in (None, "trl") and (files := _trl_files(folder)):
        return files, "trl"
    if layout in (None, "mod", "ric") and (files := _eval_files(folder)):
        return files, None
    wanted = {
        None: "completions_*.parquet (TRL) or eval_data_pref*.csv (MOD, RiC)",
        "trl": "completions_*.parquet (TRL)",
        "mod": "eval_data_pref*.csv (MOD)",
        "ric": "eval_data_pref*.csv (RiC)",
    }
    if layout not in wanted:
        raise RlhfMechError(f"{folder} is a folder: --from {layout} reads files")
    raise RlhfMechError(f"{folder}: no {wanted[layout]} in this folder")


def _split_label(arg: str) -> tuple[str | None, Path]:
    """``NAME=FILE`` -> (NAME, FILE); an existing path is a path even with ``=`` in it."""
    name, sep, rest = arg.partition("=")
    if sep and not Path(arg).exists() and name:
        return name, Path(rest)
    return None, Path(arg)


def log_inputs(args: Sequence[str], layout: str | None = None) -> LogInputs:
    """The files named on the command line (files, folders, ``NAME=FILE``), and their layout.

    Without ``layout`` the layout is detected from the names and the first line of each file:
    ``*.parquet`` or a folder of ``completions_*.parquet`` is ``trl``; ``eval_data_pref*.csv``
    with ``desired_score`` columns is ``ric``, with ``obtained_score`` columns only ``mod``;
    JSONL whose first line has ``input``, ``output`` and ``reward`` is ``openrlhf``; any other
    ``.csv``/``.jsonl`` is the generic ``csv``/``jsonl``. Every file must detect alike.

    Raises
    ------
    RlhfMechError
        for a missing file, a folder without log files, files of two layouts, or
        ``NAME=FILE`` outside OpenRLHF.
    """
    if layout is not None:
        get_layout(layout)
    if not args:
        raise RlhfMechError("no input files")
    files: list[Path] = []
    labels: list[str | None] = []
    seen: dict[str, str] = {}
    for arg in args:
        label, path = _split_label(str(arg))
        if not path.exists():
            raise RlhfMechError(f"{path}: no such file or directory")
        if path.is_dir():
            found, kind = _expand_folder(path, layout)
            if kind is not None:
                seen.setdefault(kind, f"a folder of completions_*.parquet ({path})")
            else:
                for f in found[:1]:
                    kind, why = _detect_file(f)
                    seen.setdefault(kind, why)
        else:
            found = [path]
            kind, why = _detect_file(path)
            seen.setdefault(kind, why)
        files += found
        labels += [label] * len(found)
    if layout is None:
        if set(seen) == {"csv", "jsonl"}:  # the generic importer reads both in one game
            seen = {next(iter(seen)): "generic CSV and JSONL evaluation files"}
        if len(seen) > 1:
            raise RlhfMechError(
                "the files are of different layouts ("
                + "; ".join(f"{kind}: {why}" for kind, why in seen.items())
                + "); import one run at a time or choose with --from"
            )
        ((layout, why),) = seen.items()
        reason, detected = f"detected: {why}", True
    else:
        reason, detected = f"--from {layout}", False
    if layout != "openrlhf" and any(labels):
        raise RlhfMechError(f"NAME=FILE names an OpenRLHF reward file; these are {layout} files")
    if layout == "trl":
        files = sorted(dict.fromkeys(files), key=_step_order)
        labels = [None] * len(files)
    return LogInputs(get_layout(layout), tuple(files), tuple(labels), reason, detected)


def check_layout_options(inputs: LogInputs, given: Sequence[str]) -> None:
    """Refuse options that belong to another layout, before any file is read.

    Parameters
    ----------
    inputs : the files and their layout.
    given : the options given on the command line (``--step``, ``--reward-names``, ...).

    Raises
    ------
    RlhfMechError
        naming the option, the layouts it is for and why these files are what they are.
    """
    for option in given:
        owners = [layout.name for layout in LAYOUTS if option in layout.options]
        if owners and inputs.layout.name not in owners:
            raise RlhfMechError(
                f"{option} is for --from {' or '.join(owners)}; these are {inputs.layout.name} files "
                f"({inputs.reason})"
            )


# --- command-line values ---------------------------------------------------------------------


def parse_reward_names(text: str) -> tuple[str, ...]:
    """``"harmless,helpful"`` -> ``("harmless", "helpful")`` (the run's ``--reward_names``).

    Raises
    ------
    RlhfMechError
        for an empty or repeated name, or one a game file cannot hold.
    """
    names = tuple(n.strip() for n in text.split(","))
    bad = next((n for n in names if not is_name(n)), None)
    if bad is not None:
        raise RlhfMechError(f"--reward-names {text!r}: {shown(bad)} is not a name")
    if len(set(names)) != len(names):
        raise RlhfMechError(f"--reward-names {text!r}: a name appears twice")
    return names


def parse_reward_weights(text: str) -> dict[str, float]:
    """``"accuracy=1,format=0.5"`` -> ``{"accuracy": 1.0, "format": 0.5}`` (TRL's ``reward_weights``).

    Raises
    ------
    RlhfMechError
        for an item that is not ``NAME=WEIGHT`` with a finite weight, or a name given twice.
    """
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, _, raw = item.partition("=")
        name = name.strip()
        weight = finite_number(raw) if raw else None
        if not is_name(name) or weight is None:
            raise RlhfMechError(f"--reward-weights: {item!r} is not NAME=WEIGHT with a finite weight")
        if name in weights:
            raise RlhfMechError(f"--reward-weights: {name!r} given twice")
        weights[name] = weight
    return weights
