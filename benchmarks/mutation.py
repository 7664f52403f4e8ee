"""A mutation run of our own (issue 27): a fixed list of hand-written semantic mutants.

Each mutant is one exact replacement of a snippet of ``rlhf_mech/`` by the kind of edit a real
bug looks like (a tolerance loosened 1e3x, a chunk boundary, a range end, a sign, a flag that
stops being raised, ...). A mutant is matched by its text, never by a line number: the
snippet must occur exactly once in its module. A mutant whose snippet is gone (or occurs
twice) after the code changed is *stale*: it is listed as such, not run and not scored, and
the run goes on with the others (rewrite it against the new code).

For each mutant, in a scratch copy of the tree (one per job, under a temporary folder; the
working tree is never touched), the mutant is applied and then, until one of them fails:

1. its related tests (the guards, tests/test_mutation_guards*.py, then the module's own test files, ``-m
   "not slow"``, ``-x``): the fast kill;
2. the quick suite (``pytest -m "not slow"``), unless ``--stages`` leaves it out;
3. ``rlhf-mech audit games/``, killed when its exit status differs from the unmutated tree's.

Before any mutant, the guards run on the unmutated tree (a failure there stops the run: it
would "kill" every mutant), and with the quick stage so does the quick suite: its tests that
fail there (an environment without a login shell, ...) are left out of every stage. A mutant
that makes a stage fail, crash or run past its time limit is killed; one that passes every
stage survives. The run prints a line per mutant, the score per module (killed / run, stale
apart), every survivor and every stale mutant, and ends with ``RESULT killed=.. total=..
score=.. stale=..``.

Usage::

    python benchmarks/mutation.py --list                # the mutants, and the equivalent ones
    python benchmarks/mutation.py --jobs 2              # the whole campaign
    python benchmarks/mutation.py --only core/_solver   # the mutants of matching modules
    python benchmarks/mutation.py --stages related,audit --timeout 900

Equivalent mutants (an edit no test can tell apart, because the program's results do not
change) are kept in :data:`EQUIVALENT` with the argument why, and are not run: the score is
over the others.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rlhf_mech"
#: The guards of the mutants (run first for every mutant: small files, aimed at them).
GUARDS = ("tests/test_mutation_guards.py", "tests/test_mutation_guards_files.py")


@dataclass(frozen=True)
class Mutant:
    """One semantic mutant: in ``rlhf_mech/<path>``, ``old`` (occurring exactly once) becomes
    ``new``; ``tests`` are its related tests (pytest arguments), the module's defaults when
    empty."""

    path: str
    old: str
    new: str
    description: str
    tests: tuple[str, ...] = field(default=())
    own_tests_only: bool = False

    @property
    def module(self) -> str:
        return self.path.removesuffix(".py")


#: Related tests of each module (prefix of its path), after the :data:`GUARDS`.
MODULE_TESTS: dict[str, tuple[str, ...]] = {
    "core/_solver": ("tests/test_solver.py", "tests/test_heuristics.py", "tests/test_numerics.py"),
    "core/_payments": ("tests/test_payments.py", "tests/test_heuristics.py", "tests/test_numerics.py"),
    "core/_outcomes": ("tests/test_mechanism.py", "tests/test_payments.py", "tests/test_prompts.py"),
    "core/_prompts": ("tests/test_prompts.py",),
    "core/_deviation": ("tests/test_payments.py", "tests/test_search.py", "tests/test_implementability.py"),
    "core/_divergences": ("tests/test_divergences.py", "tests/test_solver.py"),
    "core/_normalizations": ("tests/test_mechanism.py", "tests/test_spec.py"),
    "core/_fair": ("tests/test_fair.py",),
    "analysis/_checks": ("tests/test_audit.py", "tests/test_audit_json.py", "tests/test_candidates.py"),
    "analysis/_audit": ("tests/test_audit.py", "tests/test_audit_json.py", "tests/test_candidates.py"),
    "analysis/_runner": ("tests/test_audit.py", "tests/test_cli_audit.py"),
    "analysis/_implementability": ("tests/test_implementability.py",),
    "analysis/_noisy": ("tests/test_search.py", "tests/test_audit.py"),
    "analysis/_objective": ("tests/test_search.py", "tests/test_audit.py"),
    "analysis/_space": ("tests/test_search.py", "tests/test_audit.py"),
    "analysis/_others": ("tests/test_search.py", "tests/test_audit.py"),
    "analysis/_polish": ("tests/test_search.py",),
    "analysis/_sweep": ("tests/test_sweep.py", "tests/test_cli_sweep.py"),
    "analysis/_strategies": ("tests/test_strategies.py", "tests/test_sweep.py"),
    "files/_arrays": ("tests/test_spec.py", "tests/test_cli.py"),
    "files/_yaml": ("tests/test_spec.py", "tests/test_fuzz.py"),
    "files/_logs": ("tests/test_logs.py", "tests/test_importer.py"),
    "files/_certificates": ("tests/test_implementability.py",),
    "render/_audit": ("tests/test_cli_audit.py", "tests/test_audit_json.py", "tests/test_audit.py"),
    "render/_format": ("tests/test_cli.py", "tests/test_cli_audit.py"),
    "render/_implementability": ("tests/test_implementability.py",),
    "render/_json": ("tests/test_json_writer.py", "tests/test_audit_json.py"),
    "render/_compare": ("tests/test_compare.py",),
    "render/_sweep": ("tests/test_cli_sweep.py", "tests/test_sweep.py"),
    "files/_prompt_tables": ("tests/test_prompts.py", "tests/test_importer.py"),
    "files/spec": ("tests/test_spec.py", "tests/test_cli.py"),
    "analysis/_least_cost": ("tests/test_compare.py", "tests/test_implementability.py"),
    "analysis/_compare": ("tests/test_compare.py",),
    "analysis/_bootstrap": ("tests/test_bootstrap.py",),
}


def M(path: str, old: str, new: str, description: str, *tests: str) -> Mutant:
    return Mutant(path, old, new, description, tuple(tests))


# ------------------------------------------------------------------------------------------
# The mutants. The first of each block are the kinds issue 27 names; the rest are our own.
# ------------------------------------------------------------------------------------------

MUTANTS: tuple[Mutant, ...] = (
    # --- core/_solver.py: the Newton multiplier, validation, mirror ascent ---------------------
    M("core/_solver.py", "_STALL_TOL = 1e-10", "_STALL_TOL = 1e-7", "Newton stall tolerance loosened 1e3x"),
    M(
        "core/_solver.py",
        "converged = live & ((error <= 4.0 * _EPS) |",
        "converged = live & ((error <= 4e3 * _EPS) |",
        "Newton convergence tolerance loosened 1e3x",
    ),
    M(
        "core/_solver.py",
        "status[live & stalled & ~converged] = STALLED",
        "status[live & stalled & ~converged] = CONVERGED",
        "a stalled row is reported converged",
    ),
    M(
        "core/_ascent.py",
        "shrink = -np.expm1(t * np.log1p(-min(step_size, 1.0)))",
        "shrink = -np.expm1((t - 1) * np.log1p(-min(step_size, 1.0)))",
        "KL mirror ascent (the heuristics' training model) runs T - 1 steps",
    ),
    M(
        "core/_ascent.py",
        "eta = eta / np.sqrt(t)",
        "eta = eta / t",
        "subgradient steps (TV) diminish as 1/t instead of 1/sqrt(t)",
    ),
    M(
        "core/_solver.py",
        "if not np.all(pi_init >= np.finfo(float).tiny):",
        "if not np.all(pi_init >= 0.0):",
        "pi_init with zeros accepted",
    ),
    M(
        "core/_solver.py",
        "if not (np.isfinite(lam) and lam > 0):",
        "if not (lam > 0):",
        "an infinite lambda accepted",
    ),
    M(
        "core/_optimality.py",
        "return np.where(np.asarray(result.pi) > 0, 0.0, rise)",
        "return np.where(np.asarray(result.pi) >= 0, 0.0, rise)",
        "support gaps: every outcome counted in the support",
        "tests/test_search.py",
    ),
    M(
        "core/_optimality.py",
        "primal = np.maximum(np.abs(pi.sum(axis=-1) - 1.0), np.maximum(0.0, -pi.min(axis=-1)))",
        "primal = np.maximum(np.abs(pi.sum(axis=-1) - 1.0), np.maximum(0.0, pi.min(axis=-1)))",
        "KKT residual: primal feasibility sign of pi >= 0 flipped",
        "tests/test_alpha_fair.py",
    ),
    # --- core/_payments.py: eq. (1), the Gibbs shortcut, the heuristics ------------------------
    M(
        "core/_payments.py",
        "return first - (objective - own)",
        "return first - (objective + own)",
        "eq. (1): ASW_-i adds the group's own term",
    ),
    M(
        "core/_payments.py",
        "ok = np.isfinite(sums) & (sums >= m * _TINY / _EPS**2) & np.isfinite(means)",
        "ok = np.isfinite(sums) & np.isfinite(means)",
        "Gibbs shortcut trusts sums that lost their digits to underflow",
    ),
    M(
        "core/_payments.py",
        "again = ~ok | ((payments < _SMALL_PAYMENT * lam) & (lam > np.abs(value) + np.abs(weights * means)))",
        "again = ~ok",
        "Gibbs shortcut never re-evaluates small payments with expm1 (large lambda)",
    ),
    M(
        "core/_payments.py",
        "first = np.maximum(at_checkpoints, at_psi)",
        "first = at_checkpoints",
        "Heuristic 1 shortcut leaves the final model out of the checkpoints",
    ),
    M(
        "core/_payments.py",
        "at_checkpoints = (full[..., None, :] - weighted).max(axis=-1)",
        "at_checkpoints = (full[..., None, :] - weighted).min(axis=-1)",
        "Heuristic 1 shortcut takes the worst checkpoint",
    ),
    M(
        "core/_payments.py",
        'Parameter("steps", "int", 20, minimum=1',
        'Parameter("steps", "int", 19, minimum=1',
        "the heuristics' default T changes (20 -> 19)",
    ),
    M(
        "core/_payments.py",
        "block = slice(start, min(games, start + step))",
        "block = slice(start, min(games, start + step - 1))",
        "eq. (1)'s first term: the last row of every chunk is left at 0",
    ),
    M(
        "core/_payments.py",
        "np.subtract(flat_scores[idx // n] if flat_scores.shape[0] > 1 else flat_scores[0], out, out=out)",
        "np.add(flat_scores[idx // n] if flat_scores.shape[0] > 1 else flat_scores[0], out, out=out)",
        "leave-one-out scores add the group instead of removing it",
    ),
    # --- core/_outcomes.py: the profile kernel's figures ---------------------------------------
    M(
        "core/_outcomes.py",
        "status = np.where(converged[..., None], payment_status, np.asarray(solution.status)[..., None])",
        "status = np.where(converged[..., None], payment_status, payment_status)",
        "a training solve that did not converge is no longer flagged in the figures",
    ),
    M(
        "core/_outcomes.py",
        "status=np.max(self.status, axis=0),",
        "status=np.min(self.status, axis=0),",
        "prompt means: the status is the best prompt's, not the worst",
    ),
    M(
        "core/_outcomes.py",
        "kkt_residual=float(np.max(self.kkt_residual)),",
        "kkt_residual=float(np.mean(self.kkt_residual)),",
        "prompt means: the residual is the mean, not the worst",
    ),
    M(
        "core/_outcomes.py",
        "social_welfare = (truth.sizes * valuations).sum(axis=-1)",
        "social_welfare = (reports.sizes * valuations).sum(axis=-1)",
        "social welfare measured with the reported sizes",
    ),
    M(
        "core/_outcomes.py",
        "choices[k : k + block.shape[0]] = np.argmax(block, axis=-1)",
        "choices[k : k + block.shape[0]] = np.argmin(block, axis=-1)",
        "argmax rule: the leave-one-out choice is the worst outcome",
        "tests/test_candidates.py",
    ),
    M(
        "core/_outcomes.py",
        "worst = int(np.max(self.payment.status))",
        "worst = int(np.min(self.payment.status))",
        "status message names the best leave-one-out status",
    ),
    # --- core/_prompts.py: games of many prompts -----------------------------------------------
    M(
        "core/_prompts.py",
        "rows = batch[start : start + step]",
        "rows = batch[start : start + step - 1]",
        "batched prompt solve drops the last prompt of every chunk",
    ),
    M(
        "core/_prompts.py",
        "costs = None if self.outcome_costs is None else self.outcome_costs[cols]",
        "costs = None if self.outcome_costs is None else self.outcome_costs[cols[0]]",
        "a batch is solved with its first prompt's outcome costs (batch key without costs)",
    ),
    M(
        "core/_prompts.py",
        "if abs(float(weights.sum()) - 1.0) > PROMPT_WEIGHT_TOL:",
        "if abs(float(weights.sum()) - 1.0) > 1e3 * PROMPT_WEIGHT_TOL:",
        "prompt weights' sum tolerance loosened 1e3x",
    ),
    M(
        "core/_prompts.py",
        "return self.reported.per_prompt.utilities - self.truthful.per_prompt.utilities",
        "return self.reported.per_prompt.utilities - self.truthful.utilities",
        "per-prompt gains measured against the prompt-averaged truthful utility",
    ),
    M(
        "core/_prompts.py",
        "x, i = (int(v) for v in bad[0])",
        "i, x = (int(v) for v in bad[0])",
        "status message names the group as the prompt",
    ),
    # --- core/_deviation.py: one group's deviations --------------------------------------------
    M(
        "core/_deviation.py",
        "np.broadcast_to(self.first_status[gs, None], block_shape).reshape(-1, 1),",
        "np.zeros((count, 1), dtype=int),",
        "deviation outcomes drop the leave-one-out solve's status",
    ),
    M(
        "core/_deviation.py",
        "(slice(g, g + 1), slice(a, min(points, a + rows)))",
        "(slice(g, g + 1), slice(a, min(points, a + rows - 1)))",
        "deviation blocks drop the last point of every block",
    ),
    M(
        "core/_deviation.py",
        "measures = np.stack([self.own, self.welfare], axis=-1)",
        "measures = np.stack([self.welfare, self.own], axis=-1)",
        "deviation figures swap the valuation and the welfare",
    ),
    M(
        "core/_deviation.py",
        'return sizes[gs, ps] * np.einsum("gpm,gpm->gp", pi, rewards[gs, ps])',
        'return np.einsum("gpm,gpm->gp", pi, rewards[gs, ps])',
        "the reported term of eq. (1) forgets the reported size",
    ),
    M(
        "core/_deviation.py",
        "if not 0 <= group < n:",
        "if not 0 <= group <= n:",
        "group index n accepted",
    ),
    # --- core/_divergences.py, _normalizations.py, _fair.py -----------------------------------
    M(
        "core/_divergences.py",
        "dropped = scores < s_max - 2.0 * lam",
        "dropped = scores < s_max - lam",
        "TV closed form drops outcomes within 2 lambda of the best",
    ),
    M(
        "core/_normalizations.py",
        "if abs(total - 1.0) > tol:",
        "if abs(total - 1.0) > 1e3 * tol:",
        "sum-normalisation check loosened 1e3x",
    ),
    M(
        "core/_normalizations.py",
        "negative = np.flatnonzero(reward < 0)",
        "negative = np.flatnonzero(reward < -1e-9)",
        "slightly negative rewards accepted",
    ),
    M(
        "core/_fair.py",
        "status = np.where((gap <= 10 * tol) & (at.solve.status == CONVERGED), CONVERGED, MAXITER)",
        "status = np.where((gap <= 1e4 * tol) & (at.solve.status == CONVERGED), CONVERGED, MAXITER)",
        "fair rules' gap status loosened 1e3x",
    ),
    M(
        "core/_duals.py",
        "pis[k], weights[k] = pi, -res.ineqlin.marginals",
        "pis[k], weights[k] = pi, res.ineqlin.marginals",
        "MaxMin under TV: the dual weights' sign flipped",
    ),
    # --- analysis/_checks.py: verdicts ---------------------------------------------------------
    M(
        "analysis/_checks.py",
        "holds=result.best.gain <= tol,",
        "holds=result.best.gain <= 1e3 * tol,",
        "is_dsic accepts gains up to 1e3 tol",
    ),
    M(
        "analysis/_checks.py",
        "holds=utility >= -tol,",
        "holds=utility >= -1e3 * tol,",
        "is_ir accepts utilities down to -1e3 tol",
    ),
    M(
        "analysis/_checks.py",
        "holds=payment >= -tol,",
        "holds=payment >= -1e3 * tol,",
        "p >= 0 accepts payments down to -1e3 tol",
    ),
    M(
        "analysis/_checks.py",
        "holds=result.best.gain > tol,",
        "holds=result.best.gain > 1e-3 * tol,",
        "gain without payment counted from tol / 1e3",
    ),
    M(
        "analysis/_checks.py",
        "holds=abs(gap) <= tol,",
        "holds=gap <= tol,",
        "payment gap: a payment below p^AFF always holds",
    ),
    M(
        "analysis/_checks.py",
        "holds=noisy.gain <= noisy.bound + tol,",
        "holds=noisy.gain <= 2 * noisy.bound + tol,",
        "Theorem 4.12's bound doubled",
    ),
    M(
        "analysis/_checks.py",
        "holds=bool(lo - tol <= value <= hi + tol),",
        "holds=bool(lo - tol <= value),",
        "expect: ranges ignore their upper end",
    ),
    M(
        "analysis/_checks.py",
        'profile = solution.truthful if expect.profile == "truthful" else solution.reported',
        "profile = solution.truthful",
        "expect: ranges always read the truthful profile",
    ),
    M(
        "analysis/_checks.py",
        "worst = max(findings, key=lambda f: f.value if largest else -f.value)",
        "worst = min(findings, key=lambda f: f.value if largest else -f.value)",
        "existential finding's game-level value is the least extreme group's",
    ),
    M(
        "analysis/_checks.py",
        '"ir": ("ir", False, "some group has a negative truthful utility", False),',
        '"ir": ("ir", False, "some group has a negative truthful utility", True),',
        "ir: false reports the largest utility as the game-level value",
    ),
    M(
        "analysis/_checks.py",
        'if check == "no_payment"',
        'if check == "dsic"',
        "existential hits: the no_payment check counts groups that do not gain",
    ),
    # --- analysis/_audit.py: the audit of one game ----------------------------------------------
    M(
        "analysis/_audit.py",
        "DEFAULT_TOL = 1e-9",
        "DEFAULT_TOL = 1e-6",
        "the audit's default tolerance changes",
    ),
    M(
        "analysis/_audit.py",
        "payment = float(min(truthful.payments[i], solution.reported.payments[i], g.dsic.min_payment))",
        "payment = float(min(truthful.payments[i], solution.reported.payments[i]))",
        "p >= 0 checks only the truthful (and file's) payments, not the searched reports'",
    ),
    M(
        "analysis/_audit.py",
        "return True if value else None",
        "return True if value else False",
        "dsic: false (etc.) also required of every group",
    ),
    M(
        "analysis/_audit.py",
        "profit_exp = False if profit is False else None",
        "profit_exp = None",
        "profitable_without_payment: false no longer checked per group",
    ),
    M(
        "analysis/_audit.py",
        "if options.noise is not None and rule.dsic:",
        "if options.noise is not None:",
        "Theorem 4.12's check run under rules that are not DSIC",
    ),
    M(
        "analysis/_audit.py",
        "worst = int(np.argmax(gains))",
        "worst = 0",
        "epsilon_ic taken against the first of the others' profiles, not the worst",
    ),
    M(
        "analysis/_audit.py",
        "stalled += not result.converged",
        "stalled += 0",
        "health: unconverged replays of best misreports not counted",
    ),
    M(
        "analysis/_audit.py",
        "if int(self.budget) != self.budget or self.budget < 10:",
        "if int(self.budget) != self.budget or self.budget < 1:",
        "a budget below 10 accepted",
    ),
    M(
        "analysis/_audit.py",
        "if not (np.isfinite(self.tol) and self.tol >= 0):",
        "if not (self.tol >= 0):",
        "an infinite tolerance accepted",
    ),
    M(
        "analysis/_audit.py",
        "return file_seq.spawn(i + 1)[i]",
        "return file_seq.spawn(i + 1)[0]",
        "every group of a file searched with the same seed",
    ),
    # --- analysis/_runner.py -----------------------------------------------------------------
    M(
        "analysis/_runner.py",
        "return [tuple(range(start, min(n_groups, start + size))) for start in range(0, n_groups, size)]",
        "return [tuple(range(start, min(n_groups, start + size - 1))) for start in range(0, n_groups, size)]",
        "parallel tasks drop the last group of every chunk",
    ),
    M(
        "analysis/_runner.py",
        "failed_games=sum(not a.passed for a in audits),",
        "failed_games=sum(a.passed for a in audits),",
        "summary counts the games that passed as failed",
    ),
    M(
        "analysis/_runner.py",
        "return 1 if self.failed else 0",
        "return 1 if self.failed_games > 1 else 0",
        "exit code 0 when only one game fails",
    ),
    # --- analysis/_implementability.py: cycle monotonicity --------------------------------------
    M(
        "analysis/_implementability.py",
        "    for _ in range(k):\n        new = np.minimum(",
        "    for _ in range(k - 1):\n        new = np.minimum(",
        "numpy Bellman-Ford runs K - 1 rounds",
    ),
    M(
        "analysis/_implementability.py",
        "cycles.append(np.array(walk[::-1]))",
        "cycles.append(np.array(walk))",
        "negative cycle walked in the wrong direction",
    ),
    M(
        "analysis/_implementability.py",
        "order = found[::-1]  # s_j reports s_{j+1}",
        "order = found  # s_j reports s_{j+1}",
        "certificate's misreport cycle in the wrong direction",
    ),
    M("analysis/_implementability.py", "eps = tol / k", "eps = tol", "each edge gets tol instead of tol / K"),
    M(
        "analysis/_implementability.py",
        "dsic_violation = float(np.max(payments[None, :] - payments[:, None] - gains))",
        "dsic_violation = float(np.max(payments[:, None] - payments[None, :] - gains))",
        "Rochet payments' DSIC violation measured on the reversed edges",
    ),
    M(
        "analysis/_implementability.py",
        "aff_offset = float((diff.max() + diff.min()) / 2)",
        "aff_offset = float(diff.max())",
        "gap to p^AFF: offset is the largest difference, not the centre",
    ),
    M(
        "analysis/_implementability.py",
        "keep = np.sort(first)",
        "keep = first",
        "type set reordered by value: the true type is no longer type 0",
    ),
    M(
        "analysis/_implementability.py",
        "if stalled.size and stalled[0] != 0:",
        "if stalled.size and stalled[0] == 0:",
        "unconverged types kept in L (and the true type's failure dropped)",
    ),
    # --- analysis/_noisy.py, _objective.py: Theorem 4.12 and the search's objective -------------
    M(
        "analysis/_objective.py",
        "utility = out.utilities.mean(axis=0)",
        "utility = out.utilities.max(axis=0)",
        "noisy objective: best noise sample instead of the mean",
    ),
    M(
        "analysis/_objective.py",
        "utilities[block] = np.where(bad, -np.inf, utility)",
        "utilities[block] = utility",
        "the search trusts the gain of a report whose solve did not converge",
    ),
    M(
        "analysis/_objective.py",
        "bad = np.any(out.status != CONVERGED, axis=0)",
        "bad = np.all(out.status != CONVERGED, axis=0)",
        "a report is distrusted only when every noise sample failed",
    ),
    M(
        "analysis/_objective.py",
        "self.min_payment = min(self.min_payment, float(out.payments.min()))",
        "self.min_payment = min(self.min_payment, float(out.payments.max()))",
        "the smallest searched payment is the largest of each batch",
    ),
    M("analysis/_noisy.py", "bound=2.0 * w * eps,", "bound=2.0 * eps,", "Theorem 4.12's bound forgets w_i"),
    M(
        "analysis/_noisy.py",
        "stderr = float(per_sample.std(ddof=1) / np.sqrt(samples)) if samples > 1",
        "stderr = float(per_sample.std(ddof=1)) if samples > 1",
        "standard error of the noisy gain is the standard deviation",
    ),
    M(
        "analysis/_noisy.py",
        "gain=float(per_sample.mean()),",
        "gain=float(per_sample.max()),",
        "noisy gain reported as the best sample",
    ),
    M("analysis/_noisy.py", "if rm.min() > 0:", "if rm.min() >= 0:", "Theorem 4.2 predicted at min rm_i = 0"),
    M("analysis/_noisy.py", "if distinct < 2:", "if distinct < 3:", "two reward values called constant"),
    # --- analysis/_space.py, _others.py, _polish.py, _sweep.py, _strategies.py -----------------
    M(
        "analysis/_space.py",
        "return max(10.0, 2.0 * largest),",
        "return max(10.0, largest),",
        "default size bound W = max(10, largest) instead of 2x",
    ),
    M(
        "analysis/_space.py",
        "ok &= np.abs(self.normalization.total(theta) - 1.0) <= tol",
        "ok &= np.abs(self.normalization.total(theta) - 1.0) <= 1e3 * tol",
        "report validity: normalisation tolerance loosened 1e3x",
    ),
    M(
        "analysis/_space.py",
        "return ok & (sizes >= 1.0 - tol) & (sizes <= self.size_bound * (1 + tol))",
        "return ok & (sizes >= 1.0 - tol)",
        "report validity: sizes above the bound accepted",
    ),
    M(
        "analysis/_others.py",
        "size = 1.0 + (space.size_bound - 1.0) * u[-1]",
        "size = space.size_bound * u[-1]",
        "sampled others' sizes may fall below 1",
    ),
    M(
        "analysis/_polish.py",
        "if value[0] > self.best_gain:",
        "if value[0] < self.best_gain:",
        "the polish keeps the worse point",
    ),
    M(
        "analysis/_sweep.py",
        "return best is None or best[0] <= GAIN_TOL * scale",
        "return best is None or best[0] <= 1e3 * GAIN_TOL * scale",
        "sweep's truthful-is-best tolerance loosened 1e3x",
    ),
    M(
        "analysis/_sweep.py",
        "return (np.abs(values - best) <= TIE_TOL * max(1.0, abs(float(best)))) & self.within_max_size",
        "return (np.abs(values - best) <= 1e3 * TIE_TOL * max(1.0, abs(float(best)))) & self.within_max_size",
        "sweep's tie tolerance loosened 1e3x",
    ),
    M(
        "analysis/_sweep.py",
        "above = sizes > upper * (1 + TIE_TOL)",
        "above = sizes > np.inf",
        "sweep sizes above the bound accepted",
    ),
    M(
        "analysis/_strategies.py",
        "clipped |= np.abs(total - 1.0) > NORMALIZATION_TOL",
        "clipped |= np.abs(total - 1.0) > 1e3 * NORMALIZATION_TOL",
        "mixed report's normalisation tolerance loosened 1e3x",
    ),
    M(
        "analysis/_strategies.py",
        "adjusted=moved < epsilons,",
        "adjusted=moved <= epsilons,",
        "a polarised report moved by exactly eps flagged as adjusted",
    ),
    # --- files: readers --------------------------------------------------------------------------
    M(
        "files/_arrays.py",
        "if claimed != after:",
        "if claimed > after:",
        "a .npy file with trailing bytes accepted",
    ),
    M(
        "files/_arrays.py",
        "if len(shape) not in (1, 2):",
        "if len(shape) not in (1, 2, 3):",
        "a 3-D .npy array accepted",
    ),
    M(
        "files/_arrays.py",
        "row, column = int(position[1]) + 1, int(position[2])",
        "row, column = int(position[1]), int(position[2])",
        "CSV error names the line before the bad one",
    ),
    M(
        "files/_yaml.py",
        "if abs(value) > _FLOAT_MAX:",
        "if abs(value) > 10 * _FLOAT_MAX:",
        "YAML integers beyond a float's range accepted",
    ),
    M(
        "files/_logs/_record.py",
        "if low <= high:",
        "if low < high:",
        "--step 3-3 (a one-step range) rejected",
    ),
    M(
        "files/_logs/_record.py",
        "tuple(s for s in log.steps if chosen[0] <= s <= chosen[1])",
        "tuple(s for s in log.steps if chosen[0] <= s < chosen[1])",
        "--step ranges leave out their last step",
    ),
    M(
        "files/_logs/_evalcsv.py",
        "if any(w is None or w < 0 for w in weights):",
        "if any(w is None or w <= 0 for w in weights):",
        "eval CSV preference weights of 0 rejected",
    ),
    M(
        "files/_logs/_evalcsv.py",
        'm[0] if not 1 <= int(m[1]) <= rewards else ""',
        'm[0] if not 1 <= int(m[1]) < rewards else ""',
        "the last reward's score tag is left in the prompt",
    ),
    M(
        "files/_logs/_trl.py",
        'initial = (role == "train" and step == 1) or (role == "eval" and step == 0)',
        'initial = (role == "train" and step == 0) or (role == "eval" and step == 0)',
        "TRL's first training step no longer counts as the initial model",
    ),
    M(
        "files/_certificates.py",
        "own, report = int(result.cycle[j]), int(result.cycle[(j + 1) % len(result.cycle)])",
        "own, report = int(result.cycle[j]), int(result.cycle[(j - 1) % len(result.cycle)])",
        "certificate file's misreports follow the cycle backwards",
    ),
    M(
        "files/_prompt_tables.py",
        "off = np.abs(totals - 1.0) > NORMALIZATION_TOL",
        "off = np.abs(totals - 1.0) > 1e3 * NORMALIZATION_TOL",
        "a prompt's rewards' sum tolerance loosened 1e3x",
    ),
    M(
        "files/_prompt_tables.py",
        "far = np.flatnonzero(np.abs(totals - 1.0) > NORMALIZATION_TOL)",
        "far = np.flatnonzero(np.abs(totals - 1.0) > 1e3 * NORMALIZATION_TOL)",
        "an initial distribution off its sum by up to 1e-6 silently rescaled instead of refused",
    ),
    M(
        "files/_prompt_tables.py",
        "if offsets[0] != 0 or np.any(np.diff(offsets) < 1):",
        "if offsets[0] != 0 or np.any(np.diff(offsets) < 0):",
        "a prompt without outcomes accepted",
    ),
    M(
        "files/_prompt_tables.py",
        "bad = np.flatnonzero(~np.isfinite(weights) | (weights <= 0))",
        "bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))",
        "a prompt weight of 0 accepted",
    ),
    M(
        "files/_prompt_tables.py",
        'return int(np.searchsorted(offsets, j, side="right") - 1)',
        'return int(np.searchsorted(offsets, j, side="left") - 1)',
        "an error at a prompt's first outcome names the prompt before",
    ),
    M(
        "files/_prompt_tables.py",
        "if total > max_outcomes:",
        "if total >= max_outcomes:",
        "a table of exactly the largest outcome count refused",
    ),
    M(
        "files/spec/_validation.py",
        '_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">",',
        '_BOUNDS = {"greater_than_equal": ">", "greater_than": ">=",',
        "a bound's error message says > for >= (and the reverse)",
    ),
    # --- analysis/_least_cost.py, _compare.py, _bootstrap.py ----------------------------------
    M(
        "analysis/_least_cost.py",
        "dist = shortest_paths(_with_source(np.asarray(weights, dtype=float).T, np.zeros(k)), root=k)",
        "dist = shortest_paths(_with_source(np.asarray(weights, dtype=float), np.zeros(k)), root=k)",
        "least payments: distances from the source instead of into the sink (graph not reversed)",
    ),
    M(
        "analysis/_least_cost.py",
        "weights = result.gains + result.tol / result.K",
        "weights = result.gains - result.tol / result.K",
        "least-cost edge weights: the tolerance subtracted",
    ),
    M(
        "analysis/_least_cost.py",
        "worst = int(np.argmax(lowest - own))",
        "worst = int(np.argmin(lowest - own))",
        "not IR: the message names the type with the least shortfall",
    ),
    M(
        "analysis/_least_cost.py",
        "return float(self.lowest[0]), float(self.highest[0])",
        "return float(self.lowest[0]), float(self.highest[-1])",
        "the highest payment at truth read off the last type",
    ),
    M(
        "analysis/_compare.py",
        "dominated = np.any(better_or_equal & strictly, axis=0)",
        "dominated = np.any(better_or_equal & strictly, axis=1)",
        "Pareto front: the dominating rows marked dominated (wrong axis)",
    ),
    M(
        "analysis/_compare.py",
        "strictly = np.any(points[:, None, :] < points[None, :, :] - tol, axis=-1)",
        "strictly = np.all(points[:, None, :] < points[None, :, :] - tol, axis=-1)",
        "Pareto dominance needs strictly better in every objective",
    ),
    M(
        "analysis/_compare.py",
        "gameable = any(g.gain > options.tol * max(1.0, abs(g.utility)) for g in groups)",
        "gameable = any(g.gain > 1e3 * options.tol * max(1.0, abs(g.utility)) for g in groups)",
        "compare: gameable from 1e3 tol",
    ),
    M(
        "analysis/_compare.py",
        "ir=all(g.utility >= -options.tol for g in groups),",
        "ir=all(g.utility >= -1e3 * options.tol for g in groups),",
        "compare: IR accepts utilities down to -1e3 tol",
    ),
    M(
        "analysis/_compare.py",
        "return min(g.utility for g in self.groups)",
        "return max(g.utility for g in self.groups)",
        "compare: the lowest utility is the largest",
    ),
    M(
        "analysis/_compare.py",
        "return float(sum(max(g.gain, 0.0) for g in self.groups))",
        "return float(sum(g.gain for g in self.groups))",
        "compare: total gain counts negative gains",
    ),
    M(
        "analysis/_compare.py",
        "return float(np.mean(total < -options.tol)), int(total.size)",
        "return float(np.mean(total < -1e3 * options.tol)), int(total.size)",
        "compare: negative payments counted from -1e3 tol",
    ),
    M(
        "analysis/_compare.py",
        "gameable = gain > audit.options.tol * max(1.0, abs(utility))",
        "gameable = gain > 1e3 * audit.options.tol * max(1.0, abs(utility))",
        "audit verdict: gameable from 1e3 tol",
    ),
    M(
        "analysis/_bootstrap.py",
        "return 2.0 * estimate - high, 2.0 * estimate - low",
        "return 2.0 * estimate - low, 2.0 * estimate - high",
        "basic interval's ends reversed",
    ),
    M(
        "analysis/_bootstrap.py",
        "alpha = (1.0 - level) / 2.0",
        "alpha = 1.0 - level",
        "percentile interval at level 1 - 2 alpha (both tails get alpha)",
    ),
    M(
        "analysis/_bootstrap.py",
        "below = (replicates < estimate).sum(axis=0) + 0.5 * (replicates == estimate).sum(axis=0)",
        "below = (replicates < estimate).sum(axis=0)",
        "BCa bias correction: ties with the estimate not split",
    ),
    # --- core/_fair.py -------------------------------------------------------------------------
    M(
        "core/_fair.py",
        "return rewards * sizes[..., None]",
        "return rewards",
        "fair rules over groups: the group sizes dropped",
    ),
    M(
        "core/_fair.py",
        "if np.any(rewards.max(axis=-1) <= 0.0):",
        "if np.any(rewards.max(axis=-1) < 0.0):",
        "Nash: a group that values nothing accepted",
    ),
    M(
        "core/_fair.py",
        "return (weights * values).sum(axis=-1) - values.min(axis=-1)",
        "return (weights * values).sum(axis=-1) - values.max(axis=-1)",
        "maxmin duality gap against the largest value",
    ),
    # --- render ------------------------------------------------------------------------------
    M(
        "render/_implementability.py",
        "a, b = int(result.cycle[j]), int(result.cycle[(j + 1) % c])",
        "a, b = int(result.cycle[j]), int(result.cycle[(j - 1) % c])",
        "the cycle table's misreports follow the cycle backwards",
    ),
    M(
        "render/_audit.py",
        'return "[green]✓[/]" if finding.passed else "[bold red]✗[/]"',
        'return "[green]✓[/]" if finding.holds else "[bold red]✗[/]"',
        "audit table marks whether the property holds, not whether the check passed",
    ),
    M(
        "render/_audit.py",
        'f" (+{len(failed) - 1})" if len(failed) > 1 else ""',
        'f" (+{len(failed)})" if len(failed) > 1 else ""',
        "audit cell counts the shown failure among the others",
    ),
    M(
        "render/_audit.py",
        'return "0" if x == 0 else f"{x:+.2g}"',
        'return "0" if x == 0 else f"{x:.2g}"',
        "audit figures lose their sign",
    ),
    M(
        "render/_audit.py",
        'return lines.get(f"groups[{game.group_names.index(finding.group)}]")',
        'return lines.get("expect")',
        "a group's failure points at the expect: block, not the group's line",
    ),
    M(
        "render/_audit.py",
        'table.add_row(escape(game_label(audit.game)) if k == 0 else "", name, *cells)',
        'table.add_row(game_label(audit.game) if k == 0 else "", name, *cells)',
        "a file name is printed into the table as Rich markup",
    ),
    M(
        "render/_implementability.py",
        '"reports": int(result.cycle[(j + 1) % c]),',
        '"reports": int(result.cycle[(j - 1) % c]),',
        "the JSON cycle's misreports follow the cycle backwards",
    ),
    M(
        "render/_compare.py",
        '"★" if m.pareto else "",',
        '"★" if not m.pareto else "",',
        "the compare table stars the rows off the Pareto front",
    ),
    M(
        "render/_compare.py",
        '"✓" if m.ir else "✗",',
        '"✓" if m.ir or m.dsic_by_theorem else "✗",',
        "the compare table's IR mark taken from the theorem",
    ),
    M(
        "render/_sweep.py",
        "if attribute in BETTER_ROWS and bool(result.is_best(attribute)[k]):",
        "if attribute in BETTER_ROWS and bool(result.is_best(attribute)[0]):",
        "the sweep table bolds a row's values by the first point's rank",
    ),
    M(
        "render/_format.py",
        'return f"{count} {noun}" if count == 1 else f"{count} {noun}s"',
        'return f"{count} {noun}" if count <= 1 else f"{count} {noun}s"',
        "'0 game' instead of '0 games'",
    ),
    M(
        "render/_format.py",
        'return "0" if x == 0 else f"{x:+.6g}"',
        'return "0" if x == 0 else f"{x:.6g}"',
        "signed figures lose their sign",
    ),
)

#: Mutants that no test can kill because the program's results do not change; not run.
EQUIVALENT: tuple[tuple[Mutant, str], ...] = (
    (
        M("core/_solver.py", "left = mass >= 1.0", "left = mass > 1.0", "bracket side at T = 1"),
        "at mass == 1.0 exactly, error = 0 <= 4 eps marks the row converged in the same pass, "
        "before the bracket side matters",
    ),
    (
        M(
            "core/_ascent.py",
            "marks = sorted({*range(every, int(steps) + 1, every), int(steps)})",
            "marks = sorted({*range(every, int(steps), every), int(steps)})",
            "checkpoint marks stop before T",
        ),
        "T itself is added to the set explicitly, so the range's last element is already there",
    ),
    (
        M(
            "core/_payments.py",
            "final = _run(mechanism, others_scores, checkpoints=False)[:, -1]",
            "final = _run(mechanism, others_scores, checkpoints=False)[:, 0]",
            "early-stopped run: the first checkpoint",
        ),
        "without checkpoints the run returns the last iterate alone (C = 1): index 0 is index -1",
    ),
    (
        M(
            "core/_deviation.py",
            "rows_per_block = max(1, rows_per_block // (self.others_sizes.shape[1] + 1))",
            "rows_per_block = max(1, rows_per_block)",
            "non-additive blocks n times larger",
        ),
        "block sizes bound memory only; every row is solved alone (the solvers' row sums do not "
        "depend on the batch), so the results are bitwise the same",
    ),
    (
        M(
            "analysis/_runner.py",
            "size = max(1, math.ceil(n_groups / (4 * max(1, parallelism))))",
            "size = max(1, math.ceil(n_groups / (2 * max(1, parallelism))))",
            "fewer, larger parallel tasks",
        ),
        "every group keeps its own seed (group_seed), so how the groups are cut into tasks does "
        "not change any figure (the runner's contract, tested by the workers=1 vs 2 test)",
    ),
    (
        M(
            "analysis/_implementability.py",
            "if sums and min(sums) < 0:",
            "if sums and min(sums) <= 0:",
            "a zero-weight cycle reported as negative",
        ),
        "Bellman-Ford relaxes only strict improvements, so every cycle of the predecessor graph "
        "has negative weight (Cherkassky and Goldberg, 1999); its recomputed sum is 0 only where "
        "rounding swallows a negative sum below the ulp of its edges, which no input reaches "
        "except by a rounding accident",
    ),
    (
        M(
            "analysis/_noisy.py",
            "noisy = Profile(truth.rewards + noise,",
            "noisy = Profile(truth.rewards - noise,",
            "the others' noise negated",
        ),
        "the noise is uniform on [-eps, eps], symmetric: the others' noise -U has the law of U, "
        "so every estimate has the same distribution (figures change bitwise, no statement does)",
    ),
    (
        M(
            "analysis/_least_cost.py",
            "return None if dist is None else np.maximum(-dist[:k], 0.0)",
            "return None if dist is None else -dist[:k]",
            "least payments not clipped at 0",
        ),
        "the virtual sink is one edge of weight 0 from every type, so dist(a -> sink) <= 0 and "
        "-dist >= 0 already: the clip at 0 never moves a value",
    ),
    (
        M(
            "analysis/_least_cost.py",
            "return None if dist is None else np.minimum(dist[:k], caps)",
            "return None if dist is None else dist[:k]",
            "highest payments not capped at V_bb",
        ),
        "the virtual source's edge to b weighs caps[b], so dist(source -> b) <= caps[b] already: "
        "the cap never moves a value",
    ),
    (
        M(
            "render/_format.py",
            'return "0" if x == 0 else f"{abs(x):.1e}"',
            'return "0" if x == 0 else f"{x:.1e}"',
            "residuals printed without abs",
        ),
        "a KKT residual is a maximum of absolute values and a duality gap is clipped at 0: x >= 0",
    ),
)


# ------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------


def staleness(m: Mutant) -> str | None:
    """Why the mutant no longer fits the code (its snippet does not occur exactly once), or None."""
    path = PACKAGE / m.path
    if not path.is_file():
        return f"no file rlhf_mech/{m.path}"
    count = path.read_text(encoding="utf-8").count(m.old)
    return None if count == 1 else f"snippet found {count} times in rlhf_mech/{m.path}: {m.old!r}"


def related_tests(m: Mutant) -> list[str]:
    """The guards first (small files, aimed at the mutants), then the module's own tests."""
    if m.own_tests_only:
        return list(m.tests)
    tests = [g for g in GUARDS if (ROOT / g).is_file()]
    tests += m.tests
    for prefix, files in MODULE_TESTS.items():
        if m.module.startswith(prefix):
            tests += [f for f in files if f not in tests]
    return tests


def scratch_copy(target: Path) -> None:
    """The tree without git, environments and caches (the package is imported from here)."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache"
    )
    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)


@dataclass
class Outcome:
    mutant: Mutant
    killed: bool
    stage: str
    seconds: float
    detail: str = ""


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int | None, str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONSTARTUP", None)
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    lines = (done.stdout + done.stderr).strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return done.returncode, (failed or lines or [""])[0 if failed else -1]


def pytest_cmd(tree: Path, args: list[str], deselect: Sequence[str] = (), first: bool = True) -> list[str]:
    """pytest on the tree (stopping at the first failure when ``first``), the ``deselect``-ed
    tests left out; its own ``--basetemp``: the shared ``/tmp/pytest-of-<user>`` keeps only
    the newest sessions' folders, so concurrent runs would delete each other's ``tmp_path``."""
    base = f"--basetemp={tree.parent / (tree.name + '-pytest')}"
    quiet = ["-x"] * first + ["-q", "-p", "no:cacheprovider", base]
    left_out = [arg for test in deselect for arg in ("--deselect", test)]
    return [sys.executable, "-m", "pytest", *quiet, "-m", "not slow", *left_out, *args]


def baseline_failures(tree: Path, timeout: float) -> tuple[str, ...]:
    """The tests of the quick suite that fail on the unmutated tree (one that needs what the
    scratch tree's environment lacks, such as a login shell): left out of every stage, or they
    would "kill" every mutant that reaches them."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [*pytest_cmd(tree, [], first=False), "-rfE"]
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    lines = done.stdout.splitlines()
    return tuple(line.split()[1] for line in lines if line.startswith(("FAILED ", "ERROR ")))


def audit_cmd() -> list[str]:
    return [sys.executable, "-m", "rlhf_mech", "audit", "games/"]


def run_mutant(
    m: Mutant,
    tree: Path,
    stages: Sequence[str],
    timeout: float,
    audit_rc: int | None,
    deselect: Sequence[str],
) -> Outcome:
    path = tree / "rlhf_mech" / m.path
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace(m.old, m.new, 1), encoding="utf-8")
    start = time.perf_counter()
    try:
        for stage in stages:
            if stage == "related":
                rc, tail = _run(pytest_cmd(tree, related_tests(m), deselect), tree, timeout)
                if rc == 5:
                    raise SystemExit(f"{m.description}: its related tests collect nothing")
                if rc != 0:
                    return Outcome(m, True, stage, time.perf_counter() - start, tail)
            elif stage == "quick":
                rc, tail = _run(pytest_cmd(tree, [], deselect), tree, timeout)
                if rc != 0:
                    return Outcome(m, True, stage, time.perf_counter() - start, tail)
            elif stage == "audit":
                rc, tail = _run(audit_cmd(), tree, timeout)
                if rc != audit_rc:
                    return Outcome(m, True, stage, time.perf_counter() - start, f"exit {rc}, not {audit_rc}")
        return Outcome(m, False, "", time.perf_counter() - start)
    finally:
        path.write_text(original, encoding="utf-8")


def campaign(mutants: Sequence[Mutant], jobs: int, stages: Sequence[str], timeout: float) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="rlhf-mutation-") as tmp:
        trees = []
        for j in range(jobs):
            tree = Path(tmp) / f"tree{j}"
            scratch_copy(tree)
            trees.append(tree)
        guards = [g for g in GUARDS if (ROOT / g).is_file()]
        rc, tail = _run(pytest_cmd(trees[0], guards), trees[0], timeout)
        if rc != 0:  # else every mutant would be "killed" by a test that fails anyway
            raise SystemExit(f"error: the guards fail on the unmutated tree: {tail}")
        deselect = baseline_failures(trees[0], timeout) if "quick" in stages else ()
        if deselect:
            print(f"left out of every stage, failing on the unmutated tree: {' '.join(deselect)}", flush=True)
        audit_rc = None
        if "audit" in stages:
            audit_rc, _ = _run(audit_cmd(), trees[0], timeout)
            print(f"unmutated `rlhf-mech audit games/` exits {audit_rc}", flush=True)
        free = list(trees)
        outcomes: list[Outcome] = []

        def one(k: int, m: Mutant) -> Outcome:
            tree = free.pop()
            try:
                return run_mutant(m, tree, stages, timeout, audit_rc, deselect)
            finally:
                free.append(tree)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one, k, m) for k, m in enumerate(mutants)]
            for k, fut in enumerate(futures):
                o = fut.result()
                verdict = f"killed ({o.stage})" if o.killed else "SURVIVED"
                where = f"{o.mutant.path}: {o.mutant.description}"
                print(f"[{k + 1:3d}/{len(mutants)}] {verdict:16s} {o.seconds:6.1f}s  {where}", flush=True)
                if o.killed:
                    print(f"      by {o.detail[:150]}", flush=True)
                outcomes.append(o)
        return outcomes


def report(outcomes: Sequence[Outcome], stale: Sequence[Mutant]) -> None:
    """The score per module (killed / run; stale mutants apart), every survivor, the result."""
    per_module: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        per_module[o.mutant.path].append(o)
    stale_in: dict[str, int] = defaultdict(int)
    for m in stale:
        stale_in[m.path] += 1
    print("\nscore per module (killed / run)")
    for path in sorted({*per_module, *stale_in}):
        group = per_module[path]
        killed = sum(o.killed for o in group)
        score = f"{100.0 * killed / len(group):5.1f}%" if group else "    -"
        extra = f"  ({stale_in[path]} stale)" if stale_in[path] else ""
        print(f"  {path:34s} {killed:3d} / {len(group):3d}  {score}{extra}")
    survivors = [o for o in outcomes if not o.killed]
    print(f"\nsurvivors ({len(survivors)})")
    for o in survivors:
        print(f"  {o.mutant.path}: {o.mutant.description}\n    - {o.mutant.old!r}\n    + {o.mutant.new!r}")
    if stale:
        print(f"\nstale, not run ({len(stale)}): rewrite them against the new code")
        for m in stale:
            print(f"  {m.path}: {m.description}\n    - {m.old!r}")
    killed = sum(o.killed for o in outcomes)
    total = len(outcomes)
    print(
        f"\nRESULT killed={killed} total={total} score={100.0 * killed / max(total, 1):.1f} "
        f"equivalent_excluded={len(EQUIVALENT)} stale={len(stale)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1, help="mutants at once, each in its own scratch tree")
    parser.add_argument("--only", action="append", default=[], help="modules whose path contains this")
    parser.add_argument("--list", action="store_true", help="print the mutants and the equivalent ones")
    parser.add_argument(
        "--stages", default="related,quick,audit", help="comma-separated, in order: related, quick, audit"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per stage of one mutant")
    parser.add_argument("--select", default="", help="comma-separated mutant numbers (as --list shows them)")
    parser.add_argument(
        "--tests",
        default="",
        help="comma-separated test files instead of the related ones (recheck survivors)",
    )
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages or any(s not in ("related", "quick", "audit") for s in stages):
        parser.error("--stages takes related, quick and audit")
    mutants = [m for m in MUTANTS if not args.only or any(o in m.path for o in args.only)]
    if args.select:
        mutants = [mutants[int(k)] for k in args.select.split(",")]
    if args.tests:
        mutants = [replace(m, tests=tuple(args.tests.split(",")), own_tests_only=True) for m in mutants]
    equivalent = [m for m, _ in EQUIVALENT]
    stale = {id(m): why for m in [*mutants, *equivalent] if (why := staleness(m))}
    if args.list:
        for k, m in enumerate(mutants):
            mark = " (STALE)" if id(m) in stale else ""
            print(f"{k:3d} {m.path}: {m.description}{mark}\n    tests: {' '.join(related_tests(m))}")
        print(f"\nequivalent, not run ({len(EQUIVALENT)}):")
        for m, why in EQUIVALENT:
            mark = " (STALE)" if id(m) in stale else ""
            print(f"    {m.path}: {m.description}{mark}: {why}")
        print(f"\n{len(mutants)} mutants, {sum(id(m) in stale for m in mutants)} stale")
        return 0
    if not mutants:
        parser.error("--only matches no mutant")
    for m in [*mutants, *equivalent]:
        if id(m) in stale:
            print(f"STALE {m.path}: {m.description}: {stale[id(m)]}", flush=True)
    live = [m for m in mutants if id(m) not in stale]
    start = time.perf_counter()
    outcomes = campaign(live, max(1, args.jobs), stages, args.timeout) if live else []
    report(outcomes, [m for m in mutants if id(m) in stale])
    print(f"({time.perf_counter() - start:.0f} s, {args.jobs} job(s), stages {','.join(stages)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
