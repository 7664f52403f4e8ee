r"""The f-divergence regularisers of the SW-Max training rule (Definition 4.1).

``D_f(p || q) = sum_x q(x) f(p(x) / q(x))`` with ``f = lambda * g`` and ``g`` one of

============  ===========================================  ===============  ============
name          g(t)                                         g'(0+)           sup g'
============  ===========================================  ===============  ============
kl            t log t                                      -inf             +inf
chi2          (t - 1)^2                                    -2               +inf
tv            |t - 1|                                      -1 (subgrad.)    +1
hellinger     (sqrt t - 1)^2                               -inf             1
reverse_kl    -log t                                       -inf             0
js            (t log t - (1 + t) log((1 + t) / 2)) / 2     -inf             log(2) / 2
none          0 (argmax over outcomes, for candidate games)
============  ===========================================  ===============  ============

Each regulariser is a frozen :class:`Divergence` of pure vectorised callables, kept in
the registry :data:`DIVERGENCES` (the pattern of scipy's ``MetricInfo``), so that every
divergence gets every test. The solver never branches on a name: a divergence either
offers the inverse of ``g'`` (and the KKT root-find of :mod:`rlhf_mech.solver` applies)
or a ``closed_form`` (TV, whose ``g'`` is not invertible; KL offers both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlhf_mech.core._numerics import log_expectation_exp, log_ratio, per_row, row_dot, total_mass
from rlhf_mech.core._registry import lookup

Array = np.ndarray
LOG2 = float(np.log(2.0))


@dataclass(frozen=True)
class ClosedForm:
    """An exact maximiser of ``<pi, s> - lambda * D_g(pi || q)`` for a batch of score rows.

    Attributes
    ----------
    pi : (B, m) array, the maximiser.
    mu : (B,) array, the multiplier of ``sum pi = 1`` (eq. OPT of appendix B).
    nu : (B,) array, ``(mu - max s) / lambda``, exact to rounding.
    value : (B,) array, the optimal objective.
    divergence : (B,) array, ``lambda * D_g(pi || q)`` at the maximiser.
    """

    pi: Array
    mu: Array
    nu: Array
    value: Array
    divergence: Array


@dataclass(frozen=True)
class Divergence:
    """One f-divergence generator ``g`` (the regulariser is ``f = lambda * g``).

    Attributes
    ----------
    name : canonical name used in game files.
    formula : ``g`` as text, for documentation and output.

    Every function that takes ``q`` (``pi_init``) takes one shared ``(m,)`` or one per row of
    the scores (``(B, m)``).
    terms : ``(pi, q) -> q * (g(t) - g'(1) (t - 1))`` elementwise with ``t = pi / q``: the same
        divergence for distributions (``sum pi = sum q = 1``, so the linear part sums to 0),
        without the linear part that the rounding of the two sums (~1e-16) would otherwise
        multiply by lambda (at lambda = 1e16 that is a D_f of -2). Each form is written in
        ``pi - q`` (exact where ``pi ~ q``) with ``log1p`` (:func:`~rlhf_mech.core._numerics.log_ratio`),
        so that a term is accurate to a few ulps of ``q |t - 1|`` however close ``t`` is to 1;
        finite for ``pi = 0`` (except
        reverse KL, which is infinite there) and ``q`` down to 1e-300.
    subgradient : ``t -> (lo, hi)``, the interval ``∂g(t)`` (``lo == hi == g'(t)`` where
        ``g`` is differentiable; ``lo = -inf`` at ``t = 0``, the boundary of the simplex).
    g_prime : ``t -> g'(t)`` (for TV, the right derivative).
    g_prime_inverse : ``y -> (t, dt/dy)`` with ``t = (g')^{-1}(y)`` for ``g'(0+) < y < sup g'``,
        or ``None`` where ``g'`` has no inverse.
    g_prime_at_zero : ``g'(0+)``; where ``y <= g'(0+)`` the optimal ratio is ``t = 0``.
    g_prime_sup : ``sup g'``; the multiplier must keep every ``y`` below it.
    g_prime_at_one : ``g'(1)`` (for TV the subgradient 0 of ``[-1, 1]``): the coefficient of
        the linear part ``g'(1) (t - 1)`` that ``terms`` leaves out.
    newton_power : ``p`` of the Newton iteration on ``T(z)^(-1/p)`` (see
        ``solver._newton_step``): ``inf`` for ``log T`` (KL, where ``t`` is log-linear),
        ``-1`` for ``T`` itself (chi^2, piecewise linear), the order of the pole of
        ``(g')^{-1}`` otherwise (``t ~ d^-p``: Hellinger 2, reverse KL 1, JS 1).
    closed_form : optional exact solver ``(scores, log_q, q, lam) -> ClosedForm``.
    pole_inverse : for ``g'`` bounded above (a pole of ``(g')^{-1}`` at ``sup g'``):
        ``d -> (t, d(log t)/dy)`` at ``y = sup g' - d``, the inverse written in the distance ``d > 0``
        below the pole. An outcome whose ``pi_init`` is 1e-300 and whose optimal mass is
        O(1) has ``d ~ 1e-150``, which ``y`` itself cannot resolve next to ``sup g' = O(1)``.
    pole_distance : ``t -> sup g' - g'(t)``, computed without cancellation at large ``t``.
    pole_curvature : ``(t, l) -> h`` with ``l = d(log t)/dy`` (as ``pole_inverse`` returns it)
        and ``d^2 t / dd^2 = t l h``: the second derivative that the third-order multiplier
        step of ``solver._newton_step`` fits its power to. For ``t = d^-p``,
        ``h = (1 + 1/p) l`` (reverse KL ``2 l``, Hellinger ``1.5 l``); JS ``2 + 4 t``.
    closed_form_value : optional ``(scores, log_q, q, lam) -> (B,)``, the optimal values alone,
        for the leave-one-out problems of the payment rule, which need no ``pi``. It may
        overwrite ``scores`` (its callers pass a scratch array).
    point_mass : whether the maximiser puts all mass on one outcome (the argmax rule): the
        outcome a leave-one-out problem selects is then reported beside its value.
    gibbs_form : whether the maximiser is ``pi ∝ q exp(s / lambda)`` (KL). Then the optimal
        value for the scores ``s + delta`` is ``V(s) + lambda log E_pi exp(delta / lambda)``
        (the Donsker-Varadhan identity), and :mod:`rlhf_mech.payments` reads every
        leave-one-out value off ``pi`` in one pass over the rewards.
    aliases : other accepted names.
    """

    name: str
    formula: str
    terms: Callable[[Array, Array], Array]
    subgradient: Callable[[Array], tuple[Array, Array]]
    g_prime: Callable[[Array], Array]
    g_prime_inverse: Callable[[Array], tuple[Array, Array]] | None
    g_prime_at_zero: float
    g_prime_sup: float
    g_prime_at_one: float = 0.0
    newton_power: float = np.inf
    closed_form: Callable[[Array, Array, Array, float], ClosedForm] | None = None
    pole_inverse: Callable[[Array], tuple[Array, Array]] | None = None
    pole_distance: Callable[[Array], Array] | None = None
    pole_curvature: Callable[[Array, Array], Array] | None = None
    closed_form_value: Callable[[Array, Array, Array, float], Array] | None = None
    gibbs_form: bool = False
    point_mass: bool = False
    aliases: tuple[str, ...] = ()

    def value(self, pi: Array, q: Array, lam: float) -> Array:
        """``lambda * D_g(pi || q)`` summed over the last axis."""
        return lam * self.terms(pi, q).sum(axis=-1)


def _smooth(g_prime: Callable[[Array], Array]) -> Callable[[Array], tuple[Array, Array]]:
    """Subgradient of a differentiable ``g`` whose ``g'(0+) = -inf``: a single point."""

    def subgradient(t: Array) -> tuple[Array, Array]:
        with np.errstate(divide="ignore"):
            d = g_prime(t)
        return d, d

    return subgradient


# --- KL: g = t log t ---------------------------------------------------------------------


def _kl_terms(pi: Array, q: Array) -> Array:
    # q (t log t - t + 1) = pi log(pi / q) - (pi - q) (see Divergence.terms)
    with np.errstate(invalid="ignore"):
        return np.where(pi > 0, pi * log_ratio(pi, q), 0.0) - (pi - q)


def _kl_g_prime(t: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.log(t) + 1.0


def _kl_inverse(y: Array) -> tuple[Array, Array]:
    t = np.exp(y - 1.0)
    return t, t


def _kl_closed_form(scores: Array, log_q: Array, q: Array, lam: float) -> ClosedForm:
    """Gibbs form ``pi ∝ q exp(s / lambda)`` (Prop. 4.8), evaluated in log space.

    With ``L = log E_q exp((s - s_max) / lambda)``: ``value = s_max + lambda L``,
    ``nu = L - 1`` (eq. OPT with ``g'(t) = log t + 1``) and
    ``log(pi / q) = (s - s_max) / lambda - L``, formed directly so that neither ``pi`` nor
    ``D`` is a difference of large numbers. ``pi`` is the ``q exp(gap)`` that the sum behind
    ``L`` already evaluated (one exponential per outcome), divided by its own sum so that it
    sums to 1 to rounding.
    """
    s_max = scores.max(axis=-1)
    gaps = np.subtract(scores, s_max[:, None])
    gaps /= lam
    narrow = gaps.min(axis=-1) >= -1.0
    log_mass, pi = _kl_log_mass(gaps, log_q, q)
    pi /= pi.sum(axis=-1, keepdims=True)
    gaps -= log_mass[:, None]  # log(pi / q)
    divergence = lam * row_dot(pi, gaps, work=gaps)
    if narrow.any():
        # Spread below lambda: D ~ spread^2 / lambda^2 while lambda times the rounding of the
        # log-ratios (against the pi normalised by its own sum) is ~ lambda eps, so D is
        # formed from pi itself in the Bregman form of Divergence.terms.
        divergence[narrow] = lam * _kl_terms(pi[narrow], per_row(q, narrow)).sum(axis=-1)
    nu = log_mass - 1.0
    return ClosedForm(pi=pi, mu=s_max + lam * nu, nu=nu, value=s_max + lam * log_mass, divergence=divergence)


def _kl_log_mass(gaps: Array, log_q: Array, q: Array) -> tuple[Array, Array]:
    """``log E_q exp(gaps)`` per row, as :func:`~rlhf_mech._numerics.log_expectation_exp`, and
    the unnormalised maximiser ``q exp(gaps - c)`` (``c`` a constant per row) on the way."""
    narrow = gaps.min(axis=-1) >= -1.0
    if not narrow.any():  # the usual case, without copies
        return _kl_wide(gaps, log_q)
    log_mass = np.empty(gaps.shape[0])
    weights = np.empty_like(gaps)
    e = np.expm1(gaps[narrow])
    q_narrow = per_row(q, narrow)
    log_mass[narrow] = np.log1p(row_dot(e, q_narrow) + (total_mass(q_narrow) - 1.0))
    e += 1.0
    e *= q_narrow
    weights[narrow] = e
    wide = ~narrow
    if wide.any():
        log_mass[wide], weights[wide] = _kl_wide(gaps[wide], per_row(log_q, wide))
    return log_mass, weights


def _kl_wide(gaps: Array, log_q: Array) -> tuple[Array, Array]:
    """Max-shift over ``z = gaps + log q``: ``log sum exp(z)`` and ``exp(z - max z)``."""
    z = np.add(gaps, log_q)
    z_max = z.max(axis=-1)
    z -= z_max[:, None]
    np.exp(z, out=z)
    return z_max + np.log(z.sum(axis=-1)), z


def _kl_optimal_value(scores: Array, log_q: Array, q: Array, lam: float) -> Array:
    """Optimal value only, ``s_max + lambda log E_q exp((s - s_max) / lambda)``; overwrites ``scores``."""
    s_max = scores.max(axis=-1)
    scores -= s_max[:, None]
    scores /= lam
    return s_max + lam * log_expectation_exp(scores, log_q, q)


# --- chi^2: g = (t - 1)^2 ----------------------------------------------------------------


def _chi2_terms(pi: Array, q: Array) -> Array:
    return (pi - q) ** 2 / q


def _chi2_subgradient(t: Array) -> tuple[Array, Array]:
    d = 2.0 * (t - 1.0)
    return np.where(t > 0, d, -np.inf), d


def _chi2_inverse(y: Array) -> tuple[Array, Array]:
    return 1.0 + 0.5 * y, np.full_like(y, 0.5)


# --- total variation: g = |t - 1| --------------------------------------------------------


def _tv_terms(pi: Array, q: Array) -> Array:
    return np.abs(pi - q)


def _tv_subgradient(t: Array) -> tuple[Array, Array]:
    lo = np.where(t > 1, 1.0, np.where(t > 0, -1.0, -np.inf))
    hi = np.where(t >= 1, 1.0, -1.0)
    return lo, hi


def _tv_g_prime(t: Array) -> Array:
    return np.where(t >= 1, 1.0, -1.0)


def _tv_closed_form(scores: Array, log_q: Array, q: Array, lam: float) -> ClosedForm:
    """Exact TV solution: the maximiser is a linear programme with an explicit vertex.

    Moving mass ``d`` from outcome x to a best outcome changes the objective by
    ``d (s_max - s_x - 2 lambda)``, so every outcome with ``s_x < s_max - 2 lambda`` gives up
    all its mass, every other outcome keeps ``q_x``, and the freed mass goes to the
    outcomes attaining ``s_max``.

    Tie rules (the further ordering of section 3): an outcome with ``s_x`` exactly
    ``s_max - 2 lambda`` keeps its mass (mass moves only when strictly profitable), and
    when several outcomes attain ``s_max`` exactly, the freed mass is split among them in
    proportion to ``q``. Both choices leave the objective unchanged, so the affine-maximizer
    payment stays DSIC. ``mu = s_max - lambda``.
    """
    s_max = scores.max(axis=-1, keepdims=True)
    best = scores == s_max
    dropped = scores < s_max - 2.0 * lam
    freed = np.where(dropped, q, 0.0).sum(axis=-1, keepdims=True)
    best_mass = np.where(best, q, 0.0).sum(axis=-1, keepdims=True)
    pi = np.where(dropped, 0.0, q) + np.where(best, q * (freed / best_mass), 0.0)
    divergence = lam * np.abs(pi - q).sum(axis=-1)
    value = row_dot(pi, scores) - divergence
    nu = np.full(scores.shape[0], -1.0)
    return ClosedForm(pi=pi, mu=s_max[:, 0] - lam, nu=nu, value=value, divergence=divergence)


def _tv_optimal_value(scores: Array, log_q: Array, q: Array, lam: float) -> Array:
    """Optimal value only: ``sum_x q_x max(s_x, s_max - 2 lambda)``; overwrites ``scores``.

    Every outcome below ``s_max - 2 lambda`` hands its mass ``q_x`` to a best outcome, where
    it is worth ``s_max`` less the TV cost of moving it (``lambda`` out, ``lambda`` in).
    """
    s_max = scores.max(axis=-1)
    np.maximum(scores, (s_max - 2.0 * lam)[:, None], out=scores)
    return row_dot(scores, q)


# --- squared Hellinger: g = (sqrt t - 1)^2 -----------------------------------------------


def _hellinger_terms(pi: Array, q: Array) -> Array:
    # (sqrt pi - sqrt q)^2 with the difference formed exactly: pi - q, not sqrt pi - sqrt q
    return ((pi - q) / (np.sqrt(pi) + np.sqrt(q))) ** 2


def _hellinger_g_prime(t: Array) -> Array:
    with np.errstate(divide="ignore"):
        return 1.0 - 1.0 / np.sqrt(t)


def _hellinger_pole_inverse(d: Array) -> tuple[Array, Array]:
    # y = 1 - d:  t = 1 / d^2,  d(log t)/dy = 2 / d
    r = 1.0 / d
    return r * r, 2.0 * r


def _hellinger_pole_distance(t: Array) -> Array:
    return 1.0 / np.sqrt(t)


def _hellinger_pole_curvature(t: Array, dlog_t: Array) -> Array:
    # t = d^-2:  d^2t/dd^2 = 6 d^-4 = t * l * 1.5 l  with  l = 2 / d
    return 1.5 * dlog_t


# --- reverse KL: g = -log t --------------------------------------------------------------


def _reverse_kl_terms(pi: Array, q: Array) -> Array:
    # q (t - 1 - log t) = (pi - q) - q log(pi / q) (see Divergence.terms)
    return (pi - q) - q * log_ratio(pi, q)


def _reverse_kl_g_prime(t: Array) -> Array:
    with np.errstate(divide="ignore"):
        return -1.0 / t


def _reverse_kl_pole_inverse(d: Array) -> tuple[Array, Array]:
    # y = -d:  t = 1 / d,  d(log t)/dy = 1 / d
    t = 1.0 / d
    return t, t


def _reverse_kl_pole_distance(t: Array) -> Array:
    return 1.0 / t


def _reverse_kl_pole_curvature(t: Array, dlog_t: Array) -> Array:
    # t = 1 / d:  d^2t/dd^2 = 2 d^-3 = t * l * 2 l  with  l = 1 / d
    return 2.0 * dlog_t


# --- Jensen-Shannon: g = (t log t - (1 + t) log((1 + t) / 2)) / 2 ------------------------


def _js_terms(pi: Array, q: Array) -> Array:
    # q g(p/q) = (p log(2p / (p + q)) + q log(2q / (p + q))) / 2: no ratio p/q is formed, and
    # log_ratio keeps both logarithms accurate where p ~ q (g'(1) = 0: there is no linear part).
    # The differences 2p - (p + q) = p - q and 2q - (p + q) = q - p are exact; from the rounded
    # p + q they would not be.
    total = pi + q
    diff = pi - q
    with np.errstate(invalid="ignore"):
        p_part = np.where(pi > 0, pi * log_ratio(2.0 * pi, total, diff), 0.0)
    return 0.5 * (p_part + q * log_ratio(2.0 * q, total, -diff))


def _js_g_prime(t: Array) -> Array:
    # g'(t) = log(2t / (1 + t)) / 2, written with log1p(1/t) for large t, where 2t/(1+t) -> 2.
    with np.errstate(divide="ignore"):
        small = 0.5 * (np.log(2.0 * t) - np.log1p(t))
        large = 0.5 * (LOG2 - np.log1p(1.0 / np.maximum(t, 1.0)))
    return np.where(t <= 1.0, small, large)


def _js_pole_inverse(d: Array) -> tuple[Array, Array]:
    # y = log(2)/2 - d:  2t/(1+t) = exp(2y)  <=>  t = 1 / expm1(2d); expm1 keeps t accurate
    # near the pole. d(log t)/dy = 2 (e + 1) t = 2 (1 + t).
    t = 1.0 / np.expm1(2.0 * d)
    return t, 2.0 * (1.0 + t)


def _js_pole_distance(t: Array) -> Array:
    return 0.5 * np.log1p(1.0 / t)


def _js_pole_curvature(t: Array, dlog_t: Array) -> Array:
    # l = 2 (1 + t) and dl/dy = 2 dt/dy = 2 t l, so d^2t/dd^2 = t (l^2 + 2 t l) = t l (2 + 4 t)
    return 2.0 + 4.0 * t


def _from_pole(sup: float, pole_inverse: Callable[[Array], tuple[Array, Array]]):
    """``(g')^{-1}(y)`` and ``dt/dy`` from the inverse written in the distance below the pole."""

    def inverse(y: Array) -> tuple[Array, Array]:
        t, dlog_t = pole_inverse(sup - y)
        return t, t * dlog_t

    return inverse


# --- no regulariser: the argmax rule of candidate-model games ------------------------------


def _none_terms(pi: Array, q: Array) -> Array:
    return np.zeros(np.broadcast_shapes(np.shape(pi), np.shape(q)))


def _none_subgradient(t: Array) -> tuple[Array, Array]:
    zero = np.zeros_like(t)
    return np.where(t > 0, zero, -np.inf), zero


def _argmax_closed_form(scores: Array, log_q: Array, q: Array, lam: float) -> ClosedForm:
    """Point mass on the best outcome; ties go to the first outcome in file order.

    This is the training rule of section 5 / appendix F over a finite set of trained models
    (any per-model cost is already folded into the scores). Any fixed tie rule keeps the
    affine-maximizer payment DSIC, since all maximisers have the same objective.
    """
    best = scores.argmax(axis=-1)
    pi = np.zeros_like(scores)
    pi[np.arange(scores.shape[0]), best] = 1.0
    s_max = scores[np.arange(scores.shape[0]), best]
    zeros = np.zeros(scores.shape[0])
    return ClosedForm(pi=pi, mu=s_max, nu=zeros, value=s_max, divergence=zeros)


def _argmax_optimal_value(scores: Array, log_q: Array, q: Array, lam: float) -> Array:
    """Optimal value only: the best score."""
    return scores.max(axis=-1)


KL = Divergence(
    name="kl",
    formula="lambda * t * log(t)",
    terms=_kl_terms,
    subgradient=_smooth(_kl_g_prime),
    g_prime=_kl_g_prime,
    g_prime_inverse=_kl_inverse,
    g_prime_at_zero=-np.inf,
    g_prime_sup=np.inf,
    g_prime_at_one=1.0,
    closed_form=_kl_closed_form,
    closed_form_value=_kl_optimal_value,
    gibbs_form=True,
    aliases=("kullback_leibler",),
)
CHI2 = Divergence(
    name="chi2",
    formula="lambda * (t - 1)^2",
    terms=_chi2_terms,
    subgradient=_chi2_subgradient,
    g_prime=lambda t: 2.0 * (t - 1.0),
    g_prime_inverse=_chi2_inverse,
    g_prime_at_zero=-2.0,
    g_prime_sup=np.inf,
    newton_power=-1.0,
    aliases=("chi_squared", "chi-squared"),
)
TV = Divergence(
    name="tv",
    formula="lambda * |t - 1|",
    terms=_tv_terms,
    subgradient=_tv_subgradient,
    g_prime=_tv_g_prime,
    g_prime_inverse=None,
    g_prime_at_zero=-1.0,
    g_prime_sup=1.0,
    closed_form=_tv_closed_form,
    closed_form_value=_tv_optimal_value,
    aliases=("total_variation",),
)
HELLINGER = Divergence(
    name="hellinger",
    formula="lambda * (sqrt(t) - 1)^2",
    terms=_hellinger_terms,
    subgradient=_smooth(_hellinger_g_prime),
    g_prime=_hellinger_g_prime,
    g_prime_inverse=_from_pole(1.0, _hellinger_pole_inverse),
    g_prime_at_zero=-np.inf,
    g_prime_sup=1.0,
    newton_power=2.0,
    pole_inverse=_hellinger_pole_inverse,
    pole_distance=_hellinger_pole_distance,
    pole_curvature=_hellinger_pole_curvature,
)
REVERSE_KL = Divergence(
    name="reverse_kl",
    formula="-lambda * log(t)",
    terms=_reverse_kl_terms,
    subgradient=_smooth(_reverse_kl_g_prime),
    g_prime=_reverse_kl_g_prime,
    g_prime_inverse=_from_pole(0.0, _reverse_kl_pole_inverse),
    g_prime_at_zero=-np.inf,
    g_prime_sup=0.0,
    g_prime_at_one=-1.0,
    newton_power=1.0,
    pole_inverse=_reverse_kl_pole_inverse,
    pole_distance=_reverse_kl_pole_distance,
    pole_curvature=_reverse_kl_pole_curvature,
    aliases=("reverse-kl",),
)
JS = Divergence(
    name="js",
    formula="lambda / 2 * (t * log(t) - (1 + t) * log((1 + t) / 2))",
    terms=_js_terms,
    subgradient=_smooth(_js_g_prime),
    g_prime=_js_g_prime,
    g_prime_inverse=_from_pole(0.5 * LOG2, _js_pole_inverse),
    g_prime_at_zero=-np.inf,
    g_prime_sup=0.5 * LOG2,
    newton_power=1.0,
    pole_inverse=_js_pole_inverse,
    pole_distance=_js_pole_distance,
    pole_curvature=_js_pole_curvature,
    aliases=("jensen_shannon",),
)

ARGMAX = Divergence(
    name="none",
    formula="0 (no regulariser: the best outcome, first in file order on ties)",
    terms=_none_terms,
    subgradient=_none_subgradient,
    g_prime=lambda t: np.zeros_like(t),
    g_prime_inverse=None,
    g_prime_at_zero=0.0,
    g_prime_sup=0.0,
    closed_form=_argmax_closed_form,
    closed_form_value=_argmax_optimal_value,
    point_mass=True,
    aliases=("argmax",),
)

#: Every divergence, in documentation order.
ALL_DIVERGENCES: tuple[Divergence, ...] = (KL, CHI2, TV, HELLINGER, REVERSE_KL, JS, ARGMAX)
#: Canonical name -> divergence.
DIVERGENCES: dict[str, Divergence] = {d.name: d for d in ALL_DIVERGENCES}
_ALIASES: dict[str, str] = {a: d.name for d in ALL_DIVERGENCES for a in (d.name, *d.aliases)}


def get_divergence(name: str | Divergence) -> Divergence:
    """Look a divergence up by name or alias; a :class:`Divergence` is returned unchanged.

    Raises
    ------
    ValueError
        for an unknown name, listing the valid ones.
    """
    return lookup("divergence", DIVERGENCES, Divergence, name, _ALIASES)
