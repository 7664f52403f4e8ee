"""Renderers: results -> Rich tables or JSON-ready dicts. They compute nothing new.

The CLI prints what these return; see :mod:`rlhf_mech.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.candidates import CandidateGame, is_candidate_game, profile_choice
from rlhf_mech.divergences import get_divergence
from rlhf_mech.game import Game
from rlhf_mech.importer import ImportResult
from rlhf_mech.mechanism import GameSolution, ProfileOutcome


def fmt(x: float) -> str:
    """A number for a table: 6 significant digits, exact zero as 0."""
    return "0" if x == 0 else f"{x:.6g}"


def fmt_signed(x: float) -> str:
    return "0" if x == 0 else f"{x:+.6g}"


def game_summary(game: Game, payment_rule: str) -> Table:
    """Key facts of a game: sizes of the problem, the regulariser, the payment rule."""
    div = get_divergence(game.divergence)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("game", escape(game.name))
    table.add_row("outcomes", f"{game.n_outcomes}")
    table.add_row(
        "groups", f"{game.n_groups}" + (f" (max_size {fmt(game.max_size)})" if game.max_size else "")
    )
    table.add_row("normalization", game.normalization)
    table.add_row("divergence", f"{div.name}: f(t) = {div.formula}, lambda = {fmt(game.lam)}")
    table.add_row("payment rule", payment_rule)
    for note in game.notes:
        table.add_row("note", escape(note))
    return table


def distribution_table(solution: GameSolution, top: int) -> Table:
    """The fine-tuned distribution beside pi_init, for the ``top`` most likely outcomes."""
    game = solution.game
    show_reported = solution.reported is not solution.truthful
    key = solution.reported.distribution
    order = np.argsort(-key, kind="stable")[: max(top, 1)]
    hidden = game.n_outcomes - order.size
    title = "fine-tuned distribution" + (
        f" (top {order.size} of {game.n_outcomes} outcomes)" if hidden else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("outcome")
    table.add_column("pi_init", justify="right")
    table.add_column("truthful", justify="right")
    if show_reported:
        table.add_column("reported", justify="right")
    for j in order:
        row = [escape(game.outcomes[j]), fmt(game.pi_init[j]), fmt(solution.truthful.distribution[j])]
        if show_reported:
            row.append(fmt(solution.reported.distribution[j]))
        table.add_row(*row)
    return table


def profile_table(game: Game, outcome: ProfileOutcome, title: str, sizes: np.ndarray) -> Table:
    """Valuation, group valuation, payment and utility per group, with the totals."""
    table = Table(
        title=title,
        title_justify="left",
        caption=f"ASW {fmt(outcome.asw)} = SW - D_f {fmt(outcome.divergence_value)}; "
        f"KKT residual {outcome.kkt_residual:.1e}",
        caption_justify="left",
    )
    for name in ("group", "size (reported)", "valuation", "group valuation", "payment", "utility"):
        table.add_column(name, justify="left" if name == "group" else "right")
    for i, name in enumerate(game.group_names):
        size = fmt(game.sizes[i]) + ("" if sizes[i] == game.sizes[i] else f" ({fmt(sizes[i])})")
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


def gains_text(solution: GameSolution) -> Text:
    """One line per misreporting group: what the reported profile gained it over truth."""
    game = solution.game
    lines = []
    for i in game.misreporting_groups():
        dv = solution.reported.group_valuations[i] - solution.truthful.group_valuations[i]
        du = solution.gains[i]
        verdict = "profitable" if du > 0 else "not profitable"
        lines.append(
            f"{game.group_names[i]} misreports: group valuation {fmt_signed(dv)}, "
            f"utility {fmt_signed(du)} under {solution.payment_rule} ({verdict})"
        )
    return Text("\n".join(lines) if lines else "every group reports truthfully")


def render_solution(solution: GameSolution, top: int = 10) -> RichGroup:
    """Everything ``rlhf-mech solve`` shows, as one Rich renderable."""
    game = solution.game
    parts: list[Any] = [
        game_summary(game, solution.payment_rule),
        distribution_table(solution, top),
        profile_table(game, solution.truthful, "truthful reports", game.sizes),
    ]
    if solution.reported is not solution.truthful:
        parts.append(profile_table(game, solution.reported, "reported (as in the file)", game.reported_sizes))
    if is_candidate_game(game):
        parts.append(candidate_choice_table(solution))
    parts.append(gains_text(solution))
    return RichGroup(*parts)


def _candidate_choices(solution: GameSolution) -> dict[str, Any]:
    """Profile label -> :class:`~rlhf_mech.candidates.CandidateChoice`, truthful first."""
    game = solution.game
    profiles = {"truthful": (solution.truthful, game.rewards, game.sizes)}
    if solution.reported is not solution.truthful:
        profiles["reported"] = (solution.reported, game.reported_rewards, game.reported_sizes)
    return {
        label: profile_choice(outcome.distribution, rewards, sizes, game.score_offset)
        for label, (outcome, rewards, sizes) in profiles.items()
    }


def _preference_text(game: CandidateGame, weights: np.ndarray) -> str:
    return " + ".join(f"{fmt(w)} {m}" for m, w in zip(game.reward_models, weights, strict=True) if w != 0)


def candidate_choice_table(solution: GameSolution) -> Table:
    """Candidate-model games: the chosen candidate per profile and each leave-one-out choice.

    The choices are looked up by :func:`rlhf_mech.candidates.profile_choice` (the argmax of
    the training objective and of each ``ASW_{-i}``, ties to the first candidate).
    """
    game = solution.game
    table = Table(
        title="candidate models: argmax of sum_i w_i v_i - lambda * divergence (ties: first in file order)",
        title_justify="left",
    )
    table.add_column("profile")
    table.add_column("chosen")
    table.add_column("objective", justify="right")
    for name in game.group_names:
        table.add_column(f"without {escape(name)}")
    for label, choice in _candidate_choices(solution).items():
        table.add_row(
            label,
            escape(game.outcomes[choice.chosen]),
            fmt(choice.objective),
            *(escape(game.outcomes[c]) for c in choice.leave_one_out),
        )
    if isinstance(game, CandidateGame) and game.preferences is not None:
        lines = [
            f"{name}: values {_preference_text(game, game.preferences[i])}"
            for i, name in enumerate(game.group_names)
        ]
        table.caption = escape("\n".join([f"scores: {game.scale} scale", *lines]))
        table.caption_justify = "left"
    return table


def _profile_json(game: Game, outcome: ProfileOutcome, sizes: np.ndarray) -> dict[str, Any]:
    return {
        "distribution": outcome.distribution.tolist(),
        "social_welfare": outcome.social_welfare,
        "asw": outcome.asw,
        "divergence_value": outcome.divergence_value,
        "kkt_residual": outcome.kkt_residual,
        "groups": [
            {
                "name": name,
                "size": float(game.sizes[i]),
                "reported_size": float(sizes[i]),
                "valuation": float(outcome.valuations[i]),
                "group_valuation": float(outcome.group_valuations[i]),
                "payment": float(outcome.payments[i]),
                "utility": float(outcome.utilities[i]),
            }
            for i, name in enumerate(game.group_names)
        ],
    }


def solution_to_json(solution: GameSolution) -> dict[str, Any]:
    """The stable machine-readable form of ``rlhf-mech solve --format json``."""
    game = solution.game
    div = get_divergence(game.divergence)
    return {
        "game": game.name,
        "divergence": {"kind": div.name, "lambda": game.lam, "formula": div.formula},
        "payment_rule": solution.payment_rule,
        "outcomes": list(game.outcomes),
        "notes": list(game.notes),
        "profiles": {
            "truthful": _profile_json(game, solution.truthful, game.sizes),
            "reported": _profile_json(game, solution.reported, game.reported_sizes),
        },
        "gains": {name: float(g) for name, g in zip(game.group_names, solution.gains, strict=True)},
        **({"candidates": _candidates_json(solution)} if is_candidate_game(game) else {}),
    }


def _candidates_json(solution: GameSolution) -> dict[str, Any]:
    game = solution.game
    return {
        label: {
            "chosen": game.outcomes[choice.chosen],
            "objective": choice.objective,
            "leave_one_out": {
                name: game.outcomes[c] for name, c in zip(game.group_names, choice.leave_one_out, strict=True)
            },
        }
        for label, choice in _candidate_choices(solution).items()
    }


def render_import(result: ImportResult, written: tuple[Path, ...]) -> RichGroup:
    """What ``rlhf-mech import`` read, the game it built and every transformation applied."""
    files = Table(title="read", title_justify="left", caption_justify="left")
    for name in ("file", "column", "role", "min", "max", "mean"):
        files.add_column(name, justify="right" if name in ("min", "max", "mean") else "left")
    for summary in result.files:
        for k, stats in enumerate(summary.used):
            numbers = (stats.minimum, stats.maximum, stats.mean)
            files.add_row(
                str(summary.path) if k == 0 else "",
                stats.column,
                stats.role,
                *(("",) * 3 if stats.role == "candidate" else (fmt(x) for x in numbers)),
            )
    files.caption = "\n".join(
        f"{summary.path}: {summary.rows} rows; columns {', '.join(summary.columns)}"
        for summary in result.files
    )
    parts: list[Any] = [files]
    if result.candidates:
        models = tuple(result.reward_columns)
        cands = Table(title="candidates (mean per reward model, before scaling)", title_justify="left")
        cands.add_column("candidate")
        cands.add_column("rows", justify="right")
        for model in models:
            cands.add_column(model, justify="right")
        cands.add_column("KL estimate", justify="right")
        for cand in result.candidates:
            kl = "" if cand.kl is None else fmt(cand.kl)
            cands.add_row(escape(cand.name), str(cand.rows), *(fmt(v) for v in cand.means), kl)
        parts.append(cands)
    game = result.game
    lines = [f"built a {result.kind} game: {game.n_outcomes} outcomes, {game.n_groups} groups"]
    lines += [f"- {step}" for step in result.steps]
    lines.append("wrote " + ", ".join(str(p) for p in written))
    parts.append(Text("\n".join(lines)))
    return RichGroup(*parts)
