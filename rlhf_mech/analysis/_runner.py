r"""Many audits in parallel: the per-group work of every game as joblib (or dask) tasks.

:func:`run_audits` spreads the per-group work over joblib processes (or a dask cluster whose
client the caller connects) with a seed per task, so that the result does not depend on the
number of workers; one game's failure (an exception, its time limit) never stops the others.
:func:`summarise` counts the findings into an exit code.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

from rlhf_mech.analysis._audit import (
    AuditOptions,
    GameAudit,
    GroupAudit,
    assemble_prompt_group,
    audit_game,
    audit_groups,
    audit_prompt_chunk,
)
from rlhf_mech.analysis._prompt_search import PromptPart, prompt_chunks
from rlhf_mech.core import Game, PromptGame


def _prompt_tasks(game: Game | PromptGame) -> list[tuple[int, int]]:
    """``(group, chunk of prompts)`` for each task of a game of several chunks of prompts
    (:func:`~rlhf_mech.analysis._prompt_search.prompt_chunks`): a big log's game is spread over
    the workers by its prompts, not only by its few groups. Empty for any other game."""
    if not isinstance(game, PromptGame):
        return []
    chunks = len(prompt_chunks(game.n_prompts))
    return [(i, c) for i in range(game.n_groups) for c in range(chunks)] if chunks > 1 else []


def _chunks(n_groups: int, parallelism: int) -> list[tuple[int, ...]]:
    """Split a game's groups into at most ``4 x parallelism`` consecutive tasks.

    A task needs the whole game on its worker (joblib pickles it into each task, its large
    arrays memory-mapped; dask's scatter sends it once), so a game is cut into a few tasks
    rather than one per group; every group keeps its own seed, so the cut changes nothing in
    the result.
    """
    size = max(1, math.ceil(n_groups / (4 * max(1, parallelism))))
    return [tuple(range(start, min(n_groups, start + size))) for start in range(0, n_groups, size)]


class TimeLimitExceeded(Exception):
    """A file's audit ran past its time limit (:func:`time_limit`)."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block once it has run ``seconds`` (``None``: no limit).

    A real-time alarm (``SIGALRM``): it interrupts Python code between two operations, so a
    block stops within one numpy call of the limit. Where no alarm can be set (not the main
    thread, as in a dask worker; no ``setitimer``) the block runs without a limit.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds is None or not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"stopped after the time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def failure_message(exc: BaseException) -> str:
    """What went wrong in one file's audit, in one line (the exception's type and first line)."""
    if isinstance(exc, TimeLimitExceeded):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"internal error: {type(exc).__name__}{': ' + first[:200] if first else ''}"


@dataclass(frozen=True)
class _TaskFailure:
    """A task of :func:`run_audits` that raised or ran out of time (isolated runs only)."""

    message: str


def _isolated(game: Game | PromptGame, call: Callable[..., Any], limit: float | None, *args: Any) -> Any:
    """``call(game, *args)`` under ``limit``; any exception becomes the file's failure."""
    try:
        with time_limit(limit):
            return call(game, *args)
    except Exception as exc:  # one file's failure, whatever it is, must not stop the others
        return _TaskFailure(failure_message(exc))


def _on_dask(
    client: Any,
    games: Sequence[Game | PromptGame],
    tasks: Sequence[tuple[int, Sequence[int]]],
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
) -> Iterator[Any]:
    """The results of ``calls`` (each ``(function, (game, ...))``, the game ``games[g]`` of
    its task) run on the dask cluster of ``client``, in order.

    Each game is sent to the cluster once (``client.scatter``) and every task refers to it,
    rather than carrying its own copy inside the task graph: a big game costs one transfer,
    not one per task (and no "large graph" warning). The futures are cancelled if the caller
    stops early (an exception).
    """
    shipped = client.scatter(list(games), hash=False)
    futures = [
        client.submit(call, shipped[g], *args[1:], pure=False)
        for (g, _), (call, args) in zip(tasks, calls, strict=True)
    ]
    try:
        for future in futures:
            yield future.result()
    finally:
        client.cancel([*futures, *shipped])


def run_audits(
    games: Sequence[Game | PromptGame],
    options: AuditOptions,
    *,
    seed: int = 0,
    workers: int = 1,
    dask_client: Any | None = None,
    on_task_done: Callable[[], None] | None = None,
    on_failure: Callable[[int, str], None] | None = None,
    time_limit_s: float | None = None,
) -> list[GameAudit]:
    """Audit many games; the per-group work runs in parallel.

    Parameters
    ----------
    games : the games, in output order; options : see :class:`AuditOptions`.
    seed : the seed every group's seed comes from (:func:`group_seed`).
    workers : joblib processes; 1 runs in this process.
    dask_client : a connected ``dask.distributed.Client``: the work then runs on its cluster,
        each game sent once (:func:`_on_dask`; ``workers`` is ignored). The caller connects
        and closes it.
    on_task_done : called once per group when its work is done, in order (a progress bar).
    on_failure : isolate the games from each other: a game whose work raises (any exception)
        or runs past ``time_limit_s`` is left out of the result and reported as
        ``on_failure(index of the game, message)``; the others are audited as usual. Without
        it, an exception propagates.
    time_limit_s : with ``on_failure``, the most seconds one task of a game may run (a chunk
        of its groups in one process, and the game's final assembly; :func:`time_limit`).

    Returns
    -------
    list of GameAudit, one per game (that did not fail), in order. The result is the same for
    every ``workers`` and backend: each group has its own seed and results are assembled in order.
    """
    per_game: list[list[GroupAudit]] = [[] for _ in games]
    failed: dict[int, str] = {}
    limit = time_limit_s if on_failure is not None else None
    parts: dict[tuple[int, int], list[list[PromptPart]]] = {}  # (game, group) -> its chunks' searches

    def task(call: Callable[..., Any], g: int, *args: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if on_failure is None:
            return call, (games[g], *args)
        return _isolated, (games[g], call, limit, *args)

    def work(g: int, unit: tuple[int, ...]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """A chunk of groups, or ``(-1, group, chunk of prompts)`` of a big game of prompts."""
        if unit[0] < 0:
            return task(audit_prompt_chunk, g, unit[1], options, seed, unit[2])
        return task(audit_groups, g, unit, options, seed)

    def collect(g: int, unit: tuple[int, ...], done: Any) -> None:
        if isinstance(done, _TaskFailure):
            failed.setdefault(g, done.message)
            return
        if unit[0] >= 0:
            per_game[g].extend(done)
            for _ in unit:
                if on_task_done:
                    on_task_done()
            return
        mine = parts.setdefault((g, unit[1]), [])
        mine.append(done)
        if len(mine) == len(prompt_chunks(games[g].n_prompts)):  # the group's last chunk
            call, args = task(assemble_prompt_group, g, unit[1], options, seed, mine)
            audit = call(*args)
            collect(g, (unit[1],), audit if isinstance(audit, _TaskFailure) else [audit])

    client = dask_client
    if client is None and workers == 1:
        for g, game in enumerate(games):
            for i in range(game.n_groups):
                call, args = work(g, (i,))
                collect(g, (i,), call(*args))
    else:
        parallelism = workers if client is None else max(1, sum(client.nthreads().values()))
        tasks: list[tuple[int, tuple[int, ...]]] = []
        for g, game in enumerate(games):
            split = _prompt_tasks(game)
            if split:
                tasks += [(g, (-1, i, c)) for i, c in split]
            else:
                tasks += [(g, chunk) for chunk in _chunks(game.n_groups, parallelism)]
        calls = [work(g, chunk) for g, chunk in tasks]
        if client is None:
            from joblib import Parallel, delayed

            run = Parallel(n_jobs=workers, return_as="generator")
            done_in_order = run(delayed(call)(*args) for call, args in calls)
        else:
            done_in_order = _on_dask(client, games, tasks, calls)
        for (g, chunk), done in zip(tasks, done_in_order, strict=True):
            collect(g, chunk, done)
    audits: list[GameAudit] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for g, game in enumerate(games):
            if g in failed:
                continue
            if on_failure is None:
                audits.append(audit_game(game, options, seed, per_game[g]))
                continue
            try:
                with time_limit(limit):
                    audits.append(audit_game(game, options, seed, per_game[g]))
            except Exception as exc:  # as in _isolated
                failed[g] = failure_message(exc)
    if on_failure is not None:
        for g in sorted(failed):
            on_failure(g, failed[g])
    return audits


@dataclass(frozen=True)
class AuditSummary:
    """Counts over an audit run, and its exit code (0 clean, 1 violations, 2 invalid input).

    Attributes
    ----------
    games, groups : games and groups audited; invalid : files that could not be loaded.
    passed, failed : findings that passed and failed.
    failed_games : games with at least one failed finding.
    """

    games: int
    groups: int
    invalid: int
    passed: int
    failed: int
    failed_games: int

    @property
    def exit_code(self) -> int:
        if self.invalid:
            return 2
        return 1 if self.failed else 0


def summarise(audits: Sequence[GameAudit], invalid: int = 0) -> AuditSummary:
    """Count the findings of ``audits``; ``invalid`` is the number of files that failed to load."""
    findings = [f for a in audits for f in a.findings]
    return AuditSummary(
        games=len(audits),
        groups=sum(a.game.n_groups for a in audits),
        invalid=invalid,
        passed=sum(f.passed for f in findings),
        failed=sum(not f.passed for f in findings),
        failed_games=sum(not a.passed for a in audits),
    )
