"""What ``rlhf-mech solve`` shows, as one value its format's renderer takes
(:data:`~rlhf_mech.render._outputs.SOLVE_FORMATS`): a game of one prompt and a game of many
prompts have renderers of their own (:mod:`rlhf_mech.render._solve`,
:mod:`rlhf_mech.render._prompts`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group as RichGroup

from rlhf_mech.analysis import Uncertainty
from rlhf_mech.core import GameSolution, PromptSolution
from rlhf_mech.render._prompts import prompt_solution_to_json, render_prompt_solution
from rlhf_mech.render._solve import render_solution, solution_to_json
from rlhf_mech.render._uncertainty import uncertainty_json, uncertainty_table


@dataclass(frozen=True)
class SolveOutput:
    """A solution and how to show it.

    Attributes
    ----------
    solution : the mechanism on the game (one prompt, or many).
    top : outcomes shown in the distribution table (one prompt).
    distribution_file : where ``--save-distribution`` wrote the distributions, which the
        JSON then references instead of listing them (one prompt).
    uncertainty : a sampled game's figures with their sampling error (``--ci``), or ``None``.
    """

    solution: GameSolution | PromptSolution
    top: int = 10
    distribution_file: str | None = None
    uncertainty: Uncertainty | None = None


def solve_table(output: SolveOutput) -> RichGroup:
    """The tables of ``rlhf-mech solve``."""
    shown = (
        render_prompt_solution(output.solution)
        if isinstance(output.solution, PromptSolution)
        else render_solution(output.solution, output.top)
    )
    return shown if output.uncertainty is None else RichGroup(shown, uncertainty_table(output.uncertainty))


def solve_json(output: SolveOutput) -> dict[str, Any]:
    """The JSON of ``rlhf-mech solve``."""
    data = (
        prompt_solution_to_json(output.solution)
        if isinstance(output.solution, PromptSolution)
        else solution_to_json(output.solution, output.distribution_file)
    )
    if output.uncertainty is not None:
        data["uncertainty"] = uncertainty_json(output.uncertainty)
    return data
