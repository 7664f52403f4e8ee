"""Section 4.4's cheap payments and the model of training they rest on.

* the model: T steps of mirror ascent from pi_init reach the SW-Max solution; for KL in closed
  form, the log-ratio error falling exactly as ``(1 - step_size)^T``; for the smooth
  divergences linearly;
* Heuristic 2 (``early_stopped``): DSIC (its first term never sees the group), may pay less
  than 0, converges to ``p^AFF`` as the budget grows at the rate the model gives (``rho^(2T)``
  for KL: the optimal value's error is quadratic in the iterate's);
* Heuristic 1 (``intermediate_checkpoints``): ``0 <= p <= p^AFF`` always; the checkpoints of
  the main run never approach the others' optimum, so it does *not* converge to ``p^AFF``
  (section 4.4 claims no such thing; measured here); in candidate-model games its set is the
  listed checkpoints;
* game files and the command line: ``payment: {rule: ..., parameters}`` loads, validates,
  writes back byte for byte; ``--payment-param``.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from rlhf_mech.cli import app
from rlhf_mech.core import (
    AFFINE_MAXIMIZER,
    EARLY_STOPPED,
    INTERMEDIATE_CHECKPOINTS,
    Game,
    Mechanism,
    Profile,
    candidate_game,
    mirror_ascent,
    outcome,
    solve,
    solve_sw_max,
)
from rlhf_mech.files import load_game
from rlhf_mech.files import write_game as write_game_file
from rlhf_mech.files._internal import game_document

runner = CliRunner()


def profile(rng: np.random.Generator, n: int = 3, m: int = 5) -> Profile:
    return Profile(rng.dirichlet(np.ones(m), n), rng.integers(1, 6, n).astype(float))


@pytest.mark.parametrize("step_size", [0.2, 0.5, 1.0])
def test_kl_model_run_converges_at_the_closed_form_rate(step_size: float, rng: np.random.Generator) -> None:
    """KL: ``log pi_T - log pi* = (s / lambda - c) (1 - step)^T`` exactly, up to a constant."""
    scores = rng.uniform(0, 3, (1, 6))
    q = rng.dirichlet(np.ones(6))
    lam = 0.7
    exact = solve_sw_max(scores, q, "kl", lam).pi[0]
    for steps in (1, 3, 8):
        pi = mirror_ascent(scores, q, "kl", lam, steps, step_size)[0, -1]
        error = np.log(pi) - np.log(exact)
        predicted = -(scores[0] / lam) * (1 - step_size) ** steps
        np.testing.assert_allclose(error - error.mean(), predicted - predicted.mean(), atol=1e-12)


@pytest.mark.parametrize("divergence", ["chi2", "hellinger", "reverse_kl", "js"])
def test_smooth_model_runs_converge_linearly(divergence: str, rng: np.random.Generator) -> None:
    scores = rng.uniform(0, 3, (2, 6))
    q = rng.dirichlet(np.ones(6))
    exact = solve_sw_max(scores, q, divergence, 1.0).pi
    runs = mirror_ascent(scores, q, divergence, 1.0, 1600, 0.5, every=5)
    errors = np.abs(runs - exact[:, None, :]).max(axis=(0, 2))
    assert errors[-1] < 1e-9
    resolved = np.log(errors[errors > 1e-12])
    assert resolved.size >= 3 and np.all(np.diff(resolved) < -0.1)  # geometric decay, 20 steps apart


def test_checkpoints_are_every_k_steps_and_end_at_t(rng: np.random.Generator) -> None:
    scores, q = rng.uniform(0, 1, (1, 4)), np.full(4, 0.25)
    run = mirror_ascent(scores, q, "kl", 1.0, 10, 0.5, every=4)
    assert run.shape == (1, 3, 4)  # t = 4, 8, 10
    np.testing.assert_allclose(run[0, 0], mirror_ascent(scores, q, "kl", 1.0, 4, 0.5)[0, -1], atol=1e-15)
    np.testing.assert_allclose(run[0, -1], mirror_ascent(scores, q, "kl", 1.0, 10, 0.5)[0, -1], atol=1e-15)


def test_early_stopped_converges_to_the_affine_maximizer_at_rho_squared(rng: np.random.Generator) -> None:
    """KL: the first term's error is the objective's at an iterate O(rho^T) from the optimum,
    so the payment error falls as rho^(2T)."""
    truth = profile(rng)
    q = rng.dirichlet(np.ones(5))
    exact = outcome(Mechanism(q, "kl", 0.5), truth, truth).payments
    steps = np.array([8, 10, 12, 14])
    errors = []
    for t in steps:
        rule = EARLY_STOPPED.with_parameters(steps=int(t), step_size=0.3)
        payments = outcome(Mechanism(q, "kl", 0.5, payment_rule=rule), truth, truth).payments
        errors.append(float(np.abs(payments - exact).max()))
    slope = np.polyfit(steps, np.log(errors), 1)[0]
    assert slope == pytest.approx(2 * np.log(1 - 0.3), rel=0.03)


def test_early_stopped_pays_negative_with_a_short_run(rng: np.random.Generator) -> None:
    """Heuristic 2: the early-stopped run without group i is worse for the others than the
    final model can be, so a payment can fall below 0 (section 4.4)."""
    worst = 0.0
    for _ in range(20):
        truth = profile(rng)
        mechanism = Mechanism(
            rng.dirichlet(np.ones(5)), "kl", 0.5, payment_rule=EARLY_STOPPED.with_parameters(steps=1)
        )
        worst = min(worst, float(outcome(mechanism, truth, truth).payments.min()))
    assert worst < -1e-3


@pytest.mark.parametrize("divergence", ["kl", "chi2", "hellinger"])
def test_intermediate_checkpoints_lie_between_zero_and_the_exact_payment(
    divergence: str, rng: np.random.Generator
) -> None:
    """Heuristic 1: the final model is a checkpoint (p >= 0) and the checkpoints are models
    (p <= p^AFF: a maximum over fewer models)."""
    for _ in range(10):
        truth, q = profile(rng), rng.dirichlet(np.ones(5))
        exact = outcome(Mechanism(q, divergence, 0.5), truth, truth).payments
        for steps, every in ((1, 1), (10, 2), (50, 5)):
            rule = INTERMEDIATE_CHECKPOINTS.with_parameters(steps=steps, checkpoint_every=every)
            payments = outcome(Mechanism(q, divergence, 0.5, payment_rule=rule), truth, truth).payments
            assert np.all(payments >= 0.0)
            assert np.all(payments <= exact + 1e-12)


def test_intermediate_checkpoints_do_not_converge_to_the_exact_payment(rng: np.random.Generator) -> None:
    """The main run's path goes from pi_init to the full problem's optimum, never near the
    others' optimum: Heuristic 1's payment settles (as checkpoints refine) well below p^AFF."""
    truth, q = profile(rng), rng.dirichlet(np.ones(5))
    exact = outcome(Mechanism(q, "kl", 0.5), truth, truth).payments
    settled = []
    for steps in (100, 400):
        rule = INTERMEDIATE_CHECKPOINTS.with_parameters(steps=steps, checkpoint_every=1, step_size=0.2)
        settled.append(outcome(Mechanism(q, "kl", 0.5, payment_rule=rule), truth, truth).payments)
    np.testing.assert_allclose(settled[0], settled[1], atol=1e-9)  # it has converged ...
    assert float(np.abs(settled[1] - exact).max()) > 1e-3  # ... to something else


def test_candidate_checkpoints_are_the_listed_candidates() -> None:
    """A candidate-model game: Heuristic 1's set is the listed candidates (the main run's
    checkpoints) and the chosen one."""
    game = candidate_game(
        name="c",
        candidates=("init", "mid", "final", "other"),
        reward_models=("u", "v"),
        raw_scores=np.array([[0.2, 0.2], [0.5, 0.4], [0.9, 0.5], [0.1, 0.9]]),
        scale="none",
        divergences=np.zeros(4),
        lam=1.0,
        payment_rule=INTERMEDIATE_CHECKPOINTS.with_parameters(checkpoints=[0, 1]),
        group_names=("p", "q"),
        preferences=np.array([[1.0, 0.0], [0.0, 1.0]]),
        sizes=np.array([3.0, 1.0]),
    )
    result = outcome(game.mechanism, game.truth, game.truth)
    scores = game.truth.sizes @ game.truth.rewards
    chosen = int(np.argmax(scores))
    for i in range(2):
        others = scores - game.truth.sizes[i] * game.truth.rewards[i]
        expected = max(others[0], others[1], others[chosen]) - others[chosen]
        assert result.payments[i] == pytest.approx(expected, abs=1e-15)


GAME = """\
outcomes: [a, b, c]
initial: [0.5, 0.3, 0.2]
divergence: {kind: kl, lambda: 0.5}
payment: {rule: early_stopped, steps: 3, step_size: 0.25}
max_size: 5
groups:
  - {name: g1, size: 2, reward: [0.2, 0.5, 0.3]}
  - {name: g2, size: 3, reward: [0.6, 0.1, 0.3]}
"""


def test_payment_block_loads_and_writes_back(write_game, tmp_path) -> None:
    game = load_game(write_game(GAME))
    rule = game.mechanism.payment_rule
    assert rule.name == "early_stopped" and rule.setting("steps") == 3 and rule.setting("step_size") == 0.25
    assert game_document(game).data["payment"] == {"rule": "early_stopped", "steps": 3, "step_size": 0.25}
    path = write_game_file(game, tmp_path / "out.yaml")[0]
    again = load_game(path)
    assert again.mechanism.payment_rule == rule
    assert write_game_file(again, tmp_path / "out2.yaml")[0].read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    "payment, message",
    [
        (
            "{rule: early_stopped, step_size: 1.5}",
            "payment.step_size: must be <= 1, got 1.5",
        ),
        (
            "{rule: early_stopped, stepz: 3}",
            "payment.stepz: unknown field (expected one of: rule, steps, step_size)",
        ),
        ("{steps: 3}", "payment: a mapping here needs a 'rule' key"),
        (
            "{rule: intermediate_checkpoints, checkpoints: [a, zz]}",
            "payment.checkpoints: unknown outcome 'zz'",
        ),
        ("{rule: early_stopped, steps: 0}", "payment.steps: must be >= 1, got 0"),
        ("{rule: early_stopped, steps: 100000000}", "payment.steps: must be <= 10000, got 100000000"),
    ],
)
def test_bad_payment_blocks_name_line_and_field(write_game, payment: str, message: str) -> None:
    path = write_game(GAME.replace("{rule: early_stopped, steps: 3, step_size: 0.25}", payment))
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2
    assert f"{path}:4: {message}" in result.stderr


def test_payment_problems_come_with_every_other_problem_of_the_file(write_game) -> None:
    """Every problem of a file in one run (issue 14) includes those of its ``payment:``
    mapping: a bad parameter next to a bad group, every unknown outcome a parameter names."""
    bad_bound = GAME.replace("step_size: 0.25", "step_size: 1.5").replace("size: 3,", "size: 0,")
    path = write_game(bad_bound)
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}:4: payment.step_size: must be <= 1, got 1.5",
        f"error: {path}:8: groups[1].size: must be >= 1, got 0",
    ]
    checkpoints = "{rule: intermediate_checkpoints, checkpoints: [a, zz, yy]}"
    text = GAME.replace("{rule: early_stopped, steps: 3, step_size: 0.25}", checkpoints)
    path = write_game(text.replace("size: 3,", "size: 30,"))
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}:4: payment.checkpoints: unknown outcome 'zz'",
        f"error: {path}:4: payment.checkpoints: unknown outcome 'yy'",
        f"error: {path}:8: groups[1].size: size 30.0 is above max_size 5.0",
    ]


def test_payment_param_on_the_command_line(write_game) -> None:
    path = write_game(GAME)
    result = runner.invoke(
        app,
        ["solve", str(path), "--payment", "early_stopped", "--payment-param", "steps=50", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    exact = runner.invoke(app, ["solve", str(path), "--payment", "affine_maximizer", "--format", "json"])
    import json

    long_run = json.loads(result.stdout)["profiles"]["truthful"]["groups"]
    reference = json.loads(exact.stdout)["profiles"]["truthful"]["groups"]
    for a, b in zip(long_run, reference, strict=True):
        assert a["payment"] == pytest.approx(b["payment"], abs=1e-12)
    bad = runner.invoke(app, ["solve", str(path), "--payment-param", "nope=1"])
    assert bad.exit_code == 2 and "has no parameter 'nope'" in bad.stderr
    assert AFFINE_MAXIMIZER.schema == ()


@pytest.mark.filterwarnings("error")
def test_issue_23_every_payment_is_finite_at_the_ends_of_the_lambda_range(
    divergence: str, payment_rule: str
) -> None:
    """lambda from 1e-100 to 1e100 (the range a game file takes): finite payments, utilities and
    ASW, and no numpy warning. Issue 23: reverse KL's early-stopped run collapsed to a point
    mass at lambda = 1e-8, and its divergence (-log 0) made every payment null."""
    rewards = np.array([[0.1, 0.5, 0.1, 0.3], [0.1, 0.3, 0.5, 0.1]])
    truth = Profile(rewards, np.array([3.0, 7.0]))
    q = np.array([0.4, 0.3, 0.1, 0.2])
    for lam in (1e-100, 1e-8, 1.0, 1e8, 1e100):
        mechanism = Mechanism(q, divergence, lam, payment_rule=payment_rule)
        got = solve(Game("x", tuple("abcd"), ("a", "b"), mechanism, "sum", truth, truth)).truthful
        assert np.all(np.isfinite(got.payments)) and np.all(np.isfinite(got.utilities)), lam
        assert np.isfinite(got.asw), lam
