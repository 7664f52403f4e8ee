"""Catalogue of games with known answers, shared by the tests and ``benchmarks/``.

Three collections, in the manner of scipy's ``optimize/_tstutils.py``:

* :data:`SOLVER_CASES`: SW-Max problems (Definition 4.1) whose maximiser and optimal value
  are known in closed form, each with the derivation in its ``note``;
* :data:`PAYMENT_CASES`: profiles whose affine-maximizer payments (eq. 1) were worked by hand;
* :data:`INVALID_GAME_FILES`: game files that ``load_game`` must reject, with the line and
  field the error has to name.

plus the random-game generators used by the property tests (seeded numpy generators only,
so that every run draws the same games).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rlhf_mech.core import AFFINE_MAXIMIZER, Game, Mechanism, Normalization, PaymentRule, Profile

Array = np.ndarray

E = math.e
LOG2 = math.log(2.0)


def js_g(t: float) -> float:
    """The Jensen-Shannon generator ``g(t) = (t log t - (1 + t) log((1 + t) / 2)) / 2``."""
    return 0.5 * (t * math.log(t) - (1.0 + t) * math.log((1.0 + t) / 2.0))


@dataclass(frozen=True)
class SolverCase:
    """``argmax_pi <pi, s> - lam * D_g(pi || pi_init)`` with a closed-form answer.

    Attributes
    ----------
    name : identifier (test id).
    divergence : registry name of ``g``.
    lam : lambda.
    scores : (m,) ``s = sum_i w_i rm_i``.
    pi_init : (m,) initial distribution.
    pi : (m,) the maximiser.
    value : the optimal objective.
    note : where the answer comes from.
    """

    name: str
    divergence: str
    lam: float
    scores: tuple[float, ...]
    pi_init: tuple[float, ...]
    pi: tuple[float, ...]
    value: float
    note: str


def _kl_case(name: str, scores: list[float], pi_init: list[float], lam: float) -> SolverCase:
    # Gibbs form (Prop. 4.8 / eq. OPT with g'(t) = log t + 1): pi ∝ q exp(s / lam) and
    # value = lam * log E_q exp(s / lam).
    weights = [q * math.exp(s / lam) for s, q in zip(scores, pi_init, strict=True)]
    z = math.fsum(weights)
    return SolverCase(
        name=name,
        divergence="kl",
        lam=lam,
        scores=tuple(scores),
        pi_init=tuple(pi_init),
        pi=tuple(w / z for w in weights),
        value=lam * math.log(z),
        note="KL: pi ∝ pi_init exp(s/lambda), value = lambda log E_q exp(s/lambda)",
    )


# The rare-best-outcome games: pi_init(best) = 1e-300 is absorbed in the sum, so
# sum(pi_init) == 1.0 exactly. For a divergence whose g' is bounded above by g'_sup (a pole
# of (g')^{-1}), the KKT system (eq. OPT) sends the multiplier to mu = s_max - lam * g'_sup as
# pi_init(best) -> 0; every other outcome then gets pi(x) = q(x) t_x with
# t_x = (g')^{-1}(g'_sup - (s_max - s(x)) / lam), and the best outcome takes the rest,
# 1 - sum_x q(x) t_x, as long as that is positive. The error of this limit is O(1e-300).
_RARE_SCORES = (0.0, 1.0, 2.0, 3.0)
_RARE_INIT = (0.5, 0.3, 0.2, 1e-300)


def _rare_best_case(divergence: str, t_of_gap) -> SolverCase:
    lam = 1.0
    others = [q * t_of_gap((3.0 - s) / lam) for s, q in zip(_RARE_SCORES[:3], _RARE_INIT[:3], strict=True)]
    best = 1.0 - math.fsum(others)
    pi = (*others, best)
    if divergence == "reverse_kl":
        div = math.fsum(q * math.log(q / p) for q, p in zip(_RARE_INIT[:3], others, strict=True))
        # the best outcome's term q log(q / pi) is ~1e-300 * 690: zero in double precision
    elif divergence == "hellinger":
        div = math.fsum((math.sqrt(p) - math.sqrt(q)) ** 2 for p, q in zip(pi, _RARE_INIT, strict=True))
    else:  # js: q g(p / q); for the best outcome q g(p/q) -> p log 2 / 2 as q -> 0
        div = math.fsum(q * js_g(p / q) for p, q in zip(others, _RARE_INIT[:3], strict=True))
        div += 0.5 * best * LOG2
    value = math.fsum(p * s for p, s in zip(pi, _RARE_SCORES, strict=True)) - lam * div
    return SolverCase(
        name=f"{divergence}_rare_best_outcome",
        divergence=divergence,
        lam=lam,
        scores=_RARE_SCORES,
        pi_init=_RARE_INIT,
        pi=pi,
        value=value,
        note="mass concentrates on an outcome with pi_init = 1e-300 (pole of (g')^-1, eq. OPT)",
    )


_JS_Q = (1.0 / 3.0, 2.0 / 3.0)
_JS_PI = (2.0 / 3.0, 1.0 / 3.0)

SOLVER_CASES: tuple[SolverCase, ...] = (
    _kl_case("kl_two_outcomes", [1.0, 0.0], [0.5, 0.5], 1.0),
    _kl_case("kl_four_outcomes_small_lambda", [0.1, 0.5, 0.1, 0.3], [0.4, 0.3, 0.1, 0.2], 0.05),
    _kl_case("kl_large_lambda", [3.0, 1.0, 2.0], [0.2, 0.5, 0.3], 100.0),
    SolverCase(
        name="kl_rare_best_outcome",
        divergence="kl",
        lam=1.0,
        scores=_RARE_SCORES,
        pi_init=_RARE_INIT,
        # q(best) exp(3) ~ 2e-299 does not register next to the other weights
        pi=tuple(
            q * math.exp(s) / (0.5 + 0.3 * E + 0.2 * E**2)
            for s, q in zip(_RARE_SCORES, _RARE_INIT, strict=True)
        ),
        value=math.log(0.5 + 0.3 * E + 0.2 * E**2),
        note="KL Gibbs form; the 1e-300 outcome keeps a 1e-300-scale probability",
    ),
    SolverCase(
        name="chi2_interior",
        divergence="chi2",
        lam=2.0,
        scores=(0.0, 1.0, 2.0),
        pi_init=(0.25, 0.5, 0.25),
        # mu = E_q s = 1, pi = q (1 + (s - mu) / (2 lam)); value = E_q s + Var_q(s) / (4 lam)
        pi=(0.25 * 0.75, 0.5, 0.25 * 1.25),
        value=1.0 + 0.5 / 8.0,
        note="chi2 with every s - mu > -2 lambda: pi = q (1 + (s - E_q s) / (2 lambda))",
    ),
    SolverCase(
        name="chi2_nonnegativity_binds",
        divergence="chi2",
        lam=0.5,
        scores=(0.0, 1.0, 2.0, 3.0),
        pi_init=(0.25, 0.25, 0.25, 0.25),
        # active set {1, 2, 3}: sum_A q (1 + s - mu) = 1 gives mu = 5/3; the outcome with
        # s - mu = -5/3 <= -2 lambda = -1 gets exactly zero mass.
        pi=(0.0, 1.0 / 12.0, 1.0 / 3.0, 7.0 / 12.0),
        value=2.5 - 5.0 / 12.0,
        note="chi2 zero mass where s - mu <= -2 lambda (KKT with pi >= 0 active, app. B)",
    ),
    SolverCase(
        name="tv_all_mass_to_best",
        divergence="tv",
        lam=0.6,
        scores=(0.0, 1.0, 3.0),
        pi_init=(0.5, 0.3, 0.2),
        pi=(0.0, 0.0, 1.0),
        value=3.0 - 0.6 * 1.6,
        note="TV: s < s_max - 2 lambda = 1.8 for outcomes 0 and 1, both give up their mass",
    ),
    SolverCase(
        name="tv_partial",
        divergence="tv",
        lam=1.0,
        scores=(0.0, 1.5, 3.0),
        pi_init=(0.5, 0.3, 0.2),
        pi=(0.0, 0.3, 0.7),
        value=0.3 * 1.5 + 0.7 * 3.0 - 1.0,
        note="TV: only s = 0 < s_max - 2 lambda = 1 moves; 1.5 keeps pi_init",
    ),
    SolverCase(
        name="tv_tie_at_threshold_keeps_mass",
        divergence="tv",
        lam=1.0,
        scores=(0.0, 1.0, 2.0),
        pi_init=(0.25, 0.25, 0.5),
        pi=(0.25, 0.25, 0.5),
        value=0.25 + 1.0,
        note="TV: s = s_max - 2 lambda exactly keeps its mass (moves only when strictly profitable)",
    ),
    SolverCase(
        name="tv_tied_best_split_by_pi_init",
        divergence="tv",
        lam=1.0,
        scores=(3.0, 0.0, 3.0),
        pi_init=(0.2, 0.5, 0.3),
        # freed mass 0.5 split over the two best outcomes in proportion 0.2 : 0.3
        pi=(0.4, 0.0, 0.6),
        value=3.0 - 1.0,
        note="TV: mass freed goes to the tied best outcomes in proportion to pi_init",
    ),
    SolverCase(
        name="none_first_argmax",
        divergence="none",
        lam=1.0,
        scores=(1.0, 3.0, 3.0, 2.0),
        pi_init=(0.25, 0.25, 0.25, 0.25),
        pi=(0.0, 1.0, 0.0, 0.0),
        value=3.0,
        note="no regulariser: point mass on the first best outcome",
    ),
    # Two-outcome games designed backwards from a multiplier (eq. OPT): choose s, lambda and
    # mu, read t_x = (g')^{-1}((s_x - mu) / lambda), then q = (a, 1 - a) with
    # a t_1 + (1 - a) t_2 = 1 and pi = (a t_1, (1 - a) t_2).
    SolverCase(
        name="hellinger_two_outcomes",
        divergence="hellinger",
        lam=1.0,
        scores=(1.0, 0.0),
        pi_init=(5.0 / 32.0, 27.0 / 32.0),
        # mu = 1/2: y = (1/2, -1/2), t = 1 / (1 - y)^2 = (4, 4/9)
        pi=(0.625, 0.375),
        value=0.625 - (5.0 + 3.0) / 32.0,
        note="designed from mu = 1/2: t = (4, 4/9), q = (5/32, 27/32)",
    ),
    SolverCase(
        name="reverse_kl_two_outcomes",
        divergence="reverse_kl",
        lam=1.0,
        scores=(1.0, 0.0),
        pi_init=(0.25, 0.75),
        # mu = 3/2: y = (-1/2, -3/2), t = -1/y = (2, 2/3)
        pi=(0.5, 0.5),
        value=0.5 - (0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)),
        note="designed from mu = 3/2: t = (2, 2/3), q = (1/4, 3/4)",
    ),
    SolverCase(
        name="js_two_outcomes",
        divergence="js",
        lam=1.0,
        scores=(0.5 * LOG2, 0.0),
        pi_init=_JS_Q,
        # y_1 = log(4/3)/2, y_2 = log(2/3)/2: t = 1 / (2 exp(-2y) - 1) = (2, 1/2)
        pi=_JS_PI,
        value=_JS_PI[0] * 0.5 * LOG2 - (_JS_Q[0] * js_g(2.0) + _JS_Q[1] * js_g(0.5)),
        note="designed from mu = log(3/2)/2: t = (2, 1/2), q = (1/3, 2/3)",
    ),
    SolverCase(
        name="chi2_two_outcomes",
        divergence="chi2",
        lam=1.0,
        scores=(1.0, 0.0),
        pi_init=(0.5, 0.5),
        # mu = 1/2: t = 1 + y/2 = (5/4, 3/4)
        pi=(0.625, 0.375),
        value=0.625 - (0.125**2 + 0.125**2) / 0.5,
        note="designed from mu = 1/2: t = (5/4, 3/4)",
    ),
    _rare_best_case("reverse_kl", lambda gap: 1.0 / gap),
    _rare_best_case("hellinger", lambda gap: 1.0 / gap**2),
    _rare_best_case("js", lambda gap: 1.0 / math.expm1(2.0 * gap)),
)

#: Constant scores leave pi_init unchanged for every regulariser that has one
#: (g'(1) is attained at t = 1 everywhere, so sum pi = 1 with mu = c - lambda g'(1)).
CONSTANT_SCORE = 0.7


@dataclass(frozen=True)
class PaymentCase:
    """A profile with affine-maximizer payments (eq. 1) worked by hand.

    Attributes
    ----------
    rewards : (n, m); weights : (n,); pi_init : (m,).
    divergence, lam : the regulariser.
    pi : (m,) the SW-Max distribution.
    payments : (n,) the payments ``p_i``.
    note : the hand computation.
    """

    name: str
    rewards: tuple[tuple[float, ...], ...]
    weights: tuple[float, ...]
    pi_init: tuple[float, ...]
    divergence: str
    lam: float
    pi: tuple[float, ...]
    payments: tuple[float, ...]
    note: str


PAYMENT_CASES: tuple[PaymentCase, ...] = (
    PaymentCase(
        name="argmax_nonpivotal_and_pivotal",
        rewards=((0.6, 0.3, 0.1), (0.1, 0.2, 0.7)),
        weights=(1.0, 2.0),
        pi_init=(1 / 3, 1 / 3, 1 / 3),
        divergence="none",
        lam=1.0,
        # s = (0.8, 0.7, 1.5) -> outcome 2. p_A = max s_B - s_B(2) = 1.4 - 1.4 = 0,
        # p_B = max s_A - s_A(2) = 0.6 - 0.1 (Clarke pivot: B moves the choice away from 0)
        pi=(0.0, 0.0, 1.0),
        payments=(0.0, 0.5),
        note="Clarke pivot payments of the argmax rule (VCG, the lambda -> 0 limit)",
    ),
    PaymentCase(
        name="argmax_other_group_pivotal",
        rewards=((0.6, 0.3, 0.1), (0.1, 0.2, 0.7)),
        weights=(3.0, 2.0),
        pi_init=(1 / 3, 1 / 3, 1 / 3),
        divergence="none",
        lam=1.0,
        # s = (2.0, 1.3, 1.7) -> outcome 0. p_A = max s_B - s_B(0) = 1.4 - 0.2, p_B = 1.8 - 1.8
        pi=(1.0, 0.0, 0.0),
        payments=(1.2, 0.0),
        note="Clarke pivot payments of the argmax rule",
    ),
    PaymentCase(
        name="tv_single_group_keeps_prior",
        rewards=((0.5, 0.5),),
        weights=(4.0,),
        pi_init=(0.3, 0.7),
        divergence="tv",
        lam=1.0,
        # constant scores: pi = pi_init with or without the group; p = 0 (nothing to pay for)
        pi=(0.3, 0.7),
        payments=(0.0,),
        note="a group that cannot change the outcome pays nothing",
    ),
)


# --- game files that must be rejected ------------------------------------------------------

#: A valid game file; the invalid ones below are edits of it. Line numbers are 1-based.
VALID_GAME = """\
name: base
outcomes: [a, b, c]
initial: [0.5, 0.25, 0.25]
normalization: sum
divergence: {kind: kl, lambda: 1.0}
max_size: 5
payment: affine_maximizer
groups:
  - name: g1
    size: 2
    reward: [0.2, 0.3, 0.5]
  - name: g2
    size: 1
    reward: {a: 0.6, b: 0.2, c: 0.2}
"""


@dataclass(frozen=True)
class InvalidGameFile:
    """A game file (edited from :data:`VALID_GAME`) and the error ``load_game`` must raise.

    Attributes
    ----------
    name : test id.
    text : the YAML text.
    line : line the error must name (``None``: no single line).
    field : the dotted field it must name.
    message : a regular expression the message must match.
    files : extra files to write next to the game file: name -> array (saved as .npy or
        .csv by its suffix).
    """

    name: str
    text: str
    line: int | None
    field: str
    message: str
    files: dict[str, tuple] = field(default_factory=dict)


def _edit(old: str, new: str) -> str:
    assert old in VALID_GAME, old
    return VALID_GAME.replace(old, new, 1)


_HEAD = "outcomes: [a, b, c]\ngroups:\n  - name: g1\n    size: 1\n    reward: "
_ROWS = ((0.2, 0.3, 0.5), (0.6, 0.2, 0.2))

INVALID_GAME_FILES: tuple[InvalidGameFile, ...] = (
    InvalidGameFile(
        "yaml_syntax_error",
        _edit("normalization: sum", "normalization: sum: max"),
        4,
        "",
        r"invalid YAML: mapping values are not allowed",
    ),
    InvalidGameFile(
        "yaml_tab_indentation",
        _edit("  - name: g1", "\t- name: g1"),
        9,
        "",
        r"invalid YAML",
    ),
    InvalidGameFile(
        "unknown_top_level_key",
        _edit("max_size: 5", "max_size: 5\ncolour: red"),
        7,
        "colour",
        r"unknown field \(expected one of: name, outcomes, .*groups",
    ),
    InvalidGameFile(
        "unknown_group_key",
        _edit("    size: 1\n", "    size: 1\n    colour: red\n"),
        14,
        "groups[1].colour",
        r"unknown field \(expected one of: name, size, reward, report\)",
    ),
    InvalidGameFile(
        "unknown_divergence_key",
        _edit("lambda: 1.0}", "lambda: 1.0, temperature: 3}"),
        5,
        "divergence.temperature",
        r"unknown field \(expected one of: kind, lambda\)",
    ),
    InvalidGameFile(
        "unknown_report_key",
        _edit("    size: 1\n", "    size: 1\n    report: {sise: 2}\n"),
        14,
        "groups[1].report.sise",
        r"unknown field \(expected one of: reward, size\)",
    ),
    InvalidGameFile(
        "reward_wrong_length",
        _edit("[0.2, 0.3, 0.5]", "[0.5, 0.5]"),
        11,
        "groups[0].reward",
        r"expected 3 values \(one per outcome\), got 2",
    ),
    InvalidGameFile(
        "initial_wrong_length",
        _edit("[0.5, 0.25, 0.25]", "[0.5, 0.5]"),
        3,
        "initial",
        r"expected 3 values \(one per outcome\), got 2",
    ),
    InvalidGameFile(
        "negative_reward",
        _edit("[0.2, 0.3, 0.5]", "[-0.2, 0.7, 0.5]"),
        11,
        "groups[0].reward",
        r"^reward of 'a' is -0\.2; rewards must be >= 0$",
    ),
    InvalidGameFile(
        "reward_sum_not_one",
        _edit("[0.2, 0.3, 0.5]", "[0.2, 0.3, 0.6]"),
        11,
        "groups[0].reward",
        r"rewards sum to 1\.1; normalization 'sum' needs 1",
    ),
    InvalidGameFile(
        "reward_sum_off_by_2e-9",
        _edit("[0.2, 0.3, 0.5]", "[0.2, 0.3, 0.500000002]"),
        11,
        "groups[0].reward",
        r"normalization 'sum' needs 1",
    ),
    InvalidGameFile(
        "reward_max_not_one",
        _edit("normalization: sum", "normalization: max"),
        11,
        "groups[0].reward",
        r"largest reward is 0\.5; normalization 'max' needs 1",
    ),
    InvalidGameFile(
        "reported_reward_not_normalised",
        _edit("    size: 1\n", "    size: 1\n    report:\n      reward: [0.5, 0.5, 0.5]\n"),
        15,
        "groups[1].report.reward",
        r"rewards sum to 1\.5",
    ),
    InvalidGameFile(
        "initial_zero",
        _edit("[0.5, 0.25, 0.25]", "[1.0, 0.0, 0.0]"),
        3,
        "initial",
        r"probability of 'b' is 0; every p must be > 0",
    ),
    InvalidGameFile(
        "initial_negative",
        _edit("[0.5, 0.25, 0.25]", "[0.5, 0.75, -0.25]"),
        3,
        "initial",
        r"probability of 'c' is -0\.25; every p must be > 0",
    ),
    InvalidGameFile(
        "initial_subnormal",
        _edit("[0.5, 0.25, 0.25]", "[0.5, 0.5, 1.0e-310]"),
        3,
        "initial",
        r"smallest normal float",
    ),
    InvalidGameFile(
        "initial_sum_not_one",
        _edit("[0.5, 0.25, 0.25]", "[0.5, 0.25, 0.2]"),
        3,
        "initial",
        r"probabilities sum to 0\.95, not 1 \(tolerance 1e-9\)",
    ),
    InvalidGameFile(
        "initial_sum_off_by_2e-9",
        _edit("[0.5, 0.25, 0.25]", "[0.5, 0.25, 0.249999998]"),
        3,
        "initial",
        r"not 1 \(tolerance 1e-9\)",
    ),
    InvalidGameFile(
        "initial_unknown_keyword",
        _edit("[0.5, 0.25, 0.25]", "uniformly"),
        3,
        "initial",
        r"expected a list of numbers, an \{outcome: value\} mapping or \{file: \.\.\.\}",
    ),
    InvalidGameFile(
        "duplicate_group_name",
        _edit("name: g2", "name: g1"),
        12,
        "groups[1].name",
        r"duplicate group name 'g1'",
    ),
    InvalidGameFile(
        "duplicate_outcome_name",
        _edit("[a, b, c]", "[a, b, a]"),
        2,
        "outcomes[2]",
        r"duplicate outcome name 'a'",
    ),
    InvalidGameFile(
        "duplicate_yaml_key_in_group",
        _edit("    size: 1\n", "    size: 1\n    size: 2\n"),
        14,
        "groups[1].size",
        r"duplicate key",
    ),
    InvalidGameFile(
        "duplicate_yaml_key_top_level",
        _edit("max_size: 5", "max_size: 5\nmax_size: 6"),
        7,
        "max_size",
        r"duplicate key",
    ),
    InvalidGameFile(
        "size_below_one",
        _edit("    size: 1\n", "    size: 0.5\n"),
        13,
        "groups[1].size",
        r"must be >= 1, got 0",
    ),
    InvalidGameFile(
        "size_zero",
        _edit("    size: 1\n", "    size: 0\n"),
        13,
        "groups[1].size",
        r"must be >= 1, got 0",
    ),
    InvalidGameFile(
        "size_above_max_size",
        _edit("    size: 1\n", "    size: 6\n"),
        13,
        "groups[1].size",
        r"size 6\.0 is above max_size 5\.0",
    ),
    InvalidGameFile(
        "reported_size_above_max_size",
        _edit("    size: 1\n", "    size: 1\n    report: {size: 7}\n"),
        14,
        "groups[1].report.size",
        r"size 7\.0 is above max_size 5\.0",
    ),
    InvalidGameFile(
        "reported_size_below_one",
        _edit("    size: 1\n", "    size: 1\n    report: {size: 0.25}\n"),
        14,
        "groups[1].report.size",
        r"must be >= 1, got 0",
    ),
    InvalidGameFile(
        "lambda_zero",
        _edit("lambda: 1.0", "lambda: 0"),
        5,
        "divergence.lambda",
        r"^lambda -?[0-9.]+ is outside \[1e-100, 1e\+100\], the range over which the solvers are checked",
    ),
    InvalidGameFile(
        "lambda_negative",
        _edit("lambda: 1.0", "lambda: -2.5"),
        5,
        "divergence.lambda",
        r"^lambda -?[0-9.]+ is outside \[1e-100, 1e\+100\], the range over which the solvers are checked",
    ),
    InvalidGameFile(
        "lambda_inf",
        _edit("lambda: 1.0", "lambda: .inf"),
        5,
        "divergence.lambda",
        r"finite number",
    ),
    InvalidGameFile(
        "unknown_divergence",
        _edit("kind: kl", "kind: wasserstein"),
        5,
        "divergence.kind",
        r"Input should be 'kl', 'chi2', 'tv', 'hellinger', 'reverse_kl', 'js' or 'none'$",
    ),
    InvalidGameFile(
        "unknown_payment_rule",
        _edit("payment: affine_maximizer", "payment: vcg"),
        7,
        "payment",
        r"'none', 'affine_maximizer', 'intermediate_checkpoints' or 'early_stopped'",
    ),
    InvalidGameFile(
        "reward_nan",
        _edit("[0.2, 0.3, 0.5]", "[.nan, 0.3, 0.5]"),
        11,
        "groups[0].reward[0]",
        r"nan is not a finite number",
    ),
    InvalidGameFile(
        "reward_inf",
        _edit("[0.2, 0.3, 0.5]", "[0.2, .inf, 0.5]"),
        11,
        "groups[0].reward[1]",
        r"inf is not a finite number",
    ),
    InvalidGameFile(
        "reward_mapping_nan",
        _edit("{a: 0.6, b: 0.2, c: 0.2}", "{a: 0.6, b: .nan, c: 0.2}"),
        14,
        "groups[1].reward.b",
        r"nan is not a finite number",
    ),
    InvalidGameFile(
        "initial_nan",
        _edit("[0.5, 0.25, 0.25]", "[0.5, .nan, 0.25]"),
        3,
        "initial[1]",
        r"nan is not a finite number",
    ),
    InvalidGameFile(
        "size_nan",
        _edit("    size: 1\n", "    size: .nan\n"),
        13,
        "groups[1].size",
        r"finite number",
    ),
    InvalidGameFile(
        "max_size_inf",
        _edit("max_size: 5", "max_size: .inf"),
        6,
        "max_size",
        r"finite number",
    ),
    InvalidGameFile(
        "reward_not_a_number",
        _edit("[0.2, 0.3, 0.5]", "[0.2, x, 0.5]"),
        11,
        "groups[0].reward[1]",
        r"expected a number, got 'x'",
    ),
    InvalidGameFile(
        "reward_bool",
        _edit("[0.2, 0.3, 0.5]", "[true, 0.3, 0.5]"),
        11,
        "groups[0].reward[0]",
        r"expected a number, got True",
    ),
    InvalidGameFile(
        "mapping_unknown_outcome",
        _edit("{a: 0.6, b: 0.2, c: 0.2}", "{a: 0.6, b: 0.2, d: 0.2}"),
        14,
        "groups[1].reward.d",
        r"unknown outcome 'd'",
    ),
    InvalidGameFile(
        "mapping_missing_outcome",
        _edit("{a: 0.6, b: 0.2, c: 0.2}", "{a: 0.6, b: 0.4}"),
        14,
        "groups[1].reward",
        r"no value for outcome\(s\) 'c'$",
    ),
    InvalidGameFile(
        "initial_mapping_unknown_outcome",
        _edit("[0.5, 0.25, 0.25]", "{a: 0.5, b: 0.25, z: 0.25}"),
        3,
        "initial.z",
        r"unknown outcome 'z'",
    ),
    InvalidGameFile(
        "outcomes_zero",
        _edit("[a, b, c]", "0"),
        2,
        "outcomes",
        r"the number of outcomes must be in 1\.\.10000000, got 0",
    ),
    InvalidGameFile(
        "groups_missing",
        VALID_GAME.split("groups:")[0],
        1,
        "groups",
        r"required field is missing",
    ),
    InvalidGameFile(
        "groups_empty",
        VALID_GAME.split("groups:")[0] + "groups: []\n",
        8,
        "groups",
        r"at least 1 item",
    ),
    InvalidGameFile(
        "expect_unknown_group",
        VALID_GAME + "expect:\n  utility: {zed: [0.0, 1.0]}\n",
        16,
        "expect.utility.zed",
        r"no group named 'zed'",
    ),
    InvalidGameFile(
        "expect_empty_range",
        VALID_GAME + "expect:\n  payment: {g1: [1.0, 0.0]}\n",
        16,
        "expect.payment.g1",
        r"empty range",
    ),
    InvalidGameFile(
        "expect_unknown_key",
        VALID_GAME + "expect:\n  dsic: true\n  welfare: [0, 1]\n",
        17,
        "expect.welfare",
        r"unknown field",
    ),
    InvalidGameFile("empty_file", "", None, "", r"^the file is empty$"),
    InvalidGameFile("comments_only", "# nothing here\n", None, "", r"^the file is empty$"),
    InvalidGameFile(
        "top_level_list",
        "- outcomes: [a, b]\n- groups: []\n",
        1,
        "",
        r"a game file is a YAML mapping",
    ),
    InvalidGameFile(
        "top_level_scalar",
        "just a string\n",
        1,
        "",
        r"a game file is a YAML mapping",
    ),
    InvalidGameFile(
        "file_missing",
        _HEAD + "{file: nope.npy, row: 0}\n",
        5,
        "groups[0].reward.file",
        r"cannot read 'nope\.npy': No such file or directory",
    ),
    InvalidGameFile(
        "file_row_out_of_range",
        _HEAD + "{file: rm.npy, row: 2}\n",
        5,
        "groups[0].reward.row",
        r"row 2 is outside 0\.\.1",
        files={"rm.npy": _ROWS},
    ),
    InvalidGameFile(
        "file_row_negative",
        _HEAD + "{file: rm.npy, row: -1}\n",
        5,
        "groups[0].reward.row",
        r"row -1 is outside 0\.\.1",
        files={"rm.npy": _ROWS},
    ),
    InvalidGameFile(
        "file_csv_row_out_of_range",
        _HEAD + "{file: rm.csv, row: 5}\n",
        5,
        "groups[0].reward.row",
        r"row 5 is outside 0\.\.1",
        files={"rm.csv": _ROWS},
    ),
    InvalidGameFile(
        "file_2d_without_row",
        _HEAD + "{file: rm.npy}\n",
        5,
        "groups[0].reward.file",
        r"'rm\.npy' holds a \(2, 3\) array; pick one with row: k",
        files={"rm.npy": _ROWS},
    ),
    InvalidGameFile(
        "file_row_on_1d_array",
        _HEAD + "{file: rm.npy, row: 0}\n",
        5,
        "groups[0].reward.row",
        r"row: k needs an integer k and a 2-D array",
        files={"rm.npy": (0.2, 0.3, 0.5)},
    ),
    InvalidGameFile(
        "file_wrong_suffix",
        _HEAD + "{file: rm.txt, row: 0}\n",
        5,
        "groups[0].reward.file",
        r"expected a \.npy or \.csv file",
    ),
    InvalidGameFile(
        "file_reference_extra_key",
        _HEAD + "{file: rm.npy, row: 0, column: 1}\n",
        5,
        "groups[0].reward",
        r"an array reference is \{file: NAME\.npy\|NAME\.csv, row: k\}",
        files={"rm.npy": _ROWS},
    ),
    InvalidGameFile(
        "file_row_wrong_length",
        "outcomes: [a, b]\ngroups:\n  - name: g1\n    size: 1\n    reward: {file: rm.npy, row: 0}\n",
        5,
        "groups[0].reward",
        r"expected 2 values \(one per outcome\), got 3",
        files={"rm.npy": _ROWS},
    ),
)


# --- random games ---------------------------------------------------------------------------


def random_pi_init(rng: np.random.Generator, m: int) -> Array:
    """A positive initial distribution, Dirichlet(1) (well-conditioned: min entry ~1/m^2)."""
    return rng.dirichlet(np.ones(m))


def random_rewards(rng: np.random.Generator, n: int, m: int, normalization: str | Normalization) -> Array:
    """``n`` reward models valid for ``normalization`` (section 2): non-negative, sum or max 1.

    Every third row or so has exact zeros, to visit the boundary of the reward domain.
    """
    norm = Normalization(normalization)
    if not norm.normalised:
        raise ValueError(f"unknown normalization {normalization!r}")
    raw = rng.uniform(0.0, 1.0, size=(n, m))
    sparse = rng.uniform(size=n) < 0.3
    if m > 1:
        raw[sparse, rng.integers(0, m, size=int(sparse.sum()))] = 0.0
    raw[raw.max(axis=1) == 0.0, 0] = 1.0
    return norm.normalise(raw)


@dataclass(frozen=True)
class RandomGame:
    """A random RLHF game (section 3) for property tests."""

    rewards: Array
    sizes: Array
    pi_init: Array
    lam: float
    max_size: float
    normalization: Normalization

    @property
    def truth(self) -> Profile:
        """The true types ``(rm_i, w_i)`` as a :class:`~rlhf_mech.core.Profile`."""
        return Profile(self.rewards, self.sizes)

    def mechanism(self, divergence: str, payment_rule: str | PaymentRule = AFFINE_MAXIMIZER) -> Mechanism:
        """SW-Max with ``divergence`` and this game's lambda and pi_init, under ``payment_rule``."""
        return Mechanism(self.pi_init, divergence, self.lam, payment_rule=payment_rule)

    def game(self, divergence: str, payment_rule: str | PaymentRule = AFFINE_MAXIMIZER) -> Game:
        """This game as a :class:`~rlhf_mech.core.Game` (truthful reports), for sweeps."""
        n, m = self.rewards.shape
        return Game(
            name="random",
            outcomes=tuple(f"x{j}" for j in range(m)),
            group_names=tuple(f"g{i}" for i in range(n)),
            mechanism=self.mechanism(divergence, payment_rule),
            normalization=self.normalization,
            truth=self.truth,
            reports=self.truth,
            max_size=self.max_size,
        )


def random_game(
    rng: np.random.Generator,
    *,
    max_groups: int = 4,
    max_outcomes: int = 6,
    log10_lambda: tuple[float, float] = (-3.0, 3.0),
    normalization: str | Normalization | None = None,
) -> RandomGame:
    """A game with 1..max_groups groups (at least 2 when possible), 2..max_outcomes outcomes,
    integer sizes in [1, max_size], lambda log-uniform over ``10**log10_lambda``."""
    n = int(rng.integers(2, max_groups + 1))
    m = int(rng.integers(2, max_outcomes + 1))
    norm = Normalization(normalization or str(rng.choice(["sum", "max"])))
    max_size = float(rng.integers(1, 11))
    sizes = rng.integers(1, int(max_size) + 1, size=n).astype(float)
    return RandomGame(
        rewards=random_rewards(rng, n, m, norm),
        sizes=sizes,
        pi_init=random_pi_init(rng, m),
        lam=float(10.0 ** rng.uniform(*log10_lambda)),
        max_size=max_size,
        normalization=norm,
    )


#: Score families of :func:`random_multiplier_problem` (the multiplier's hard regimes).
SCORE_FAMILIES = ("uniform", "normal", "exponential", "ties")
#: Initial-distribution families; ``extreme`` is log-uniform over 1e-300 .. 1.
PI_INIT_FAMILIES = ("uniform", "dirichlet", "sparse_dirichlet", "extreme")


@dataclass(frozen=True)
class MultiplierProblem:
    """One SW-Max problem for the multiplier iteration: ``scores``, ``pi_init``, ``lam``."""

    scores: Array
    pi_init: Array
    lam: float
    score_family: str
    pi_init_family: str


def random_multiplier_problem(
    rng: np.random.Generator,
    *,
    sizes: tuple[int, ...] = (2, 10, 100, 1000),
    pi_init_families: tuple[str, ...] = PI_INIT_FAMILIES[:3],
) -> MultiplierProblem:
    """A problem from the regimes where Newton on the multiplier is slowest.

    Scores uniform on [0, 10] (mass spread over outcomes at every distance below a pole),
    normal or exponential at a random scale 1e-3 .. 1e3, or rounded to {0, 1, 2, 3} (ties at
    the best outcome); ``pi_init`` uniform, Dirichlet(1), Dirichlet(0.05) (most mass on a few
    outcomes) or, with ``extreme``, log-uniform over 1e-300 .. 1; lambda log-uniform over
    1e-6 .. 1e6; m drawn from ``sizes``.
    """
    m = int(rng.choice(sizes))
    family = SCORE_FAMILIES[int(rng.integers(len(SCORE_FAMILIES)))]
    if family == "uniform":
        scores = rng.uniform(0.0, 10.0, m)
    elif family == "normal":
        scores = rng.normal(size=m) * 10.0 ** rng.uniform(-3, 3)
    elif family == "exponential":
        scores = rng.exponential(size=m) * 10.0 ** rng.uniform(-3, 3)
    else:
        scores = np.round(rng.uniform(0.0, 3.0, m))
    prior = pi_init_families[int(rng.integers(len(pi_init_families)))]
    if prior == "uniform":
        q = np.full(m, 1.0 / m)
    elif prior == "dirichlet":
        q = rng.dirichlet(np.ones(m))
    elif prior == "sparse_dirichlet":
        q = rng.dirichlet(np.full(m, 0.05))
    else:
        q = np.exp(rng.uniform(-690.0, 0.0, m))
    q = np.maximum(q, 1e-300)
    q = np.maximum(q / q.sum(), 1e-300)
    return MultiplierProblem(scores, q, float(10.0 ** rng.uniform(-6, 6)), family, prior)
