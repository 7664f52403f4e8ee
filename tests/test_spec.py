"""Game files (format v1): every invalid input names its file, line and field; the happy
paths build the arrays of section 3 (outcomes, pi_init, rm_i, w_i and the reports)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from cases import INVALID_GAME_FILES, VALID_GAME, InvalidGameFile

from rlhf_mech.errors import RlhfMechError, SpecError
from rlhf_mech.files import game_schema, load_game

EXAMPLE = Path(__file__).resolve().parents[1] / "games" / "harmless_vs_humor.yaml"

GROUPS_TAIL = """\
groups:
  - name: g1
    size: 1
    reward: [0.5, 0.5]
"""


@pytest.mark.parametrize("case", INVALID_GAME_FILES, ids=lambda c: c.name)
def test_invalid_game_file_names_line_and_field(case: InvalidGameFile, write_game) -> None:
    path = write_game(case.text, files=case.files)
    with pytest.raises(SpecError) as info:
        load_game(path)
    err = info.value
    assert isinstance(err, RlhfMechError)
    assert (err.line, err.field) == (case.line, case.field), err.message
    assert re.search(case.message, err.message), err.message
    assert err.path == str(path)
    where = str(path) if case.line is None else f"{path}:{case.line}"
    what = f"{case.field}: {err.message}" if case.field else err.message
    assert err.lines()[0] == f"{where}: {what}"
    # every problem of the file, one line each (issue 14), the first one first
    assert str(err) == "\n".join(err.lines())
    for line in err.lines():
        assert line.startswith(f"{path}") and "\n" not in line
    assert "np.float64" not in str(err)


@pytest.mark.parametrize(
    "typo, line, field, hint",
    [
        ("divergence: {kind: kll, lambda: 1.0}", 3, "divergence.kind", "(did you mean 'kl'?)"),
        ("payment: afine_maximizer", 3, "payment", "(did you mean 'affine_maximizer'?)"),
        ("max_sise: 10", 3, "max_sise", "(did you mean 'max_size'?)"),
    ],
)
def test_a_typo_gets_the_closest_valid_name(typo: str, line: int, field: str, hint: str, write_game) -> None:
    """A misspelt name or key in a game file is answered with the closest valid one (issue 24),
    as a misspelt rule on the command line is (``core._registry.lookup``)."""
    group = "  - {name: g1, size: 1, reward: [0.5, 0.5]}"
    text = f"outcomes: 2\nnormalization: sum\n{typo}\ngroups:\n{group}\n"
    with pytest.raises(SpecError) as info:
        load_game(write_game(text))
    assert (info.value.line, info.value.field) == (line, field)
    assert info.value.message.endswith(hint), info.value.message


def test_a_word_far_from_every_name_gets_no_guess(write_game) -> None:
    group = "  - {name: g1, size: 1, reward: [0.5, 0.5]}"
    text = f"outcomes: 2\nnormalization: sum\npayment: bribe\ngroups:\n{group}\n"
    with pytest.raises(SpecError) as info:
        load_game(write_game(text))
    assert "did you mean" not in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cannot read the file") as info:
        load_game(tmp_path / "absent.yaml")
    assert info.value.line is None and info.value.field == ""


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match=r"cannot read the file"):
        load_game(path)


def test_valid_game_round_trip(write_game) -> None:
    game = load_game(write_game(VALID_GAME))
    assert game.name == "base"
    assert game.outcomes == ("a", "b", "c")
    np.testing.assert_array_equal(game.mechanism.pi_init, [0.5, 0.25, 0.25])
    assert game.normalization == "sum"
    assert (
        game.mechanism.divergence.name,
        game.mechanism.lam,
        game.mechanism.payment_rule.name,
        game.max_size,
    ) == (
        "kl",
        1.0,
        "affine_maximizer",
        5.0,
    )
    assert game.group_names == ("g1", "g2")
    np.testing.assert_array_equal(game.truth.rewards, [[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    np.testing.assert_array_equal(game.truth.sizes, [2.0, 1.0])
    np.testing.assert_array_equal(game.reports.rewards, game.truth.rewards)
    np.testing.assert_array_equal(game.reports.sizes, game.truth.sizes)
    assert game.is_truthful and game.notes == () and game.expect is None
    assert game.mechanism.outcome_costs is None


def test_example_game_loads() -> None:
    game = load_game(EXAMPLE)
    assert game.name == "harmless-vs-humor"
    assert game.outcomes == ("refuse", "safe_joke", "edgy_joke", "lecture")
    np.testing.assert_array_equal(game.truth.rewards[1], [0.1, 0.3, 0.5, 0.1])  # from a mapping
    np.testing.assert_array_equal(game.reports.rewards[0], [0.05, 0.6, 0.05, 0.3])
    assert game.misreporting_groups() == (0,)
    assert game.source == str(EXAMPLE)


def test_integer_outcomes_are_named_x0_x1(write_game) -> None:
    game = load_game(
        write_game(
            "outcomes: 3\ngroups:\n  - name: g\n    size: 1\n    reward: {x0: 0.5, x1: 0.25, x2: 0.25}\n"
        )
    )
    assert game.outcomes == ("x0", "x1", "x2")
    np.testing.assert_array_equal(game.mechanism.pi_init, np.full(3, 1 / 3))
    np.testing.assert_array_equal(game.truth.rewards, [[0.5, 0.25, 0.25]])


@pytest.mark.parametrize(
    ("initial", "expected"),
    [
        ("uniform", [0.5, 0.5]),
        ("[0.25, 0.75]", [0.25, 0.75]),
        ("{b: 0.75, a: 0.25}", [0.25, 0.75]),  # a mapping is put in outcome order
    ],
)
def test_initial_forms(initial: str, expected: list[float], write_game) -> None:
    game = load_game(write_game(f"outcomes: [a, b]\ninitial: {initial}\n" + GROUPS_TAIL))
    np.testing.assert_array_equal(game.mechanism.pi_init, expected)
    assert game.notes == ()


def test_initial_default_is_uniform(write_game) -> None:
    game = load_game(
        write_game("outcomes: [a, b, c, d]\n" + GROUPS_TAIL.replace("[0.5, 0.5]", "[0.25, 0.25, 0.25, 0.25]"))
    )
    np.testing.assert_array_equal(game.mechanism.pi_init, np.full(4, 0.25))


def test_initial_within_tolerance_is_renormalised_with_a_note(write_game) -> None:
    """An initial summing to 1 - 5e-10 is divided by its sum, and the change is recorded."""
    game = load_game(write_game("outcomes: [a, b]\ninitial: [0.5, 0.4999999995]\n" + GROUPS_TAIL))
    assert len(game.notes) == 1
    assert re.fullmatch(r"initial distribution divided by its sum 0\.9999999995 to sum to 1", game.notes[0])
    assert abs(game.mechanism.pi_init.sum() - 1.0) <= 1e-15
    np.testing.assert_allclose(
        game.mechanism.pi_init, np.array([0.5, 0.4999999995]) / 0.9999999995, rtol=1e-15
    )


def test_initial_off_by_rounding_only_has_no_note(write_game) -> None:
    game = load_game(
        write_game(
            "outcomes: 10\ninitial: ["
            + ", ".join(["0.1"] * 10)
            + "]\n"
            + GROUPS_TAIL.replace("reward: [0.5, 0.5]", "reward: {file: r.npy}"),
            files={"r.npy": tuple([0.1] * 10)},
        )
    )
    assert game.notes == ()


def test_rewards_within_tolerance_are_kept_as_written(write_game) -> None:
    """Nothing the user wrote is rescaled: a reward summing to 1 - 5e-10 is accepted as is."""
    game = load_game(
        write_game("outcomes: [a, b]\n" + GROUPS_TAIL.replace("[0.5, 0.5]", "[0.5, 0.4999999995]"))
    )
    np.testing.assert_array_equal(game.truth.rewards, [[0.5, 0.4999999995]])


def test_max_normalization(write_game) -> None:
    text = "outcomes: [a, b, c]\nnormalization: max\n" + GROUPS_TAIL.replace("[0.5, 0.5]", "[1.0, 0.0, 0.25]")
    game = load_game(write_game(text))
    assert game.normalization == "max"
    np.testing.assert_array_equal(game.truth.rewards, [[1.0, 0.0, 0.25]])


def test_report_given_in_part(write_game) -> None:
    """An omitted part of a report is truthful: only size, or only reward."""
    text = VALID_GAME.replace("    size: 2\n", "    size: 2\n    report: {size: 4}\n").replace(
        "    size: 1\n", "    size: 1\n    report:\n      reward: [0.2, 0.2, 0.6]\n"
    )
    game = load_game(write_game(text))
    np.testing.assert_array_equal(game.reports.sizes, [4.0, 1.0])
    np.testing.assert_array_equal(game.reports.rewards[0], game.truth.rewards[0])
    np.testing.assert_array_equal(game.reports.rewards[1], [0.2, 0.2, 0.6])
    assert not game.is_truthful
    assert game.misreporting_groups() == (0, 1)


def test_empty_report_is_truthful(write_game) -> None:
    game = load_game(write_game(VALID_GAME.replace("    size: 2\n", "    size: 2\n    report: {}\n")))
    assert game.is_truthful


def test_file_references_share_one_npy(write_game) -> None:
    rows = ((0.2, 0.3, 0.5), (0.6, 0.2, 0.2), (0.0, 0.0, 1.0))
    text = (
        "outcomes: [a, b, c]\ninitial: {file: q.csv}\ngroups:\n"
        "  - name: g1\n    size: 1\n    reward: {file: rm.npy, row: 0}\n"
        "  - name: g2\n    size: 2\n    reward: {file: rm.npy, row: 2}\n"
        "    report: {reward: {file: rm.npy, row: 1}}\n"
        "  - name: g3\n    size: 3\n    reward: {file: rm.csv, row: 1}\n"
    )
    game = load_game(write_game(text, files={"rm.npy": rows, "rm.csv": rows, "q.csv": (0.2, 0.3, 0.5)}))
    np.testing.assert_array_equal(game.truth.rewards, [rows[0], rows[2], rows[1]])
    np.testing.assert_array_equal(game.reports.rewards[1], rows[1])
    np.testing.assert_array_equal(game.mechanism.pi_init, [0.2, 0.3, 0.5])


def test_file_reference_is_relative_to_the_game_file(tmp_path: Path) -> None:
    sub = tmp_path / "games"
    sub.mkdir()
    np.save(sub / "rm.npy", np.array([0.25, 0.75]))
    (sub / "g.yaml").write_text(
        "outcomes: [a, b]\ngroups:\n  - name: g\n    size: 1\n    reward: {file: rm.npy}\n"
    )
    game = load_game(sub / "g.yaml")
    np.testing.assert_array_equal(game.truth.rewards, [[0.25, 0.75]])


def test_divergence_names_and_defaults(write_game) -> None:
    game = load_game(write_game("outcomes: [a, b]\ndivergence: {kind: tv}\n" + GROUPS_TAIL))
    assert (game.mechanism.divergence.name, game.mechanism.lam) == ("tv", 1.0)
    game = load_game(write_game("outcomes: [a, b]\n" + GROUPS_TAIL, name="defaults.yaml"))
    assert (game.name, game.mechanism.divergence.name, game.mechanism.payment_rule.name, game.max_size) == (
        "defaults",
        "kl",
        "affine_maximizer",
        None,
    )
    assert game.normalization == "sum"


def test_sizes_without_max_size_are_unbounded(write_game) -> None:
    game = load_game(write_game("outcomes: [a, b]\n" + GROUPS_TAIL.replace("size: 1", "size: 1000000")))
    np.testing.assert_array_equal(game.truth.sizes, [1e6])


def test_expect_block(write_game) -> None:
    text = VALID_GAME + (
        "expect:\n  profile: reported\n  dsic: true\n  ir: true\n"
        "  utility: {g1: [0.0, 2.0]}\n  social_welfare: [0.5, 3.0]\n"
    )
    expect = load_game(write_game(text)).expect
    assert expect is not None
    assert (expect.profile, expect.dsic, expect.ir, expect.nonnegative_payments) == (
        "reported",
        True,
        True,
        None,
    )
    assert expect.ranges == {"utility": {"g1": (0.0, 2.0)}, "social_welfare": {"": (0.5, 3.0)}}
    assert expect.line == 15


def test_schema_describes_the_format() -> None:
    top = game_schema()
    assert top["title"] == "rlhf-mech game file (format v1: core, candidate-model or many-prompt game)"
    assert top["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # one schema for the three formats, dispatched as the loader does: on a candidates: key,
    # then on a prompts: key (a list, or a mapping naming a table of prompts)
    assert top["if"] == {"required": ["candidates"]}
    assert top["then"] == {"$ref": "#/$defs/CandidateGameSpec"}
    assert top["else"] == {
        "if": {"required": ["prompts"]},
        "then": {
            "if": {"properties": {"prompts": {"type": "object"}}},
            "then": {"$ref": "#/$defs/PromptTableGameSpec"},
            "else": {"$ref": "#/$defs/PromptGameSpec"},
        },
        "else": {"$ref": "#/$defs/GameSpec"},
    }
    schema = top["$defs"]["GameSpec"]
    for key in (
        "outcomes",
        "initial",
        "normalization",
        "divergence",
        "max_size",
        "payment",
        "groups",
        "expect",
    ):
        assert key in schema["properties"], key
    assert "groups" in schema["required"]
    divergence = top["$defs"]["DivergenceSpec"]["properties"]
    assert "lambda" in divergence and "lambda_" not in divergence
