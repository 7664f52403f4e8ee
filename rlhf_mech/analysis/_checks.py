r"""The questions an audit asks of a game (sections 3-4), each a record, and their answers.

Every check is one :class:`Check` of :data:`CHECKS` (its title with the paper's reference, its
column in the audit table, what a failure means): the renderers read them, and a new check
is one record plus the function that answers it. Each answer is a :class:`Finding` that
states its tolerance. The functions are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlhf_mech.core import Game, GameSolution

if TYPE_CHECKING:
    from rlhf_mech.analysis._audit import GroupAudit


@dataclass(frozen=True)
class Check:
    """One question of the audit.

    Attributes
    ----------
    name : its key (in findings, JSON, JUnit and SARIF rule ids).
    title : what it checks, with the paper's reference.
    column : its header in the audit table.
    violation : what a failure means, for a reader of a CI report.
    """

    name: str
    title: str
    column: str
    violation: str


#: Every check, in the order of the audit table.
ALL_CHECKS: tuple[Check, ...] = (
    Check(
        "dsic",
        "DSIC (Definition 3.2)",
        "DSIC\nmax gain",
        "A group gains by misreporting (Definition 3.2): the payment rule is not truthful here.",
    ),
    Check(
        "ir", "IR (Definition 3.3)", "IR\nutility", "A group's truthful utility is negative (Definition 3.3)."
    ),
    Check(
        "nonnegative_payments",
        "payments >= 0 (Proposition 4.4)",
        "p >= 0\nmin p",
        "A payment is negative (Proposition 4.4 requires p >= 0).",
    ),
    Check(
        "no_payment",
        "gain without payment (Theorems 4.2, 4.3)",
        "no payment\nmax gain",
        "The gain without payment differs from what the file expects (Theorems 4.2, 4.3).",
    ),
    Check(
        "noisy_dsic",
        "approximate DSIC under noise (Theorem 4.12)",
        "noise\nE gain",
        "The expected gain under noisy reward models exceeds 2 w_i eps (Theorem 4.12).",
    ),
    Check(
        "payment_gap",
        "gap to the exact p^AFF (Theorem 4.11, Corollary 4.13)",
        "p - p^AFF",
        "The payment differs from the exact p^AFF by more than the file allows "
        "(Theorem 4.11, Corollary 4.13).",
    ),
    Check(
        "expect",
        "the file's expect: block",
        "expect",
        "A value or verdict differs from the file's expect: block.",
    ),
)
#: Check name -> check.
CHECKS: dict[str, Check] = {check.name: check for check in ALL_CHECKS}


@dataclass(frozen=True)
class Finding:
    """The answer to one question of the audit, for one group or the whole game.

    Attributes
    ----------
    check : the name of a :class:`Check` of :data:`CHECKS`.
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
