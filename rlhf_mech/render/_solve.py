"""Renderers of ``solve``: a game's solution -> Rich tables or a JSON-ready dict.

They compute nothing new; the CLI prints what these return (:mod:`rlhf_mech.cli`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.core import (
    Figures,
    Game,
    GameSolution,
    Mechanism,
    ProfileOutcome,
    PromptGame,
    PromptOutcome,
    PromptSolution,
    ReportBasis,
)
from rlhf_mech.render._format import annotation, fmt, fmt_residual, fmt_signed, rule_json, rule_label


def game_summary(game: Game, mechanism: Mechanism) -> Table:
    """Key facts of a game: sizes of the problem, the regulariser, the training and payment rules."""
    groups = f"{game.n_groups}" + (f" (max_size {fmt(game.max_size)})" if game.max_size else "")
    return summary_table(
        game.name, (("outcomes", f"{game.n_outcomes}"), ("groups", groups)), game, mechanism, game.outcomes
    )


def summary_table(
    name: str,
    shape: tuple[tuple[str, str], ...],
    game: Game | PromptGame,
    mechanism: Mechanism,
    outcomes: Any,
) -> Table:
    """The key facts of a game (one prompt or many): its name, the rows of its ``shape``, its
    normalisation, the regulariser, the rules (their labels over ``outcomes``) and its notes."""
    div = mechanism.divergence
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("game", Text(name, no_wrap=True))
    for label, value in shape:
        table.add_row(label, value)
    table.add_row("normalization", game.normalization.value)
    table.add_row("divergence", f"{div.name}: f(t) = {div.formula}, lambda = {fmt(mechanism.lam)}")
    table.add_row("training rule", rule_label(mechanism.training_rule, outcomes))
    table.add_row("payment rule", rule_label(mechanism.payment_rule, outcomes))
    for note in game.notes:
        table.add_row("note", escape(note))
    return table


def _top(key: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest entries of ``key``, largest first, ties in index
    order: ``argsort(-key, kind="stable")[:count]`` without sorting a million entries."""
    if count >= key.size:
        return np.argsort(-key, kind="stable")
    kth = np.partition(key, key.size - count)[key.size - count]  # the count-th largest value
    above = np.flatnonzero(key > kth)
    chosen = np.concatenate([above, np.flatnonzero(key == kth)[: count - above.size]])
    return chosen[np.lexsort((chosen, -key[chosen]))]


def distribution_table(solution: GameSolution, top: int) -> Table:
    """The fine-tuned distribution beside pi_init, for the ``top`` most likely outcomes.

    Outcomes are ranked by the larger of their truthful and reported probability (ties in
    file order), so that neither profile's winner is hidden; the title says so.
    """
    game = solution.game
    show_reported = solution.reported is not solution.truthful
    truthful, reported = solution.truthful.distribution, solution.reported.distribution
    key = np.maximum(truthful, reported) if show_reported else truthful
    order = _top(key, max(top, 1))
    hidden = game.n_outcomes - order.size
    rank = "max(truthful, reported)" if show_reported else "truthful"
    shown = f"top {order.size} of {game.n_outcomes} outcomes, " if hidden else ""
    table = Table(title=annotation(f"fine-tuned distribution ({shown}by {rank})"), title_justify="left")
    table.add_column("outcome", no_wrap=True)
    table.add_column("pi_init", justify="right")
    table.add_column("truthful", justify="right")
    if show_reported:
        table.add_column("reported", justify="right")
    pi_init = solution.mechanism.pi_init
    for j in order:
        row = [escape(game.outcomes[j]), fmt(pi_init[j]), fmt(truthful[j])]
        if show_reported:
            row.append(fmt(reported[j]))
        table.add_row(*row)
    return table


def profile_table(
    group_names: tuple[str, ...],
    outcome: Figures,
    title: str,
    true_sizes: np.ndarray,
    sizes: np.ndarray,
) -> Table:
    """Valuation, group valuation, payment and utility per group, with the totals (over
    many prompts: their weighted means)."""
    table = Table(
        title=annotation(title),
        title_justify="left",
        caption=annotation(
            f"ASW {fmt(outcome.asw)} = SW - D_f {fmt(outcome.divergence_value)}; "
            f"KKT residual {fmt_residual(outcome.kkt_residual)}"
            + ("" if outcome.converged else f"; NOT CONVERGED: {outcome.status_message}")
        ),
        caption_justify="left",
    )
    table.add_column("group", no_wrap=True)
    for name in ("size (reported)", "valuation", "group valuation", "payment", "utility"):
        table.add_column(name, justify="right")
    for i, name in enumerate(group_names):
        size = fmt(true_sizes[i]) + ("" if sizes[i] == true_sizes[i] else f" ({fmt(sizes[i])})")
        table.add_row(
            escape(name),
            size,
            fmt(outcome.valuations[i]),
            fmt(outcome.group_valuations[i]),
            fmt(outcome.payments[i]),
            fmt(outcome.utilities[i]),
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        f"SW {fmt(outcome.social_welfare)}",
        fmt(float(outcome.payments.sum())),
        fmt(float(outcome.utilities.sum())),
        style="bold",
    )
    return table


def gains_text(solution: GameSolution | PromptSolution, means: str = "") -> Text:
    """One line per misreporting group: what the reported profile gained it over truth
    (``means``: what the figures are, e.g. the weighted means over the prompts)."""
    game = solution.game
    lines = []
    for i in game.misreporting_groups():
        dv = solution.reported.group_valuations[i] - solution.truthful.group_valuations[i]
        du = solution.gains[i]
        verdict = "profitable" if du > 0 else "not profitable"
        lines.append(
            f"{game.group_names[i]} misreports: group valuation {fmt_signed(dv)}, "
            f"utility {fmt_signed(du)} under {solution.payment_rule.name} ({verdict})"
            + (f", {means}" if means else "")
        )
    return Text("\n".join(lines) if lines else "every group reports truthfully")


def render_solution(solution: GameSolution, top: int = 10) -> RichGroup:
    """Everything ``rlhf-mech solve`` shows, as one Rich renderable."""
    game = solution.game
    parts: list[Any] = [
        game_summary(game, solution.mechanism),
        distribution_table(solution, top),
        profile_table(
            game.group_names, solution.truthful, "truthful reports", game.truth.sizes, game.truth.sizes
        ),
    ]
    if solution.reported is not solution.truthful:
        parts.append(
            profile_table(
                game.group_names,
                solution.reported,
                "reported (as in the file)",
                game.truth.sizes,
                game.reports.sizes,
            )
        )
    if solution.truthful.leave_one_out_choices is not None:
        parts.append(candidate_choice_table(solution))
    parts.append(gains_text(solution))
    return RichGroup(*parts)


def _profiles(solution: GameSolution) -> dict[str, ProfileOutcome]:
    """Profile label -> outcome: truthful, and reported where it differs."""
    profiles = {"truthful": solution.truthful}
    if solution.reported is not solution.truthful:
        profiles["reported"] = solution.reported
    return profiles


def _preference_text(basis: ReportBasis, weights: np.ndarray) -> str:
    return " + ".join(f"{fmt(w)} {m}" for m, w in zip(basis.reward_models, weights, strict=True) if w != 0)


def candidate_choice_table(solution: GameSolution) -> Table:
    """A training rule that selects one outcome (the argmax rule over candidate models): the
    chosen candidate per profile, its objective and each leave-one-out choice."""
    game = solution.game
    table = Table(
        title=annotation(
            "candidate models: argmax of sum_i w_i v_i - lambda * divergence (ties: first in file order)"
        ),
        title_justify="left",
    )
    table.add_column("profile", no_wrap=True)
    table.add_column("chosen", no_wrap=True)
    table.add_column("objective", justify="right")
    for name in game.group_names:
        table.add_column(f"without {escape(name)}", no_wrap=True)
    for label, profile in _profiles(solution).items():
        assert profile.leave_one_out_choices is not None
        table.add_row(
            label,
            escape(game.outcomes[profile.chosen]),
            fmt(profile.objective),
            *(escape(game.outcomes[c]) for c in profile.leave_one_out_choices),
        )
    basis, preferences = game.report_basis, game.truth.preferences
    if basis is not None and preferences is not None:
        lines = [
            f"{name}: values {_preference_text(basis, preferences[i])}"
            for i, name in enumerate(game.group_names)
        ]
        table.caption = annotation("\n".join([f"scores: {basis.scale.value} scale", *lines]))
        table.caption_justify = "left"
    return table


def groups_json(
    names: tuple[str, ...], figures: Figures, sizes: np.ndarray, reported_sizes: np.ndarray
) -> list[dict[str, Any]]:
    """Each group's figures of a profile (one prompt, or the weighted means of many), in group
    order: the one JSON form of a group's outcome."""
    return [
        {
            "name": name,
            "size": float(sizes[i]),
            "reported_size": float(reported_sizes[i]),
            "valuation": float(figures.valuations[i]),
            "group_valuation": float(figures.group_valuations[i]),
            "payment": float(figures.payments[i]),
            "utility": float(figures.utilities[i]),
        }
        for i, name in enumerate(names)
    ]


def profile_json(
    game: Game | PromptGame, outcome: ProfileOutcome | PromptOutcome, sizes: np.ndarray, **extra: Any
) -> dict[str, Any]:
    """A profile's figures (one prompt, or the weighted means of many): SW, ASW, the
    divergence less its offset, the KKT residual, ``extra`` (in its order) and each group's
    figures (:func:`groups_json`; ``sizes``: the reported sizes)."""
    return {
        "social_welfare": outcome.social_welfare,
        "asw": outcome.asw,
        "divergence_value": outcome.divergence_value,
        "kkt_residual": outcome.kkt_residual,
        **extra,
        "groups": groups_json(game.group_names, outcome, game.truth.sizes, sizes),
    }


def misreport_gains_json(solution: GameSolution | PromptSolution) -> dict[str, float]:
    """``misreport_gains``: per group whose report differs from its type, what its misreport
    gains it, ``u_i(reported) - u_i(truthful)`` with section 3's quasi-linear utility
    ``u_i = w_i v_i - p_i`` (the difference Definition 3.2 bounds). The library's
    :attr:`~rlhf_mech.core.GameSolution.gains` holds that difference for every group, a truthful
    group's included (what the others' misreports do to it); this key holds the misreporters'."""
    game = solution.game
    return {game.group_names[i]: float(solution.gains[i]) for i in game.misreporting_groups()}


def solution_to_json(solution: GameSolution, distribution_file: str | None = None) -> dict[str, Any]:
    """The stable machine-readable form of ``rlhf-mech solve --format json``.

    Distributions are numpy arrays (the JSON writer puts each on one line); with
    ``distribution_file`` (``--save-distribution``) they are references into that file
    instead, ``{"file": ..., "row": 0}`` (truthful) and ``row: 1`` (reported), as a game file
    references arrays. ``misreport_gains`` lists the groups whose report differs from their type
    (:func:`misreport_gains_json`).
    """
    game = solution.game
    div = solution.mechanism.divergence
    candidates = solution.truthful.leave_one_out_choices is not None
    rows = {"truthful": solution.truthful, "reported": solution.reported}
    distributions = {
        label: profile.distribution if distribution_file is None else {"file": distribution_file, "row": k}
        for k, (label, profile) in enumerate(rows.items())
    }
    sizes = {"truthful": game.truth.sizes, "reported": game.reports.sizes}
    return {
        "game": game.name,
        "divergence": {"kind": div.name, "lambda": solution.mechanism.lam, "formula": div.formula},
        "payment_rule": solution.payment_rule.name,
        "training_rule": rule_json(solution.mechanism.training_rule, game.outcomes),
        "outcomes": list(game.outcomes),
        "notes": list(game.notes),
        "profiles": {
            label: {"distribution": distributions[label], **profile_json(game, profile, sizes[label])}
            for label, profile in rows.items()
        },
        "misreport_gains": misreport_gains_json(solution),
        **({"candidates": _candidates_json(solution)} if candidates else {}),
    }


def distribution_rows(solution: GameSolution) -> np.ndarray:
    """(2, m): the truthful and the reported distribution, the rows ``--save-distribution``
    writes (row 0 truthful, row 1 reported, as :func:`solution_to_json` references them)."""
    return np.stack([solution.truthful.distribution, solution.reported.distribution])


def _candidates_json(solution: GameSolution) -> dict[str, Any]:
    game = solution.game
    out: dict[str, Any] = {}
    for label, profile in _profiles(solution).items():
        assert profile.leave_one_out_choices is not None
        out[label] = {
            "chosen": game.outcomes[profile.chosen],
            "objective": profile.objective,
            "leave_one_out": {
                name: game.outcomes[c]
                for name, c in zip(game.group_names, profile.leave_one_out_choices, strict=True)
            },
        }
    return out
