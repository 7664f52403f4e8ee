"""Renderers of ``solve`` on a game of many prompts: the weighted means a group lives by, and
each prompt's share. They compute nothing new (:mod:`rlhf_mech.core._prompts` does)."""

from __future__ import annotations

from typing import Any

from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table

from rlhf_mech.core import PromptGame, PromptOutcome, PromptSolution
from rlhf_mech.errors import printable
from rlhf_mech.render._format import annotation, fmt, fmt_signed, rule_json
from rlhf_mech.render._solve import (
    gains_text,
    misreport_gains_json,
    profile_json,
    profile_table,
    summary_table,
)

#: Characters of a prompt's text shown in the per-prompt table (the JSON has it whole).
PROMPT_TEXT_SHOWN = 48
#: Prompts listed in the per-prompt table (the JSON lists them all).
PROMPTS_SHOWN = 20


def _weighting(game: PromptGame) -> str:
    return "uniform (each prompt counts the same)" if game.uniform_weights else "as given in the file"


def prompt_game_summary(game: PromptGame) -> Table:
    """Key facts of a game of many prompts."""
    shape = (
        ("prompts", f"{game.n_prompts}, weights {_weighting(game)}"),
        ("outcomes", f"{game.n_outcomes} in all (one set per prompt)"),
        ("groups", f"{game.n_groups} (one size each, for every prompt)"),
    )
    return summary_table(game.name, shape, game, game.mechanism, ())


def _shown(text: str) -> str:
    """A prompt on one line: whitespace runs as one space, other control characters escaped
    (a prompt from a log may hold terminal escapes), at most :data:`PROMPT_TEXT_SHOWN` long."""
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= PROMPT_TEXT_SHOWN else flat[: PROMPT_TEXT_SHOWN - 3] + "..."


def prompt_table(solution: PromptSolution) -> Table:
    """Each prompt: weight, outcomes, social welfare and (where the reports differ) every
    misreporting group's utility gain on that prompt, ``w_i dv_{i,x} - dp_{i,x}``."""
    game = solution.game
    truthful, reported = solution.truthful, solution.reported
    movers = game.misreporting_groups()
    hidden = max(0, game.n_prompts - PROMPTS_SHOWN)
    title = (
        f"per prompt (first {PROMPTS_SHOWN} of {game.n_prompts}; --format json lists all)"
        if hidden
        else "per prompt"
    )
    table = Table(title=annotation(title), title_justify="left")
    for name in ("#", "prompt", "weight", "outcomes", "SW truthful"):
        table.add_column(name, justify="left" if name == "prompt" else "right", no_wrap=name != "prompt")
    if movers:
        table.add_column("SW reported", justify="right")
        for i in movers:
            table.add_column(f"gain {escape(game.group_names[i])}", justify="right", no_wrap=True)
    for x in range(min(game.n_prompts, PROMPTS_SHOWN)):
        row = [
            str(x),
            escape(_shown(game.prompts[x])),
            fmt(game.weights[x]),
            str(game.outcome_counts[x]),
            fmt(truthful.per_prompt.social_welfare[x]),
        ]
        if movers:
            row.append(fmt(reported.per_prompt.social_welfare[x]))
            row += [fmt_signed(solution.prompt_gains[x, i]) for i in movers]
        table.add_row(*row)
    return table


def render_prompt_solution(solution: PromptSolution) -> RichGroup:
    """Everything ``rlhf-mech solve`` shows for a game of many prompts."""
    game = solution.game
    true_sizes, reported_sizes = game.truth.sizes, game.reports.sizes
    parts: list[Any] = [
        prompt_game_summary(game),
        profile_table(
            game.group_names,
            solution.truthful,
            "truthful reports (weighted means over the prompts)",
            true_sizes,
            true_sizes,
        ),
    ]
    if solution.reported is not solution.truthful:
        parts.append(
            profile_table(
                game.group_names,
                solution.reported,
                "reported (as in the file; weighted means over the prompts)",
                true_sizes,
                reported_sizes,
            )
        )
    parts += [prompt_table(solution), gains_text(solution, "weighted means over the prompts")]
    return RichGroup(*parts)


def _outcome_json(game: PromptGame, outcome: PromptOutcome, reported_sizes: Any) -> dict[str, Any]:
    each = outcome.per_prompt
    return {
        **profile_json(game, outcome, reported_sizes, converged=outcome.converged),
        "prompts": [
            {
                "distribution": outcome.distributions[x],
                "social_welfare": float(each.social_welfare[x]),
                "divergence_value": float(each.divergence_value[x]),
                "kkt_residual": float(each.kkt_residual[x]),
                "valuations": each.valuations[x],
                "payments": each.payments[x],
            }
            for x in range(game.n_prompts)
        ],
    }


def prompt_solution_to_json(solution: PromptSolution) -> dict[str, Any]:
    """The machine-readable form of ``rlhf-mech solve --format json`` on a game of many
    prompts: the weighted means per group, and per prompt its distribution, valuations and
    payments (in group order)."""
    game = solution.game
    div = game.mechanism.divergence
    rows = {"truthful": solution.truthful, "reported": solution.reported}
    sizes = {"truthful": game.truth.sizes, "reported": game.reports.sizes}
    return {
        "game": game.name,
        "divergence": {"kind": div.name, "lambda": game.mechanism.lam, "formula": div.formula},
        "payment_rule": solution.payment_rule.name,
        "training_rule": rule_json(game.mechanism.training_rule, ()),
        "prompts": [
            {"prompt": text, "weight": float(game.weights[x]), "outcomes": list(game.prompt_outcomes(x))}
            for x, text in enumerate(game.prompts)
        ],
        "weighting": "uniform" if game.uniform_weights else "file",
        "notes": list(game.notes),
        "profiles": {label: _outcome_json(game, o, sizes[label]) for label, o in rows.items()},
        "misreport_gains": misreport_gains_json(solution),
    }
