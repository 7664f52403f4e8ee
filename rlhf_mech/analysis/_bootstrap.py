r"""Intervals for a sampled game's figures: a bootstrap that resamples as the data were drawn.

A sampled game (``sampled:`` in its file; every trainer-log import) is the empirical
mechanism, its figures plug-in estimates (:mod:`~rlhf_mech.core._resample`; section 4.3 of
the paper names the source: "the calculation of valuation ... requires sampling sequences
from LLM", and Theorem 4.12 bounds its effect on incentives). :func:`bootstrap` puts an
estimate, a standard error and an interval on every figure.

Design (:data:`DESIGNS`): ``responses`` resamples each prompt's ``N_x`` responses with
replacement, the prompts fixed (the interval is for *these* prompts' population figures);
``two_stage`` first draws ``P`` prompts with replacement (clusters: the prompts are a draw
from a super-population, as LLM evaluations treat them, Miller 2024, arXiv 2411.00640),
then each drawn prompt's responses, the figure of a replicate being the prompt-weighted mean
``sum_s q_{x_s} f_s / sum_s q_{x_s}``. A one-prompt game has only ``responses``.

Each replicate is the same outcomes with another ``pi_init`` row, so all replicates are one
batch (:class:`~rlhf_mech.core._resample.Replicates`: the profile kernel, or for KL the Gibbs
shortcut checked against it), :data:`CHUNK_REPLICATES` replicates at a time (memory bounded;
the draws depend on the seed and the chunk size only).

Intervals (:data:`INTERVALS`), for replicates ``theta*_b`` of an estimate ``theta``:

* ``percentile``: the ``alpha/2`` and ``1 - alpha/2`` quantiles of ``theta*``;
* ``basic``: ``2 theta - q_{1 - alpha/2}``, ``2 theta - q_{alpha/2}`` (corrects a bias the
  replicates reproduce, e.g. Jensen's in the log-partition terms);
* ``bca``: Efron's bias-corrected and accelerated percentiles (Efron 1987),
  ``z0 = Phi^{-1}(#{theta* < theta} / B)`` (ties counted half) and the acceleration
  ``a = sum U^3 / (6 (sum U^2)^{3/2})`` from jackknife influence values ``U``: of the
  responses (``N_x - 1``) ``(mean_j f_x^{(-j)} - f_x^{(-j)}) q_x / N_x`` (each prompt a
  stratum, Efron and Tibshirani 1993, 14.3), or of the prompts for ``two_stage``.

Bias: the delete-one-response jackknife ``b = sum_x q_x (N_x - 1)(mean_j f_x^{(-j)} - f_x)``
estimates the plug-in's bias (the log-partition term ``lambda log E[exp(s/lambda)]`` is biased
low at small ``N``, Jensen). ``bias_correct`` subtracts it from the estimate and the interval;
it is off by default, applied only where the coverage benchmark shows it helps
(docs/uncertainty.md).

What is reused from scipy: ``scipy.special.ndtr``/``ndtri`` for ``Phi``. ``scipy.stats.bootstrap``
computes the same percentile, basic and BCa intervals for one sample: it resamples the data
and calls a statistic on each resample, with a jackknife over single observations for BCa;
our statistic is a whole mechanism solved on each resample, of two levels (prompts, then
responses), which it cannot express, and it would call the solver once per replicate instead
of once per batch. The formulas are checked against it on a one-level case
(tests/test_bootstrap.py).

Diagnostics (:class:`Diagnostics`): the Kish effective sample size of the fine-tuned
distribution relative to the samples, ``ESS = (sum w)^2 / sum w^2`` with ``w = pi* / pi_init``
per sample (``1 / sum_j pi_j^2`` over a prompt's slots), per prompt and pooled over all
samples (``w = N_x pi_{x,j}``), taken as the smallest over the truthful and reported profiles
and every leave-one-out problem of eq. (1); and the share of the fine-tuned mass on the top
1% of samples. :data:`ESS_WARN` is the threshold below which intervals are not to be trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtr, ndtri

from rlhf_mech.analysis._audit import DEFAULT_TOL, GameAudit, GroupAudit
from rlhf_mech.analysis._objective import SearchResult
from rlhf_mech.analysis._sweep import SweepResult
from rlhf_mech.core import ESTIMANDS, NONE, Estimand, Game, Profile, PromptGame, Samples
from rlhf_mech.core._internal import (
    GROUP_FIGURES,
    PROFILE_FIGURES,
    Replicates,
    by_name,
    leave_one_out_distributions,
    prepare_replicates,
    rows_per_chunk,
    samples_of,
    slot_figures,
)

Array = np.ndarray

#: Default number of bootstrap replicates.
DEFAULT_RESAMPLES = 1000
#: Replicates whose rows are solved in one pass (bounds memory; part of the seed's meaning).
CHUNK_REPLICATES = 64
#: The effective sample size (pooled, or the mean per prompt) below which intervals are
#: flagged as untrustworthy: the lowest edge of the bins of benchmarks/coverage.py
#: ``--summarise`` above which every quantity's 95% basic interval covered at least 0.93
#: within its standard error (43 settings, KL and chi^2, 1 and 8 prompts, 100-300
#: replications each; ESS [100, 150): the no-payment gain 0.92 over 1,562 replications;
#: [150, 250): 0.94-0.95; docs/uncertainty.md).
ESS_WARN = 150.0
#: The share of the fine-tuned mass on the top 1% of samples above which intervals are
#: flagged.
TOP_SHARE_WARN = 0.5
#: A figure whose jackknife bias exceeds this many standard errors is flagged: a normal
#: interval off-centre by 0.3 se covers 0.94 at nominal 0.95, by 0.5 se 0.92. On games of many
#: prompts each prompt's plug-in bias adds up while the standard error shrinks as 1/sqrt(P)
#: (measured: KL, lambda 1, 20 prompts of 128 samples, ESS 55: payments covered 0.89).
BIAS_WARN = 0.3


@dataclass(frozen=True)
class Design:
    """How replicates are drawn (one record; module docstring).

    Attributes
    ----------
    name : the option's value; description : the design in words.
    clusters : whether prompts are drawn with replacement before their responses.
    """

    name: str
    description: str
    clusters: bool


DESIGNS: dict[str, Design] = by_name(
    Design("responses", "each prompt's responses resampled, the prompts fixed", False),
    Design(
        "two_stage",
        "prompts resampled as clusters, then each drawn prompt's responses",
        True,
    ),
)

Interval = Callable[[Array, Array, Array, float], tuple[Array, Array]]


def _percentile(replicates: Array, estimate: Array, acceleration: Array, level: float) -> tuple[Array, Array]:
    alpha = (1.0 - level) / 2.0
    return np.quantile(replicates, alpha, axis=0), np.quantile(replicates, 1.0 - alpha, axis=0)


def _basic(replicates: Array, estimate: Array, acceleration: Array, level: float) -> tuple[Array, Array]:
    low, high = _percentile(replicates, estimate, acceleration, level)
    return 2.0 * estimate - high, 2.0 * estimate - low


def _bca(replicates: Array, estimate: Array, acceleration: Array, level: float) -> tuple[Array, Array]:
    B = replicates.shape[0]
    below = (replicates < estimate).sum(axis=0) + 0.5 * (replicates == estimate).sum(axis=0)
    # a share of 0 or 1 has no finite z0: clipped to the replicates' resolution
    z0 = ndtri(np.clip(below / B, 0.5 / B, 1.0 - 0.5 / B))
    bounds = []
    for z in (ndtri((1.0 - level) / 2.0), ndtri((1.0 + level) / 2.0)):
        shifted = z0 + z
        bounds.append(ndtr(z0 + shifted / (1.0 - acceleration * shifted)))
    # each figure has its own quantile levels: one quantile per column
    low, high = (
        np.array([np.quantile(replicates[:, d], q[d]) for d in range(replicates.shape[1])]) for q in bounds
    )
    return low, high


INTERVALS: dict[str, Interval] = {"percentile": _percentile, "basic": _basic, "bca": _bca}


@dataclass(frozen=True)
class BootstrapOptions:
    """What :func:`bootstrap` does.

    Attributes
    ----------
    level : the intervals' nominal coverage (e.g. 0.95); resamples : replicates ``B``;
    seed : of the draws; interval : a key of :data:`INTERVALS` (default ``basic``: it
    corrects the plug-in bias that the replicates reproduce, which percentile intervals
    double; measured best on games of many prompts, docs/uncertainty.md); design : a key of
    :data:`DESIGNS` (``None``: ``two_stage`` for many prompts, ``responses`` for one);
    estimand : a key of :data:`~rlhf_mech.core._resample.ESTIMANDS`; bias_correct : subtract
    the jackknife bias from estimate and interval.
    """

    level: float = 0.95
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    interval: str = "basic"
    design: str | None = None
    estimand: str = "fixed"
    bias_correct: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"`level` must be in (0, 1), got {self.level!r}")
        if self.resamples < 2:
            raise ValueError(f"`resamples` must be at least 2, got {self.resamples!r}")
        for label, table in (("interval", INTERVALS), ("estimand", ESTIMANDS)):
            if getattr(self, label) not in table:
                raise ValueError(f"`{label}` must be one of {', '.join(table)}, got {getattr(self, label)!r}")
        if self.design is not None and self.design not in DESIGNS:
            raise ValueError(f"`design` must be one of {', '.join(DESIGNS)}, got {self.design!r}")


@dataclass(frozen=True)
class Misreported:
    """A profile in which one group misreports, and the profile its gain is measured from.

    Attributes
    ----------
    label : names the profile in the output; group : the group that misreports;
    reports : the profile (over the game's flat outcome axis); baseline : the same profile
        with the group truthful (the truth where the others are truthful);
    baseline_label : names the baseline's figures (misreports that give the same label share
        them); ``""``: ``truthful`` where the baseline is the truth, else ``LABEL: baseline``.
    """

    label: str
    group: int
    reports: Profile
    baseline: Profile
    baseline_label: str = ""


#: Where an interval lies relative to 0 (a verdict's three cases).
ABOVE, STRADDLES, BELOW = "above", "straddles", "below"


@dataclass(frozen=True)
class Estimated:
    """One figure of a sampled game: a plug-in estimate with its sampling error.

    Attributes
    ----------
    profile : the profile it belongs to (``truthful``, ``reported``, a misreport's label);
    quantity : ``valuation``, ``payment``, ``utility``, ``social_welfare``, ``asw`` or
        ``gain``; group : the group (``""`` for a profile's SW and ASW).
    estimate : the plug-in value (minus the jackknife bias where corrected); se : the
    replicates' standard deviation; low, high : the interval; bias : the jackknife bias.
    """

    profile: str
    quantity: str
    group: str
    estimate: float
    se: float
    low: float
    high: float
    bias: float

    @property
    def biased(self) -> bool:
        """Whether the jackknife bias exceeds :data:`BIAS_WARN` standard errors (the interval
        may be off-centre by a share of its width that costs coverage) and the audit's
        tolerance (a bias of rounding size is none)."""
        return abs(self.bias) > max(BIAS_WARN * self.se, DEFAULT_TOL)

    @property
    def side(self) -> str:
        """Where the interval lies relative to 0 (beyond the audit's tolerance
        :data:`~rlhf_mech.analysis.DEFAULT_TOL`, so that rounding is no verdict):
        :data:`ABOVE`, :data:`BELOW` or :data:`STRADDLES`."""
        return ABOVE if self.low > DEFAULT_TOL else BELOW if self.high < -DEFAULT_TOL else STRADDLES


@dataclass(frozen=True)
class Diagnostics:
    """When not to trust the intervals (module docstring).

    Attributes
    ----------
    ess : (P,) each prompt's Kish ESS of the fine-tuned distributions (the smallest over the
        profiles and the leave-one-out problems); samples : (P,) its ``N_x``;
    pooled_ess : the ESS pooled over every sample (of ``sum_x N_x``);
    top_share : (P,) the fine-tuned mass on a prompt's top 1% of samples (at least one);
    pooled_top_share : the same, pooled; warn : whether the intervals are flagged.
    """

    ess: Array
    samples: Array
    pooled_ess: float
    top_share: Array
    pooled_top_share: float

    @property
    def relative_ess(self) -> Array:
        """(P,) ``ESS / N_x``."""
        return self.ess / self.samples

    @property
    def pooled_relative_ess(self) -> float:
        return self.pooled_ess / float(self.samples.sum())

    @property
    def mean_ess(self) -> float:
        """The per-prompt ESS averaged over the prompts: a prompt's plug-in bias comes from its
        own few effective samples and does not average out over prompts (measured:
        benchmarks/coverage.py), so the warning looks at this, not only at the pooled ESS."""
        return float(self.ess.mean())

    @property
    def warn(self) -> bool:
        """Below :data:`ESS_WARN` pooled or mean per-prompt ESS, or above
        :data:`TOP_SHARE_WARN` of the mass on the top 1% of the samples."""
        return bool(min(self.pooled_ess, self.mean_ess) < ESS_WARN or self.pooled_top_share > TOP_SHARE_WARN)


@dataclass(frozen=True)
class SamplingBound:
    """Theorem 4.12 with the valuations' estimated sampling error, for one group.

    A sampled game's mechanism sees valuations estimated from samples. Where they are within
    ``eps`` of the population's at the fine-tuned models compared (``|v_i(theta; rm^) -
    v_i(theta; rm)| <= eps``, what the proof's steps (1) and (3) use of the theorem's
    ``max_x |rm^_i(x) - rm_i(x)| <= eps``), no misreport gains group ``i`` more than
    ``2 w_i eps`` (SW-Max training, the affine maximizer's payment). ``eps`` is estimated as
    the widest half-interval of the group's valuation over the audited profiles (the
    truthful one and each best misreport's): it holds with about the intervals' level.

    Attributes
    ----------
    group : its name; size : its true size ``w_i``; eps : the estimated sampling error of its
    valuation; bound : ``2 w_i eps``.
    """

    group: str
    size: float
    eps: float
    bound: float


@dataclass(frozen=True)
class Uncertainty:
    """A sampled game's figures with their sampling error (:func:`bootstrap`).

    Attributes
    ----------
    options : how they were computed; design : the design used; estimand : what population
    quantity the intervals are for; figures : every figure; diagnostics : when not to trust
    them; prompts, samples : the game's number of prompts and of samples.
    replicates : (B, D) every replicate of the figures, in the order of ``figures``, and
    acceleration : (D,) BCa's: another interval of :data:`INTERVALS` of the same draws
    (benchmarks/coverage.py compares them) without drawing again.
    bounds : an audit's :class:`SamplingBound` per group, where Theorem 4.12 applies.
    """

    options: BootstrapOptions
    design: Design
    estimand: Estimand
    figures: tuple[Estimated, ...]
    diagnostics: Diagnostics
    prompts: int
    samples: int
    replicates: Array
    acceleration: Array
    bounds: tuple[SamplingBound, ...] = ()

    def interval(self, name: str) -> tuple[Array, Array]:
        """(D,) lower and upper ends of interval ``name`` (:data:`INTERVALS`) of the same
        replicates, before any bias correction."""
        estimate = np.array([f.estimate for f in self.figures])
        if self.options.bias_correct:
            estimate = estimate + np.array([f.bias for f in self.figures])
        return INTERVALS[name](self.replicates, estimate, self.acceleration, self.options.level)

    def find(self, profile: str, quantity: str, group: str = "") -> Estimated:
        """The figure of ``profile``, ``quantity`` and ``group``."""
        for figure in self.figures:
            if (figure.profile, figure.quantity, figure.group) == (profile, quantity, group):
                return figure
        raise KeyError((profile, quantity, group))


_SINGULAR = {"valuations": "valuation", "payments": "payment", "utilities": "utility"}


def _labels(game: PromptGame, profiles: Sequence[str]) -> list[tuple[str, str, str]]:
    """(profile, quantity, group) of every entry of a row of statistics."""
    out = []
    for profile in profiles:
        for quantity in GROUP_FIGURES:
            out += [(profile, _SINGULAR[quantity], g) for g in game.group_names]
        out += [(profile, quantity, "") for quantity in PROFILE_FIGURES]
    return out


def _row_stats(figures_by_profile: Sequence[object], weights: Array | None = None) -> Array:
    """(R, D) the statistics of rows: per profile, every group's valuation, payment and
    utility, then SW and ASW; with ``weights`` (C, P), rows of ``C`` replicates of ``P``
    prompts each, (C, D) each replicate's weighted means (each figure reduced before it is
    placed: one pass over the rows)."""
    parts = []
    for fig in figures_by_profile:
        parts += [getattr(fig, name) for name in GROUP_FIGURES]
        parts += [np.asarray(getattr(fig, name))[:, None] for name in PROFILE_FIGURES]
    if weights is not None:
        C, P = weights.shape
        parts = [np.einsum("cp,cpk->ck", weights, part.reshape(C, P, -1)) for part in parts]
    return np.concatenate(parts, axis=1)


def _rows(profiles: Replicates, prompts: Array, slots: Array, weights: Array | None = None) -> Array:
    """(R, D) the statistics of rows of drawn slots, every profile on the same draws (paired);
    with ``weights``, each replicate's weighted means (:func:`_row_stats`)."""
    return _row_stats(profiles.figures(prompts, slots), weights)


def _per_prompt(profiles: Replicates) -> Array:
    """(P, D) each prompt's statistics on its own draw."""
    samples = profiles.samples
    out = None
    for cls in samples.classes():
        stats = _rows(profiles, cls, samples.own(cls))
        out = np.empty((samples.game.n_prompts, stats.shape[1])) if out is None else out
        out[cls] = stats
    assert out is not None
    return out


def _jackknife(profiles: Replicates, own: Array) -> tuple[Array, Array]:
    """The delete-one-response jackknife: (P, D) each prompt's bias ``(N - 1)(mean_j f^{(-j)}
    - f)`` and the (S, D) influence values ``(N - 1)(mean_j f^{(-j)} - f^{(-j)})`` of every
    slot (zero for prompts of one sample, which have no jackknife)."""
    samples = profiles.samples
    P, D = own.shape
    bias = np.zeros((P, D))
    influence = np.zeros((int(samples.offsets[-1]), D))
    for cls in samples.classes():
        N = int(samples.sizes[cls[0]])
        if N < 2:
            continue
        # row j of a prompt leaves out its slot j: (N, N - 1) positions into its own slots
        left = np.array([np.delete(np.arange(N), j) for j in range(N)])
        for start in range(0, cls.size, rows_per_chunk(N * N)):
            part = cls[start : start + rows_per_chunk(N * N)]
            full = samples.own(part)  # (C, N)
            slots = full[:, left].reshape(-1, N - 1)
            values = _rows(profiles, np.repeat(part, N), slots)
            values = values.reshape(part.size, N, D)
            mean = values.mean(axis=1)
            bias[part] = (N - 1) * (mean - own[part])
            influence[full.ravel()] = ((N - 1) * (mean[:, None, :] - values)).reshape(-1, D)
    return bias, influence


def _acceleration(samples: Samples, design: Design, own: Array, influence: Array) -> Array:
    """BCa's acceleration from jackknife influence values (module docstring)."""
    q = samples.game.weights
    P = samples.game.n_prompts
    if design.clusters and P > 1:
        theta = q @ own
        leave = (theta[None, :] - q[:, None] * own) / (1.0 - q[:, None])
        u = (P - 1) * (leave.mean(axis=0) - leave)
    else:
        scale = np.repeat(q / samples.sizes, samples.sizes)[:, None]
        u = influence * scale
    u2 = u * u  # products, not powers: a float power is 10x slower
    squares = u2.sum(axis=0)
    cubes = (u2 * u).sum(axis=0)
    return np.divide(cubes, 6.0 * squares**1.5, out=np.zeros_like(squares), where=squares > 0)


def _draw(
    rng: np.random.Generator, samples: Samples, design: Design, count: int
) -> tuple[Array, dict[int, tuple[Array, Array]]]:
    """``count`` replicates: (count, P) the prompt of every slot of a replicate, and per
    sample size ``N`` the flat rows (into count x P) with ``N`` samples and their drawn
    slots (rows, N)."""
    P = samples.game.n_prompts
    prompts = (
        rng.integers(0, P, (count, P)) if design.clusters and P > 1 else np.tile(np.arange(P), (count, 1))
    )
    flat = prompts.ravel()
    sizes = samples.sizes[flat]
    rows: dict[int, tuple[Array, Array]] = {}
    # 32-bit slots where they fit: half the time of drawing and summing 64-bit ones
    index = np.int32 if samples.offsets[-1] < np.iinfo(np.int32).max else np.int64
    for N in np.unique(sizes):
        where = np.flatnonzero(sizes == N)
        draws = rng.integers(0, int(N), (where.size, int(N)), dtype=index)
        rows[int(N)] = (where, samples.offsets[flat[where]].astype(index)[:, None] + draws)
    return prompts, rows


def _replicates(profiles: Replicates, design: Design, B: int, seed: int, D: int) -> Array:
    """(B, D) the replicates' statistics, :data:`CHUNK_REPLICATES` at a time."""
    samples = profiles.samples
    rng = np.random.default_rng(seed)
    q = samples.game.weights
    out = np.empty((B, D))
    for start in range(0, B, CHUNK_REPLICATES):
        count = min(CHUNK_REPLICATES, B - start)
        prompts, rows = _draw(rng, samples, design, count)
        flat = prompts.ravel()
        weights = q[prompts]  # (count, P): a replicate's figure is its weighted prompt mean
        weights = weights / weights.sum(axis=1, keepdims=True)
        if len(rows) == 1:  # every prompt of one size: the rows in order
            ((_, slots),) = rows.values()
            out[start : start + count] = _rows(profiles, flat, slots, weights)
            continue
        stats = np.empty((flat.size, D))
        for where, slots in rows.values():
            stats[where] = _rows(profiles, flat[where], slots)
        out[start : start + count] = np.einsum("bp,bpd->bd", weights, stats.reshape(count, -1, D))
    return out


def _kish(pi: Array) -> Array:
    """Kish ESS ``1 / sum pi^2`` of distributions over equally likely samples (last axis)."""
    return 1.0 / np.sum(pi**2, axis=-1)


def _top_share(pi: Array, N: int) -> Array:
    k = max(1, int(np.ceil(N / 100)))
    return np.sort(pi, axis=-1)[..., -k:].sum(axis=-1)


def diagnostics(samples: Samples, profiles: Sequence[Profile], estimand: Estimand) -> Diagnostics:
    """The effective sample sizes and top-1% shares of the fine-tuned distributions (every
    profile and each of its leave-one-out problems), per prompt and pooled."""
    game = samples.game
    P = game.n_prompts
    ess, top = np.empty(P), np.empty(P)
    pooled_mass = np.empty(int(samples.offsets[-1]))  # the worst prompt's by ESS, q-weighted
    for cls in samples.classes():
        N = int(samples.sizes[cls[0]])
        own = samples.own(cls)
        dists = [slot_figures(samples, cls, own, p, estimand, distributions=True)[1] for p in profiles]
        dists += [
            leave_one_out_distributions(samples, cls, p)
            for p in profiles
            if game.mechanism.payment_rule.name != "none"
        ]
        stacked = np.concatenate([d.reshape(len(cls), -1, N) for d in dists], axis=1)  # (C, K, N)
        each = _kish(stacked)
        worst = np.argmin(each, axis=1)
        ess[cls] = each[np.arange(len(cls)), worst]
        top[cls] = _top_share(stacked, N).max(axis=1)
        pooled_mass[own.ravel()] = (stacked[np.arange(len(cls)), worst] * game.weights[cls][:, None]).ravel()
    w = pooled_mass * np.repeat(samples.sizes / game.weights, samples.sizes)  # pi* / pi_init per sample
    pooled = float(w.sum() ** 2 / np.sum(w**2))
    pooled_top = float(_top_share(pooled_mass, pooled_mass.size))
    return Diagnostics(ess, samples.sizes.astype(float), pooled, top, pooled_top)


def bootstrap(
    game: Game | PromptGame,
    options: BootstrapOptions = BootstrapOptions(),
    misreports: Sequence[Misreported] = (),
) -> Uncertainty:
    """Estimates, standard errors and intervals for a sampled game's figures (module docstring).

    Parameters
    ----------
    game : a game marked as sampled (``sample_counts``).
    options : level, replicates, seed, interval, design, estimand, bias correction.
    misreports : profiles (over the game's flat outcome axis) in which one group misreports
        (:class:`Misreported`); each adds that profile's figures and the group's gain
        ``u_i(reports) - u_i(baseline)`` (an audit's best misreports, held fixed: the
        interval is for that misreport's gain, not for the search's maximum). The game's own
        reports, where they differ from the truth, are added as ``reported`` with every
        misreporting group's gain.

    Raises
    ------
    ValueError
        for a game not marked as sampled, or rules that do not split over prompts.
    """
    samples = samples_of(game)
    prompt_game = samples.game
    design = DESIGNS[options.design or ("two_stage" if prompt_game.n_prompts > 1 else "responses")]
    estimand = ESTIMANDS[options.estimand]
    names = ["truthful"]
    profiles = [prompt_game.truth]
    gains: list[tuple[int, int, int]] = []  # (profile index, group, its baseline's index)
    if not prompt_game.is_truthful:
        names.append("reported")
        profiles.append(prompt_game.reports)
        gains += [(1, i, 0) for i in prompt_game.misreporting_groups()]
    for m in misreports:
        base_label = m.baseline_label or (
            "truthful" if m.baseline.equals(prompt_game.truth) else f"{m.label}: baseline"
        )
        if base_label not in names:
            names.append(base_label)
            profiles.append(m.baseline)
        base = names.index(base_label)
        names.append(m.label)
        profiles.append(m.reports)
        gains.append((len(profiles) - 1, m.group, base))
    labels = _labels(prompt_game, names)
    n = prompt_game.n_groups
    width = 3 * n + 2

    def with_gains(stats: Array) -> Array:
        u = 2 * n  # utilities follow valuations and payments in a profile's block
        extra = [stats[..., p * width + u + i] - stats[..., b * width + u + i] for p, i, b in gains]
        return np.concatenate([stats, np.stack(extra, axis=-1)], axis=-1) if extra else stats

    labels += [(names[p], "gain", prompt_game.group_names[i]) for p, i, _ in gains]
    prepared = prepare_replicates(samples, profiles, estimand)
    own = with_gains(_per_prompt(prepared))
    estimate = prompt_game.weights @ own
    raw_bias, raw_influence = _jackknife(prepared, own[:, : len(profiles) * width])
    bias = prompt_game.weights @ with_gains(raw_bias)
    influence = with_gains(raw_influence)
    replicates = with_gains(
        _replicates(prepared, design, options.resamples, options.seed, len(profiles) * width)
    )
    acceleration = _acceleration(samples, design, own, influence)
    low, high = INTERVALS[options.interval](replicates, estimate, acceleration, options.level)
    shift = bias if options.bias_correct else np.zeros_like(bias)
    se = replicates.std(axis=0, ddof=1)
    figures = tuple(
        Estimated(
            p,
            qty,
            g,
            float(estimate[d] - shift[d]),
            float(se[d]),
            float(low[d] - shift[d]),
            float(high[d] - shift[d]),
            float(bias[d]),
        )
        for d, (p, qty, g) in enumerate(labels)
    )
    return Uncertainty(
        options=options,
        design=design,
        estimand=estimand,
        figures=figures,
        diagnostics=diagnostics(samples, profiles, estimand),
        prompts=prompt_game.n_prompts,
        samples=int(samples.offsets[-1]),
        replicates=replicates,
        acceleration=acceleration,
    )


def audit_uncertainty(audit: GameAudit, options: BootstrapOptions) -> Uncertainty | None:
    """The sampling error of a sampled game's audit, or ``None`` for a population game.

    Every figure of the truthful profile, and the gain of each group's best misreport found by
    the audit, held fixed and re-evaluated on every replicate: under the game's payment rule
    (against the others' profile where it was found) and without payment (the search of
    ``profitable without payment``). The interval is for the population gain of *that*
    misreport, a lower bound on the group's best gain as the search's is. Where Theorem 4.12
    applies (a DSIC payment rule of an additive, SW-Max training rule), each group's bound
    from its valuations' sampling error (:class:`SamplingBound`).
    """
    game = audit.game
    if game.sample_counts is None:
        return None
    truth = game.truth
    ruled, free = [], []
    for g in audit.groups:
        others = g.profiles[g.worst_profile] if g.profiles else game.reports
        first = g.profiles[0] if g.profiles else game.reports
        ruled.append(_fixed_misreport(truth, g, g.dsic, others, f"{g.name}'s best misreport"))
        free.append(_fixed_misreport(truth, g, g.no_payment, first, f"{g.name}'s best misreport, no payment"))
    priced = bootstrap(game, options, ruled)
    unpriced = bootstrap(game.with_rules(game.mechanism.training_rule, NONE), options, free)
    keep = [d for d, f in enumerate(unpriced.figures) if f.quantity == "gain" and f.profile != "reported"]
    mechanism = game.mechanism
    applies = mechanism.payment_rule.dsic and mechanism.training_rule.additive
    return replace(
        priced,
        figures=priced.figures + tuple(unpriced.figures[d] for d in keep),
        replicates=np.concatenate([priced.replicates, unpriced.replicates[:, keep]], axis=1),
        acceleration=np.concatenate([priced.acceleration, unpriced.acceleration[keep]]),
        bounds=_sampling_bounds(priced, audit) if applies else (),
    )


def _sampling_bounds(priced: Uncertainty, audit: GameAudit) -> tuple[SamplingBound, ...]:
    """Theorem 4.12's bound for every group from the half-widths of its valuation's
    intervals over the profiles of ``priced`` (:class:`SamplingBound`)."""
    out = []
    for g in audit.groups:
        eps = max(
            max(f.estimate - f.low, f.high - f.estimate)
            for f in priced.figures
            if f.quantity == "valuation" and f.group == g.name
        )
        out.append(SamplingBound(g.name, g.size, eps, 2.0 * g.size * eps))
    return tuple(out)


def _fixed_misreport(
    truth: Profile, group: GroupAudit, search: SearchResult, others: Profile, label: str
) -> Misreported:
    """The misreport a search found, held fixed, against the others' profile ``others``; the
    baseline is that profile with the group truthful."""
    i = group.index
    baseline = others.with_report(i, truth.rewards[i], truth.sizes[i])
    return Misreported(label, i, others.with_report(i, search.best.reward, search.best.size), baseline)


def sweep_label(result: SweepResult, k: int) -> str:
    """The profile label of sweep point ``k``: ``alpha=1.5`` (``report`` for an explicit one)."""
    if result.family == "explicit":
        return "report"
    return f"{result.parameter_name}={float(result.parameters[k]):g}"


def sweep_uncertainty(result: SweepResult, options: BootstrapOptions) -> Uncertainty | None:
    """The sampling error of a sweep of a sampled game, or ``None`` for a population game:
    every point's figures (:func:`sweep_label`) and the group's gain over its truthful point
    (profile ``truth``), the others' reports those of the file (as the sweep holds them)."""
    game = result.game
    if game.sample_counts is None:
        return None
    i = result.group
    baseline = game.reports.with_report(i, game.truth.rewards[i], game.truth.sizes[i])
    points = [
        Misreported(
            sweep_label(result, k),
            i,
            game.reports.with_report(i, result.reported_rewards[k], result.reported_sizes[k]),
            baseline,
            "truth",
        )
        for k in range(result.parameters.size)
        if k != result.truthful_index
    ]
    return bootstrap(game, options, points)
