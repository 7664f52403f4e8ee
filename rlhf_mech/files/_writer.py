"""Writing games back to files: :class:`~rlhf_mech.core.Game` -> YAML (+ .npy arrays).

The inverse of :func:`rlhf_mech.files.load_game` for both formats: a core-format game
(outcomes, rewards per group) and a candidate-model game (groups report preferences in the
game's :class:`~rlhf_mech.core.ReportBasis`). The output is canonical: writing a game,
loading it and writing it again gives the same bytes, and loading gives the same numbers
(floats are written with ``repr``, which round-trips exactly).

Arrays with more than :data:`INLINE_LIMIT` entries per row go to ``<stem>.<field>.npy``
beside the YAML, referenced as ``{file: ..., row: i}``. Nothing here reads a file.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlhf_mech.core import (
    Expectations,
    Game,
    GameSolution,
    PaymentRule,
    PromptGame,
    PromptSolution,
    ReportBasis,
    TrainingRule,
)
from rlhf_mech.core._internal import FILE_NORMALIZATIONS, default_outcome_names
from rlhf_mech.errors import RlhfMechError, printable
from rlhf_mech.files._prompt_tables import TABLE_FORMATS, TABLE_THRESHOLD, PromptColumns, game_columns
from rlhf_mech.files._yaml import core_schema

Array = np.ndarray

#: Rows of at most this many values are written inline; longer ones go to .npy files.
INLINE_LIMIT = 16


#: The text of a number as the writer represents it (``repr`` of a float, an int): nothing in
#: it that YAML's emitter must look at character by character.
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?")
_FLOAT = "tag:yaml.org,2002:float"
_INT = "tag:yaml.org,2002:int"
#: What :meth:`_Dumper.write_plain` must split a plain scalar at.
_SPACES_OR_BREAKS = re.compile("[ \n\x85\u2028\u2029]")


@functools.partial(core_schema, keep=True)
class _Dumper(yaml.SafeDumper):
    """Block style with indented sequences; leaf lists and mappings in flow style; strings
    that YAML 1.1 or 1.2 would read as another type are quoted.

    PyYAML's emitter, not libyaml's: libyaml writes a block sequence inside a mapping
    without indenting it (``groups:\n- {name: a}``), and has no option to; its output is
    another text. What makes the Python emitter slow on a game file, the resolvers tried in
    turn and the character-by-character analysis and writing of every number (most of the
    scalars), is skipped for the texts of numbers, whose tag and analysis are known (the same
    bytes: tests/test_scale.py).
    """

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0] and _NUMBER.fullmatch(value) is not None:
            # what every resolver of YAML 1.1 and 1.2 reads such a text as
            return _FLOAT if "." in value or "e" in value else _INT
        return super().resolve(kind, value, implicit)

    def analyze_scalar(self, scalar: str) -> Any:
        if _NUMBER.fullmatch(scalar) is None:
            return super().analyze_scalar(scalar)
        # digits, a dot, an exponent: no indicator, space, break or special character
        return yaml.emitter.ScalarAnalysis(
            scalar=scalar,
            empty=False,
            multiline=False,
            allow_flow_plain=True,
            allow_block_plain=True,
            allow_single_quoted=True,
            allow_double_quoted=True,
            allow_block=True,
        )

    def write_plain(self, text: str, split: bool = True) -> None:
        if not text or _SPACES_OR_BREAKS.search(text):
            super().write_plain(text, split)
            return
        # the emitter's loop on a text without spaces or breaks: one write of the whole text
        if self.root_context:
            self.open_ended = True
        data = text if self.whitespace else " " + text
        self.whitespace = self.indention = False
        self.column += len(data)
        self.stream.write(data.encode(self.encoding) if self.encoding else data)


def _represent_float(dumper: yaml.SafeDumper, value: float) -> yaml.Node:
    if value.is_integer() and abs(value) < 2.0**53:
        return dumper.represent_int(int(value))
    text = repr(value)
    # YAML 1.1 (PyYAML) reads "1e-05" as a string: a float needs a dot and a signed exponent.
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(float, _represent_float)


@dataclass(frozen=True)
class GameDocument:
    """A game ready to write: the YAML mapping and the arrays it references.

    Attributes
    ----------
    data : the mapping, in the order the fields are written.
    arrays : file name (relative to the YAML) -> array, for the ``{file: ...}`` references.
    tables : file name -> the table of prompts ``prompts: {file: ...}`` refers to.
    """

    data: dict[str, Any]
    arrays: dict[str, Array]
    tables: dict[str, PromptColumns] = field(default_factory=dict)


def dump_yaml(data: dict[str, Any], comment: str | None = None) -> str:
    """The YAML text of ``data``; ``comment`` (any number of lines) becomes a ``#`` header."""
    body = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=1 << 30, allow_unicode=True
    )
    if not comment:
        return body
    header = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return header + body


def _floats(values: Array) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def _expect_data(expect: Expectations) -> dict[str, Any]:
    data: dict[str, Any] = {"profile": expect.profile}
    for key in ("dsic", "ir", "nonnegative_payments", "profitable_without_payment"):
        value = getattr(expect, key)
        if value is not None:
            data[key] = value
    for quantity, ranges in expect.ranges.items():
        if set(ranges) == {""}:
            data[quantity] = _floats(ranges[""])
        else:
            data[quantity] = {group: _floats(bounds) for group, bounds in ranges.items()}
    return data


def _common_tail(game: Game | PromptGame, data: dict[str, Any]) -> None:
    if game.max_size is not None:
        data["max_size"] = float(game.max_size)
    training = game.mechanism.training_rule
    if training.name != "sw_max" or training.parameters:
        data["training"] = _rule_entry(game, training)
    data["payment"] = _rule_entry(game, game.mechanism.payment_rule)


def sampled_entry(counts: Array) -> bool | dict[str, list[int]]:
    """``sampled:`` as a file writes it (files/spec/_sampled.py): ``true`` where every outcome
    was drawn once, else the counts."""
    return True if np.all(counts == 1) else {"counts": [int(c) for c in counts]}


def _rule_entry(game: Game | PromptGame, rule: PaymentRule | TrainingRule) -> str | dict[str, Any]:
    """A rule as a file writes it: its name, or ``{rule: NAME, parameter: value, ...}``."""
    if not rule.parameters:
        return rule.name
    settings: dict[str, Any] = {"rule": rule.name}
    kinds = {p.name: p.kind for p in rule.schema}
    for name, value in rule.parameters:
        settings[name] = [game.outcomes[k] for k in value] if kinds[name] == "outcomes" else value
    return settings


def core_document(game: Game, stem: str, inline_limit: int = INLINE_LIMIT) -> GameDocument:
    """The file form (format v1) of a core game.

    Parameters
    ----------
    game : a game whose ``normalization`` is ``sum`` or ``max`` and that has no outcome costs.
    stem : prefix of the .npy file names (``<stem>.rewards.npy`` etc.).
    inline_limit : rows longer than this go to .npy files.
    """
    mechanism = game.mechanism
    if game.normalization not in FILE_NORMALIZATIONS or mechanism.outcome_costs is not None:
        raise ValueError("a core-format game needs normalization 'sum' or 'max' and no outcome costs")
    m = game.n_outcomes
    inline = m <= inline_limit
    arrays: dict[str, Array] = {}
    data: dict[str, Any] = {"name": game.name}
    data["outcomes"] = m if game.outcomes == default_outcome_names(m) else list(game.outcomes)
    if game.sample_counts is not None:
        data["sampled"] = sampled_entry(game.sample_counts)  # initial: the frequencies
    elif np.array_equal(mechanism.pi_init, np.full(m, 1.0 / m)):
        data["initial"] = "uniform"
    elif inline:
        data["initial"] = _floats(mechanism.pi_init)
    else:
        arrays[f"{stem}.initial.npy"] = np.asarray(mechanism.pi_init, dtype=float)
        data["initial"] = {"file": f"{stem}.initial.npy"}
    data["normalization"] = game.normalization.value
    data["divergence"] = {"kind": mechanism.divergence.name, "lambda": mechanism.lam}
    _common_tail(game, data)

    def reward_ref(field: str, matrix: Array, i: int) -> Any:
        if inline:
            return _floats(matrix[i])
        name = f"{stem}.{field}.npy"
        arrays.setdefault(name, np.asarray(matrix, dtype=float))
        return {"file": name, "row": i}

    _groups_tail(
        game,
        data,
        "reward",
        lambda i: reward_ref("rewards", game.truth.rewards, i),
        lambda i: reward_ref("reported_rewards", game.reports.rewards, i),
    )
    return GameDocument(data=data, arrays=arrays)


def _groups_tail(
    game: Game,
    data: dict[str, Any],
    key: str,
    true_value: Callable[[int], Any],
    reported_value: Callable[[int], Any],
) -> None:
    """``groups:`` (name, size, ``key``, and a ``report:`` of what differs) and ``expect:``."""
    truth, reports = game.truth, game.reports
    groups = []
    for i, name in enumerate(game.group_names):
        group: dict[str, Any] = {"name": name, "size": float(truth.sizes[i]), key: true_value(i)}
        report: dict[str, Any] = {}
        if not np.array_equal(reports.rewards[i], truth.rewards[i]):
            report[key] = reported_value(i)
        if reports.sizes[i] != truth.sizes[i]:
            report["size"] = float(reports.sizes[i])
        if report:
            group["report"] = report
        groups.append(group)
    data["groups"] = groups
    if game.expect is not None:
        data["expect"] = _expect_data(game.expect)


def _weights(models: tuple[str, ...], weights: Array) -> dict[str, float]:
    """``{model: weight}`` for the non-zero weights (an omitted model has weight 0)."""
    return {model: float(w) for model, w in zip(models, weights, strict=True) if w != 0}


def candidate_document(game: Game, basis: ReportBasis) -> GameDocument:
    """The file form of a candidate-model game (docs/candidates.md) whose groups report in
    ``basis``; the raw scores are written."""
    models = basis.reward_models
    costs = game.mechanism.outcome_costs
    candidates = []
    for c, name in enumerate(game.outcomes):
        entry: dict[str, Any] = {
            "name": name,
            "scores": {model: float(s) for model, s in zip(models, basis.raw_scores[c], strict=True)},
        }
        cost = 0.0 if costs is None else float(costs[c])
        if cost != 0:
            entry["divergence"] = cost
        candidates.append(entry)
    data: dict[str, Any] = {
        "name": game.name,
        "reward_models": list(models),
        "scale": basis.scale.value,
        "candidates": candidates,
        "divergence": {"lambda": game.mechanism.lam},
    }
    _common_tail(game, data)
    true_preferences, reported_preferences = game.truth.preferences, game.reports.preferences
    assert true_preferences is not None and reported_preferences is not None
    _groups_tail(
        game,
        data,
        "preference",
        lambda i: _weights(models, true_preferences[i]),
        lambda i: _weights(models, reported_preferences[i]),
    )
    return GameDocument(data=data, arrays={})


def prompt_document(
    game: PromptGame, stem: str, inline_limit: int = INLINE_LIMIT, table: str | None = None
) -> GameDocument:
    """The file form of a game of many prompts (``prompts:``; docs/import.md). A prompt's
    rows longer than ``inline_limit`` go to ``<stem>.prompt<k>.<field>.npy``; with ``table``
    (a suffix of :data:`~rlhf_mech.files._prompt_tables.TABLE_FORMATS`), every prompt goes to
    one table ``<stem>.prompts<table>`` instead, ``prompts: {file: ...}``."""
    mechanism = game.mechanism
    data: dict[str, Any] = {"name": game.name, "normalization": game.normalization.value}
    data["divergence"] = {"kind": mechanism.divergence.name, "lambda": mechanism.lam}
    _common_tail(game, data)
    groups = []
    for i, name in enumerate(game.group_names):
        group: dict[str, Any] = {"name": name, "size": float(game.truth.sizes[i])}
        if game.reports.sizes[i] != game.truth.sizes[i]:
            group["report"] = {"size": float(game.reports.sizes[i])}
        groups.append(group)
    data["groups"] = groups
    if table is not None:
        name = f"{stem}.prompts{table}"
        data["prompts"] = {"file": name}
        return GameDocument(data=data, arrays={}, tables={name: game_columns(game)})
    arrays: dict[str, Array] = {}
    prompts = []
    truthful = game.is_truthful
    for k, text in enumerate(game.prompts):
        a, b = int(game.offsets[k]), int(game.offsets[k + 1])
        m = b - a
        inline = m <= inline_limit

        def row(field: str, vector: Array, k: int = k, inline: bool = inline) -> Any:
            if inline:
                return _floats(vector)
            name = f"{stem}.prompt{k}.{field}.npy"
            arrays[name] = np.asarray(vector, dtype=float)
            return {"file": name}

        entry: dict[str, Any] = {"prompt": text}
        if not game.uniform_weights:
            entry["weight"] = float(game.weights[k])
        outcomes = game.prompt_outcomes(k)
        entry["outcomes"] = m if outcomes == default_outcome_names(m) else list(outcomes)
        pi_init = game.pi_init[a:b]
        if game.sample_counts is not None:
            entry["sampled"] = sampled_entry(game.sample_counts[a:b])  # initial: the frequencies
        else:
            entry["initial"] = (
                "uniform" if np.array_equal(pi_init, np.full(m, 1.0 / m)) else row("initial", pi_init)
            )
        truth, reported = game.truth.rewards[:, a:b], game.reports.rewards[:, a:b]
        entry["rewards"] = {n: row(f"group{i}.reward", truth[i]) for i, n in enumerate(game.group_names)}
        report = (
            {}
            if truthful
            else {
                n: row(f"group{i}.report", reported[i])
                for i, n in enumerate(game.group_names)
                if not np.array_equal(reported[i], truth[i])
            }
        )
        if report:
            entry["report"] = report
        prompts.append(entry)
    data["prompts"] = prompts
    return GameDocument(data=data, arrays=arrays)


def game_document(
    game: Game | PromptGame, stem: str = "game", inline_limit: int = INLINE_LIMIT, table: str | None = None
) -> GameDocument:
    """The file form of a game: the format of many prompts for a
    :class:`~rlhf_mech.core.PromptGame` (its prompts in a table with ``table``); the
    candidate format where its groups report in a basis; else the core format."""
    if isinstance(game, PromptGame):
        return prompt_document(game, stem, inline_limit, table)
    if game.report_basis is not None:
        return candidate_document(game, game.report_basis)
    return core_document(game, stem, inline_limit)


def _replace(target: Path, write: Callable[[Any], Any]) -> None:
    """Write ``target`` through a temporary file beside it, then rename it into place: the old
    file's readers (memory maps included) keep the old content, and no reader sees half a file."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            write(f)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


#: ``write_game(..., table=AUTO_TABLE)``: a table of prompts (``.npz``) for a game of more
#: than :data:`~rlhf_mech.files._prompt_tables.TABLE_THRESHOLD` prompts, else none.
AUTO_TABLE = "auto"
#: What ``table`` may be (``rlhf-mech import --prompt-table``): auto, yaml (no table) or a format.
TABLE_CHOICES = (AUTO_TABLE, "yaml", *(suffix.lstrip(".") for suffix in TABLE_FORMATS))


def table_suffix(game: Game | PromptGame, table: str | None) -> str | None:
    """The suffix of the table of prompts ``game`` is written with (``None``: none); ``table``
    is a suffix, ``"yaml"`` (none), ``None`` or :data:`AUTO_TABLE`.

    Raises
    ------
    RlhfMechError
        for a suffix no table format has.
    """
    if table == AUTO_TABLE:
        return ".npz" if isinstance(game, PromptGame) and game.n_prompts > TABLE_THRESHOLD else None
    if table in (None, "yaml") or not isinstance(game, PromptGame):
        return None
    suffix = table if table.startswith(".") else f".{table}"
    if suffix not in TABLE_FORMATS:
        choices = ", ".join(s.lstrip(".") for s in TABLE_FORMATS)
        raise RlhfMechError(f"a table of prompts is one of {choices} (or yaml), not {printable(table)}")
    return suffix


def write_game(
    game: Game | PromptGame,
    path: str | Path,
    comment: str | None = None,
    inline_limit: int = INLINE_LIMIT,
    table: str | None = AUTO_TABLE,
) -> tuple[Path, ...]:
    """Write ``game`` to ``path`` (YAML) and its large arrays beside it (.npy), and for a game
    of many prompts its table of prompts (:func:`table_suffix`).

    Returns
    -------
    The paths written, the YAML first.

    Raises
    ------
    RlhfMechError
        when a file cannot be written.
    """
    path = Path(path)
    document = game_document(game, path.stem, inline_limit, table_suffix(game, table))
    written = [path, *(path.parent / name for name in (*document.arrays, *document.tables))]
    try:
        # arrays first, each replacing its file whole (a game loaded from these very files
        # keeps reading the memory-mapped old ones), then the YAML that references them
        for target, array in zip(written[1:], document.arrays.values(), strict=False):
            _replace(target, lambda f, a=array: np.save(f, a, allow_pickle=False))
        for name, columns in document.tables.items():
            write = TABLE_FORMATS[Path(name).suffix].write
            _replace(path.parent / name, lambda f, c=columns, w=write: w(f, c))
        text = dump_yaml(document.data, comment).encode("utf-8")
        _replace(path, lambda f: f.write(text))
    except OSError as exc:
        raise RlhfMechError(f"cannot write {exc.filename or path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a table format's own refusal (its extra not installed)
        raise RlhfMechError(f"cannot write the table of prompts of {printable(str(path))}: {exc}") from None
    return tuple(written)


def game_text(game: Game | PromptGame, comment: str | None = None) -> str:
    """``game`` as one YAML text with every array inline (for standard output:
    ``rlhf-mech import -o -``), loading to the same numbers as :func:`write_game`'s files."""
    document = game_document(game, inline_limit=sys.maxsize)
    return dump_yaml(document.data, comment)


def write_array(path: str | Path, array: Array) -> Path:
    """Save ``array`` to ``path`` (``.npy``), e.g. the distributions of
    ``rlhf-mech solve --save-distribution``.

    Raises
    ------
    RlhfMechError
        when the file cannot be written.
    """
    path = Path(path)
    try:
        _replace(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))
    except OSError as exc:
        raise RlhfMechError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def check_new_file(path: Path, option: str, force: bool, suffix: str | None = None) -> None:
    """Refuse to overwrite ``path`` without ``--force`` (and a name without ``suffix``).

    Raises
    ------
    RlhfMechError
        naming ``option``.
    """
    if suffix is not None and path.suffix != suffix:
        raise RlhfMechError(f"{option} {printable(str(path))}: the file must end in {suffix}")
    if path.exists() and not force:
        raise RlhfMechError(f"{option} {printable(str(path))}: the file exists; pass --force to overwrite it")


def save_distributions(solution: GameSolution | PromptSolution, path: Path) -> str:
    """Write the truthful and the reported distribution of ``solution`` to ``path`` (``.npy``,
    ``(2, m)``: row 0 truthful, row 1 reported), as ``rlhf-mech solve --save-distribution``.

    Raises
    ------
    RlhfMechError
        for a game of many prompts (one distribution per prompt), or when the file cannot be
        written.
    """
    if isinstance(solution, PromptSolution):
        raise RlhfMechError(
            "--save-distribution: a game of many prompts has one distribution per prompt "
            "(--format json lists them)"
        )
    write_array(path, np.stack([solution.truthful.distribution, solution.reported.distribution]))
    return str(path)
