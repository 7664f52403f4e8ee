"""The layouts ``import`` reads (``--from``), their detection, and the options that belong to each."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlhf_mech.errors import RlhfMechError, printable, shown
from rlhf_mech.files._tables import CSV_SUFFIXES, JSONL_SUFFIXES, finite_number, located
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
    LogLayout(
        "mod",
        "MOD evaluation CSVs (srzer/MOD eval_ours.py)",
        frozenset({"--reward-names"}),
        "candidates",
    ),
    LogLayout(
        "rs",
        "Rewarded-Soups evaluation CSVs (eval_rewarded_soups.py of srzer/MOD or RiC)",
        frozenset({"--reward-names"}),
        "candidates",
    ),
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
    ranks : per file, its per-rank side files (OpenRLHF's ``FILE0``, ``FILE1``, ... in rank
        order, which ``batch_inference`` leaves beside the merged file); empty otherwise.
    """

    layout: LogLayout
    files: tuple[Path, ...]
    labels: tuple[str | None, ...]
    reason: str
    detected: bool
    ranks: tuple[tuple[Path, ...], ...] = ()


TRL_FILE = re.compile(r"completions_(\d+)\.parquet")
EVAL_FILE = re.compile(r"eval_data_pref(.*)\.csv")
OBTAINED = re.compile(r"obtained_score(\d+)")
DESIRED = re.compile(r"desired_score(\d+)")
#: pandas' index column: an empty header (``to_csv``) or ``Unnamed: 0`` (read and written again).
INDEX_COLUMN = re.compile(r"(Unnamed: \d+)?")
OPENRLHF_KEYS = ("input", "output", "reward")
#: An OpenRLHF per-rank file: ``--output_path`` with the rank appended (``helpful.jsonl0``).
RANK_FILE = re.compile(r"(.+\.(?:jsonl|ndjson))([0-9]+)", re.IGNORECASE)


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


def _jsonl_files(folder: Path) -> list[Path]:
    """A folder's JSON Lines files and OpenRLHF rank files, sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.suffix.lower() in JSONL_SUFFIXES or RANK_FILE.fullmatch(p.name))
    )


def _method_hint(path: Path) -> str | None:
    """``rs`` or ``mod`` from the folders MOD's and RiC's scripts save to by default
    (``logs_rewardedsoups_*`` for ``eval_rewarded_soups.py``, ``logs_ours_*`` for
    ``eval_ours.py``); ``None`` when the path does not say."""
    for part in reversed(path.resolve().parts):
        lowered = part.lower()
        if lowered.startswith(("logs_rewardedsoups", "logs_rewarded_soups")):
            return "rs"
        if lowered.startswith("logs_ours"):
            return "mod"
    return None


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
            if _method_hint(path) == "rs":
                return "rs", (
                    "eval_data_pref*.csv files with obtained_score columns and no desired_score, in a "
                    "logs_rewardedsoups_* folder (eval_rewarded_soups.py)"
                )
            return "mod", (
                "eval_data_pref*.csv files with obtained_score columns and no desired_score; MOD's "
                "eval_ours.py and the Rewarded-Soups baseline eval_rewarded_soups.py write the same files: "
                "--from rs for the latter"
            )
        return "csv", "eval_data_pref*.csv files without obtained_score columns"
    if RANK_FILE.fullmatch(path.name):
        return "openrlhf", "JSONL files whose lines hold input, output and reward, with their rank files"
    if suffix in JSONL_SUFFIXES:
        if set(OPENRLHF_KEYS) <= _jsonl_keys(path):
            return "openrlhf", "JSONL files whose lines hold input, output and reward"
        return "jsonl", "JSONL files without input, output and reward keys"
    raise located(
        printable(str(path)), None, "", "expected a .parquet, .csv, .jsonl or .ndjson file, or a folder"
    )


def _expand_folder(folder: Path, layout: str | None) -> tuple[list[Path], str | None]:
    """The log files of a folder: a TRL run's completions, else MOD/RiC evaluation CSVs, else
    OpenRLHF reward files (with their rank files)."""
    if layout in (None, "trl") and (files := _trl_files(folder)):
        return files, "trl"
    if layout in (None, "mod", "rs", "ric") and (files := _eval_files(folder)):
        return files, None
    if layout in (None, "openrlhf") and (files := _jsonl_files(folder)):
        return files, None
    wanted = {
        None: "completions_*.parquet (TRL), eval_data_pref*.csv (MOD, RiC) or *.jsonl (OpenRLHF)",
        "trl": "completions_*.parquet (TRL)",
        "mod": "eval_data_pref*.csv (MOD)",
        "rs": "eval_data_pref*.csv (Rewarded Soups)",
        "ric": "eval_data_pref*.csv (RiC)",
        "openrlhf": "*.jsonl (OpenRLHF)",
    }
    if layout not in wanted:
        raise RlhfMechError(f"{printable(str(folder))} is a folder: --from {layout} reads files")
    raise RlhfMechError(f"{printable(str(folder))}: no {wanted[layout]} in this folder")


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
            raise RlhfMechError(f"{printable(str(path))}: cannot read the file: No such file or directory")
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
    ranks: tuple[tuple[Path, ...], ...] = ()
    if layout == "openrlhf":
        files, labels, ranks = _with_ranks(files, labels)
    return LogInputs(get_layout(layout), tuple(files), tuple(labels), reason, detected, ranks)


def _with_ranks(
    files: list[Path], labels: list[str | None]
) -> tuple[list[Path], list[str | None], tuple[tuple[Path, ...], ...]]:
    """OpenRLHF's merged files, each with its rank files (``FILE0``, ``FILE1``, ...): those
    given, and those found beside it. A rank file whose merged file is missing stands for it
    (the reader concatenates the ranks, as rank 0 does)."""
    merged: dict[Path, str | None] = {}
    for path, label in zip(files, labels, strict=True):
        match = RANK_FILE.fullmatch(path.name)
        base = path.with_name(match[1]) if match else path
        if merged.get(base) is None:
            merged[base] = label
    ranks = []
    for base in merged:
        found: dict[int, Path] = {}
        folder = base.parent
        if folder.is_dir():
            for p in folder.iterdir():
                match = RANK_FILE.fullmatch(p.name)
                if match and match[1] == base.name and p.is_file():
                    found[int(match[2])] = p
        ranks.append(tuple(found[r] for r in sorted(found)))
    return list(merged), list(merged.values()), tuple(ranks)


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
        raise RlhfMechError(f"--reward-names {shown(text)}: {shown(bad)} is not a name")
    if len(set(names)) != len(names):
        raise RlhfMechError(f"--reward-names {shown(text)}: a name appears twice")
    return names


def parse_reward_weights(text: str) -> dict[str, float] | tuple[float, ...]:
    """``"accuracy=1,format=0.5"`` -> ``{"accuracy": 1.0, "format": 0.5}``; ``"1,0.5"`` ->
    ``(1.0, 0.5)``, the weights in the trainer's ``reward_funcs`` order (TRL's ``reward_weights``).

    Raises
    ------
    RlhfMechError
        for an item that is not ``NAME=WEIGHT`` (or, without names, ``WEIGHT``) with a finite
        weight, names on some items only, or a name given twice.
    """
    items = text.split(",")
    if not any("=" in item for item in items):
        values = tuple(finite_number(item) for item in items)
        bad = next((item for item, v in zip(items, values, strict=True) if v is None), None)
        if bad is not None:
            raise RlhfMechError(f"--reward-weights: {shown(bad)} is not a finite number")
        return values  # type: ignore[return-value]
    weights: dict[str, float] = {}
    for item in items:
        name, _, raw = item.partition("=")
        name = name.strip()
        weight = finite_number(raw) if raw else None
        if not is_name(name) or weight is None:
            raise RlhfMechError(f"--reward-weights: {shown(item)} is not NAME=WEIGHT with a finite weight")
        if name in weights:
            raise RlhfMechError(f"--reward-weights: {shown(name)} given twice")
        weights[name] = weight
    return weights
