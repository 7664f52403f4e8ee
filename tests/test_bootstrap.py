"""Sampled games and their intervals (issue 26): the ``sampled:`` record, the slot
representation against the game's own solve, degenerate replicates, determinism, the
diagnostics' closed forms, a small coverage simulation and ``solve --ci``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlhf_mech.analysis import BootstrapOptions, _bootstrap, bootstrap
from rlhf_mech.cli import app
from rlhf_mech.core import ESTIMANDS, Mechanism, Normalization, Profile, PromptGame, _resample, solve
from rlhf_mech.core._internal import by_name, prepare_replicates, samples_of, slot_figures
from rlhf_mech.errors import SpecError
from rlhf_mech.files import load_game
from rlhf_mech.files._internal import game_text, import_responses

runner = CliRunner()

PROMPTS = """\
name: s2
divergence: {kind: kl, lambda: 0.5}
groups:
  - {name: a, size: 1}
  - {name: b, size: 2, report: {size: 3}}
prompts:
  - prompt: p0
    outcomes: 3
    sampled: {counts: [2, 1, 1]}
    rewards: {a: [0.5, 0.3, 0.2], b: [0.1, 0.3, 0.6]}
  - prompt: p1
    outcomes: 4
    sampled: true
    rewards: {a: [0.4, 0.3, 0.2, 0.1], b: [0.1, 0.2, 0.3, 0.4]}
  - prompt: p2
    outcomes: 2
    sampled: {counts: [1, 3]}
    rewards: {a: [0.5, 0.5], b: [0.9, 0.1]}
"""

CORE = """\
name: s1
outcomes: 4
sampled: {counts: [3, 1, 2, 2]}
groups:
  - {name: a, size: 1, reward: [0.4, 0.3, 0.2, 0.1]}
  - {name: b, size: 2, reward: [0.1, 0.2, 0.3, 0.4]}
"""


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "s2.yaml"
    path.write_text(PROMPTS)
    return path


@pytest.fixture
def core_file(tmp_path: Path) -> Path:
    path = tmp_path / "s1.yaml"
    path.write_text(CORE)
    return path


def test_sampled_record_gives_counts_and_frequencies(core_file: Path, prompt_file: Path) -> None:
    game = load_game(core_file)
    assert game.sample_counts.tolist() == [3, 1, 2, 2]
    np.testing.assert_array_equal(game.mechanism.pi_init, np.array([3, 1, 2, 2]) / 8)
    many = load_game(prompt_file)
    assert many.sample_counts.tolist() == [2, 1, 1, 1, 1, 1, 1, 1, 3]
    np.testing.assert_array_equal(many.pi_init[:3], [0.5, 0.25, 0.25])
    # the writer writes the record back, and it loads to the same game
    again = tmp_written(core_file.parent, game_text(many))
    np.testing.assert_array_equal(again.sample_counts, many.sample_counts)
    np.testing.assert_array_equal(again.pi_init, many.pi_init)


def tmp_written(folder: Path, text: str):
    path = folder / "written.yaml"
    path.write_text(text)
    return load_game(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("sampled: {counts: [3, 1, 2, 2]}", None),
        ("sampled: {counts: [3, 0, 2, 2]}", "count of 'x1' is 0.0; a count is an integer >= 1"),
        ("sampled: {counts: [3, 1.5, 2, 2]}", "count of 'x1' is 1.5"),
        ("sampled: {counts: [3, 1, 2, 2]}\ninitial: uniform", "is not its sample frequency"),
        ("sampled: {count: [1, 1, 1, 1]}", "sampled"),
    ],
)
def test_sampled_record_errors(tmp_path: Path, edit: str, message: str | None) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(CORE.replace("sampled: {counts: [3, 1, 2, 2]}", edit))
    if message is None:
        assert load_game(path).sample_counts is not None
        return
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_game(path)


def test_sampled_on_every_prompt_or_none(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(PROMPTS.replace("    sampled: true\n", ""))
    with pytest.raises(SpecError, match=r"prompts\[1\].*sampled: on every prompt or on none"):
        load_game(path)


def test_responses_importer_marks_its_game_as_sampled(tmp_path: Path) -> None:
    path = tmp_path / "responses.csv"
    path.write_text("helpful,harmless\n1,3\n2,1\n4,2\n")
    game = import_responses(path).game
    assert game.sample_counts.tolist() == [1, 1, 1]
    with_logprob = tmp_path / "logprob.csv"
    with_logprob.write_text("helpful,logp\n1,-1\n2,-2\n")
    assert import_responses(with_logprob, logprob_column="logp").game.sample_counts is None


def test_estimates_are_the_games_own_figures(prompt_file: Path, core_file: Path) -> None:
    """A sampled game's figures, solved over its slots (outcomes split into copies of mass
    1/N), equal the game's own solve to rounding."""
    for path in (prompt_file, core_file):
        game = load_game(path)
        u = bootstrap(game, BootstrapOptions(resamples=20))
        solution = solve(game)
        for profile in ("truthful", "reported") if not game.is_truthful else ("truthful",):
            figures = getattr(solution, profile)
            for i, name in enumerate(game.group_names):
                assert abs(u.find(profile, "payment", name).estimate - figures.payments[i]) < 1e-12
                assert abs(u.find(profile, "utility", name).estimate - figures.utilities[i]) < 1e-12
            assert abs(u.find(profile, "social_welfare").estimate - figures.social_welfare) < 1e-12
        if not game.is_truthful:
            assert abs(u.find("reported", "gain", "b").estimate - solution.gains[1]) < 1e-12


@pytest.mark.parametrize("interval", ["percentile", "basic", "bca"])
def test_identity_replicates_give_a_degenerate_interval(
    prompt_file: Path, interval: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replicate equal to the original draw: standard error 0, interval [estimate, estimate]."""

    def identity(rng, samples, design, count):
        P = samples.game.n_prompts
        prompts = np.tile(np.arange(P), (count, 1))
        flat = prompts.ravel()
        sizes = samples.sizes[flat]
        rows = {}
        for N in np.unique(sizes):
            where = np.flatnonzero(sizes == N)
            rows[int(N)] = (where, samples.offsets[flat[where]][:, None] + np.arange(int(N)))
        return prompts, rows

    monkeypatch.setattr(_bootstrap, "_draw", identity)
    u = bootstrap(load_game(prompt_file), BootstrapOptions(resamples=10, interval=interval))
    for f in u.figures:
        assert f.se <= 1e-15 * max(1.0, abs(f.estimate))  # the mean of B equal numbers rounds
        assert abs(f.low - f.estimate) <= 1e-15 * max(1.0, abs(f.estimate))
        assert abs(f.high - f.estimate) <= 1e-15 * max(1.0, abs(f.estimate))


def test_same_seed_same_intervals_other_seed_other(prompt_file: Path) -> None:
    game = load_game(prompt_file)
    a = bootstrap(game, BootstrapOptions(resamples=100, seed=7))
    b = bootstrap(game, BootstrapOptions(resamples=100, seed=7))
    c = bootstrap(game, BootstrapOptions(resamples=100, seed=8))
    assert a.figures == b.figures
    assert a.figures != c.figures


def test_ess_of_an_unmoved_policy_is_the_sample_size() -> None:
    """At lambda -> infinity the fine-tuned distribution is pi_init: every weight pi*/pi_init
    is 1 and the Kish ESS is N (closed form), the top 1% of N = 200 samples (2) holds 1/100."""
    rng = np.random.default_rng(0)
    N = 200
    rewards = rng.random((2, N))
    game = PromptGame(
        name="flat",
        prompts=("p",),
        group_names=("a", "b"),
        mechanism=Mechanism(pi_init=np.full(N, 1 / N), divergence="kl", lam=1e12),
        normalization=Normalization.MAX,
        offsets=np.array([0, N]),
        pi_init=np.full(N, 1 / N),
        truth=Profile(rewards, np.ones(2)),
        reports=Profile(rewards, np.ones(2)),
        weights=np.ones(1),
        sample_counts=np.ones(N, dtype=np.int64),
    )
    d = bootstrap(game, BootstrapOptions(resamples=10)).diagnostics
    assert abs(d.pooled_ess - N) < 1e-6
    assert abs(d.ess[0] - N) < 1e-6
    assert abs(d.pooled_top_share - 0.01) < 1e-9
    assert d.warn is False  # ESS 200 >= 100


def test_small_coverage_simulation() -> None:
    """One prompt of a population of 2,000 outcomes (KL, lambda 1, 2 groups), 40 draws of
    N = 64 samples, 99 resamples: the 95% intervals of the social welfare cover the
    population's in at least 34 of 40 draws (binomial: P(<= 33 | 0.95) ~ 0.005). Fixed seed."""
    rng = np.random.default_rng(11)
    m, N = 2000, 64
    pi = rng.dirichlet(np.full(m, 2.0))
    rewards = rng.random((2, m))
    population = PromptGame(
        name="population",
        prompts=("p",),
        group_names=("a", "b"),
        mechanism=Mechanism(pi_init=pi, divergence="kl", lam=1.0),
        normalization=Normalization.MAX,
        offsets=np.array([0, m]),
        pi_init=pi,
        truth=Profile(rewards, np.array([1.0, 2.0])),
        reports=Profile(rewards, np.array([1.0, 2.0])),
        weights=np.ones(1),
    )
    exact = solve(population).truthful.social_welfare
    covered = 0
    for _ in range(40):
        cols, counts = np.unique(rng.choice(m, N, p=pi), return_counts=True)
        truth = Profile(rewards[:, cols], population.truth.sizes)
        game = replace(
            population,
            offsets=np.array([0, cols.size]),
            pi_init=counts / N,
            mechanism=replace(population.mechanism, pi_init=counts / N),
            truth=truth,
            reports=truth,
            sample_counts=counts,
        )
        f = bootstrap(game, BootstrapOptions(resamples=99)).find("truthful", "social_welfare")
        covered += f.low <= exact <= f.high
    assert covered >= 33


def test_solve_ci_table_and_json(prompt_file: Path) -> None:
    result = runner.invoke(
        app, ["solve", str(prompt_file), "--ci", "0.9", "--resamples", "50", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "90% CI" in result.output
    assert "b (reported): gain" in result.output
    assert "effective sample size" in result.output
    first = runner.invoke(
        app, ["solve", str(prompt_file), "--ci", "0.9", "--resamples", "50", "--format", "json"]
    )
    second = runner.invoke(
        app, ["solve", str(prompt_file), "--ci", "0.9", "--resamples", "50", "--format", "json"]
    )
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    data = json.loads(first.stdout)["uncertainty"]
    assert data["level"] == 0.9 and data["resamples"] == 50 and data["design"] == "two_stage"
    gain = next(f for f in data["figures"] if f["quantity"] == "gain")
    assert set(gain) == {"profile", "quantity", "group", "estimate", "se", "ci", "bias", "biased", "verdict"}
    assert gain["ci"][0] <= gain["ci"][1]


def test_solve_ci_on_a_population_game_is_one_error_line() -> None:
    example = Path(__file__).resolve().parents[1] / "games" / "harmless_vs_humor.yaml"
    result = runner.invoke(app, ["solve", str(example), "--ci", "0.95"])
    assert result.exit_code == 2
    assert "not marked as sampled" in result.output
    assert "Traceback" not in result.output


def test_audit_ci_verdicts_and_json_schema(prompt_file: Path) -> None:
    """``audit --ci``: each group's best misreport held fixed, with and without payment; the
    JSON's ``uncertainty`` follows the audit schema; a population game in the same run gets
    none."""
    import jsonschema

    from rlhf_mech.render import audit_schema
    from rlhf_mech.render._internal import AUDIT_SCHEMA_VERSION

    example = Path(__file__).resolve().parents[1] / "games" / "harmless_vs_humor.yaml"
    args = ["audit", str(prompt_file), str(example), "--ci", "0.95", "--resamples", "60", "--budget", "40"]
    text = runner.invoke(app, args)
    assert text.exit_code in (0, 1), text.output
    assert "a's best misreport, no payment: gain" in text.output
    assert "effective sample size" in text.output
    result = runner.invoke(app, [*args, "--format", "json"])
    data = json.loads(result.stdout)
    jsonschema.validate(data, audit_schema(AUDIT_SCHEMA_VERSION))
    sampled, population = sorted(data["games"], key=lambda g: g["game"] != "s2")
    assert "uncertainty" not in population
    labels = {
        (f["profile"], f["group"]) for f in sampled["uncertainty"]["figures"] if f["quantity"] == "gain"
    }
    assert {("a's best misreport", "a"), ("b's best misreport, no payment", "b")} <= labels
    verdicts = {f["verdict"] for f in sampled["uncertainty"]["figures"] if f["quantity"] == "gain"}
    assert verdicts <= {
        "profitable across the interval",
        "unprofitable across the interval",
        "not distinguishable from truthful",
    }
    # Theorem 4.12 (affine maximizer, SW-Max): 2 w_i eps, eps the widest half-interval of the
    # group's valuation over the audited profiles
    assert "Theorem 4.12, b: sampling error of its valuation eps = " in text.output
    sizes = {"a": 1.0, "b": 2.0}
    for bound in sampled["uncertainty"]["theorem_4_12"]:
        widths = [
            max(f["estimate"] - f["ci"][0], f["ci"][1] - f["estimate"])
            for f in sampled["uncertainty"]["figures"]
            if f["quantity"] == "valuation" and f["group"] == bound["group"]
        ]
        assert len(widths) >= 2 and bound["eps"] == max(widths) > 0
        assert bound["size"] == sizes[bound["group"]]
        assert abs(bound["bound"] - 2.0 * bound["size"] * bound["eps"]) <= 1e-15


def test_theorem_4_12_is_not_shown_where_it_does_not_apply(prompt_file: Path) -> None:
    """Without a DSIC payment (``none``) the theorem's bound is not given."""
    args = ["audit", str(prompt_file), "--payment", "none", "--ci", "0.9", "--resamples", "30"]
    result = runner.invoke(app, [*args, "--budget", "20", "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    assert "theorem_4_12" not in json.loads(result.stdout)["games"][0]["uncertainty"]


def test_sweep_ci_gives_every_point_an_interval(core_file: Path) -> None:
    """``sweep --ci``: every point's utility and gain over truth, with intervals; the truthful
    point's estimate is the sweep's own utility (1e-12); JSON carries them."""
    args = ["sweep", str(core_file), "--group", "a", "--alpha", "0.5,2", "--ci", "0.95", "--resamples", "60"]
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "alpha=2: utility" in text.output and "gain" in text.output
    data = json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout)["sweeps"][0]
    figures = {(f["profile"], f["quantity"], f["group"]): f for f in data["uncertainty"]["figures"]}
    truthful = next(p for p in data["points"] if p["truthful"])
    assert abs(figures["truth", "utility", "a"]["estimate"] - truthful["utility"]) < 1e-12
    point = next(p for p in data["points"] if p["parameter"] == 2.0)
    gain = figures["alpha=2", "gain", "a"]
    assert abs(gain["estimate"] - (point["utility"] - truthful["utility"])) < 1e-12
    assert gain["ci"][0] <= gain["estimate"] <= gain["ci"][1]


@pytest.mark.parametrize("method", ["percentile", "basic", "BCa"])
def test_interval_formulas_match_scipy_on_one_sample(method: str) -> None:
    """The interval functions on the replicates scipy drew (``bootstrap_distribution``), with
    BCa's acceleration from the delete-one jackknife (``sum U^3 / (6 (sum U^2)^{3/2})``, the
    module's formula), give scipy.stats.bootstrap's own interval (1e-12)."""
    from scipy.stats import bootstrap as scipy_bootstrap

    x = np.random.default_rng(5).gamma(2.0, size=40)
    result = scipy_bootstrap(
        (x,), np.mean, method=method, n_resamples=999, confidence_level=0.9, random_state=1
    )
    replicates = result.bootstrap_distribution[:, None]
    estimate = np.array([x.mean()])
    leave = (x.sum() - x) / (x.size - 1)
    u = leave.mean() - leave
    acceleration = np.array([(u**3).sum() / (6.0 * (u**2).sum() ** 1.5)])
    low, high = _bootstrap.INTERVALS[method.lower()](replicates, estimate, acceleration, 0.9)
    assert abs(low[0] - result.confidence_interval.low) < 1e-12
    assert abs(high[0] - result.confidence_interval.high) < 1e-12


def test_renormalised_estimand_is_the_identity_on_the_original_draw(prompt_file: Path) -> None:
    """Re-normalising on the original draw changes nothing: both estimands give the same
    estimates (1e-12); on other draws the intervals differ."""
    game = load_game(prompt_file)
    fixed = bootstrap(game, BootstrapOptions(resamples=50))
    renormalised = bootstrap(game, BootstrapOptions(resamples=50, estimand="renormalised"))
    for a, b in zip(fixed.figures, renormalised.figures, strict=True):
        assert abs(a.estimate - b.estimate) < 1e-12
    assert any(abs(a.se - b.se) > 1e-6 for a, b in zip(fixed.figures, renormalised.figures, strict=True))


def _random_sampled_game(
    lam: float, costs: bool, payment: str, seed: int, prompts: int = 2, N: int = 12
) -> PromptGame:
    """A KL sampled game of ``prompts`` prompts of ``N`` draws each (repeats counted), 3
    groups, the third misreporting its size and reward."""
    rng = np.random.default_rng(seed)
    counts = [np.bincount(rng.integers(0, 7, N), minlength=7) for _ in range(prompts)]
    counts = [c[c > 0] for c in counts]
    offsets = np.concatenate([[0], np.cumsum([c.size for c in counts])])
    flat = np.concatenate(counts)
    rewards = rng.random((3, flat.size))
    misreport = rewards.copy()
    misreport[2] = rewards[2] ** 3
    pi = flat / N
    return PromptGame(
        name="random",
        prompts=tuple(f"p{x}" for x in range(prompts)),
        group_names=("a", "b", "c"),
        mechanism=Mechanism(pi_init=pi[: offsets[1]], divergence="kl", lam=lam, payment_rule=payment),
        normalization=Normalization.MAX,
        offsets=offsets,
        pi_init=pi,
        truth=Profile(rewards, np.array([1.0, 2.0, 1.5])),
        reports=Profile(misreport, np.array([1.0, 2.0, 3.0])),
        weights=np.full(prompts, 1.0 / prompts),
        sample_counts=flat.astype(np.int64),
        outcome_costs=rng.random(flat.size) if costs else None,
    )


@pytest.mark.parametrize(
    "lam, costs, payment",
    [
        (1.0, False, "affine_maximizer"),
        (0.02, True, "affine_maximizer"),
        (1e5, False, "affine_maximizer"),
        (0.5, True, "none"),
        (2e-4, False, "affine_maximizer"),
    ],
)
def test_gibbs_shortcut_matches_the_kernel(lam: float, costs: bool, payment: str) -> None:
    """The KL replicates' shortcut (sums over counts, core/_resample.py) gives the kernel's
    figures on random draws: a wide and a narrow spread, outcome costs, no payment, and a
    lambda at which rows underflow (those go through the kernel)."""
    game = _random_sampled_game(lam, costs, payment, seed=int(lam * 1000) % 97)
    samples = samples_of(game)
    profiles = [game.truth, game.reports]
    rng = np.random.default_rng(3)
    prompts = rng.integers(0, game.n_prompts, 300)
    slots = samples.offsets[prompts][:, None] + rng.integers(0, 12, (300, 12))
    fixed = ESTIMANDS["fixed"]
    fast = prepare_replicates(samples, profiles, fixed)
    assert fast.tables is not None
    slow = [slot_figures(samples, prompts, slots, p, fixed)[0] for p in profiles]
    for a, b in zip(fast.figures(prompts, slots), slow, strict=True):
        for name in ("valuations", "payments", "utilities", "social_welfare", "asw", "divergence_value"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-11)
        assert np.all(a.status == 0) and np.max(a.kkt_residual) < 1e-9
    # the shortcut itself (not its fallback), on rows shorter than their prompts' draws (the
    # jackknife's N - 1): every row that did not underflow
    short = slots[:, :7]
    for table, profile in zip(fast.tables, profiles, strict=True):
        got, underflow = _resample._gibbs(samples, table, prompts, short)
        want = slot_figures(samples, prompts, short, profile, fixed)[0]
        assert (~underflow).sum() >= 30
        for name in ("valuations", "payments", "social_welfare", "divergence_value"):
            np.testing.assert_allclose(
                getattr(got, name)[~underflow], getattr(want, name)[~underflow], rtol=0, atol=1e-11
            )


def test_gibbs_shortcut_is_not_taken_where_it_does_not_apply() -> None:
    """chi^2, another payment rule or the renormalised estimand go through the kernel."""
    game = _random_sampled_game(1.0, False, "affine_maximizer", seed=1)
    samples = samples_of(game)
    assert prepare_replicates(samples, [game.truth], ESTIMANDS["renormalised"]).tables is None
    chi2 = replace(game, mechanism=replace(game.mechanism, divergence="chi2"))
    assert prepare_replicates(samples_of(chi2), [game.truth], ESTIMANDS["fixed"]).tables is None


def test_a_registry_refuses_two_records_of_one_name() -> None:
    assert list(by_name(*_bootstrap.DESIGNS.values())) == ["responses", "two_stage"]
    with pytest.raises(ValueError, match="share a name"):
        by_name(_bootstrap.DESIGNS["responses"], _bootstrap.DESIGNS["responses"])


def test_bad_ci_options_are_one_error_line_before_any_work(prompt_file: Path) -> None:
    for option in (["--interval", "studentised"], ["--estimand", "scaled"], ["--design", "pairs"]):
        result = runner.invoke(app, ["solve", str(prompt_file), "--ci", "0.95", *option])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "--ci:" in lines[0]
        assert "Traceback" not in result.output


def test_a_batch_that_fails_the_check_goes_through_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the checked rows disagree (a tolerance no rounding meets), the whole batch is the
    kernel's: its figures and its KKT residuals row by row."""
    game = _random_sampled_game(1.0, False, "affine_maximizer", seed=4)
    samples = samples_of(game)
    rng = np.random.default_rng(5)
    prompts = rng.integers(0, game.n_prompts, 40)
    slots = samples.offsets[prompts][:, None] + rng.integers(0, 12, (40, 12))
    monkeypatch.setattr(_resample, "GIBBS_TOL", -1.0)
    (got,) = prepare_replicates(samples, [game.truth], ESTIMANDS["fixed"]).figures(prompts, slots)
    want = slot_figures(samples, prompts, slots, game.truth, ESTIMANDS["fixed"])[0]
    for name in ("payments", "utilities", "kkt_residual"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
