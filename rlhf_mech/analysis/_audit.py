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

Every check is a record of :mod:`~rlhf_mech.analysis._checks` and returns a :class:`Finding`
that states its tolerance. The functions are pure: files are read and written at the edge
(:mod:`rlhf_mech.files`), output is rendered by :mod:`rlhf_mech.render`. Many games run in
parallel through :mod:`~rlhf_mech.analysis._runner`.

The search for profitable misreports (the space of valid reports, the objective, the local
optimiser, Theorems 4.2 / B.2 and 4.12) is :mod:`rlhf_mech.analysis._search`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from rlhf_mech.analysis._checks import (
    Finding,
    existential_findings,
    has_nonnegative_payments,
    is_approximately_dsic,
    is_dsic,
    is_ir,
    is_profitable_without_payment,
    payment_gap,
    range_findings,
)
from rlhf_mech.analysis._noisy import NoisyResult, Prediction, noisy_search, predict_no_payment_gain
from rlhf_mech.analysis._objective import SearchResult
from rlhf_mech.analysis._others import OthersSpec, others_profiles
from rlhf_mech.analysis._prompt_search import (
    PromptPart,
    finish_prompt_search,
    prompt_chunks,
    search_prompt_chunk,
)
from rlhf_mech.analysis._search import evaluations_for, search_misreports
from rlhf_mech.analysis._space import ReportSpace, size_bound
from rlhf_mech.core import (
    AFFINE_MAXIMIZER,
    NONE,
    Game,
    GameSolution,
    PaymentRule,
    Profile,
    PromptGame,
    PromptSolution,
    outcome,
    solve,
)

Array = np.ndarray

#: Default search effort: report evaluations per group and payment rule.
DEFAULT_BUDGET = 200
#: Default tolerance of every inequality.
DEFAULT_TOL = 1e-9
#: Default number of noise samples for Theorem 4.12.
DEFAULT_SAMPLES = 64

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
class Health:
    """How well solved the figures of an audit are.

    Attributes
    ----------
    max_kkt_residual : the largest relative KKT residual of the training solves behind the
        reported figures: the truthful and reported profiles and every group's best
        misreports (each replayed as a profile).
    stalled : solves that did not converge: the searches' evaluations (left out of their
        results) plus the profiles and replays.
    replay_error : for a game of many prompts, the largest difference between a best joint
        misreport's gain replayed through the whole game and the sum of its prompts' gains
        (rounding: ~1e-15); 0 for a game of one prompt.
    """

    max_kkt_residual: float
    stalled: int
    replay_error: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.stalled == 0


@dataclass(frozen=True)
class GameAudit:
    """Everything the audit found in one game.

    Attributes
    ----------
    game : the game audited (of one prompt, or of many: one whole-game audit).
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

    game: Game | PromptGame
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


def group_seed(seed: int, digest: str | None, name: str, i: int) -> np.random.SeedSequence:
    """The seed of group ``i``'s task: ``SeedSequence(seed)`` spawned by a key of the game's
    content (the SHA-256 of its file's bytes, or the game's name for a game built in code)
    and then by the group's index.

    The key makes a game's figures independent of which other files are audited with it, of
    the number of workers, and of the file's name or path (a game read from stdin gives the
    figures of the same file on disk).
    """
    key = digest if digest else name
    file_seq = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(key.encode("utf-8")),))
    return file_seq.spawn(i + 1)[i]


def audit_group(
    game: Game | PromptGame, i: int, options: AuditOptions, seed: np.random.SeedSequence
) -> GroupAudit:
    """All searches of group ``i``: one task of :func:`run_audits` (pure, deterministic in ``seed``).

    Each search gets :func:`evaluations_for` ``(options.budget, m)`` report evaluations.
    BLAS runs on one thread inside the task: a multi-threaded matrix-vector product may sum
    in another order, and the figures must not depend on how many workers share the CPUs.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        if isinstance(game, PromptGame):
            return _audit_prompts_group(game, i, options, seed)
        return _audit_group(game, i, options, seed)


def _audit_prompts_group(
    game: PromptGame, i: int, options: AuditOptions, seed: np.random.SeedSequence
) -> GroupAudit:
    """Group ``i`` of a game of many prompts: the best joint misreport over every prompt, under
    the game's payment rule and without payment (:func:`~rlhf_mech.analysis.search_prompts`).
    The others report as in the file; the noise check and the theorems' prediction are about
    one prompt, and are not made.

    A game of more than :data:`~rlhf_mech.analysis._prompt_search.PROMPT_CHUNK` prompts is
    searched chunk by chunk (:func:`audit_prompt_chunk`, the tasks :func:`run_audits` spreads),
    chunk ``c`` drawing from its own generator (:func:`_chunk_rng`); a game of one chunk draws
    every search and its refinement from one generator."""
    seeds = seed.spawn(2)
    chunks = prompt_chunks(game.n_prompts)
    if len(chunks) == 1:
        rngs = [np.random.default_rng(s) for s in seeds]
        return _prompts_group_audit(
            game, i, options, rngs, [_chunk_searches(game, i, options, rngs, chunks[0])]
        )
    parts = [
        _chunk_searches(game, i, options, [_chunk_rng(s, c) for s in seeds], chunk)
        for c, chunk in enumerate(chunks)
    ]
    return _prompts_group_audit(game, i, options, [_chunk_rng(s, len(chunks)) for s in seeds], parts)


def _chunk_rng(seed: np.random.SeedSequence, c: int) -> np.random.Generator:
    """The generator of chunk ``c`` of a search (``c`` = the number of chunks: its
    refinement's): the child ``c`` of ``seed``, whatever ``seed`` spawned before."""
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, c)))


def _rules(game: PromptGame) -> tuple[PaymentRule | str, ...]:
    """The payment rules a group of the game is searched under: its own, and none where it charges."""
    rule = game.mechanism.payment_rule
    return (rule, NONE) if rule.charges else (rule,)


def _chunk_searches(
    game: PromptGame, i: int, options: AuditOptions, rngs: Sequence[np.random.Generator], chunk: range
) -> list[PromptPart]:
    """Group ``i``'s searches on the prompts ``chunk``, one per rule of :func:`_rules`."""
    budget = evaluations_for(options.budget, int(game.outcome_counts.max()))
    return [
        search_prompt_chunk(game, i, rule, budget, rng, chunk)
        for rule, rng in zip(_rules(game), rngs, strict=False)
    ]


def _prompts_group_audit(
    game: PromptGame,
    i: int,
    options: AuditOptions,
    rngs: Sequence[np.random.Generator],
    parts: Sequence[Sequence[PromptPart]],
) -> GroupAudit:
    """Group ``i``'s audit from the searches of every chunk (``parts[c][rule]``)."""
    budget = evaluations_for(options.budget, int(game.outcome_counts.max()))
    searches = [
        finish_prompt_search(game, i, rule, budget, rng, [chunk[k] for chunk in parts])
        for k, (rule, rng) in enumerate(zip(_rules(game), rngs, strict=False))
    ]
    reason = "Theorems 4.2 and B.2 are about one prompt: see each prompt's gain"
    return GroupAudit(
        index=i,
        name=game.group_names[i],
        size=float(game.truth.sizes[i]),
        dsic=searches[0],
        no_payment=searches[-1],
        noisy=None,
        prediction=Prediction(False, "", reason),
    )


def audit_prompt_chunk(
    game: PromptGame, i: int, options: AuditOptions, seed: int, c: int
) -> list[PromptPart]:
    """Chunk ``c`` of group ``i``'s searches (:func:`_audit_prompts_group`): one task of
    :func:`run_audits` for a game of several chunks."""
    seeds = group_seed(seed, game.digest, game.name, i).spawn(2)
    with threadpool_limits(limits=1, user_api="blas"):
        chunk = prompt_chunks(game.n_prompts)[c]
        return _chunk_searches(game, i, options, [_chunk_rng(s, c) for s in seeds], chunk)


def assemble_prompt_group(
    game: PromptGame, i: int, options: AuditOptions, seed: int, parts: Sequence[Sequence[PromptPart]]
) -> GroupAudit:
    """Group ``i``'s audit from its chunks' searches (:func:`audit_prompt_chunk`, in order)."""
    seeds = group_seed(seed, game.digest, game.name, i).spawn(2)
    rngs = [_chunk_rng(s, len(parts)) for s in seeds]
    with threadpool_limits(limits=1, user_api="blas"):
        return _prompts_group_audit(game, i, options, rngs, parts)


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


def audit_game(
    game: Game | PromptGame,
    options: AuditOptions,
    seed: int = 0,
    groups: Sequence[GroupAudit] | None = None,
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
            audit_group(game, i, options, group_seed(seed, game.digest, game.name, i))
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

    health = _health(game, solution, groups) if isinstance(game, Game) else _prompts_health(solution, groups)
    bound, source = size_bound(game)
    notes: list[str] = []
    if game.max_size is None:
        notes.append(f"{source}: sizes searched in [1, {bound:g}]")
    if options.others.kind != "file":
        notes.append(
            f"best responses searched against {options.others.label} profile(s) of the others' reports"
        )
    space = ReportSpace.of(game if isinstance(game, Game) else game.game(0))
    if space.note:
        notes.append(space.note)
    if health.replay_error > tol:
        notes.append(
            f"a best joint misreport replayed through the whole game gains {health.replay_error:.3g} more or "
            "less than its prompts' gains add up to"
        )
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


def _prompts_health(solution: PromptSolution, groups: Sequence[GroupAudit]) -> Health:
    """:class:`Health` of a game of many prompts: the profiles' residuals, and every group's
    best joint misreports replayed through the whole game (the others as in the file), whose
    gains must be what the prompts' gains add up to (:attr:`Health.replay_error`)."""
    game = solution.game
    residuals = [solution.truthful.kkt_residual, solution.reported.kkt_residual]
    stalled = sum(
        not o.converged for o in {id(o): o for o in (solution.truthful, solution.reported)}.values()
    )
    error = 0.0
    for g in groups:
        i = g.index
        stalled += g.dsic.stalled + (g.no_payment.stalled if g.no_payment is not g.dsic else 0)
        rule = g.dsic.payment_rule
        base = game.with_report(i, game.truth.rewards[i], g.size).solve(rule).reported
        for report in (g.dsic.best, g.dsic.best_at_true_size):
            replay = game.with_report(i, report.reward, report.size).solve(rule).reported
            residuals.append(replay.kkt_residual)
            stalled += not replay.converged
            error = max(error, abs(float(replay.utilities[i] - base.utilities[i]) - report.gain))
    return Health(max_kkt_residual=float(max(residuals)), stalled=int(stalled), replay_error=error)


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


def audit_groups(
    game: Game | PromptGame, indices: Sequence[int], options: AuditOptions, seed: int
) -> list[GroupAudit]:
    """:func:`audit_group` for several groups of one game: one task of :func:`run_audits`."""
    return [audit_group(game, i, options, group_seed(seed, game.digest, game.name, i)) for i in indices]
