"""Formats shared by every renderer: what a table cell shows of a float, plurals, and the
titles and captions of tables (printed whole, never wrapped into the table's width)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from rlhf_mech.core import PaymentRule, TrainingRule


def fmt(x: float) -> str:
    """A number for a table: 6 significant digits, exact zero as 0."""
    return "0" if x == 0 else f"{x:.6g}"


def fmt_signed(x: float) -> str:
    return "0" if x == 0 else f"{x:+.6g}"


def fmt_residual(x: float) -> str:
    """A residual (a norm, >= 0): ``4.4e-16``, exact zero as 0 (never ``-0.0e+00``)."""
    return "0" if x == 0 else f"{abs(x):.1e}"


def plural(count: int, noun: str) -> str:
    """``1 group``, ``2 groups``, ``0 groups`` (nouns that take an ``s``)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def annotation(text: str) -> Text:
    """A table's title or caption: literal text (no markup) on its own lines, never wrapped
    or cut to the table's width (a long game name stays whole)."""
    return Text(text, no_wrap=True, overflow="ignore")


def rule_settings(rule: PaymentRule | TrainingRule, outcomes: tuple[str, ...]) -> dict[str, Any]:
    """The parameters set on a rule, outcome parameters by name (the JSON ``parameters``)."""
    kinds = {p.name: p.kind for p in rule.schema}
    return {
        name: [outcomes[k] for k in value] if kinds[name] == "outcomes" else value
        for name, value in rule.parameters
    }


def rule_json(rule: PaymentRule | TrainingRule, outcomes: tuple[str, ...]) -> dict[str, Any]:
    """``{"rule": name, "parameters": {...}}``: a rule as JSON output shows it."""
    return {"rule": rule.name, "parameters": rule_settings(rule, outcomes)}


def rule_label(rule: PaymentRule | TrainingRule, outcomes: tuple[str, ...]) -> str:
    """A rule with the parameters set: ``early_stopped (steps=20, step_size=0.5)``; outcome
    parameters by name."""
    if not rule.parameters:
        return rule.name
    shown = [
        f"{name}={','.join(value) if isinstance(value, list) else value}"
        for name, value in rule_settings(rule, outcomes).items()
    ]
    return f"{rule.name} ({', '.join(shown)})"
