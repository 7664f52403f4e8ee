"""``rlhf-mech audit``: DSIC, IR, payments >= 0 and the need for payment, per game file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rlhf_mech.cli._app import (
    ColorOption,
    IntervalOptions,
    OutsideOption,
    RuleOptions,
    Terminal,
    VerboseOption,
    command,
    format_enum,
    with_options,
)
from rlhf_mech.cli._numbers import number
from rlhf_mech.cli._output import ColorChoice
from rlhf_mech.cli._uncertainty import audit_intervals
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.render import AUDIT_FORMATS
from rlhf_mech.render._internal import format_help

AuditFormat = format_enum("AuditFormat", AUDIT_FORMATS)


class AuditBackend(StrEnum):
    """``audit --backend``: where the per-group work runs."""

    local = "local"
    dask = "dask"


def _default(value: object) -> str:
    return f"{value} or [tool.rlhf-mech]"


@with_options
def audit_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Game files, directories (*.yaml, *.yml), globs, or - (standard input). "
            "Default: paths of \\[tool.rlhf-mech] in pyproject.toml.",
            show_default=False,
        ),
    ] = None,
    *,
    output_format: Annotated[
        AuditFormat | None,  # type: ignore[valid-type]
        typer.Option(
            "--output-format",
            "--format",
            help=f"Output format: {format_help(AUDIT_FORMATS)}.",
            show_default=_default("text"),
        ),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML to FILE (for CI).")] = None,
    counterexamples: Annotated[
        Path | None,
        typer.Option(
            "--save-counterexamples", help="Write each DSIC-violating report as a game file into DIR."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            parser=number(integer=True), help="Seed of the random search.", show_default=_default(0)
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            parser=number(integer=True),
            help="Report evaluations per group and payment rule.",
            show_default=_default(200),
        ),
    ] = None,
    tol: Annotated[
        float | None,
        typer.Option(parser=number(), help="Tolerance of every inequality.", show_default=_default("1e-09")),
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option(parser=number(), help="Theorem 4.12: noise bound eps > 0 on every reported reward."),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            parser=number(integer=True), help="Noise samples per estimate.", show_default=_default(64)
        ),
    ] = None,
    others: Annotated[
        str,
        typer.Option(
            help="The other groups' reports each best response is searched against: file (the "
            "file's reports), truthful, 'grid K' (and K Halton profiles) or 'random N' (and N random ones)."
        ),
    ] = "file",
    types: Annotated[
        str | None,
        typer.Option(
            help="Also audit a set of true types per group: vertices, 'grid K', 'random N' or "
            "'files A.yaml,B.yaml' (every group of those games); prints epsilon over the set and the "
            "worst type (with --save-counterexamples, written with its best misreport)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            parser=number(integer=True),
            help="Parallel processes.",
            show_default=_default(1),
        ),
    ] = None,
    backend: Annotated[AuditBackend, typer.Option(help="local processes or a dask cluster.")] = (
        AuditBackend.local  # type: ignore[assignment]
    ),
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://HOST:PORT) for --backend dask.")
    ] = None,
    time_limit_s: Annotated[
        float,
        typer.Option(
            "--time-limit",
            parser=number(),
            help="Seconds one file may take to load, and each part of its audit to run; past it the "
            "file is reported invalid and the others go on (0: no limit).",
        ),
    ] = 600.0,
    intervals: IntervalOptions,
    rules: RuleOptions,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report to FILE.")
    ] = None,
    allow_outside_refs: OutsideOption = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the summary line (text), no progress.")
    ] = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Audit game files: DSIC, IR, payments >= 0, the need for payment (and noise, expect:).

    Exit code 0 when every check passes, 1 when one fails, 2 when a file is invalid (a file
    that cannot be loaded or whose audit fails or runs past --time-limit; the others are
    audited all the same) or there is nothing to audit. Options not given come from
    \\[tool.rlhf-mech] in pyproject.toml.
    """
    with command(Terminal(color, quiet, verbose)) as out:
        from rlhf_mech.cli._compare import write_text
        from rlhf_mech.cli._config import audit_settings
        from rlhf_mech.files._internal import audit_files, type_audits
        from rlhf_mech.render import audit_html, to_junit
        from rlhf_mech.render._internal import audit_progress, invalid_lines

        given = {"budget": budget, "tol": tol, "noise": noise, "samples": samples, "seed": seed}
        given["time-limit"] = time_limit_s  # checked with the others (cli/_config.py BOUNDS)
        settings = audit_settings(
            paths, output_format, workers, others, backend.value, scheduler, list(AUDIT_FORMATS), **given
        )
        ci_options = intervals.options(settings.seed)
        client = _dask_client(scheduler) if scheduler is not None else None
        try:
            run = audit_files(
                settings.paths,
                settings.options,
                seed=settings.seed,
                workers=settings.workers,
                dask_client=client,
                time_limit_s=time_limit_s or None,
                allow_outside_refs=allow_outside_refs,
                counterexamples=counterexamples,
                on_invalid=lambda bad: [out.error(line) for line in invalid_lines(bad)],
                progress=lambda tasks: audit_progress(out.err, tasks, enabled=not quiet),
                step=out.step,
                quiet=quiet,
                rules=_overrides(rules),
            )
        finally:
            if client is not None:
                client.close()
        if types is not None:
            spec = _types_spec(types)
            with out.step(f"types {spec.label}"):
                rows = type_audits(run.audits, spec, settings.seed, counterexamples)
            run = replace(run, types_label=spec.label, types=rows)
        with out.step("bootstrap"):
            run = audit_intervals(run, ci_options)
        with out.step("write"):
            if junit is not None:
                write_text(junit, to_junit(run))
            if html is not None:
                write_text(html, audit_html(run))
            out.emit(AUDIT_FORMATS[settings.output_format], run)
    raise typer.Exit(run.summary.exit_code)


def _types_spec(text: str) -> Any:
    """``--types``: ``vertices``, ``grid K``, ``random N`` or ``files A.yaml,B.yaml``."""
    import numpy as np

    from rlhf_mech.analysis import TypesSpec
    from rlhf_mech.files import load_game

    kind, _, rest = text.strip().replace(":", " ").replace("=", " ").partition(" ")
    rest = rest.strip()
    if kind == "files" and rest:
        games = [load_game(name.strip()) for name in rest.split(",") if name.strip()]
        parameters = [g.truth.preferences if g.report_basis is not None else g.truth.rewards for g in games]
        sizes = [g.truth.sizes for g in games]
        return TypesSpec("user", 0, np.vstack(parameters), np.concatenate(sizes))
    if (kind == "vertices" and not rest) or (
        kind in ("grid", "random") and rest.isdigit() and int(rest) >= 1
    ):
        return TypesSpec(kind, int(rest or 0))
    raise RlhfMechError(f"--types {text!r}: expected vertices, 'grid K', 'random N' or 'files A.yaml,B.yaml'")


def _overrides(rules: RuleOptions) -> Callable[[Any], Any] | None:
    """What ``--training``/``--payment`` (and their parameters) do to each game: its rules
    replaced (:meth:`~rlhf_mech.cli._app.RuleOptions.apply`) and its ``expect:`` block, written
    for the file's rules, set aside with a note; ``None`` when none is given."""
    if not rules.given:
        return None

    def override(game: Any) -> Any:
        changed, note = rules.apply(game)
        said = "rules set on the command line: the file's expect: block is not checked" + (
            f"; {note}" if note else ""
        )
        return replace(changed, expect=None, notes=(*changed.notes, said))

    return override


def _dask_client(scheduler: str) -> Any:  # pragma: no cover - exercised with dask installed
    """A client of the dask scheduler at ``scheduler`` (the ``dask`` extra)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise RlhfMechError(
            "--backend dask needs the optional dask extra: pip install 'rlhf-mech[dask]'"
        ) from None
    try:
        return Client(scheduler, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise RlhfMechError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
