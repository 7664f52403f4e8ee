"""A sampled game's figures with their sampling error (``--ci``): table and JSON.

Shows what :func:`~rlhf_mech.analysis.bootstrap` computed (docs/uncertainty.md): each figure's
estimate, standard error and interval, the jackknife bias, the verdict of each gain across the
interval, and the effective-sample-size diagnostics with their warning. Nothing is computed
here.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.analysis import Estimated, SweepResult, Uncertainty
from rlhf_mech.analysis._internal import (
    ABOVE,
    BELOW,
    BIAS_WARN,
    ESS_WARN,
    STRADDLES,
    TOP_SHARE_WARN,
    sweep_label,
)
from rlhf_mech.render._format import annotation, fmt, fmt_signed

BIASED_NOTE = (
    f"!: jackknife bias over {BIAS_WARN:g} standard errors: the interval may be off-centre "
    "(docs/uncertainty.md)"
)

#: What a gain's interval says, by where it lies relative to 0.
VERDICTS = {
    ABOVE: "profitable across the interval",
    BELOW: "unprofitable across the interval",
    STRADDLES: "not distinguishable from truthful",
}


def _interval(figure: Estimated, level: float) -> str:
    return f"{level:.0%} CI [{fmt_signed(figure.low)}, {fmt_signed(figure.high)}]"


def gain_verdict(figure: Estimated, level: float) -> str:
    """``gain +0.02, 95% CI [-0.01, +0.06]: not distinguishable from truthful`` (``(biased)``
    where the jackknife bias is large against the standard error)."""
    flag = f" (biased: jackknife bias over {BIAS_WARN:g} se)" if figure.biased else ""
    return f"gain {fmt_signed(figure.estimate)}, {_interval(figure, level)}: {VERDICTS[figure.side]}{flag}"


def diagnostics_text(u: Uncertainty) -> Text:
    """The ESS line, and the warning where the intervals are not to be trusted."""
    d = u.diagnostics
    line = (
        f"effective sample size of the fine-tuned distributions (Kish, smallest over profiles and "
        f"leave-one-out problems): pooled {d.pooled_ess:.4g} of {u.samples} samples "
        f"({d.pooled_relative_ess:.1%}); per prompt mean {d.mean_ess:.4g}, min {d.ess.min():.4g} of "
        f"{int(d.samples[d.ess.argmin()])}; "
        f"top 1% of samples hold {d.pooled_top_share:.1%} of the fine-tuned mass"
    )
    text = Text(line)
    if d.warn:
        text.append(
            f"\nWARNING: pooled or mean per-prompt ESS below {ESS_WARN:g}, or over "
            f"{TOP_SHARE_WARN:.0%} of the mass on the top 1% of samples: the fine-tuned policy "
            "rests on too few samples, the intervals may undercover (docs/uncertainty.md)",
            style="bold red",
        )
    return text


def uncertainty_table(u: Uncertainty) -> RichGroup:
    """Every figure's estimate, standard error and interval, the gains' verdicts and the
    diagnostics."""
    o = u.options
    title = (
        f"sampling error ({u.prompts} prompt{'s' if u.prompts != 1 else ''}, {u.samples} samples; "
        f"{o.resamples} resamples, {u.design.name}: {u.design.description}; {o.interval} "
        f"{o.level:.0%} intervals; seed {o.seed}; estimand {u.estimand.name}: {u.estimand.description}"
        + ("; jackknife bias subtracted" if o.bias_correct else "")
        + ")"
    )
    table = Table(title=annotation(title), title_justify="left")
    for name in ("profile", "figure", "group"):
        table.add_column(name, no_wrap=True)
    for name in ("estimate", "se", f"{o.level:.0%} CI low", "high", "jackknife bias"):
        table.add_column(name, justify="right")
    for f in u.figures:
        table.add_row(
            escape(f.profile),
            f.quantity,
            escape(f.group),
            fmt(f.estimate),
            fmt(f.se),
            fmt(f.low),
            fmt(f.high),
            fmt(f.bias) + (" !" if f.biased else ""),
        )
    table.caption = annotation(BIASED_NOTE) if any(f.biased for f in u.figures) else None
    table.caption_justify = "left"
    verdicts = [
        Text(f"{f.group} ({f.profile}): {gain_verdict(f, o.level)}")
        for f in u.figures
        if f.quantity == "gain"
    ]
    return RichGroup(table, *verdicts, diagnostics_text(u))


def audit_uncertainty_text(label: str, u: Uncertainty) -> RichGroup:
    """An audit's gains across the interval (each group's best misreport found, with and
    without payment), and the diagnostics."""
    o = u.options
    head = Text(
        f"{label}: sampled game, {o.level:.0%} {o.interval} intervals over {o.resamples} resamples "
        f"({u.design.name}; estimand {u.estimand.name}): the best misreports found, held fixed",
        style="bold",
    )
    lines = [Text(f"  {f.profile}: {gain_verdict(f, o.level)}") for f in u.figures if f.quantity == "gain"]
    lines += [
        Text(
            f"  Theorem 4.12, {escape(b.group)}: sampling error of its valuation eps = {fmt(b.eps)} (the "
            f"widest {o.level:.0%} half-interval): a misreport gains at most 2 w_i eps = "
            f"2 x {fmt(b.size)} x {fmt(b.eps)} = {fmt(b.bound)}"
        )
        for b in u.bounds
    ]
    return RichGroup(head, *lines, diagnostics_text(u))


def sweep_uncertainty_text(result: SweepResult) -> RichGroup:
    """A sweep's points on a sampled game: the group's utility and its gain over truth, each
    with its interval, and the verdict of the gain."""
    u = result.uncertainty
    assert u is not None
    o, group = u.options, result.group_name
    head = Text(
        f"sampled game: {o.level:.0%} {o.interval} intervals over {o.resamples} resamples "
        f"({u.design.name}; estimand {u.estimand.name})",
        style="bold",
    )
    truthful = u.find("truth", "utility", group)
    lines = [Text(f"  truth: utility {fmt(truthful.estimate)}, {_interval(truthful, o.level)}")]
    for k in range(result.parameters.size):
        if k == result.truthful_index:
            continue
        label = sweep_label(result, k)
        utility = u.find(label, "utility", group)
        lines.append(
            Text(
                f"  {label}: utility {fmt(utility.estimate)}, {_interval(utility, o.level)}; "
                f"{gain_verdict(u.find(label, 'gain', group), o.level)}"
            )
        )
    return RichGroup(head, *lines, diagnostics_text(u))


def uncertainty_json(u: Uncertainty) -> dict[str, Any]:
    """``{"level", "resamples", "seed", "interval", "design", "estimand", "bias_corrected",
    "prompts", "samples", "figures": [{"profile", "quantity", "group", "estimate", "se",
    "ci": [low, high], "bias", "verdict"?}], "diagnostics": {...}, "theorem_4_12"?: [{"group",
    "size", "eps", "bound"}]}`` (the last for an audit where the theorem applies)."""
    o, d = u.options, u.diagnostics
    figures = []
    for f in u.figures:
        entry: dict[str, Any] = {
            "profile": f.profile,
            "quantity": f.quantity,
            "group": f.group,
            "estimate": f.estimate,
            "se": f.se,
            "ci": [f.low, f.high],
            "bias": f.bias,
            "biased": f.biased,
        }
        if f.quantity == "gain":
            entry["verdict"] = VERDICTS[f.side]
        figures.append(entry)
    bounds = {"theorem_4_12": [vars(b) for b in u.bounds]} if u.bounds else {}
    return {
        "level": o.level,
        "resamples": o.resamples,
        "seed": o.seed,
        "interval": o.interval,
        "design": u.design.name,
        "estimand": u.estimand.name,
        "bias_corrected": o.bias_correct,
        "prompts": u.prompts,
        "samples": u.samples,
        "figures": figures,
        "diagnostics": {
            "pooled_ess": d.pooled_ess,
            "pooled_relative_ess": d.pooled_relative_ess,
            "pooled_top_share": d.pooled_top_share,
            "min_prompt_ess": float(d.ess.min()),
            "mean_prompt_ess": d.mean_ess,
            "ess": d.ess,
            "top_share": d.top_share,
            "ess_threshold": ESS_WARN,
            "top_share_threshold": TOP_SHARE_WARN,
            "bias_threshold": BIAS_WARN,
            "warn": d.warn,
        },
        **bounds,
    }
