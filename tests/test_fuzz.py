"""Hostile and broken input (issue 14): never a traceback, never a hang, nothing read that the
user did not mean, every problem of a file reported, and nothing wrong accepted.

The hostile files of the issue are :data:`fuzzing.HOSTILE` (each a test of its own); random
ones come from hypothesis: the bundled games with random edits, and documents of any shape
built from the format's keys. The long campaign is ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from cases import INVALID_GAME_FILES, VALID_GAME, InvalidGameFile
from fuzzing import BASE, BUNDLED, HOSTILE, Hostile, classify, clean_error, game_texts, run_cli, spec_texts
from hypothesis import HealthCheck, given, settings

import rlhf_mech.analysis._runner as audit_module
from rlhf_mech.errors import SpecError
from rlhf_mech.files import game_schema, load_game, write_game
from rlhf_mech.files._yaml import Loader

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@pytest.mark.parametrize("case", HOSTILE, ids=lambda h: h.name)
def test_issue_14_hostile_file(case: Hostile, tmp_path: Path) -> None:
    folder = tmp_path / "game"
    folder.mkdir()
    result = run_cli(case.build(folder), timeout_s=20)
    assert result.exit_code == case.exit_code, result.output
    if case.exit_code == 2:
        assert clean_error(result), result.output
    assert case.stderr in result.stderr, result.stderr
    assert "Traceback" not in result.output


def _classified(text: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "game.yaml"
        path.write_text(text, encoding="utf-8")
        return classify(path, timeout_s=20)


@FUZZ
@given(game_texts())
def test_issue_14_mutated_bundled_games_give_a_clean_error_or_a_valid_game(text: str) -> None:
    assert _classified(text) in ("clean", "accepted")


@FUZZ
@given(spec_texts())
def test_issue_14_generated_documents_give_a_clean_error_or_a_valid_game(text: str) -> None:
    assert _classified(text) in ("clean", "accepted")


def test_issue_14_every_problem_of_a_file_in_one_run(tmp_path: Path) -> None:
    """Structure (pydantic) and values (the loader's checks) alike, each its own line, in
    line order; a problem that depends on another (a reward checked against a failed
    ``outcomes:``) is not reported twice."""
    text = (
        VALID_GAME.replace("lambda: 1.0", "lambda: -1")
        .replace("    size: 2\n", "    size: 0\n    colour: red\n")
        .replace("[0.2, 0.3, 0.5]", "[0.2, 0.3, 0.6]")
        .replace("{a: 0.6, b: 0.2, c: 0.2}", "{a: 0.6, b: 0.2, d: 0.2}")
        .replace("name: g2", "name: g1")
    )
    path = tmp_path / "game.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_game(path)
    assert info.value.lines() == (
        f"{path}:5: divergence.lambda: lambda -1 is outside [1e-100, 1e+100], the range over which "
        "the solvers are checked: below it scores / lambda leave the float range, above it every "
        "payment is smaller than the rounding of the values it is a difference of",
        f"{path}:10: groups[0].size: must be >= 1, got 0",
        f"{path}:11: groups[0].colour: unknown field (expected one of: name, size, reward, report)",
        f"{path}:12: groups[0].reward: rewards sum to 1.1; normalization 'sum' needs 1 (±1e-9)",
        f"{path}:13: groups[1].name: duplicate group name 'g1'",
        f"{path}:15: groups[1].reward.d: unknown outcome 'd'",
        f"{path}:15: groups[1].reward: no value for outcome(s) 'c'",
    )
    result = run_cli(["solve", str(path)])
    assert result.stderr.splitlines() == [f"error: {line}" for line in info.value.lines()]


def test_issue_14_problems_past_fifty_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "game.yaml"
    path.write_text(
        BASE.replace("[0.2, 0.3, 0.5]", "[" + ", ".join(["x"] * 3) + "]")
        + "".join(f"k{i}: 1\n" for i in range(60))
    )
    with pytest.raises(SpecError) as info:
        load_game(path)
    lines = info.value.lines()
    assert len(lines) == 51 and lines[-1] == f"{path}: and 13 more problems"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"# only a comment\n", "the file is empty"),
        (b"a: caf\xe9\n", "not UTF-8"),
    ],
    ids=["empty", "comments_only", "latin1"],
)
def test_issue_14_errors_without_a_line_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "game.yaml"
    path.write_bytes(content)
    result = run_cli(["solve", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: ") and message in result.stderr


def test_issue_14_yaml_reads_numbers_and_names_as_a_person_does(tmp_path: Path) -> None:
    """YAML 1.2 core schema: 1e-6 is a float, yes/no/on are strings, 010 is ten, 1:30 a string."""
    data = yaml.load("[1e-6, 5e-1, yes, no, on, off, 010, 0o10, 1:30, 2024-01-01, .inf, ~]", Loader=Loader)
    assert data[:2] == [1e-6, 0.5] and data[2:6] == ["yes", "no", "on", "off"]
    assert data[6:8] == [10, 8] and data[8:10] == ["1:30", "2024-01-01"] and data[10] == float("inf")
    assert data[11] is None
    text = BASE.replace("lambda: 1.0", "lambda: 1e-6").replace("[a, b, c]", "[yes, no, on]")
    game = load_game(_write(tmp_path, text.replace("{a: 0.6, b: 0.2, c: 0.2}", "[0.6, 0.2, 0.2]")))
    assert game.mechanism.lam == 1e-6 and game.outcomes == ("yes", "no", "on")


def test_issue_14_keys_that_are_numbers_or_booleans_are_named_in_the_message(tmp_path: Path) -> None:
    """A key YAML reads as a number or a boolean (``1.5:``, ``0x1F:``, ``true:``) is an unknown
    field or outcome like any other (the first long campaign's one traceback was of this kind)."""
    text = BASE + "1.5: x\n0x1F: y\n"
    path = _write(tmp_path, text.replace("{a: 0.6, b: 0.2, c: 0.2}", "{a: 0.6, b: 0.2, c: 0.2, true: 0}"))
    result = run_cli(["solve", str(path)])
    assert clean_error(result, str(path)), result.output
    assert "groups[1].reward.True: unknown outcome True" in result.stderr
    assert f"{path}:15: 1.5: Keys should be strings" in result.stderr
    assert f"{path}:16: 31: Keys should be strings" in result.stderr


def test_issue_14_anchors_shared_by_many_groups_still_load(tmp_path: Path) -> None:
    """An anchor used by every group is what aliases are for: only a bomb is refused."""
    groups = "".join(f"  - {{name: g{i}, size: 1, reward: *r}}\n" for i in range(30))
    text = "outcomes: 200\nshared: &r [" + ", ".join(["0.005"] * 200) + "]\n"
    path = _write(tmp_path, text.replace("shared: ", "initial: ") + "groups:\n" + groups)
    game = load_game(path)
    assert game.truth.rewards.shape == (30, 200)


def _write(folder: Path, text: str, name: str = "game.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_issue_14_references_outside_the_folder_need_the_option(tmp_path: Path) -> None:
    np.save(tmp_path / "rm.npy", np.array([0.2, 0.3, 0.5]))
    folder = tmp_path / "games"
    folder.mkdir()
    path = _write(folder, BASE.replace("[0.2, 0.3, 0.5]", "{file: ../rm.npy}"))
    with pytest.raises(SpecError, match=r"outside the game file's folder"):
        load_game(path)
    np.testing.assert_array_equal(load_game(path, allow_outside_refs=True).truth.rewards[0], [0.2, 0.3, 0.5])
    assert run_cli(["solve", str(path), "--allow-outside-refs"]).exit_code == 0


def test_issue_14_npy_references_are_read_once_and_memory_mapped(tmp_path: Path, monkeypatch) -> None:
    np.save(tmp_path / "q.npy", np.array([0.5, 0.25, 0.25]))
    np.save(tmp_path / "rm.npy", np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]]))
    text = (
        BASE.replace("[0.5, 0.25, 0.25]", "{file: q.npy}")
        .replace("[0.2, 0.3, 0.5]", "{file: rm.npy, row: 0}")
        .replace("{a: 0.6, b: 0.2, c: 0.2}", "{file: rm.npy, row: 1}")
    )
    opened: list[str] = []
    load = np.load
    monkeypatch.setattr(
        np, "load", lambda path, *a, **k: opened.append(Path(path).name) or load(path, *a, **k)
    )
    game = load_game(_write(tmp_path, text))
    assert opened == ["q.npy", "rm.npy"]
    pi_init = game.mechanism.pi_init
    assert not pi_init.flags.writeable and isinstance(pi_init.base, np.memmap)
    # writing a game over the very files it was loaded from replaces them whole: the mapped
    # old file stays valid, and the new one holds the same numbers
    write_game(game, tmp_path / "game.yaml", inline_limit=1)
    again = load_game(tmp_path / "game.yaml")
    np.testing.assert_array_equal(again.mechanism.pi_init, [0.5, 0.25, 0.25])
    np.testing.assert_array_equal(pi_init, [0.5, 0.25, 0.25])


# --- the audit: one file's failure is that file's ------------------------------------------------

UNPAID = BASE.replace("payment: affine_maximizer", "payment: none")


def _audit_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "games"
    folder.mkdir()
    _write(folder, BASE.replace("name: base", "name: good"), "good.yaml")
    _write(folder, BASE.replace("name: base", "name: boom"), "boom.yaml")
    return folder


def test_issue_14_audit_goes_on_past_a_file_whose_audit_raises(tmp_path: Path, monkeypatch) -> None:
    original = audit_module.audit_groups

    def audit_groups(game, indices, options, seed):
        if game.name == "boom":
            raise ZeroDivisionError("a bug in one file's audit")
        return original(game, indices, options, seed)

    monkeypatch.setattr(audit_module, "audit_groups", audit_groups)
    folder = _audit_folder(tmp_path)
    result = run_cli(["audit", str(folder), "--budget", "20", "--format", "json"])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: {folder / 'boom.yaml'}: internal error: ZeroDivisionError: a bug in one file's audit"
    ]
    report = json.loads(result.stdout)
    assert [g.get("game") for g in report["games"]] == ["good", None]
    assert report["games"][1] == {
        "source": str(folder / "boom.yaml"),
        "line": None,
        "error": result.stderr[7:].strip(),
    }


def test_issue_14_a_file_whose_audit_raises_is_an_invalid_file_in_sarif_and_github(
    tmp_path: Path, monkeypatch
) -> None:
    """An isolated failure has no line: SARIF gets a result without a region (still valid
    SARIF 2.1.0), GitHub an annotation without ``line=``."""
    original = audit_module.audit_groups

    def audit_groups(game, indices, options, seed):
        if game.name == "boom":
            raise ZeroDivisionError("a bug in one file's audit")
        return original(game, indices, options, seed)

    monkeypatch.setattr(audit_module, "audit_groups", audit_groups)
    folder = _audit_folder(tmp_path)
    boom = folder / "boom.yaml"
    reason = "internal error: ZeroDivisionError: a bug in one file's audit"
    sarif = run_cli(["audit", str(folder), "--budget", "20", "--output-format", "sarif"])
    assert sarif.exit_code == 2, sarif.output
    log = json.loads(sarif.stdout)
    schema = json.loads((Path(__file__).parent / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    failed = [r for r in log["runs"][0]["results"] if r["ruleId"] == "invalid_file"]
    assert [r["message"]["text"] for r in failed] == [reason]
    location = failed[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == boom.as_uri() and "region" not in location
    github = run_cli(["audit", str(folder), "--budget", "20", "--output-format", "github"])
    assert github.exit_code == 2, github.output
    assert f"::error file={boom},title=rlhf-mech%3A invalid game file::{reason}" in github.stdout.splitlines()


def test_issue_14_audit_stops_a_file_at_its_time_limit(tmp_path: Path, monkeypatch) -> None:
    original = audit_module.audit_groups

    def audit_groups(game, indices, options, seed):
        if game.name == "boom":
            time.sleep(30)
        return original(game, indices, options, seed)

    monkeypatch.setattr(audit_module, "audit_groups", audit_groups)
    folder = _audit_folder(tmp_path)
    start = time.monotonic()
    result = run_cli(["audit", str(folder), "--budget", "20", "--time-limit", "0.5", "-q"])
    assert time.monotonic() - start < 20
    assert result.exit_code == 2, result.output
    assert f"error: {folder / 'boom.yaml'}: stopped after the time limit of 0.5 s" in result.stderr


def test_issue_14_counterexample_names_are_unique_across_folders(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        _write(tmp_path / sub, UNPAID, "unpaid.yaml")
    out = tmp_path / "cex"
    result = run_cli(
        [
            "audit",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--budget",
            "40",
            "--save-counterexamples",
            str(out),
        ]
    )
    assert result.exit_code == 1, result.output
    written = sorted(p.name for p in out.glob("*.yaml"))
    assert written == ["a_unpaid.g1.yaml", "a_unpaid.g2.yaml", "b_unpaid.g1.yaml", "b_unpaid.g2.yaml"]


# --- the JSON Schema: as strict as the loader wherever a schema can be --------------------------

#: Invalid files that are not a YAML document (the loader's parser refuses them first).
NOT_A_DOCUMENT = {"yaml_syntax_error", "yaml_tab_indentation", "empty_file", "comments_only"}
#: Invalid files the schema cannot see (spec/_schemas.LOADER_ONLY): relations between fields,
#: NaN, a key given twice, and the content of array files.
LOADER_ONLY_CASES = {
    "reward_wrong_length", "initial_wrong_length", "reward_sum_not_one", "reward_sum_off_by_2e-9",
    "reward_max_not_one", "reported_reward_not_normalised", "initial_sum_not_one", "initial_sum_off_by_2e-9",
    "duplicate_group_name", "duplicate_yaml_key_in_group", "duplicate_yaml_key_top_level",
    "size_above_max_size",
    "reported_size_above_max_size", "reward_nan", "reward_mapping_nan", "initial_nan", "size_nan",
    "mapping_unknown_outcome", "mapping_missing_outcome", "initial_mapping_unknown_outcome",
    "expect_unknown_group", "expect_empty_range", "file_missing", "file_row_out_of_range",
    "file_csv_row_out_of_range", "file_2d_without_row", "file_row_on_1d_array", "file_row_wrong_length",
}  # fmt: skip


def _schema_accepts(text: str) -> bool:
    validator = jsonschema.Draft202012Validator(game_schema())
    return validator.is_valid(yaml.load(text, Loader=Loader))


@pytest.mark.parametrize(
    "case", [c for c in INVALID_GAME_FILES if c.name not in NOT_A_DOCUMENT], ids=lambda c: c.name
)
def test_issue_14_schema_rejects_what_the_loader_rejects_field_by_field(case: InvalidGameFile) -> None:
    """Every invalid file the loader rejects for one field's value, the schema rejects too;
    the schema passes exactly the ones that need another field or a file to judge."""
    assert _schema_accepts(case.text) == (case.name in LOADER_ONLY_CASES)


@pytest.mark.parametrize("path", [*BUNDLED, Path("games/large/large.yaml")], ids=lambda p: str(p))
def test_issue_14_schema_accepts_every_bundled_game(path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / path).read_text()
    assert _schema_accepts(text)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ("size: 2", "size: 0"),
        ("size: 2", "size: 1e13"),
        ("lambda: 1.0", "lambda: 1e-320"),
        ("[a, b, c]", "[a, a, b]"),
    ],
)
def test_issue_14_schema_rejects_single_field_values(edit: str, field: str) -> None:
    assert _schema_accepts(BASE) and not _schema_accepts(BASE.replace(edit, field))


def test_schema_covers_the_payment_mapping() -> None:
    """``payment: {rule: NAME, ...}`` (issue 12) is in the schema with every parameter's bounds."""

    def paid(parameters: str) -> str:
        return BASE.replace("payment: affine_maximizer", f"payment: {{{parameters}}}")

    assert _schema_accepts(paid("rule: early_stopped, steps: 3, step_size: 0.5"))
    for bad in ("steps: 0", "steps: 100000", "stepz: 3", "step_size: 1.5"):
        assert not _schema_accepts(paid(f"rule: early_stopped, {bad}")), bad
    assert not _schema_accepts(paid("steps: 3"))
    assert not _schema_accepts(paid("rule: intermediate_checkpoints, checkpoints: []"))


def test_issue_14_schema_covers_candidate_games() -> None:
    from fuzzing import CANDIDATES

    assert _schema_accepts(CANDIDATES)
    assert not _schema_accepts(CANDIDATES.replace("size: 2", "size: 0"))
    assert not _schema_accepts(CANDIDATES.replace("helpful: 1.0,", "helpful: 1.0e101,"))
