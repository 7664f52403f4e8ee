"""The output formats of every command: one record per format, one table per command.

A command's ``--format`` choices are the names of its table (the command line reads them
here, at start-up, so this module imports nothing but the standard library); each record
names the renderer, a public function of :mod:`rlhf_mech.render` that takes the command's
result and returns what is written, and how it is written. A new format is one renderer and
one entry here.

==================  ========================================================================
medium              what the renderer returns, and how the command writes it
==================  ========================================================================
``rich``            a Rich renderable, printed as wide as its widest line (tables, text)
``text``            a string, written as it is (CSV, JUnit XML, workflow annotations)
``json``            JSON-ready data, streamed as JSON
==================  ========================================================================
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

MEDIA = ("rich", "text", "json")


@dataclass(frozen=True)
class OutputFormat:
    """One output format of one command.

    Attributes
    ----------
    name : the ``--format`` value.
    help : what it is, for ``--help``.
    medium : how its output is written (module docstring).
    renderer : the name of its renderer in :mod:`rlhf_mech.render` (loaded on first use).
    """

    name: str
    help: str
    medium: str
    renderer: str

    def __post_init__(self) -> None:
        if self.medium not in MEDIA:
            raise ValueError(f"`medium` must be one of {', '.join(MEDIA)}, got {self.medium!r}")

    def render(self, result: Any) -> Any:
        """The output of ``result`` in this format."""
        return getattr(importlib.import_module("rlhf_mech.render"), self.renderer)(result)


def _table(*formats: OutputFormat) -> dict[str, OutputFormat]:
    return {f.name: f for f in formats}


#: ``rlhf-mech solve``: a :class:`~rlhf_mech.render.SolveOutput`.
SOLVE_FORMATS = _table(
    OutputFormat("table", "tables of the profiles and the gains", "rich", "solve_table"),
    OutputFormat("json", "every figure, stable keys", "json", "solve_json"),
)
#: ``rlhf-mech sweep``: a list of :class:`~rlhf_mech.analysis.SweepResult`.
SWEEP_FORMATS = _table(
    OutputFormat("table", "one table per group", "rich", "render_sweeps"),
    OutputFormat("json", "every point, stable keys", "json", "sweeps_to_json"),
    OutputFormat("csv", "one row per point and group", "text", "sweeps_to_csv"),
)
#: ``rlhf-mech audit``: an :class:`~rlhf_mech.files.AuditRun`.
AUDIT_FORMATS = _table(
    OutputFormat("text", "the table, failures, notes and summary", "rich", "render_audit"),
    OutputFormat("json", "every figure (rlhf-mech schema --audit)", "json", "audits_to_json"),
    OutputFormat("junit", "JUnit XML", "text", "to_junit"),
    OutputFormat("github", "GitHub workflow annotations", "text", "to_github"),
    OutputFormat("sarif", "SARIF 2.1.0 for code scanning", "json", "to_sarif"),
)
#: ``rlhf-mech compare``: a :class:`~rlhf_mech.analysis.Comparison`.
COMPARE_FORMATS = _table(
    OutputFormat("table", "the trade-off table, least-cost payments and verdicts", "rich", "render_compare"),
    OutputFormat("json", "every figure (rlhf-mech schema --compare)", "json", "compare_to_json"),
    OutputFormat("csv", "one row per mechanism and group", "text", "compare_to_csv"),
    OutputFormat("html", "one self-contained HTML page (also --html FILE)", "text", "compare_html"),
)
#: ``rlhf-mech implementability``: an :class:`~rlhf_mech.render.ImplementabilityOutput`.
IMPLEMENTABILITY_FORMATS = _table(
    OutputFormat("text", "the verdict and its certificate", "rich", "render_implementability"),
    OutputFormat("json", "every figure", "json", "implementability_to_json"),
)


def format_help(formats: dict[str, OutputFormat]) -> str:
    """``table (what), json (what)``: the formats of a command, for ``--help``."""
    return "; ".join(f"{f.name}: {f.help}" for f in formats.values())
