"""The audit's JSON: a versioned, published JSON Schema, file digests, numerical health, and
the epsilon of incentive compatibility over the others' reports (``--others``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from rlhf_mech.cli import app
from rlhf_mech.render import audit_schema
from rlhf_mech.render._internal import AUDIT_SCHEMA_VERSION

runner = CliRunner()
GAMES = Path(__file__).resolve().parent.parent / "games"
SMALL = [
    str(GAMES / name) for name in ("harmless_vs_humor.yaml", "tv_max_normalised.yaml", "paper/table3.yaml")
]


def audit_json(*args: str) -> dict:
    result = runner.invoke(app, ["audit", *args, "--format", "json"])
    assert result.exit_code in (0, 1, 2), result.output
    return json.loads(result.stdout)


def test_schema_command_prints_the_published_schema() -> None:
    result = runner.invoke(app, ["schema", "--audit"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema == audit_schema(AUDIT_SCHEMA_VERSION)
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(
    "args",
    [
        SMALL,
        [*SMALL[:1], "--noise", "0.01", "--samples", "8"],
        [*SMALL[:1], "--others", "random 2"],
        [str(GAMES / "import_example" / "candidates.yaml"), "--others", "grid 2"],
    ],
    ids=["bundled", "noise", "random-others", "candidates-grid"],
)
def test_audit_json_follows_the_schema(args: list[str]) -> None:
    data = audit_json(*args)
    jsonschema.validate(data, audit_schema(AUDIT_SCHEMA_VERSION))
    assert data["schema_version"] == AUDIT_SCHEMA_VERSION


def test_invalid_files_follow_the_schema_too(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("outcomes: [a]\n", encoding="utf-8")
    data = audit_json(str(bad), SMALL[0])
    jsonschema.validate(data, audit_schema(AUDIT_SCHEMA_VERSION))
    assert data["summary"]["invalid"] == 1


def test_each_game_carries_the_sha256_of_its_file() -> None:
    data = audit_json(*SMALL)
    for game in data["games"]:
        assert game["sha256"] == hashlib.sha256(Path(game["source"]).read_bytes()).hexdigest()


def test_numerical_health_block() -> None:
    game = audit_json(SMALL[0])["games"][0]
    assert game["health"]["stalled_solves"] == 0 and game["health"]["healthy"] is True
    assert 0 <= game["health"]["max_kkt_residual"] <= 1e-12


def test_epsilon_ic_is_the_worst_group_over_the_others_profiles() -> None:
    """``--others random N``: each group's epsilon_ic is the largest gain over the file's
    profile and N random ones, the game's headline the largest over its groups; under p^AFF
    it stays <= 1e-9."""
    data = audit_json(SMALL[0], "--others", "random 3")
    game = data["games"][0]
    values = []
    for group in game["groups"]:
        assert len(group["profile_gains"]) == 1 + 3
        assert group["epsilon_ic"]["value"] == max(group["profile_gains"])
        assert group["epsilon_ic"]["value"] <= 1e-9
        assert group["profile_gains"][group["epsilon_ic"]["profile"]] == group["epsilon_ic"]["value"]
        values.append((group["epsilon_ic"]["value"], group["name"]))
    assert (game["epsilon_ic"]["value"], game["epsilon_ic"]["group"]) == max(values)
    assert game["search"]["others"] == "random 3"


def test_others_without_payment_finds_more_than_at_the_file_profile(write_game) -> None:
    """Without payment the worst case over the file's profile and 6 grid profiles is at least
    the gain at the file's profile, and here strictly more: the group's incentive to lie
    depends on what the others report."""
    text = (
        (GAMES / "harmless_vs_humor.yaml")
        .read_text(encoding="utf-8")
        .replace("payment: affine_maximizer", "payment: none")
    )
    path = write_game(text.split("expect:")[0])
    at_file = audit_json(str(path))["games"][0]["epsilon_ic"]["value"]
    over = audit_json(str(path), "--others", "grid 6")["games"][0]["epsilon_ic"]["value"]
    assert over >= at_file
    assert over > at_file + 1e-3


@pytest.mark.parametrize("text", ["grid", "random 0", "random x", "nope", "file 3"])
def test_bad_others_is_a_usage_error(text: str) -> None:
    result = runner.invoke(app, ["audit", SMALL[0], "--others", text])
    assert result.exit_code == 2
    assert "--others" in result.stderr
