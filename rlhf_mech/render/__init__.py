"""The render layer: results -> Rich renderables, JSON-ready dicts, CSV, JUnit XML, plots.

Renderers compute nothing: every figure comes from :mod:`rlhf_mech.core` or
:mod:`rlhf_mech.analysis` results. Implementations live in private modules; this namespace is
the layer's public surface. Plots need the optional ``plot`` extra (matplotlib), imported when
a plot is drawn.
"""

from rlhf_mech.render._audit import (
    AUDIT_SCHEMA_VERSION,
    JSON_VECTOR_LIMIT,
    InvalidFile,
    audit_progress,
    audit_table,
    audit_to_json,
    audits_to_json,
    failure_lines,
    fmt_figure,
    render_audit,
    summary_text,
    to_junit,
    vector_text,
)
from rlhf_mech.render._audit_schema import audit_schema
from rlhf_mech.render._format import fmt, fmt_signed
from rlhf_mech.render._imports import render_import
from rlhf_mech.render._plot import MISSING_MATPLOTLIB, save_sweep_plot, sweep_figure
from rlhf_mech.render._solve import (
    candidate_choice_table,
    distribution_table,
    gains_text,
    game_summary,
    profile_table,
    render_solution,
    solution_to_json,
)
from rlhf_mech.render._sweep import (
    CSV_COLUMNS,
    MAX_COLUMNS,
    PROGRESS_MIN_POINTS,
    SweepFormat,
    parameter_label,
    render_sweep,
    render_sweeps,
    sweep_progress,
    sweep_table,
    sweep_to_json,
    sweeps_to_csv,
    verdict,
)

__all__ = [
    "AUDIT_SCHEMA_VERSION",
    "CSV_COLUMNS",
    "JSON_VECTOR_LIMIT",
    "MAX_COLUMNS",
    "MISSING_MATPLOTLIB",
    "PROGRESS_MIN_POINTS",
    "InvalidFile",
    "SweepFormat",
    "audit_progress",
    "audit_schema",
    "audit_table",
    "audit_to_json",
    "audits_to_json",
    "candidate_choice_table",
    "distribution_table",
    "failure_lines",
    "fmt",
    "fmt_figure",
    "fmt_signed",
    "gains_text",
    "game_summary",
    "parameter_label",
    "profile_table",
    "render_audit",
    "render_import",
    "render_solution",
    "render_sweep",
    "render_sweeps",
    "save_sweep_plot",
    "solution_to_json",
    "summary_text",
    "sweep_figure",
    "sweep_progress",
    "sweep_table",
    "sweep_to_json",
    "sweeps_to_csv",
    "to_junit",
    "vector_text",
    "verdict",
]
