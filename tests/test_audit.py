"""Tests of rlhf_mech.analysis's audit (issue #4): the best-response search and the incentive checks."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from cases import random_game
from typer.testing import CliRunner

from rlhf_mech.analysis import (
    AuditOptions,
    ReportSpace,
    audit_game,
    noisy_search,
    predict_no_payment_gain,
    run_audits,
    search_misreports,
)
from rlhf_mech.analysis._internal import evaluations_for, group_seed, summarise

# The search's objective (its batched gains and their gradient) has no public name; these
# two tests reach it in the analysis layer's private module.
from rlhf_mech.cli import app
from rlhf_mech.core import Expectations, Game, Mechanism, Profile, solve
from rlhf_mech.files import load_game, save_counterexamples
from rlhf_mech.files._internal import write_counterexample

NO_PAYMENT_GAME = """\
# Theorem 4.2's condition holds for both groups: min rm_i > 0 and two distinct values.
name: no-payment
outcomes: [a, b, c, d]
initial: [0.4, 0.3, 0.1, 0.2]
normalization: sum
divergence: {kind: kl, lambda: 1.0}
max_size: 10
payment: none
groups:
  - name: alices
    size: 3
    reward: [0.1, 0.5, 0.1, 0.3]
  - name: bobs
    size: 7
    reward: [0.1, 0.3, 0.5, 0.1]
"""


def make_game(
    rewards,
    sizes,
    *,
    pi_init=None,
    normalization="sum",
    divergence="kl",
    lam=1.0,
    payment_rule="affine_maximizer",
    max_size: float | None = 10.0,
    expect: Expectations | None = None,
    name="game",
) -> Game:
    rewards = np.asarray(rewards, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    n, m = rewards.shape
    mechanism = Mechanism(
        pi_init=np.full(m, 1.0 / m) if pi_init is None else np.asarray(pi_init, dtype=float),
        divergence=divergence,
        lam=lam,
        payment_rule=payment_rule,
    )
    truth = Profile(rewards, sizes)
    return Game(
        name=name,
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=tuple(f"g{i}" for i in range(n)),
        mechanism=mechanism,
        normalization=normalization,
        truth=truth,
        reports=truth,
        max_size=max_size,
        expect=expect,
    )


def findings(audit, check):
    return [f for f in audit.findings if f.check == check]


# --- the search ------------------------------------------------------------------------------


def test_search_finds_the_no_payment_gain_of_theorem_4_2(write_game):
    game = load_game(write_game(NO_PAYMENT_GAME))
    result = search_misreports(game, 0, "none", 200, np.random.default_rng(0))
    assert result.best.gain > 0.1
    assert result.best_at_true_size.gain > 0
    assert result.best_at_true_size.size == game.truth.sizes[0]
    space = ReportSpace.of(game)
    assert space.contains(result.best.reward, result.best.size, tol=1e-12).all()
    assert result.evaluations <= 200
    assert predict_no_payment_gain(game, 0).theorem == "4.2"


def test_search_respects_the_budget_and_size_bound(rng):
    game = make_game([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]], [2.0, 3.0], max_size=4.0, payment_rule="none")
    result = search_misreports(game, 0, "none", 30, rng)
    assert result.evaluations <= 30
    assert 1.0 <= result.best.size <= 4.0
    # without payment more size never hurts: the search ends at the bound
    assert result.best.size == pytest.approx(4.0)


@pytest.mark.slow
def test_affine_maximizer_passes_on_random_games(rng):
    """Proposition 4.4 on 120 random games: DSIC, IR and p >= 0 hold, the search finds no gain."""
    divergences = ("kl", "chi2", "tv", "hellinger", "reverse_kl", "js")
    options = AuditOptions(budget=24)
    worst = -np.inf
    for k in range(120):
        g = random_game(rng, max_groups=3, max_outcomes=5)
        game = make_game(
            g.rewards,
            g.sizes,
            pi_init=g.pi_init,
            normalization=g.normalization,
            divergence=divergences[k % len(divergences)],
            lam=g.lam,
            max_size=g.max_size,
            name=f"random-{k}",
        )
        audit = audit_game(game, options, seed=k)
        failed = [
            f for f in audit.findings if f.check in ("dsic", "ir", "nonnegative_payments") and not f.passed
        ]
        assert not failed, (k, game.mechanism.divergence.name, failed)
        worst = max(worst, *(f.value for f in findings(audit, "dsic")))
    assert worst <= 1e-9


def test_no_payment_gain_on_random_games_matches_theorem_4_2(rng):
    """Where Theorem 4.2 predicts a gain (full-support divergences), the search finds one."""
    for k in range(20):
        g = random_game(rng, max_groups=3, max_outcomes=5, log10_lambda=(-1, 1))
        rewards = 0.05 + g.rewards  # min rm_i > 0
        rewards /= rewards.sum(axis=1, keepdims=True)
        game = make_game(
            rewards, g.sizes, pi_init=g.pi_init, lam=g.lam, payment_rule="none", max_size=g.max_size
        )
        for i in range(game.n_groups):
            if not predict_no_payment_gain(game, i).predicted:
                continue
            result = search_misreports(game, i, "none", 60, np.random.default_rng(k))
            assert result.best_at_true_size.gain > 0, (k, i)


def test_prediction_cases():
    kl = make_game(
        [[0.25, 0.25, 0.25, 0.25], [0.0, 0.2, 0.3, 0.5], [0.1, 0.2, 0.3, 0.4]], [1, 2, 3], payment_rule="none"
    )
    assert predict_no_payment_gain(kl, 0).predicted is False  # s_i = 1: truth optimal
    assert predict_no_payment_gain(kl, 1).theorem == "B.2"  # min rm = 0, t(x) != 0
    assert predict_no_payment_gain(kl, 2).theorem == "4.2"
    tv = make_game(kl.truth.rewards, kl.truth.sizes, divergence="tv", payment_rule="none")
    assert predict_no_payment_gain(tv, 2).predicted is False


# --- Theorem 4.12 ------------------------------------------------------------------------------


def test_noisy_gain_stays_below_the_bound(rng):
    for k in range(5):
        g = random_game(rng, max_groups=3, max_outcomes=5, log10_lambda=(-1, 0))
        game = make_game(g.rewards, g.sizes, pi_init=g.pi_init, normalization=g.normalization, lam=g.lam)
        eps = 0.05
        result = noisy_search(game, 0, eps, 32, np.random.SeedSequence(k), 100)
        assert result.bound == pytest.approx(2 * game.truth.sizes[0] * eps)
        assert result.gain <= result.bound
        assert result.max_sample_gain <= result.bound  # the proof holds per sample (common noise)


def test_noisy_check_is_a_finding(write_game):
    game = load_game(write_game(NO_PAYMENT_GAME.replace("payment: none", "payment: affine_maximizer")))
    audit = audit_game(game, AuditOptions(budget=40, noise=0.02, samples=16))
    noisy = findings(audit, "noisy_dsic")
    assert [f.group for f in noisy] == ["alices", "bobs"]
    assert all(f.passed for f in noisy)
    assert "2 w_i eps = 0.12" in noisy[0].statement


# --- checks and expectations ---------------------------------------------------------------


def test_issue_4_no_payment_fails_dsic_and_the_counterexample_replays(write_game, tmp_path):
    """The issue's evidence: payment none + Theorem 4.2's condition -> DSIC fails; the saved
    counterexample, loaded and solved, shows the same gain (to 1e-9)."""
    game = load_game(write_game(NO_PAYMENT_GAME))
    audit = audit_game(game, AuditOptions(budget=100), seed=3)
    dsic = findings(audit, "dsic")
    assert [f.passed for f in dsic] == [False, False]
    assert not audit.passed
    saved = save_counterexamples([audit], tmp_path / "cx")
    assert sorted(saved) == [(0, "alices"), (0, "bobs")]
    for (_, name), path in saved.items():
        replay = solve(load_game(path))
        i = game.group_names.index(name)
        assert replay.game.misreporting_groups() == (i,)
        expected = next(f.value for f in dsic if f.group == name)
        assert replay.gains[i] == pytest.approx(expected, abs=1e-9)


def test_counterexample_of_a_large_game_uses_npy(tmp_path, rng):
    m = 100
    rewards = rng.dirichlet(np.ones(m), size=2)
    game = make_game(rewards, [1.0, 2.0], payment_rule="none", name="wide")
    result = search_misreports(game, 1, "none", 30, rng)
    path, *arrays = write_counterexample(game, 1, result.best, tmp_path / "wide.g1.yaml")
    assert arrays and all(a.suffix == ".npy" for a in arrays)
    replay = solve(load_game(path))
    assert replay.gains[1] == pytest.approx(result.best.gain, abs=1e-9)


def test_expect_dsic_false_is_existential(write_game):
    text = NO_PAYMENT_GAME + "expect:\n  dsic: false\n  profitable_without_payment: true\n"
    audit = audit_game(load_game(write_game(text)), AuditOptions(budget=40))
    assert audit.passed
    per_group = findings(audit, "dsic")
    assert all(f.expected is None for f in per_group)  # reported, not required
    game_level = [f for f in findings(audit, "expect") if not f.group]
    assert [f.quantity for f in game_level] == ["dsic", "profitable_without_payment"]
    assert all(f.passed for f in game_level)


def test_expect_fails_when_the_verdict_differs(write_game):
    text = NO_PAYMENT_GAME.replace("payment: none", "payment: affine_maximizer") + (
        "expect:\n  dsic: false\n  profitable_without_payment: false\n"
    )
    audit = audit_game(load_game(write_game(text)), AuditOptions(budget=40))
    failed = {(f.check, f.quantity or f.group) for f in audit.failures}
    assert ("expect", "dsic") in failed  # no group has a profitable misreport under p^AFF
    assert ("no_payment", "alices") in failed  # but both gain without payment


def test_expect_ranges(write_game):
    text = NO_PAYMENT_GAME + (
        "expect:\n  dsic: false\n  utility: {alices: [0, 10], bobs: [100, 200]}\n  social_welfare: [0, 100]\n"
    )
    audit = audit_game(load_game(write_game(text)), AuditOptions(budget=20))
    ranges = {(f.quantity, f.group): f.passed for f in findings(audit, "expect") if f.quantity != "dsic"}
    assert ranges == {("utility", "alices"): True, ("utility", "bobs"): False, ("social_welfare", ""): True}


def test_ir_and_payment_findings_state_their_tolerance(write_game):
    game = load_game(write_game(NO_PAYMENT_GAME.replace("payment: none", "payment: affine_maximizer")))
    audit = audit_game(game, AuditOptions(budget=20, tol=1e-6))
    ir = findings(audit, "ir")[0]
    assert ir.statement == "truthful utility >= -1e-06"
    pay = findings(audit, "nonnegative_payments")[0]
    assert pay.statement == "min payment >= -1e-06"
    assert pay.value >= 0 and ir.value > 0


# --- determinism and parallelism ------------------------------------------------------------


def test_same_seed_same_result_and_seed_is_keyed_by_content(write_game):
    game = load_game(write_game(NO_PAYMENT_GAME))
    a = audit_game(game, AuditOptions(budget=30), seed=5)
    b = audit_game(game, AuditOptions(budget=30), seed=5)
    assert [f.value for f in a.findings] == [f.value for f in b.findings]
    # the same bytes under another name (or from stdin): the same seeds, the same figures
    renamed = load_game(write_game(NO_PAYMENT_GAME, name="other.yaml"))
    assert renamed.digest == game.digest and renamed.source != game.source
    c = audit_game(renamed, AuditOptions(budget=30), seed=5)
    assert [f.value for f in c.findings] == [f.value for f in a.findings]
    assert group_seed(0, "d1", "n", 1).entropy == group_seed(0, "d1", "m", 1).entropy
    s1, s2 = group_seed(0, "d1", "", 0), group_seed(0, "d2", "", 0)
    assert s1.generate_state(4).tolist() != s2.generate_state(4).tolist()
    # a game built in code has no digest: its name is the key
    by_name = [group_seed(0, None, name, 0).generate_state(4).tolist() for name in ("n", "m")]
    assert by_name[0] != by_name[1]


@pytest.mark.slow
def test_run_audits_is_the_same_for_one_and_two_workers(write_game):
    games = [load_game(write_game(NO_PAYMENT_GAME, name=f"g{k}.yaml")) for k in range(2)]
    options = AuditOptions(budget=20)
    one = run_audits(games, options, seed=1, workers=1)
    two = run_audits(games, options, seed=1, workers=2)
    for a, b in zip(one, two, strict=True):
        assert [(f.check, f.group, f.value) for f in a.findings] == [
            (f.check, f.group, f.value) for f in b.findings
        ]


def test_evaluations_for_large_games():
    assert evaluations_for(200, 50) == 200
    assert evaluations_for(200, 10_000) == 200
    assert evaluations_for(200, 100_000) == 63
    assert evaluations_for(200, 10**8) == 40
    assert evaluations_for(20, 10**8) == 20


def test_summary_exit_codes(write_game):
    game = load_game(write_game(NO_PAYMENT_GAME))
    audit = audit_game(game, AuditOptions(budget=20))
    assert summarise([audit]).exit_code == 1
    assert summarise([audit], invalid=1).exit_code == 2
    ok = audit_game(
        load_game(write_game(NO_PAYMENT_GAME + "expect: {dsic: false}\n", name="ok.yaml")),
        AuditOptions(budget=20),
    )
    assert summarise([ok]).exit_code == 0


def test_options_are_checked():
    with pytest.raises(ValueError, match="`budget`"):
        AuditOptions(budget=3)
    with pytest.raises(ValueError, match="`noise`"):
        AuditOptions(noise=0.0)
    with pytest.raises(ValueError, match="`tol`"):
        AuditOptions(tol=-1.0)


def test_candidate_games_are_searched_over_preferences():
    path = Path(__file__).parent.parent / "games" / "paper" / "table2.yaml"
    game = load_game(path)
    space = ReportSpace.of(game)
    assert space.basis is not None  # the search moves preferences over the base reward models
    result = search_misreports(game, 1, "none", 60, np.random.default_rng(0))
    assert result.best.preference is not None
    assert np.allclose(result.best.preference @ game.report_basis.scores.T, result.best.reward)
    assert result.best.gain > 0


def test_dask_backend_without_dask_says_what_to_install(write_game, monkeypatch):
    # run_audits takes a connected client now; the command line connects it (--backend dask).
    import sys

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    path = write_game(NO_PAYMENT_GAME)
    args = ["audit", str(path), "--budget", "10", "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert re.search(r"pip install 'rlhf-mech\[dask\]'", result.stderr), result.stderr


def test_candidate_game_counterexample_replays(tmp_path):
    game = load_game(Path(__file__).parent.parent / "games" / "paper" / "table2.yaml")
    unpaid = dataclasses.replace(game, mechanism=game.mechanism.with_payment_rule("none"), expect=None)
    audit = audit_game(unpaid, AuditOptions(budget=60))
    violations = [f for f in findings(audit, "dsic") if not f.holds]
    assert violations
    saved = save_counterexamples([audit], tmp_path)
    for (_, name), path in saved.items():
        assert "preference:" in Path(path).read_text()
        replay = solve(load_game(path))
        i = game.group_names.index(name)
        expected = next(f.value for f in violations if f.group == name)
        assert replay.gains[i] == pytest.approx(expected, abs=1e-9)
