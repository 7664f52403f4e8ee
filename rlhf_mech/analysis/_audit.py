r"""Incentive audits of a game (issue #4): DSIC, IR, payments >= 0, the necessity of payment.

For every group ``i`` the audit asks the questions of sections 3-4 about the game's mechanism,
with the other groups reporting truthfully:

* :func:`is_dsic` (Definition 3.2): the largest utility gain over truthful reporting that a
  best-response search (:func:`~rlhf_mech.misreport_search.search_misreports`) finds under
  the game's payment rule;
* :func:`is_ir` (Definition 3.3): the utility of truthful reporting is ``>= 0``;
* :func:`has_nonnegative_payments` (Proposition 4.4): ``p_i >= 0`` at the truthful profile and
  at every report the search evaluated;
* :func:`is_profitable_without_payment` (Theorems 4.2 and 4.3 / B.2): the same search with
  payment ``none``, beside what the theorems predict
  (:func:`~rlhf_mech.misreport_search.predict_no_payment_gain`);
* :func:`is_approximately_dsic` (Theorem 4.12, with ``noise``): the expected gain of the best
  misreport found when the mechanism sees noisy reward models stays below ``2 w_i eps``;
* the game file's ``expect:`` block (:func:`range_findings`, :func:`existential_findings`).

Every check returns a :class:`Finding` that states its tolerance. The functions are pure:
files are read and written at the edge (:mod:`rlhf_mech.files`), output is rendered by
:mod:`rlhf_mech.render`. :func:`run_audits` spreads the per-group work over joblib processes
(or a dask cluster whose client the caller connects) with a seed per task, so that the result
does not depend on the number of workers.

The search for profitable misreports (the space of valid reports, the objective, the local
optimiser, Theorems 4.2 / B.2 and 4.12) is :mod:`rlhf_mech.analysis._search`.
"""

from __future__ import annotations

import math
import signal
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rlhf_mech.analysis._noisy import NoisyResult, Prediction, noisy_search, predict_no_payment_gain
from rlhf_mech.analysis._objective import SearchResult
from rlhf_mech.analysis._others import OthersSpec, others_profiles
from rlhf_mech.analysis._search import evaluations_for, search_misreports
from rlhf_mech.analysis._space import ReportSpace, size_bound
from rlhf_mech.core import AFFINE_MAXIMIZER, NONE, Game, GameSolution, Profile, PromptGame, outcome, solve

Array = np.ndarray

#: Default search effort: report evaluations per group and payment rule.
DEFAULT_BUDGET = 200
#: Default tolerance of every inequality.
DEFAULT_TOL = 1e-9
#: Default number of noise samples for Theorem 4.12.
DEFAULT_SAMPLES = 64

#: Check name -> what it checks, with the paper's reference.
CHECKS: dict[str, str] = {
    "dsic": "DSIC (Definition 3.2)",
    "ir": "IR (Definition 3.3)",
    "nonnegative_payments": "payments >= 0 (Proposition 4.4)",
    "no_payment": "gain without payment (Theorems 4.2, 4.3)",
    "noisy_dsic": "approximate DSIC under noise (Theorem 4.12)",
    "payment_gap": "gap to the exact p^AFF (Theorem 4.11, Corollary 4.13)",
    "expect": "the file's expect: block",
}


# --------------------------------------------------------------------------------------------
# Options and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditOptions:
    """How hard and how strictly to audit.

    Attributes
    ----------
    budget : report evaluations per group and payment rule (search effort), at least 10;
        games with more than 10^4 outcomes get fewer (:func:`~rlhf_mech.misreport_search.evaluations_for`).
    tol : tolerance of every inequality (``gain <= tol``, ``u >= -tol``, ...).
    noise : ``eps`` of Theorem 4.12, or ``None`` to skip the noisy check.
    samples : noise samples per evaluation of the noisy check.
    others : the other groups' report profiles each group's best response is searched against
        (:class:`~rlhf_mech.analysis.OthersSpec`: the file's profile by default).
    """

    budget: int = DEFAULT_BUDGET
    tol: float = DEFAULT_TOL
    noise: float | None = None
    samples: int = DEFAULT_SAMPLES
    others: OthersSpec = field(default_factory=OthersSpec)

    def __post_init__(self) -> None:
        if int(self.budget) != self.budget or self.budget < 10:
            raise ValueError(f"`budget` must be an integer >= 10, got {self.budget!r}")
        if not (np.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"`tol` must be finite and >= 0, got {self.tol!r}")
        if self.noise is not None and not (np.isfinite(self.noise) and self.noise > 0):
            raise ValueError(f"`noise` must be positive and finite, got {self.noise!r}")
        if int(self.samples) != self.samples or self.samples < 1:
            raise ValueError(f"`samples` must be a positive integer, got {self.samples!r}")


@dataclass(frozen=True)
class GroupAudit:
    """The per-group work of an audit (one task of :func:`run_audits`).

    Attributes
    ----------
    index, name, size : the group.
    dsic : search under the game's payment rule, against the others' profile where it found
        the largest gain (the group's ``epsilon_ic``).
    no_payment : search under payment ``none`` at the first profile (the same object when
        that is the game's rule).
    noisy : Theorem 4.12's check, or ``None`` (no ``noise``, or the rule is not DSIC).
    prediction : Theorems 4.2 / B.2 at the truthful profile.
    profiles : the others' report profiles searched against, in order.
    profile_gains : (len(profiles),) the largest gain found against each.
    worst_profile : the index of the profile of ``dsic``.
    """

    index: int
    name: str
    size: float
    dsic: SearchResult
    no_payment: SearchResult
    noisy: NoisyResult | None
    prediction: Prediction
    profiles: tuple[Profile, ...] = ()
    profile_gains: tuple[float, ...] = ()
    worst_profile: int = 0

    @property
    def epsilon_ic(self) -> float:
        """The largest gain over truth found against any of the others' profiles: the
        mechanism is ``epsilon``-IC for this group at most at this ``epsilon`` (a lower bound)."""
        return self.dsic.best.gain


@dataclass(frozen=True)
class Finding:
    """The answer to one question of the audit, for one group or the whole game.

    Attributes
    ----------
    check : a key of :data:`CHECKS`.
    group : the group's name; ``""`` for the whole game.
    value : the figure checked (a gain, a utility, a payment, a quantity of ``expect:``).
    holds : whether the property in ``statement`` holds for ``value``.
    expected : the verdict required (``None``: reported, not required).
    statement : the property, with its tolerance (e.g. ``max gain <= 1e-09``).
    detail : context in words (search effort, the theorem's prediction, ...).
    quantity : for ``expect`` findings, the quantity (``utility``, ``dsic``, ...).
    """

    check: str
    group: str
    value: float
    holds: bool
    expected: bool | None
    statement: str
    detail: str = ""
    quantity: str = ""

    @property
    def passed(self) -> bool:
        return self.expected is None or self.holds == self.expected


@dataclass(frozen=True)
class Health:
    """How well solved the figures of an audit are.

    Attributes
    ----------
    max_kkt_residual : the largest relative KKT residual of the training solves behind the
        reported figures: the truthful and reported profiles and every group's best
        misreports (each replayed as a profile).
    stalled : solves that did not converge: the searches' evaluations (left out of their
        results) plus the profiles and replays.
    """

    max_kkt_residual: float
    stalled: int

    @property
    def healthy(self) -> bool:
        return self.stalled == 0


@dataclass(frozen=True)
class GameAudit:
    """Everything the audit found in one game.

    Attributes
    ----------
    game : the game audited.
    options : the options used; seed : the seed the per-group seeds came from.
    size_bound : ``W``, the largest size searched; size_bound_source : where it came from.
    reward_bound : ``R`` for ``none``-normalised games, the largest total preference weight
        for candidate-model games, else ``None`` (see :class:`~rlhf_mech.analysis.ReportSpace`).
    truthful : the mechanism on the truthful (and the file's reported) profile.
    groups : per-group results, in file order.
    findings : every finding, per group in file order, then the game-level ones.
    notes : legal but noteworthy facts (no ``max_size``, solver warnings, ...).
    health : the numerical health of what the audit reports (:class:`Health`).
    """

    game: Game
    options: AuditOptions
    seed: int
    size_bound: float
    size_bound_source: str
    reward_bound: float | None
    truthful: GameSolution
    groups: tuple[GroupAudit, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default=())
    health: Health | None = None

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.findings)

    @property
    def epsilon_ic(self) -> tuple[float, str]:
        """The largest gain over truth any group's search found under the game's payment rule
        (over every others' profile searched), and that group: a lower bound on the
        mechanism's ``epsilon`` of incentive compatibility."""
        worst = max(self.groups, key=lambda g: g.epsilon_ic)
        return worst.epsilon_ic, worst.name

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.passed)


# --------------------------------------------------------------------------------------------
# Per-group task, checks, assembly
# --------------------------------------------------------------------------------------------


def audited_games(game: Game | PromptGame) -> tuple[Game, ...]:
    """The games an audit checks for a loaded game: the game itself, or, for a game of many
    prompts, each prompt's game.

    A game of many prompts under a separable rule (:mod:`rlhf_mech.core._prompts`) has a
    utility ``u_i = sum_x q_x u_{i,x}`` whose every term depends on the group's report on
    prompt ``x`` and on its one reported size. So it is DSIC, IR and charges ``p >= 0``
    wherever every prompt's game is (each checked with the size free, as in any game); and a
    profitable misreport on one prompt at the true size, truthful on the others, gains
    ``q_x`` times as much in the whole game. Each prompt's game carries a note saying so.
    """
    if not isinstance(game, PromptGame):
        return (game,)
    P = game.n_prompts
    return tuple(
        replace(
            g,
            lines=game.lines,
            digest=game.digest,
            notes=(
                *game.notes,
                f"prompt {x} of {P} (weight {game.weights[x]:.6g}) of a game of many prompts, audited "
                "prompt by prompt: the whole game is DSIC, IR and pays >= 0 where every prompt is; a "
                "gain at the true size here is a gain of weight x gain in the whole game",
            ),
        )
        for x, g in enumerate(game.games)
    )


def group_seed(seed: int, source: str | None, name: str, i: int) -> np.random.SeedSequence:
    """The seed of group ``i``'s task: ``SeedSequence(seed)`` spawned by a key of the game's
    file name (its base name, or the game's name) and then by the group's index.

    The key makes a game's figures independent of which other files are audited with it and
    of the number of workers.
    """
    key = Path(source).name if source else name
    file_seq = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(key.encode("utf-8")),))
    return file_seq.spawn(i + 1)[i]


def audit_group(game: Game, i: int, options: AuditOptions, seed: np.random.SeedSequence) -> GroupAudit:
    """All searches of group ``i``: one task of :func:`run_audits` (pure, deterministic in ``seed``).

    Each search gets :func:`evaluations_for` ``(options.budget, m)`` report evaluations.
    BLAS runs on one thread inside the task: a multi-threaded matrix-vector product may sum
    in another order, and the figures must not depend on how many workers share the CPUs.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _audit_group(game, i, options, seed)


def _audit_group(game: Game, i: int, options: AuditOptions, seed: np.random.SeedSequence) -> GroupAudit:
    dsic_seed, none_seed, noise_seed, others_seed = seed.spawn(4)
    space = ReportSpace.of(game)
    budget = evaluations_for(options.budget, game.n_outcomes)
    rule = game.mechanism.payment_rule
    profiles = others_profiles(game, i, options.others, np.random.default_rng(others_seed))
    searches = [
        search_misreports(game, i, rule, budget, np.random.default_rng(s), space, others=profile)
        for s, profile in zip(dsic_seed.spawn(len(profiles)), profiles, strict=True)
    ]
    gains = tuple(float(r.best.gain) for r in searches)
    worst = int(np.argmax(gains))
    dsic = searches[worst]
    if not rule.charges:
        no_payment = searches[0]
    else:
        no_payment = search_misreports(
            game, i, NONE, budget, np.random.default_rng(none_seed), space, others=profiles[0]
        )
    noisy = None
    # Theorem 4.12 bounds the gain under a DSIC payment that sees noisy reward models
    if options.noise is not None and rule.dsic:
        noisy = noisy_search(
            game,
            i,
            options.noise,
            options.samples,
            noise_seed,
            max(12, budget // 8),  # each report is evaluated on every noise sample
            seeds=(searches[0].best_at_true_size.theta,),
        )
    return GroupAudit(
        index=i,
        name=game.group_names[i],
        size=float(game.truth.sizes[i]),
        dsic=dsic,
        no_payment=no_payment,
        noisy=noisy,
        prediction=predict_no_payment_gain(game, i),
        profiles=tuple(profiles),
        profile_gains=gains,
        worst_profile=worst,
    )


def _tol_text(tol: float) -> str:
    return f"{tol:.0e}" if tol else "0"


def is_dsic(group: GroupAudit, tol: float, expected: bool | None = True) -> Finding:
    """Definition 3.2 for one group: the largest gain found is at most ``tol``."""
    result = group.dsic
    return Finding(
        check="dsic",
        group=group.name,
        value=result.best.gain,
        holds=result.best.gain <= tol,
        expected=expected,
        statement=f"max gain <= {_tol_text(tol)}",
        detail=f"{result.evaluations} reports under {result.payment_rule}, best by {result.best.found_by}",
    )


def is_ir(group: str, utility: float, tol: float, expected: bool | None = True) -> Finding:
    """Definition 3.3 for one group: the truthful utility is at least ``-tol``."""
    return Finding(
        check="ir",
        group=group,
        value=utility,
        holds=utility >= -tol,
        expected=expected,
        statement=f"truthful utility >= -{_tol_text(tol)}",
    )


def has_nonnegative_payments(
    group: str, payment: float, searched: int, tol: float, expected: bool | None = True
) -> Finding:
    """Proposition 4.4 for one group: the smallest payment seen is at least ``-tol``."""
    return Finding(
        check="nonnegative_payments",
        group=group,
        value=payment,
        holds=payment >= -tol,
        expected=expected,
        statement=f"min payment >= -{_tol_text(tol)}",
        detail=f"truthful profile and {searched} searched reports",
    )


def is_profitable_without_payment(group: GroupAudit, tol: float, expected: bool | None = None) -> Finding:
    """Theorems 4.2 / 4.3: the search under payment ``none`` finds a gain above ``tol``."""
    result, pred = group.no_payment, group.prediction
    at_size = result.best_at_true_size
    verdict = f"Theorem {pred.theorem} predicts a gain ({pred.reason})" if pred.predicted else pred.reason
    return Finding(
        check="no_payment",
        group=group.name,
        value=result.best.gain,
        holds=result.best.gain > tol,
        expected=expected,
        statement=f"gain > {_tol_text(tol)}",
        detail=f"{verdict}; best at the true size {at_size.gain:+.3g}",
    )


def payment_gap(group: str, payment: float, exact: float, tol: float) -> Finding:
    """How far a payment that approximates eq. (1) (section 4.4) is from ``p^AFF`` at the
    truthful profile; reported, not required. By Theorem 4.11 a DSIC, non-negative payment is
    at least ``p^AFF``; Corollary 4.13 says it must come close to it somewhere."""
    gap = payment - exact
    return Finding(
        check="payment_gap",
        group=group,
        value=gap,
        holds=abs(gap) <= tol,
        expected=None,
        statement=f"|p - p^AFF| <= {_tol_text(tol)}",
        detail=f"p = {payment:.6g}, p^AFF = {exact:.6g} at the truthful profile",
    )


def is_approximately_dsic(group: GroupAudit, tol: float) -> Finding | None:
    """Theorem 4.12: the measured expected gain under noise is at most ``2 w_i eps + tol``."""
    noisy = group.noisy
    if noisy is None:
        return None
    return Finding(
        check="noisy_dsic",
        group=group.name,
        value=noisy.gain,
        holds=noisy.gain <= noisy.bound + tol,
        expected=True,
        statement=f"E[gain] <= 2 w_i eps = {noisy.bound:.3g} (+{_tol_text(tol)})",
        detail=f"eps {noisy.eps:g}, {noisy.samples} samples, stderr {noisy.stderr:.2g}, "
        f"max per-sample gain {noisy.max_sample_gain:+.3g}",
    )


_QUANTITY_ATTR = {
    "utility": "utilities",
    "valuation": "valuations",
    "group_valuation": "group_valuations",
    "payment": "payments",
}


def range_findings(game: Game, solution: GameSolution, tol: float) -> list[Finding]:
    """The value ranges of ``expect:`` on the profile it names (``truthful`` or ``reported``)."""
    expect = game.expect
    if expect is None:
        return []
    out: list[Finding] = []
    profile = solution.truthful if expect.profile == "truthful" else solution.reported
    for quantity, bounds in expect.ranges.items():
        for group, (lo, hi) in bounds.items():
            if group:
                value = float(getattr(profile, _QUANTITY_ATTR[quantity])[game.group_names.index(group)])
            else:
                value = float(getattr(profile, quantity))
            out.append(
                Finding(
                    check="expect",
                    group=group,
                    value=value,
                    holds=bool(lo - tol <= value <= hi + tol),
                    expected=True,
                    statement=f"{quantity} in [{lo:g}, {hi:g}] (±{_tol_text(tol)})",
                    detail=f"{expect.profile} profile",
                    quantity=quantity,
                )
            )
    return out


#: expect: key -> (check, the value it must take for a game-level "some group" finding,
#: what the finding asks, whether the worst group has the largest value).
_EXISTENTIAL: dict[str, tuple[str, bool, str, bool]] = {
    "dsic": ("dsic", False, "some group has a profitable misreport", True),
    "ir": ("ir", False, "some group has a negative truthful utility", False),
    "nonnegative_payments": ("nonnegative_payments", False, "some group pays less than 0", False),
    "profitable_without_payment": ("no_payment", True, "some group gains without payment", True),
}


def existential_findings(game: Game, per_group: dict[str, list[Finding]]) -> list[Finding]:
    """Game-level findings for ``dsic: false``, ``ir: false``, ``nonnegative_payments: false``
    and ``profitable_without_payment: true``: some group must show it."""
    expect = game.expect
    if expect is None:
        return []
    out: list[Finding] = []
    for key, (check, trigger, question, largest) in _EXISTENTIAL.items():
        if getattr(expect, key) is not trigger or not per_group.get(check):
            continue
        findings = per_group[check]
        # the per-group property is "DSIC holds" etc.; for no_payment it is "profitable"
        hits = (
            [f for f in findings if f.holds]
            if check == "no_payment"
            else [f for f in findings if not f.holds]
        )
        worst = max(findings, key=lambda f: f.value if largest else -f.value)
        out.append(
            Finding(
                check="expect",
                group="",
                value=worst.value,
                holds=bool(hits),
                expected=True,
                statement=f"{key}: {str(trigger).lower()} ({question})",
                detail=f"shown by {', '.join(f.group for f in hits)}" if hits else "shown by no group",
                quantity=key,
            )
        )
    return out


def audit_game(
    game: Game, options: AuditOptions, seed: int = 0, groups: Sequence[GroupAudit] | None = None
) -> GameAudit:
    """Audit one game: every group's searches (or the ``groups`` given) and every check.

    Parameters
    ----------
    game : the game; options : see :class:`AuditOptions`; seed : see :func:`group_seed`.
    groups : the per-group results when computed elsewhere (:func:`run_audits`).

    Notes
    -----
    Default expectations: DSIC, IR and ``p >= 0`` must hold for every group; the gain
    without payment is reported, not required. The file's ``expect:`` block overrides:
    ``dsic: true`` (etc.) is checked per group, ``dsic: false`` as "some group violates";
    ``profitable_without_payment: false`` is checked per group, ``true`` as "some group".
    """
    if groups is None:
        groups = [
            audit_group(game, i, options, group_seed(seed, game.source, game.name, i))
            for i in range(game.n_groups)
        ]
    tol = options.tol
    expect = game.expect
    solution = solve(game)
    truthful = solution.truthful

    def per_group_expected(value: bool | None, default: bool | None) -> bool | None:
        if value is None:
            return default
        return True if value else None  # "false" becomes a game-level existential finding

    dsic_exp = per_group_expected(expect.dsic if expect else None, True)
    ir_exp = per_group_expected(expect.ir if expect else None, True)
    pay_exp = per_group_expected(expect.nonnegative_payments if expect else None, True)
    profit = expect.profitable_without_payment if expect else None
    profit_exp = False if profit is False else None

    findings: list[Finding] = []
    per_group: dict[str, list[Finding]] = {}
    ranges = range_findings(game, solution, tol)
    rule = game.mechanism.payment_rule
    # a payment that approximates eq. (1): how far it is from the exact one
    exact = (
        solve(game, AFFINE_MAXIMIZER).truthful.payments if rule.charges and rule != AFFINE_MAXIMIZER else None
    )
    for g in groups:
        i = g.index
        payment = float(min(truthful.payments[i], solution.reported.payments[i], g.dsic.min_payment))
        batch = [
            is_dsic(g, tol, dsic_exp),
            is_ir(g.name, float(truthful.utilities[i]), tol, ir_exp),
            has_nonnegative_payments(g.name, payment, g.dsic.priced, tol, pay_exp),
            is_profitable_without_payment(g, tol, profit_exp),
        ]
        noisy = is_approximately_dsic(g, tol)
        if noisy is not None:
            batch.append(noisy)
        if exact is not None:
            batch.append(payment_gap(g.name, float(truthful.payments[i]), float(exact[i]), tol))
        for f in batch:
            per_group.setdefault(f.check, []).append(f)
        findings.extend(batch)
        findings.extend(f for f in ranges if f.group == g.name)
    findings.extend(f for f in ranges if not f.group)
    findings.extend(existential_findings(game, per_group))

    health = _health(game, solution, groups)
    bound, source = size_bound(game)
    notes: list[str] = []
    if game.max_size is None:
        notes.append(f"{source}: sizes searched in [1, {bound:g}]")
    if options.others.kind != "file":
        notes.append(
            f"best responses searched against {options.others.label} profile(s) of the others' reports"
        )
    space = ReportSpace.of(game)
    if space.note:
        notes.append(space.note)
    profiles = {"truthful": truthful, "reported": solution.reported}
    for label, profile in profiles.items():
        if not profile.converged and (label == "truthful" or profile is not truthful):
            notes.append(f"the {label} profile did not converge: {profile.status_message}")
    notes.extend(game.notes)
    return GameAudit(
        game=game,
        options=options,
        seed=seed,
        size_bound=bound,
        size_bound_source=source,
        reward_bound=space.bound if space.bounded else None,
        truthful=solution,
        groups=tuple(groups),
        findings=tuple(findings),
        notes=tuple(notes),
        health=health,
    )


def _health(game: Game, solution: GameSolution, groups: Sequence[GroupAudit]) -> Health:
    """:class:`Health`: the KKT residuals of the profiles and of every group's best
    misreports, replayed against the profile they were found at."""
    mechanism = game.mechanism.with_payment_rule(NONE)  # the training solve alone
    residuals = [solution.truthful.kkt_residual, solution.reported.kkt_residual]
    stalled = sum(
        not o.converged for o in {id(o): o for o in (solution.truthful, solution.reported)}.values()
    )
    for g in groups:
        stalled += g.dsic.stalled + (g.no_payment.stalled if g.no_payment is not g.dsic else 0)
        others = g.profiles[g.worst_profile] if g.profiles else game.truth
        for report in (g.dsic.best, g.dsic.best_at_true_size):
            replay = others.with_report(g.index, report.reward, report.size, report.preference)
            result = outcome(mechanism, game.truth, replay)
            residuals.append(result.kkt_residual)
            stalled += not result.converged
    return Health(max_kkt_residual=float(max(residuals)), stalled=int(stalled))


# --------------------------------------------------------------------------------------------
# Many games, in parallel
# --------------------------------------------------------------------------------------------


def audit_groups(game: Game, indices: Sequence[int], options: AuditOptions, seed: int) -> list[GroupAudit]:
    """:func:`audit_group` for several groups of one game: one task of :func:`run_audits`."""
    return [audit_group(game, i, options, group_seed(seed, game.source, game.name, i)) for i in indices]


def _chunks(n_groups: int, parallelism: int) -> list[tuple[int, ...]]:
    """Split a game's groups into at most ``4 x parallelism`` consecutive tasks.

    A task ships the whole game to its worker, so a large game is cut into a few tasks
    rather than one per group; every group keeps its own seed, so the cut changes nothing
    in the result.
    """
    size = max(1, math.ceil(n_groups / (4 * max(1, parallelism))))
    return [tuple(range(start, min(n_groups, start + size))) for start in range(0, n_groups, size)]


class TimeLimitExceeded(Exception):
    """A file's audit ran past its time limit (:func:`time_limit`)."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block once it has run ``seconds`` (``None``: no limit).

    A real-time alarm (``SIGALRM``): it interrupts Python code between two operations, so a
    block stops within one numpy call of the limit. Where no alarm can be set (not the main
    thread, as in a dask worker; no ``setitimer``) the block runs without a limit.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds is None or not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"stopped after the time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def failure_message(exc: BaseException) -> str:
    """What went wrong in one file's audit, in one line (the exception's type and first line)."""
    if isinstance(exc, TimeLimitExceeded):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"internal error: {type(exc).__name__}{': ' + first[:200] if first else ''}"


@dataclass(frozen=True)
class _TaskFailure:
    """A task of :func:`run_audits` that raised or ran out of time (isolated runs only)."""

    message: str


def _isolated_groups(
    game: Game, indices: Sequence[int], options: AuditOptions, seed: int, limit: float | None
) -> list[GroupAudit] | _TaskFailure:
    """:func:`audit_groups` under ``limit``; any exception becomes the file's failure."""
    try:
        with time_limit(limit):
            return audit_groups(game, indices, options, seed)
    except Exception as exc:  # one file's failure, whatever it is, must not stop the others
        return _TaskFailure(failure_message(exc))


def run_audits(
    games: Sequence[Game],
    options: AuditOptions,
    *,
    seed: int = 0,
    workers: int = 1,
    dask_client: Any | None = None,
    on_task_done: Callable[[], None] | None = None,
    on_failure: Callable[[int, str], None] | None = None,
    time_limit_s: float | None = None,
) -> list[GameAudit]:
    """Audit many games; the per-group work runs in parallel.

    Parameters
    ----------
    games : the games, in output order; options : see :class:`AuditOptions`.
    seed : the seed every group's seed comes from (:func:`group_seed`).
    workers : joblib processes; 1 runs in this process.
    dask_client : a connected ``dask.distributed.Client``: the work then runs on its cluster
        through joblib's dask backend (``workers`` is ignored). The caller connects and
        closes it.
    on_task_done : called once per group when its work is done, in order (a progress bar).
    on_failure : isolate the games from each other: a game whose work raises (any exception)
        or runs past ``time_limit_s`` is left out of the result and reported as
        ``on_failure(index of the game, message)``; the others are audited as usual. Without
        it, an exception propagates.
    time_limit_s : with ``on_failure``, the most seconds one task of a game may run (a chunk
        of its groups in one process, and the game's final assembly; :func:`time_limit`).

    Returns
    -------
    list of GameAudit, one per game (that did not fail), in order. The result is the same for
    every ``workers`` and backend: each group has its own seed and results are assembled in order.
    """
    per_game: list[list[GroupAudit]] = [[] for _ in games]
    failed: dict[int, str] = {}
    limit = time_limit_s if on_failure is not None else None

    def work(g: int, chunk: Sequence[int]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if on_failure is None:
            return audit_groups, (games[g], chunk, options, seed)
        return _isolated_groups, (games[g], chunk, options, seed, limit)

    def collect(g: int, chunk: Sequence[int], done: list[GroupAudit] | _TaskFailure) -> None:
        if isinstance(done, _TaskFailure):
            failed.setdefault(g, done.message)
        else:
            per_game[g].extend(done)
        for _ in chunk:
            if on_task_done:
                on_task_done()

    client = dask_client
    if client is None and workers == 1:
        for g, game in enumerate(games):
            for i in range(game.n_groups):
                call, args = work(g, (i,))
                collect(g, (i,), call(*args))
    else:
        from joblib import Parallel, delayed, parallel_config

        parallelism = workers if client is None else max(1, sum(client.nthreads().values()))
        tasks = [(g, chunk) for g, game in enumerate(games) for chunk in _chunks(game.n_groups, parallelism)]
        calls = (delayed(call)(*args) for call, args in (work(g, chunk) for g, chunk in tasks))
        if client is None:
            run = Parallel(n_jobs=workers, return_as="generator")
            for (g, chunk), done in zip(tasks, run(calls), strict=True):
                collect(g, chunk, done)
        else:
            with parallel_config(backend="dask", client=client, wait_for_workers_timeout=30):
                run = Parallel(n_jobs=-1, return_as="generator")
                for (g, chunk), done in zip(tasks, run(calls), strict=True):
                    collect(g, chunk, done)
    audits: list[GameAudit] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for g, game in enumerate(games):
            if g in failed:
                continue
            if on_failure is None:
                audits.append(audit_game(game, options, seed, per_game[g]))
                continue
            try:
                with time_limit(limit):
                    audits.append(audit_game(game, options, seed, per_game[g]))
            except Exception as exc:  # as in _isolated_groups
                failed[g] = failure_message(exc)
    if on_failure is not None:
        for g in sorted(failed):
            on_failure(g, failed[g])
    return audits


@dataclass(frozen=True)
class AuditSummary:
    """Counts over an audit run, and its exit code (0 clean, 1 violations, 2 invalid input).

    Attributes
    ----------
    games, groups : games and groups audited; invalid : files that could not be loaded.
    passed, failed : findings that passed and failed.
    failed_games : games with at least one failed finding.
    """

    games: int
    groups: int
    invalid: int
    passed: int
    failed: int
    failed_games: int

    @property
    def exit_code(self) -> int:
        if self.invalid:
            return 2
        return 1 if self.failed else 0


def summarise(audits: Sequence[GameAudit], invalid: int = 0) -> AuditSummary:
    """Count the findings of ``audits``; ``invalid`` is the number of files that failed to load."""
    findings = [f for a in audits for f in a.findings]
    return AuditSummary(
        games=len(audits),
        groups=sum(a.game.n_groups for a in audits),
        invalid=invalid,
        passed=sum(f.passed for f in findings),
        failed=sum(not f.passed for f in findings),
        failed_games=sum(not a.passed for a in audits),
    )
