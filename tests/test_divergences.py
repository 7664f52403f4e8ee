"""The regularisers of Definition 4.1: each ``Divergence`` against ``g`` written out here.

Every test runs over the whole registry (the ``divergence`` fixture). The reference ``g``
and ``g'`` below are typed from the table in ``rlhf_mech/core/_divergences.py`` (and Prop. 4.8
for KL and chi^2); derivatives are checked by the complex step ``Im g(t + ih) / h``, which
is exact to rounding and shares no code with the library.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import CLOSED_FORM_DIVERGENCES

from rlhf_mech.core import (
    ALL_DIVERGENCES,
    DIVERGENCES,
    Divergence,
    get_divergence,
)

LOG2 = math.log(2.0)


def _g_complex(name: str, t: np.ndarray) -> np.ndarray:
    """``g`` for complex ``t`` near the positive axis (for complex-step derivatives)."""
    if name == "kl":
        return t * np.log(t)
    if name == "chi2":
        return (t - 1.0) ** 2
    if name == "hellinger":
        return (np.sqrt(t) - 1.0) ** 2
    if name == "reverse_kl":
        return -np.log(t)
    if name == "js":
        return 0.5 * (t * np.log(t) - (1.0 + t) * np.log((1.0 + t) / 2.0))
    raise KeyError(name)


def g_reference(name: str, t: np.ndarray) -> np.ndarray:
    """``g(t)`` for real ``t > 0``."""
    if name == "tv":
        return np.abs(t - 1.0)
    if name == "none":
        return np.zeros_like(t)
    return _g_complex(name, t.astype(float))


def g_prime_reference(name: str, t: np.ndarray) -> np.ndarray:
    """``g'(t)`` by the complex step (TV: the right derivative, none: 0)."""
    if name == "tv":
        return np.where(t >= 1.0, 1.0, -1.0)
    if name == "none":
        return np.zeros_like(t)
    h = 1e-20 * t
    return _g_complex(name, t + 1j * h).imag / h


#: ``(g'(0+), sup g')`` from the module table.
LIMITS = {
    "kl": (-np.inf, np.inf),
    "chi2": (-2.0, np.inf),
    "tv": (-1.0, 1.0),
    "hellinger": (-np.inf, 1.0),
    "reverse_kl": (-np.inf, 0.0),
    "js": (-np.inf, 0.5 * LOG2),
    "none": (0.0, 0.0),
}

T_GRID = np.geomspace(1e-6, 1e6, 241)


def test_registry_names_and_aliases_are_unique() -> None:
    names = [d.name for d in ALL_DIVERGENCES]
    aliases = [a for d in ALL_DIVERGENCES for a in d.aliases]
    assert len(set(names)) == len(names)
    assert len(set(names + aliases)) == len(names) + len(aliases)
    assert list(DIVERGENCES) == names
    assert set(DIVERGENCES) == set(LIMITS)


def test_get_divergence_by_name_alias_and_object(divergence: str) -> None:
    div = DIVERGENCES[divergence]
    assert get_divergence(divergence) is div
    assert get_divergence(div) is div
    for alias in div.aliases:
        assert get_divergence(alias) is div


def test_get_divergence_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown divergence 'wasserstein'; expected one of kl, chi2, tv"):
        get_divergence("wasserstein")


def test_terms_equal_q_g_of_ratio_less_its_linear_part(divergence: str) -> None:
    """``terms(pi, q) = q (g(t) - g'(1) (t - 1))``, ``t = pi / q``: summed over distributions
    (``sum pi = sum q``) the definition of D_f above Definition 4.1."""
    div = DIVERGENCES[divergence]
    rng = np.random.default_rng(1)
    q = rng.uniform(0.01, 1.0, size=500)
    t = np.geomspace(1e-4, 1e4, 500)
    rng.shuffle(t)
    expected = q * (g_reference(divergence, t) - div.g_prime_at_one * (t - 1.0))
    np.testing.assert_allclose(div.terms(q * t, q), expected, rtol=1e-12, atol=1e-15)


def test_terms_vanish_at_pi_init_and_f_of_one_is_zero(divergence: str) -> None:
    """``f(1) = 0`` (Definition 4.1): ``D_f(q || q) = 0``."""
    div = DIVERGENCES[divergence]
    q = np.array([0.1, 0.2, 0.3, 0.4, 1e-300])
    assert np.all(div.terms(q, q) == 0.0)
    assert div.value(q, q, 3.0) == 0.0


def test_terms_finite_at_boundary_and_tiny_prior(divergence: str) -> None:
    """``pi = 0`` and ``q`` down to 1e-300 give finite terms, except where ``g(0) = inf``."""
    div = DIVERGENCES[divergence]
    q = np.array([0.5, 1e-300, 1e-300, 0.5])
    pi = np.array([0.0, 0.0, 0.5, 0.5])
    terms = div.terms(pi, q)
    if divergence == "reverse_kl":  # g(0) = -log 0 = +inf: D(pi || q) = inf off the support
        assert np.isinf(terms[0]) and terms[0] > 0
        terms = terms[2:]
    assert np.all(np.isfinite(terms))
    # q (g(0) + g'(1)) with g(0) = lim_{t -> 0} g(t) (the linear part at t = 0 is g'(1) (0 - 1))
    g0 = {"kl": 0.0, "chi2": 1.0, "tv": 1.0, "hellinger": 1.0, "js": 0.5 * LOG2, "none": 0.0}
    if divergence in g0:
        expected = 0.5 * (g0[divergence] + div.g_prime_at_one)
        np.testing.assert_allclose(div.terms(pi[:1], q[:1]), expected, rtol=1e-15)


def test_divergence_is_nonnegative_on_the_simplex(divergence: str) -> None:
    """Jensen: ``D_g(p || q) >= g(1) = 0`` for distributions p, q."""
    div = DIVERGENCES[divergence]
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(7), size=300)
    q = rng.dirichlet(np.ones(7), size=300)
    values = div.value(p, q, 1.0)
    assert values.shape == (300,)
    assert np.all(values >= -1e-15)


def test_value_is_lambda_times_sum_of_terms(divergence: str) -> None:
    div = DIVERGENCES[divergence]
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(5), size=(2, 4))
    np.testing.assert_array_equal(div.value(p, q, 2.5), 2.5 * div.terms(p, q).sum(axis=-1))


def test_g_prime_matches_complex_step(divergence: str) -> None:
    div = DIVERGENCES[divergence]
    np.testing.assert_allclose(
        div.g_prime(T_GRID), g_prime_reference(divergence, T_GRID), rtol=1e-13, atol=1e-15
    )


def test_g_prime_limits_are_documented(divergence: str) -> None:
    """``g'(0+)`` and ``sup g'`` as in the module table; ``g'`` is non-decreasing (g convex)."""
    div = DIVERGENCES[divergence]
    at_zero, sup = LIMITS[divergence]
    assert div.g_prime_at_zero == at_zero
    assert div.g_prime_sup == sup
    values = div.g_prime(T_GRID)
    assert np.all(np.diff(values) >= 0.0)
    assert np.all(values >= at_zero) and np.all(values <= sup)
    if np.isfinite(at_zero):
        assert div.g_prime(np.array([1e-300]))[0] == pytest.approx(at_zero, abs=1e-12)
    if np.isfinite(sup):
        assert div.g_prime(np.array([1e300]))[0] == pytest.approx(sup, abs=1e-12)


def test_subgradient_contains_g_prime_and_the_boundary(divergence: str) -> None:
    """``∂g(t)`` contains ``g'(t)`` for ``t > 0``; at ``t = 0`` it is ``(-inf, g'(0+)]``."""
    div = DIVERGENCES[divergence]
    lo, hi = div.subgradient(T_GRID)
    d = div.g_prime(T_GRID)
    assert np.all(lo <= d) and np.all(d <= hi)
    lo0, hi0 = div.subgradient(np.array([0.0]))
    assert lo0[0] == -np.inf
    assert hi0[0] == pytest.approx(div.g_prime_at_zero) or hi0[0] == -np.inf == div.g_prime_at_zero


def test_tv_subgradient_at_one_is_the_whole_interval() -> None:
    lo, hi = DIVERGENCES["tv"].subgradient(np.array([0.5, 1.0, 2.0]))
    np.testing.assert_array_equal(lo, [-1.0, -1.0, 1.0])
    np.testing.assert_array_equal(hi, [-1.0, 1.0, 1.0])


def test_g_prime_inverse_round_trip(newton_divergence: str) -> None:
    """``t(y) = (g')^{-1}(y)`` solves ``g'(t) = y`` and ``dt/dy = 1 / g''(t)`` (eq. OPT)."""
    div = DIVERGENCES[newton_divergence]
    lo = max(div.g_prime_at_zero, -30.0)
    hi = min(div.g_prime_sup, 30.0)
    y = np.linspace(lo, hi, 403)[1:-1]
    t, dt = div.g_prime_inverse(y)
    assert np.all(t > 0)
    np.testing.assert_allclose(div.g_prime(t), y, rtol=1e-12, atol=1e-12)
    # dt/dy by the complex step on g'(t) = y: dy/dt = Im g'(t + ih)/h with g' itself complex
    h = 1e-20 * t
    second = (g_prime_reference_complex(newton_divergence, t + 1j * h)).imag / h
    np.testing.assert_allclose(dt, 1.0 / second, rtol=1e-12)


def g_prime_reference_complex(name: str, t: np.ndarray) -> np.ndarray:
    """``g'(t)`` in closed form for complex ``t`` (to take ``g''`` by the complex step)."""
    return {
        "kl": lambda u: np.log(u) + 1.0,
        "chi2": lambda u: 2.0 * (u - 1.0),
        "hellinger": lambda u: 1.0 - 1.0 / np.sqrt(u),
        "reverse_kl": lambda u: -1.0 / u,
        "js": lambda u: 0.5 * np.log(2.0 * u / (1.0 + u)),
    }[name](t)


def test_g_prime_inverse_accurate_near_the_pole() -> None:
    """JS and Hellinger keep ``t`` accurate as ``y`` approaches ``sup g'`` (no cancellation
    beyond the one in forming ``y``: the reference uses the exact ``sup g' - y``)."""
    delta = np.array([1e-3, 1e-8, 1e-12])
    y = 0.5 * LOG2 - delta
    gap = 0.5 * LOG2 - y  # exact (Sterbenz)
    t, _ = DIVERGENCES["js"].g_prime_inverse(y)
    # 2t/(1+t) = exp(2y) = 2 exp(-2 gap)  =>  t = 1 / expm1(2 gap)
    np.testing.assert_allclose(t, 1.0 / np.expm1(2.0 * gap), rtol=1e-13)
    y = 1.0 - delta
    gap = 1.0 - y
    t, _ = DIVERGENCES["hellinger"].g_prime_inverse(y)
    np.testing.assert_allclose(t, 1.0 / gap**2, rtol=1e-13)


def test_closed_form_and_inverse_fields(divergence: str) -> None:
    """TV and ``none`` have no inverse of g' and must offer a closed form; KL offers both."""
    div = DIVERGENCES[divergence]
    assert isinstance(div, Divergence)
    if divergence in ("tv", "none"):
        assert div.g_prime_inverse is None
        assert div.closed_form is not None
    else:
        assert div.g_prime_inverse is not None
    assert (div.closed_form is not None) == (divergence in ("kl", "tv", "none"))


@pytest.mark.parametrize("closed", CLOSED_FORM_DIVERGENCES)
def test_closed_form_value_is_consistent(closed: str) -> None:
    """``value = <pi, s> - divergence`` and ``divergence = lam D_g(pi || q)`` for closed forms."""
    div = DIVERGENCES[closed]
    rng = np.random.default_rng(4)
    q = rng.dirichlet(np.ones(6))
    scores = rng.uniform(0.0, 5.0, size=(10, 6))
    sol = div.closed_form(scores, np.log(q), q, 0.7)
    np.testing.assert_allclose(sol.pi.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(sol.divergence, div.value(sol.pi, q, 0.7), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        sol.value, np.einsum("bm,bm->b", sol.pi, scores) - sol.divergence, rtol=1e-14, atol=1e-15
    )
    np.testing.assert_allclose(sol.nu, (sol.mu - scores.max(axis=1)) / 0.7, rtol=1e-12, atol=1e-12)
