"""Exact arithmetic (mpmath, 80 digits) for SW-Max (Definition 4.1) and eq. (1): the reference
the float solvers are checked against where rounding could hide an error (tests/test_numerics.py).

The multiplier is found in the log of the distance below the pole for Hellinger, reverse KL
and JS (bisection, then Illinois: 1e-150 is found as easily as 1); chi^2 is solved exactly
on its active set (it is piecewise linear); KL is the Gibbs form. ``pi_init`` is normalised
exactly first: the float games' ``sum q`` is 1 to rounding, and the reference answers the
problem the file means.
"""

from __future__ import annotations

from collections.abc import Sequence

import mpmath as mp

mp.mp.dps = 80
LOG2 = mp.log(2)

#: t = (g')^{-1}(sup g' - d) as a function of the distance d below the pole.
POLE = {"reverse_kl": lambda d: 1 / d, "hellinger": lambda d: 1 / d**2, "js": lambda d: 1 / mp.expm1(2 * d)}


def g(name: str, t: mp.mpf) -> mp.mpf:
    """The generator g of the divergence ``name`` (``f = lambda g``)."""
    if name == "kl":
        return t * mp.log(t) if t > 0 else mp.mpf(0)
    if name == "chi2":
        return (t - 1) ** 2
    if name == "hellinger":
        return (mp.sqrt(t) - 1) ** 2
    if name == "reverse_kl":
        return -mp.log(t)
    if name == "js":
        return (t * mp.log(t) - (1 + t) * mp.log((1 + t) / 2)) / 2 if t > 0 else LOG2 / 2
    raise ValueError(name)


def _root(decreasing, a: mp.mpf, b: mp.mpf) -> mp.mpf:
    """The root of a decreasing function in ``[a, b]``: bisection until Illinois takes over."""
    for _ in range(60):  # to a bracket where the function is smooth enough for the secant
        mid = (a + b) / 2
        a, b = (mid, b) if decreasing(mid) > 0 else (a, mid)
    return mp.findroot(decreasing, (a, b), solver="illinois", tol=mp.mpf(10) ** (-70), maxsteps=500)


def ratios(name: str, s: Sequence[mp.mpf], q: Sequence[mp.mpf], lam: mp.mpf) -> list[mp.mpf]:
    """``t = pi / q`` at the maximiser (eq. OPT), normalised so that ``sum q t = 1``."""
    smax = max(s)
    gap = [(smax - x) / lam for x in s]
    if name == "kl":
        t = [mp.e ** (-x) for x in gap]
    elif name in POLE:
        inverse = POLE[name]

        def excess(log_d: mp.mpf) -> mp.mpf:
            return sum(qi * inverse(mp.e**log_d + x) for qi, x in zip(q, gap, strict=True)) - 1

        d = mp.e ** _root(excess, mp.mpf(-1000), mp.log(4))
        t = [inverse(d + x) for x in gap]
    else:  # chi2: t = max(0, 1 - (gap + z) / 2), piecewise linear: exact on its active set
        order = sorted(range(len(gap)), key=lambda j: gap[j])
        mass = first = mp.mpf(0)
        for k, j in enumerate(order):
            mass, first = mass + q[j], first + q[j] * gap[j]
            z = (2 * (mass - 1) - first) / mass  # sum over the first k: q (1 - (gap + z) / 2) = 1
            nxt = order[k + 1] if k + 1 < len(order) else None
            if nxt is None or 1 - (gap[nxt] + z) / 2 <= 0:
                break
        t = [max(mp.mpf(0), 1 - (x + z) / 2) for x in gap]
    total = sum(qi * ti for qi, ti in zip(q, t, strict=True))
    return [ti / total for ti in t]


def value(name: str, s: Sequence[mp.mpf], q: Sequence[mp.mpf], lam: mp.mpf) -> tuple[mp.mpf, list[mp.mpf]]:
    """The optimal value ``<pi, s> - lambda D_g(pi || q)`` and ``pi``."""
    t = ratios(name, s, q, lam)
    pi = [qi * ti for qi, ti in zip(q, t, strict=True)]
    divergence = sum(qi * g(name, ti) for qi, ti in zip(q, t, strict=True))
    return sum(p * x for p, x in zip(pi, s, strict=True)) - lam * divergence, pi


def payments(name: str, rewards, sizes, pi_init, lam: float) -> tuple[list[float], list[float]]:
    """Eq. (1) for every group of a truthful profile, and ``pi``, in exact arithmetic (as floats)."""
    q = [mp.mpf(x) for x in pi_init]
    total = sum(q)
    q = [x / total for x in q]
    rm = [[mp.mpf(x) for x in row] for row in rewards]
    w = [mp.mpf(x) for x in sizes]
    big_lam = mp.mpf(lam)
    n, m = len(w), len(q)
    s = [sum(w[i] * rm[i][j] for i in range(n)) for j in range(m)]
    v, pi = value(name, s, q, big_lam)
    out = []
    for i in range(n):
        v_i, _ = value(name, [s[j] - w[i] * rm[i][j] for j in range(m)], q, big_lam)
        out.append(float(v_i - (v - w[i] * sum(pi[j] * rm[i][j] for j in range(m)))))
    return out, [float(p) for p in pi]
