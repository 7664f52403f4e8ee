"""Games from the evaluation files RLHF pipelines write (``rlhf-mech import``, issue #5).

Two kinds of input:

* **candidates**: one CSV/JSONL file per trained model (or one file with a candidate column),
  one row per sampled response and one score column per reward model. Each candidate's
  score is its mean per reward model (Definition 3.1, "averaging the reward of the
  sequences sampled"); a column of per-response ``log pi(y) / pi_init(y)`` gives its KL
  estimate, the mean log-ratio. The result is a candidate-model :class:`~rlhf_mech.core.Game`.
* **responses**: one file of responses sampled from the initial model, one score column per
  reward model. The rows become the outcomes of a core game, the initial distribution is
  uniform over them or the softmax of a log-probability column; each reward column is
  shifted to be non-negative and divided by its sum or maximum (section 2).

The functions read the files and return the game with a summary of what was read and every
transformation applied, in words; they print and write nothing. Problems in a file raise
:class:`~rlhf_mech.errors.SpecError` naming the file, the line and the column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from rlhf_mech.core import Game, Mechanism, Normalization, Profile, Scale, candidate_game, get_divergence
from rlhf_mech.core._internal import FILE_NORMALIZATIONS
from rlhf_mech.errors import RlhfMechError, shown
from rlhf_mech.files._tables import (
    EvalTable,
    finite_number,
    is_numeric_column,
    located,
    numeric_column,
    read_table,
    require_column,
    text_column,
)
from rlhf_mech.files.spec._document import NAME_RULE, is_name
from rlhf_mech.files.spec._schemas import LAMBDA_MAX, LAMBDA_MIN

Array = np.ndarray

# --- summaries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnStats:
    """What one used column held: its role, and min / max / mean over the rows."""

    column: str
    role: str
    minimum: float
    maximum: float
    mean: float


@dataclass(frozen=True)
class FileSummary:
    """One input file: its rows, all its columns, and statistics of the columns used."""

    path: Path
    rows: int
    columns: tuple[str, ...]
    used: tuple[ColumnStats, ...]


@dataclass(frozen=True)
class CandidateSummary:
    """One candidate: where its rows came from, its mean scores and its KL estimate."""

    name: str
    path: Path
    rows: int
    means: Array
    kl: float | None


@dataclass(frozen=True)
class ImportResult:
    """The game built from evaluation files, with what was read and done.

    Attributes
    ----------
    game : a candidate-model game (kind ``candidates``, its groups report in a
        :class:`~rlhf_mech.core.ReportBasis`) or a core game (kind ``responses``).
    kind : ``"candidates"`` or ``"responses"``.
    reward_columns : reward model name -> column.
    files : one summary per input file.
    candidates : per-candidate summaries (kind ``candidates``; empty otherwise).
    steps : every transformation applied and every default taken, one sentence each.
    provenance : where the game came from (trainer, files, what each file stands for), one
        line each; the CLI writes them into the game file's header comment. Empty for the
        generic CSV/JSONL paths, whose comment names the files only.
    """

    game: Game
    kind: str
    reward_columns: dict[str, str]
    files: tuple[FileSummary, ...]
    candidates: tuple[CandidateSummary, ...]
    steps: tuple[str, ...]
    provenance: tuple[str, ...] = ()


def robust_means(values: Array) -> Array:
    """The means along the last axis of finite ``values``, without overflow: each row is
    divided by its largest magnitude first (``np.mean`` of ``[1e308, 1e308]`` is ``inf``;
    this is ``1e308``)."""
    scale = np.max(np.abs(values), axis=-1, keepdims=True)
    usable = (scale != 0) & np.isfinite(scale)
    with np.errstate(over="ignore", invalid="ignore"):  # of rows whose other mean is taken
        plain = np.mean(values, axis=-1)
        scaled = np.mean(values / np.where(usable, scale, 1.0), axis=-1) * scale[..., 0]
    return np.where(usable[..., 0], scaled, plain)


def robust_mean(values: Array) -> float:
    """The mean of finite ``values``, without overflow (:func:`robust_means`)."""
    return float(robust_means(values)) if values.size else float(np.mean(values))


def column_stats(column: str, role: str, values: Array) -> ColumnStats:
    """What the (rows,) ``values`` of a used column held: min, max and mean."""
    return ColumnStats(column, role, float(values.min()), float(values.max()), robust_mean(values))


# --- groups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupOption:
    """A group given on the command line: ``NAME:SIZE:PREF``."""

    name: str
    size: float
    preference: dict[str, float]


@dataclass(frozen=True)
class GameOptions:
    """What the user chose for the game an import builds, whatever its kind (``--group``,
    ``--lambda``, ``--payment``, ``--name``): one value that every importer takes whole.

    Attributes
    ----------
    groups : the groups; default one per reward model with size 1.
    lam : the weight on the divergence; payment_rule : the payment rule's name.
    name : the game's name; ``None``: from the files.
    """

    groups: Sequence[GroupOption] = ()
    lam: float = 1.0
    payment_rule: str = "affine_maximizer"
    name: str | None = None


#: The options of a game when none is chosen (the importers' default).
GAME_DEFAULTS = GameOptions()


def parse_group_option(text: str) -> GroupOption:
    """Parse ``NAME:SIZE:PREF`` with PREF ``model`` or ``model=weight,model=weight,...``.

    Raises
    ------
    RlhfMechError
        naming the option and what is wrong.
    """
    where = f"--group {text!r}"
    parts = text.split(":")
    if len(parts) != 3 or not parts[0]:
        raise RlhfMechError(f"{where}: expected NAME:SIZE:PREF, e.g. g1:3:helpful=0.8,harmless=0.2")
    name, size_text, pref_text = parts
    size = finite_number(size_text)
    if size is None or size < 1:
        raise RlhfMechError(f"{where}: size {size_text!r} must be a number >= 1")
    preference: dict[str, float] = {}
    for item in pref_text.split(","):
        model, _, weight_text = item.partition("=")
        model = model.strip()
        weight = finite_number(weight_text) if weight_text else 1.0
        if not model or weight is None or weight < 0:
            raise RlhfMechError(f"{where}: {item!r} is not MODEL or MODEL=WEIGHT with a weight >= 0")
        if model in preference:
            raise RlhfMechError(f"{where}: reward model {model!r} appears twice")
        preference[model] = weight
    if not any(preference.values()):
        raise RlhfMechError(f"{where}: a preference needs at least one positive weight")
    return GroupOption(name=name, size=size, preference=preference)


def _group_arrays(
    groups: Sequence[GroupOption], models: tuple[str, ...], steps: list[str]
) -> tuple[tuple[str, ...], Array, Array]:
    """Names, (n, k) preferences and (n,) sizes; one group per reward model when none given."""
    if not groups:
        steps.append(
            "groups: none given, so one group per reward model, size 1, valuing only that model "
            "(edit the file or pass --group NAME:SIZE:PREF)"
        )
        return models, np.eye(len(models)), np.ones(len(models))
    names: list[str] = []
    prefs = np.zeros((len(groups), len(models)))
    for i, group in enumerate(groups):
        if group.name in names:
            raise RlhfMechError(f"--group: duplicate group name {group.name!r}")
        names.append(group.name)
        for model, weight in group.preference.items():
            if model not in models:
                raise RlhfMechError(
                    f"--group {group.name}: unknown reward model {model!r} "
                    f"(reward models: {', '.join(models)})"
                )
            prefs[i, models.index(model)] = weight
    return tuple(names), prefs, np.array([g.size for g in groups])


def _reward_columns(
    table: EvalTable, given: Mapping[str, str] | None, reserved: set[str], steps: list[str]
) -> dict[str, str]:
    """Reward model name -> column: as given, or every numeric column not used otherwise."""
    if given:
        for column in given.values():
            require_column(table, column)
        return dict(given)
    columns = [c for c in table.columns if c not in reserved and is_numeric_column(table, c)]
    if not columns:
        raise located(table.path, 1, "", "no numeric column to use as a reward model; pass --reward-col")
    steps.append(
        "reward models: every numeric column of "
        f"{table.path.name} ({', '.join(columns)}); choose with --reward-col NAME=COLUMN"
    )
    return {c: c for c in columns}


def _check_lam(lam: float) -> None:
    if not LAMBDA_MIN <= lam <= LAMBDA_MAX:
        raise RlhfMechError(
            f"--lambda must be in [{LAMBDA_MIN:g}, {LAMBDA_MAX:g}] (as in a game file), got {lam!r}"
        )


# --- candidate games -------------------------------------------------------------------------


def check_candidate_options(scale: str, lam: float) -> None:
    """The options of a candidate-model game, checked before any file is read.

    Raises
    ------
    RlhfMechError
        for an unknown scale or a lambda outside the range a game file may hold.
    """
    if scale not in tuple(Scale):
        raise RlhfMechError(f"--scale must be one of {', '.join(Scale)}, got {scale!r}")
    _check_lam(lam)


def import_candidates(
    paths: Sequence[str | Path],
    *,
    reward_columns: Mapping[str, str] | None = None,
    candidate_column: str | None = None,
    logratio_column: str | None = None,
    scale: str = "minmax",
    options: GameOptions = GameOptions(),
) -> ImportResult:
    """A candidate-model game from per-model evaluation files.

    Parameters
    ----------
    paths : one file per candidate (named after the file's stem), or files holding several
        candidates told apart by ``candidate_column`` (in order of first appearance).
    reward_columns : reward model name -> column; default every numeric column.
    logratio_column : per-response ``log pi(y) - log pi_init(y)``; the candidate's divergence
        is its mean (the Monte-Carlo KL estimate), 0 when not given.
    scale : a :class:`~rlhf_mech.core.Scale` name (``minmax`` or ``none``).
    options : the groups, the weight on the divergences, the payment rule and the game's name.
    """
    check_candidate_options(scale, options.lam)
    if not paths:
        raise RlhfMechError("no input files")
    steps: list[str] = []
    tables = [read_table(p) for p in paths]
    reserved = {c for c in (candidate_column, logratio_column) if c}
    columns = _reward_columns(tables[0], reward_columns, reserved, steps)
    models = tuple(columns)
    files: list[FileSummary] = []
    found: dict[str, CandidateSummary] = {}
    for table in tables:
        scores = np.column_stack([numeric_column(table, columns[m]) for m in models])
        used = [column_stats(columns[m], f"reward {m}", scores[:, j]) for j, m in enumerate(models)]
        logratio = None
        if logratio_column:
            logratio = numeric_column(table, logratio_column)
            used.append(column_stats(logratio_column, "log-ratio", logratio))
        if candidate_column:
            labels = text_column(table, candidate_column)
            used.insert(0, ColumnStats(candidate_column, "candidate", math.nan, math.nan, math.nan))
        else:
            labels = (table.path.stem,) * table.n_rows
        files.append(FileSummary(table.path, table.n_rows, table.columns, tuple(used)))
        for label in dict.fromkeys(labels):
            if label in found:
                raise located(
                    table.path,
                    None,
                    candidate_column or "",
                    f"candidate {label!r} also in {found[label].path}",
                )
            rows = np.array([lab == label for lab in labels])
            kl = None if logratio is None else float(logratio[rows].mean())
            found[label] = CandidateSummary(label, table.path, int(rows.sum()), scores[rows].mean(axis=0), kl)
    steps.append(
        f"candidates: {len(found)}, "
        + ("one per value of column " + repr(candidate_column) if candidate_column else "one per file")
        + "; each score is the mean over the candidate's rows"
    )
    return assemble_candidates(
        tuple(found.values()),
        columns,
        tuple(files),
        logratio_column=logratio_column,
        scale=scale,
        options=options,
        steps=steps,
    )


def assemble_candidates(
    candidates: tuple[CandidateSummary, ...],
    reward_columns: dict[str, str],
    files: tuple[FileSummary, ...],
    *,
    logratio_column: str | None = None,
    scale: str = "minmax",
    options: GameOptions = GameOptions(),
    steps: Sequence[str] = (),
    provenance: tuple[str, ...] = (),
) -> ImportResult:
    """The candidate-model game of measured candidates (the second half of :func:`import_candidates`).

    Parameters
    ----------
    candidates : one summary per candidate, in the game's order; ``kl`` set on every one
        when ``logratio_column`` is given.
    reward_columns : reward model name -> the column it was read from, in the game's order.
    files : what was read, for the report.
    logratio_column : the column the KL estimates came from (``None``: every divergence 0).
    steps : what was done so far, in words; the result's steps continue them.
    provenance : where the game came from, one line each (the game file's header comment).
    """
    steps = list(steps)
    models = tuple(reward_columns)
    raw = np.array([c.means for c in candidates])
    divergences = np.zeros(len(candidates))
    if logratio_column:
        steps.append(
            f"divergence: KL estimate = mean of column {logratio_column!r} over each candidate's rows"
        )
        for c, cand in enumerate(candidates):
            assert cand.kl is not None
            if cand.kl < 0:
                steps.append(
                    f"candidate {cand.name!r}: KL estimate {cand.kl!r} < 0 (sampling noise); written as 0"
                )
            divergences[c] = max(cand.kl, 0.0)
    if Scale(scale) is Scale.NONE and (raw < 0).any():
        c, j = np.argwhere(raw < 0)[0]
        raise RlhfMechError(
            f"candidate {candidates[c].name!r} has mean {models[j]} score {float(raw[c, j])!r} < 0; "
            "scale none needs scores >= 0 (use --scale minmax)"
        )
    steps.append(
        "scale: minmax, each reward model rescaled to [0, 1] across the candidates when the game is "
        "loaded (the file keeps the means)"
        if Scale(scale) is Scale.MINMAX
        else "scale: none, the means are used as they are"
    )
    group_names, prefs, sizes = _group_arrays(options.groups, models, steps)
    game = candidate_game(
        name=options.name or "imported-candidates",
        candidates=tuple(c.name for c in candidates),
        reward_models=models,
        raw_scores=raw,
        scale=scale,
        divergences=divergences,
        lam=options.lam,
        payment_rule=options.payment_rule,
        group_names=group_names,
        preferences=prefs,
        sizes=sizes,
    )
    return ImportResult(
        game=game,
        kind="candidates",
        reward_columns=dict(reward_columns),
        files=files,
        candidates=candidates,
        steps=(*steps, *game.notes),
        provenance=provenance,
    )


# --- response games --------------------------------------------------------------------------


def normalised_rows(values: Array, normalization: Normalization | str) -> tuple[Array, Array, Array, Array]:
    """Shift each row (the last axis) of ``values`` to be non-negative, then divide it by its
    sum or maximum (section 2): :func:`normalise_rewards` on every row at once.

    Returns
    -------
    rewards : the normalised rows (a flat row, see ``flat``, is left shifted and undivided);
    shift : (...,) what was added to each row; divisor : (...,) its sum or maximum;
    flat : (...,) bool, the rows that are all zero after shifting (no preference).
    """
    normalization = Normalization(normalization)
    top = np.max(np.abs(values), axis=-1, keepdims=True)
    # a power of two (dividing by it is exact) with |values| / scale <= 2
    scale = np.where(top > 0, np.ldexp(1.0, np.frexp(top)[1] - 1), 1.0)
    scaled = values / scale
    low = scaled.min(axis=-1, keepdims=True)
    shifted = np.where(low < 0, scaled - low, scaled)
    total = normalization.total(shifted)[..., None]
    flat = total == 0
    with np.errstate(over="ignore"):
        shift = np.where(low < 0, -low * scale, 0.0)
        divisor = total * scale
    return shifted / np.where(flat, 1.0, total), shift[..., 0], divisor[..., 0], flat[..., 0]


def normalise_rewards(values: Array, normalization: Normalization | str) -> tuple[Array, float, float]:
    """Shift a reward column to be non-negative, then divide by its sum or maximum (section 2).

    Returns
    -------
    rewards : the normalised column; shift : what was added (``-min`` when the minimum is
    negative, else 0); divisor : the sum or maximum it was divided by (``inf`` when that
    sum is beyond the float range: the column is then normalised all the same, see Notes).

    Notes
    -----
    The column is first divided by its largest magnitude ``s`` (a power of two, so exactly):
    shifting ``[-1e308, 1e308]`` by ``1e308`` overflows to ``inf`` and ``inf / inf`` is NaN,
    while ``(v / s + shift / s) / (total / s)`` is the same ratio computed inside the float
    range. The result equals the plain formula wherever the plain formula is finite.

    Raises
    ------
    ValueError
        if the shifted column is all zero (it carries no preference).
    """
    rewards, shift, divisor, flat = normalised_rows(values, normalization)
    if flat:
        raise ValueError("every value is the same after shifting to be non-negative")
    return rewards, float(shift), float(divisor)


def exact_simplex(q: Array) -> Array:
    """Each row (the last axis) ``q / sum q``, its largest entry nudged (by ulps) until the
    row's float sum is exactly 1.

    The game-file loader divides ``initial`` by its sum, so only an exact sum loads back
    unchanged (and writes back to the same bytes).
    """
    q = q / q.sum(axis=-1, keepdims=True)
    rows = q.reshape(-1, q.shape[-1])  # a view: nudging it nudges q
    top = np.argmax(rows, axis=1)
    every = np.arange(len(rows))
    for _ in range(8):
        residual = 1.0 - rows.sum(axis=1)
        if not residual.any():
            break
        rows[every, top] += residual
    return q


def check_response_options(
    normalization: Normalization | str, divergence: str, lam: float
) -> tuple[Normalization, str]:
    """The normalisation and the divergence's canonical name of a game whose outcomes are
    sampled responses, checked with lambda.

    Raises
    ------
    RlhfMechError
        naming ``--normalization``, ``--divergence`` or ``--lambda``.
    """
    if normalization not in FILE_NORMALIZATIONS:
        raise RlhfMechError(
            f"--normalization must be one of {', '.join(FILE_NORMALIZATIONS)}, got {normalization!r}"
        )
    try:
        name = get_divergence(divergence).name
    except ValueError as exc:
        raise RlhfMechError(f"--divergence: {exc}") from None
    _check_lam(lam)
    return Normalization(normalization), name


def combine_rewards(preferences: Array, normalised: Array, normalization: Normalization) -> Array:
    """(..., n, m) each group's reward model: its preference combination of the (..., k, m)
    normalised reward models, normalised again (a combination of sum-1 rewards need not sum
    to 1)."""
    rewards = preferences @ normalised
    return rewards / normalization.total(rewards)[..., None]


def import_responses(
    path: str | Path,
    *,
    reward_columns: Mapping[str, str] | None = None,
    logprob_column: str | None = None,
    normalization: Normalization | str = Normalization.SUM,
    divergence: str = "kl",
    options: GameOptions = GameOptions(),
) -> ImportResult:
    """A core game whose outcomes are the rows of one file of responses from the initial model.

    Parameters
    ----------
    path : the file; row j becomes outcome ``x{j}``.
    reward_columns : reward model name -> column; default every numeric column.
    logprob_column : ``log pi_init(y)`` per response; the initial distribution is its softmax
        over the rows (normalised in log space). Default: uniform.
    normalization : ``sum`` or ``max``; divergence : the regulariser.
    options : the groups (a group's reward is its preference combination of the normalised
        reward columns, normalised again), lambda, the payment rule and the game's name.
    """
    normalization, divergence = check_response_options(normalization, divergence, options.lam)
    steps: list[str] = []
    table = read_table(path)
    reserved = {logprob_column} if logprob_column else set()
    columns = _reward_columns(table, reward_columns, reserved, steps)
    models = tuple(columns)
    m = table.n_rows
    steps.append(f"outcomes: the {m} rows of {table.path.name}, row j (file order) -> outcome x{{j}}")
    used: list[ColumnStats] = []
    normalised = np.empty((len(models), m))
    for k, model in enumerate(models):
        values = numeric_column(table, columns[model])
        used.append(column_stats(columns[model], f"reward {model}", values))
        try:
            normalised[k], shift, divisor = normalise_rewards(values, normalization)
        except ValueError as exc:
            raise located(table.path, None, columns[model], str(exc)) from None
        shifted = f"shifted by {shift!r} (its minimum was {-shift!r}), then " if shift else ""
        steps.append(
            f"reward {model} (column {columns[model]!r}): {shifted}divided by its "
            f"{normalization.value} {divisor!r}"
            + (
                " (beyond the float range: computed on the values divided by a power of two)"
                if math.isinf(divisor)
                else ""
            )
        )
    pi_init = np.full(m, 1.0 / m)
    if logprob_column:
        logp = numeric_column(table, logprob_column)
        used.append(column_stats(logprob_column, "log-probability", logp))
        log_total = float(logsumexp(logp))
        pi_init = exact_simplex(np.exp(logp - log_total))
        tiny = np.finfo(float).tiny
        low = np.flatnonzero(pi_init < tiny)
        if low.size:
            r = int(low[0])
            raise located(
                table.path,
                table.lines[r],
                logprob_column,
                f"log-probability {float(logp[r])!r} is {log_total - logp[r]:.1f} below the log of "
                "the total: its probability underflows (every outcome needs p > 0)",
            )
        steps.append(
            f"initial distribution: the softmax of column {logprob_column!r} over the rows, "
            f"exp(logprob - L) with L = logsumexp(logprob) = {log_total!r} (normalised in log space)"
        )
    else:
        steps.append("initial distribution: uniform over the rows")
    group_names, prefs, sizes = _group_arrays(options.groups, models, steps)
    rewards = combine_rewards(prefs, normalised, normalization)
    for i, group in enumerate(group_names):
        combination = " + ".join(
            f"{w:g} {model}" for model, w in zip(models, prefs[i], strict=True) if w != 0
        )
        if np.count_nonzero(prefs[i]) > 1:
            steps.append(f"group {group}: reward = ({combination}) divided by its {normalization.value}")
    truth = Profile(rewards, sizes)
    game = Game(
        name=options.name or table.path.stem,
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=group_names,
        mechanism=Mechanism(
            pi_init=pi_init, divergence=divergence, lam=options.lam, payment_rule=options.payment_rule
        ),
        normalization=normalization,
        truth=truth,
        reports=truth,
        sample_counts=None if logprob_column else np.ones(m, dtype=np.int64),  # rows: samples
    )
    summary = FileSummary(table.path, m, table.columns, tuple(used))
    return ImportResult(
        game=game,
        kind="responses",
        reward_columns=columns,
        files=(summary,),
        candidates=(),
        steps=tuple(steps),
    )


# --- command-line options --------------------------------------------------------------------


def parse_reward_columns(options: Sequence[str]) -> dict[str, str]:
    """``["helpful=score_helpful", "harmless"]`` -> ``{"helpful": "score_helpful", "harmless": "harmless"}``.

    Raises
    ------
    RlhfMechError
        for an empty name or column, or a name given twice.
    """
    columns: dict[str, str] = {}
    for option in options:
        name, _, column = option.partition("=")
        name, column = name.strip(), (column or name).strip()
        if not name or not column:
            raise RlhfMechError(f"--reward-col {option!r}: expected NAME=COLUMN (or COLUMN)")
        if name in columns:
            raise RlhfMechError(f"--reward-col: reward model {name!r} given twice")
        columns[name] = column
    return columns


def resolve_kind(
    kind: str | None,
    n_files: int,
    candidate_column: str | None,
    logratio_column: str | None,
    logprob_column: str | None,
) -> str:
    """``candidates`` or ``responses``; checks that the options fit it before any file is read.

    Without ``kind``: ``responses`` for a single file with neither a candidate nor a
    log-ratio column, else ``candidates``.

    Raises
    ------
    RlhfMechError
        for options that conflict with the kind.
    """
    if kind is None:
        kind = "responses" if n_files == 1 and not (candidate_column or logratio_column) else "candidates"
    if kind == "candidates" and logprob_column:
        raise RlhfMechError("--logprob-col is for --as responses (the initial model's samples)")
    if kind == "responses":
        if candidate_column or logratio_column:
            raise RlhfMechError("--candidate-col and --logratio-col are for --as candidates")
        if n_files != 1:
            raise RlhfMechError(f"--as responses reads one file of initial-model samples, got {n_files}")
    return kind


def import_files(
    paths: Sequence[str | Path],
    *,
    kind: str | None = None,
    reward_columns: Mapping[str, str] | None = None,
    candidate_column: str | None = None,
    logratio_column: str | None = None,
    logprob_column: str | None = None,
    groups: Sequence[GroupOption] = (),
    scale: str = "minmax",
    normalization: str = "sum",
    divergence: str = "kl",
    lam: float = 1.0,
    payment_rule: str = "affine_maximizer",
    name: str | None = None,
) -> ImportResult:
    """:func:`import_candidates` or :func:`import_responses`, as :func:`resolve_kind` decides."""
    kind = resolve_kind(kind, len(paths), candidate_column, logratio_column, logprob_column)
    options = GameOptions(groups, lam, payment_rule, name)
    if kind == "candidates":
        result = import_candidates(
            paths,
            reward_columns=reward_columns,
            candidate_column=candidate_column,
            logratio_column=logratio_column,
            scale=scale,
            options=options,
        )
    else:
        result = import_responses(
            paths[0],
            reward_columns=reward_columns,
            logprob_column=logprob_column,
            normalization=normalization,
            divergence=divergence,
            options=options,
        )
    check_names(result.game)
    return result


def check_names(game: Game) -> None:
    """Every name of an imported game can be written to, and read from, a game file.

    Raises
    ------
    RlhfMechError
        for an empty name or one with control characters (a column called ``"a\\x1bb"``).
    """
    basis = game.report_basis
    named = {
        "reward model": basis.reward_models if basis is not None else (),
        "candidate": game.outcomes if basis is not None else (),
        "group": game.group_names,
        "game": (game.name,),
    }
    for what, names in named.items():
        bad = next((n for n in names if not is_name(n)), None)
        if bad is not None:
            raise RlhfMechError(
                f"the {what} name {shown(bad)}: a name {NAME_RULE} in a game file; rename the column "
                "(or value), or choose names with --reward-col/--group/--name"
            )
