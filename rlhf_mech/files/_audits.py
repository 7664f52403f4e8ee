"""An audit of game files, from paths to results: what ``rlhf-mech audit`` runs.

:func:`audit_files` expands the paths (files, directories, globs, ``-``), loads every game
(a game of many prompts is audited whole, its prompts' searches batched),
audits them (:func:`~rlhf_mech.analysis.run_audits`) and writes the counterexamples asked
for. A file that cannot be found, loaded or audited becomes an :class:`InvalidFile` and never
stops the others. Nothing here prints: the result is an :class:`AuditRun` for the renderers.
"""

from __future__ import annotations

import glob
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_mech.analysis import AuditOptions, GameAudit, Uncertainty, run_audits
from rlhf_mech.analysis._internal import AuditSummary, failure_message, summarise, time_limit
from rlhf_mech.core import Game, PromptGame
from rlhf_mech.errors import RlhfMechError, SpecError
from rlhf_mech.files._counterexamples import TypeRow, save_counterexamples
from rlhf_mech.files.spec import MAX_FILE_BYTES, STDIN_NAME, load_game

#: A context manager around one step of the work, given what it does (``-v`` times them).
Step = Callable[[str], AbstractContextManager[Any]]
#: The suffixes of the game files a directory is searched for.
GAME_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class InvalidFile:
    """A file the audit could not load or audit: its path, the error, and where it is.

    Attributes
    ----------
    source : the path (or pattern) as given; message : the error, location included, one
        line per problem (a file's every problem is reported in one run).
    line : the line of the (first) problem, or ``None``; reason : that problem without its
        location.
    more : the file's other problems, ``(line, reason)`` each.
    """

    source: str
    message: str
    line: int | None = None
    reason: str = ""
    more: tuple[tuple[int | None, str], ...] = ()

    @classmethod
    def of(cls, source: str, reason: str) -> InvalidFile:
        """A file with one problem that has no line: missing, or its loading or audit failed
        (an exception, the time limit)."""
        return cls(source, f"{source}: {reason}", None, reason)

    @classmethod
    def from_error(cls, source: str, error: Exception) -> InvalidFile:
        """The invalid file of a load error (a :class:`~rlhf_mech.errors.SpecError` carries
        every problem of the file, each with its line)."""
        if isinstance(error, SpecError):
            located = [(p.line, f"{p.field}: {p.message}" if p.field else p.message) for p in error.problems]
            (line, reason), *more = located
            return cls(source, str(error), line, reason, tuple(more))
        return cls(source, str(error), None, str(error))

    @property
    def problems(self) -> tuple[tuple[int | None, str], ...]:
        """Every problem of the file, ``(line, reason)`` each, the first one first."""
        return ((self.line, self.reason or self.message), *self.more)


@dataclass(frozen=True)
class AuditRun:
    """What one ``rlhf-mech audit`` found: the audits, the files it could not audit, the counts.

    Attributes
    ----------
    audits : one :class:`~rlhf_mech.analysis.GameAudit` per game audited, in path order.
    invalid : the files that could not be found, loaded or audited.
    summary : the counts and the exit code (:func:`~rlhf_mech.analysis.summarise`).
    saved : ``(audit index, group) -> path`` of each counterexample file written.
    quiet : whether the text output is the summary line alone (``-q``).
    uncertainty : per audit, a sampled game's figures with their sampling error (``--ci``;
        :func:`~rlhf_mech.analysis.audit_uncertainty`), ``None`` for a population game; empty
        without ``--ci``.
    types_label : the type set of ``--types`` (``vertices``, ``grid K``, ...), ``None`` without.
    types : each group's audit over that set (:func:`type_audits`); empty without ``--types``.
    """

    audits: tuple[GameAudit, ...]
    invalid: tuple[InvalidFile, ...]
    summary: AuditSummary
    saved: dict[tuple[int, str], str] = field(default_factory=dict)
    quiet: bool = False
    uncertainty: tuple[Uncertainty | None, ...] = ()
    types_label: str | None = None
    types: tuple[TypeRow, ...] = ()


def read_game(path: Path | str, allow_outside_refs: bool = False) -> Game | PromptGame:
    """The game in ``path``; ``-`` reads it from standard input (no more of it than a file may hold)."""
    if str(path) == "-":
        stream = getattr(sys.stdin, "buffer", sys.stdin)  # bytes, decoded (and checked) by load_game
        text = stream.read(MAX_FILE_BYTES + 1)
        return load_game(STDIN_NAME, text=text, allow_outside_refs=allow_outside_refs)
    return load_game(path, allow_outside_refs=allow_outside_refs)


def game_paths(patterns: Sequence[str]) -> tuple[list[Path], list[InvalidFile]]:
    """Files, directories (every ``*.yaml`` / ``*.yml`` below, sorted) and globs -> game files,
    and the patterns that name nothing."""
    found: list[Path] = []
    missing: list[InvalidFile] = []
    for pattern in patterns:
        path = Path(pattern)
        if pattern == "-" or path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in GAME_SUFFIXES and p.is_file())
        elif glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            found += [p for p in matches if p.is_file()]
            if not matches:
                missing.append(InvalidFile.of(pattern, "no file matches"))
        else:
            missing.append(InvalidFile.of(pattern, "cannot read the file: No such file or directory"))
    return list(dict.fromkeys(found)), missing


def load_games(
    paths: Sequence[Path],
    allow_outside_refs: bool = False,
    limit: float | None = None,
    step: Step = lambda what: nullcontext(),
) -> tuple[list[Game | PromptGame], list[InvalidFile]]:
    """Every file that loads, as the games an audit checks, and the others as invalid: one
    file's problem (any exception, or loading past the time limit) never stops the others.
    ``step("load FILE")`` wraps each file's loading (``-v`` times it)."""
    games: list[Game | PromptGame] = []
    invalid: list[InvalidFile] = []
    for path in paths:
        try:
            with step(f"load {path}"), time_limit(limit):
                games.append(read_game(path, allow_outside_refs))
        except RlhfMechError as exc:
            invalid.append(InvalidFile.from_error(str(path), exc))
        except Exception as exc:  # isolation, as in run_audits
            invalid.append(InvalidFile.of(str(path), failure_message(exc)))
    return games, invalid


def _with_rules(
    games: list[Game | PromptGame], rules: Callable[[Game | PromptGame], Game | PromptGame]
) -> tuple[list[Game | PromptGame], list[InvalidFile]]:
    """``rules`` applied to every game; the games it refuses become invalid files."""
    kept: list[Game | PromptGame] = []
    refused: list[InvalidFile] = []
    for game in games:
        try:
            kept.append(rules(game))
        except RlhfMechError as exc:
            refused.append(InvalidFile.of(game.source or game.name, str(exc)))
    return kept, refused


def audit_files(
    patterns: Sequence[str],
    options: AuditOptions,
    *,
    seed: int = 0,
    workers: int = 1,
    dask_client: Any | None = None,
    time_limit_s: float | None = None,
    allow_outside_refs: bool = False,
    counterexamples: Path | None = None,
    on_invalid: Callable[[InvalidFile], None] | None = None,
    progress: Callable[[int], Any] | None = None,
    step: Step = lambda what: nullcontext(),
    quiet: bool = False,
    rules: Callable[[Game | PromptGame], Game | PromptGame] | None = None,
) -> AuditRun:
    """Audit every game the ``patterns`` name.

    Parameters
    ----------
    patterns : files, directories, globs or ``-``; options, seed, workers, dask_client,
        time_limit_s : as in :func:`~rlhf_mech.analysis.run_audits`.
    counterexamples : a folder to write each DSIC-violating report into, as a game file.
    on_invalid : called with each invalid file as soon as it is known (an error line).
    progress : called with the number of per-group tasks; returns a context manager that
        yields the callback to call as each is done (or ``None``), e.g. a progress bar.
    step : ``step(what)`` is a context manager around each step (each file's loading, the
        audit, the counterexamples), e.g. one that times it.
    rules : applied to every game loaded (``audit --training/--payment``); a game it raises
        :class:`~rlhf_mech.errors.RlhfMechError` for is an invalid file.

    Raises
    ------
    RlhfMechError
        when the patterns hold no game file at all.
    """
    report = on_invalid or (lambda bad: None)
    paths, invalid = game_paths(patterns)
    games, unreadable = load_games(paths, allow_outside_refs, time_limit_s, step)
    invalid += unreadable
    if rules is not None:
        games, refused = _with_rules(games, rules)
        invalid += refused
    if not games and not invalid:
        raise RlhfMechError(f"nothing to audit: no game files (*.yaml, *.yml) in {' '.join(patterns)}")
    for bad in invalid:
        report(bad)
    failed: list[InvalidFile] = []

    def on_failure(g: int, message: str) -> None:
        failed.append(InvalidFile.of(games[g].source or games[g].name, message))

    bar = progress(sum(g.n_groups for g in games)) if progress is not None else None
    with step("audit"), bar if bar is not None else nullcontext() as advance:
        audits = run_audits(
            games,
            options,
            seed=seed,
            workers=workers,
            dask_client=dask_client,
            on_task_done=advance,
            on_failure=on_failure,
            time_limit_s=time_limit_s,
        )
    saved: dict[tuple[int, str], str] = {}
    if counterexamples is not None:

        def on_error(k: int, message: str) -> None:
            source = audits[k].game.source or audits[k].game.name
            failed.append(InvalidFile(source, message, reason=message))

        with step(f"write counterexamples to {counterexamples}"):
            saved = save_counterexamples(audits, counterexamples, on_error)
    for bad in failed:
        report(bad)
    invalid += failed
    return AuditRun(tuple(audits), tuple(invalid), summarise(audits, len(invalid)), saved, quiet)
