"""Issue 23, third round of hostile input: numbers at their limits, error collection that stays
linear, names that cannot stall a terminal, and output a terminal or a CI log cannot be made
to act on. (The readers' cases of the issue are in tests/test_logs.py.)"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from cases import VALID_GAME
from typer.testing import CliRunner

from rlhf_mech.cli import app
from rlhf_mech.cli._config import BOUNDS
from rlhf_mech.files import load_game

runner = CliRunner()
GAMES = Path(__file__).resolve().parent.parent / "games"


def _one_error(args: list[str]) -> str:
    """The one ``error:`` line a command must give (exit 2, no traceback), without the prefix."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0].removeprefix("error: ")


@pytest.fixture
def game(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid game file, in a folder of its own that is the working directory (no pyproject)."""
    path = tmp_path / "game.yaml"
    path.write_text(VALID_GAME, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return path


# --- numbers on the command line and in [tool.rlhf-mech]: one bounds table ---------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--tol", "nan"),
        ("--tol", "inf"),
        ("--noise", "inf"),
        ("--noise", "1e308"),
        ("--noise", "-1"),
        ("--budget", "100000000000"),
        ("--budget", "1e11"),
        ("--budget", "0"),
        ("--workers", "1000000"),
        ("-j", "0"),
        ("--seed", "-1"),
        ("--samples", "0"),
        ("--time-limit", "inf"),
        ("--time-limit", "-1"),
    ],
)
def test_issue_23_an_audit_number_out_of_range_is_one_line_naming_the_option(game, option, value):
    message = _one_error(["audit", str(game), option, value])
    assert message.split()[0] in (option, "--workers") and "game.yaml" not in message, message


@pytest.mark.parametrize("key", [k for k in BOUNDS if k != "time-limit"])
def test_issue_23_a_flag_and_its_configuration_key_share_one_bound(game, key):
    """The value just past the top of the range is refused on the command line and in
    ``[tool.rlhf-mech]``, with the same range in words; the top itself is accepted by both
    checks (the audit is not run at such values)."""
    bound = BOUNDS[key]
    over = int(bound.high) + 1 if bound.integer else bound.high * 10
    flag = _one_error(["audit", str(game), bound.option, str(over)])
    assert flag.startswith(f"{bound.option} ") and bound.what in flag
    (game.parent / "pyproject.toml").write_text(f"[tool.rlhf-mech]\n{key} = {over!r}\n", encoding="utf-8")
    configured = _one_error(["audit", str(game)])
    assert f"[tool.rlhf-mech] {key}: expected {bound.what}" in configured
    assert bound.accepts(int(bound.high) if bound.integer else bound.high)
    assert not bound.accepts(float("nan")) and not bound.accepts(True) and not bound.accepts(10**400)


@pytest.mark.parametrize("key", [k for k, bound in BOUNDS.items() if not bound.integer and k != "time-limit"])
def test_issue_23_a_float_setting_written_as_a_long_integer_in_the_configuration(game, key):
    """``tol = 999...9`` (30 digits, a TOML int within the bound) reached numpy as an int it
    could not test for finiteness (a TypeError traceback); it is held as the float 1e30."""
    (game.parent / "pyproject.toml").write_text(f"[tool.rlhf-mech]\n{key} = {'9' * 30}\n", encoding="utf-8")
    result = runner.invoke(app, ["audit", str(game), "--budget", "10", "-q"])
    assert result.exit_code == 0, result.output
    from rlhf_mech.cli._config import load_config

    assert load_config(("text",), game.parent).values == {key: 1e30}


def test_issue_23_a_configuration_nested_past_the_parser_is_one_line(game):
    (game.parent / "pyproject.toml").write_text(
        "[tool.rlhf-mech]\npaths = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8"
    )
    assert _one_error(["audit"]).endswith("pyproject.toml: cannot read it: nested too deeply")


@pytest.mark.parametrize(
    "args",
    [
        ["solve", "{game}", "--top", "-1"],
        ["audit", "{game}", "--budget", "0"],
        ["audit", "{game}", "-j", "0"],
        ["audit", "{game}", "--seed", "-1"],
        ["implementability", "{game}", "--max-types", "1"],
    ],
)
def test_issue_23_click_range_errors_are_one_line(game, args):
    message = _one_error([a.format(game=game) for a in args])
    assert "Usage" not in message and "--" in message


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["sweep", "{game}", "--group", "g1", "--alpha", "1_0"], "--alpha"),
        (["sweep", "{game}", "--group", "g1", "--alpha", "\u0661,2"], "--alpha"),
        (["sweep", "{game}", "--group", "g1", "--alpha", "0.5:1_0:0.5"], "--alpha"),
        (["sweep", "{game}", "--group", "g1", "--report-size", "1_0"], "--report-size"),
        (["audit", "{game}", "--tol", "1_0"], "--tol"),
        (["audit", "{game}", "--seed=\u0661"], "--seed"),
        (["solve", "{game}", "--top", "1_0"], "--top"),
        (
            ["solve", "{game}", "--payment", "early_stopped", "--payment-param", "steps=1_0"],
            "--payment-param",
        ),
        (
            ["solve", "{game}", "--payment", "early_stopped", "--payment-param", "step_size=\u0660.5"],
            "--payment-param",
        ),
    ],
)
def test_issue_23_numbers_python_reads_and_the_command_line_does_not(game, args, option):
    """``float("1_0")`` is 10 and ``int("\\u0661")`` is 1: an option takes ASCII decimals only."""
    assert _one_error([a.format(game=game) for a in args]).startswith(option)


def _number_options() -> list[tuple[str, str, object]]:
    """(command, parameter, its ``parser``) of every int or float option of every command, read
    off the functions the commands were made from (their annotations, public Python)."""
    import typing

    found = []
    for info in app.registered_commands:
        hints = typing.get_type_hints(info.callback, include_extras=True)
        for name, hint in hints.items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            kind, *extras = typing.get_args(hint)
            if kind in (int, float) or set(typing.get_args(kind)) & {int, float}:
                option = next(e for e in extras if hasattr(e, "parser"))
                found.append((info.name or info.callback.__name__, name, option.parser))
    return found


def test_issue_23_every_number_option_reads_ascii_decimals_through_its_parser():
    """The check is each option's ``parser=`` (Typer's public hook), not a scan of Typer's
    private parameter fields: every int or float option of every command has one."""
    options = _number_options()
    assert len(options) >= 20 and all(parser is not None for _, _, parser in options), options


def test_issue_23_integers_past_int64_are_refused_not_converted(game):
    """``math.isfinite`` of a 400-digit int raised OverflowError (a traceback), ``int()`` of
    5,000 digits raises ValueError; ``compare --samples 2**63-1`` asked numpy for exabytes.
    A value is echoed cut to 40 characters."""
    huge = "9" * 5000
    assert _one_error(["solve", str(game), "--top", huge]).startswith("--top '9999")
    assert _one_error(["audit", str(game), "--seed", "9" * 100]) == (
        f"--seed {'9' * 37}...: expected an integer in 0..9223372036854775807"
    )
    assert _one_error(["audit", str(game), "-j", "9" * 101]).endswith(
        ": expected an integer of at most 100 digits"
    )
    for option, top in (("--samples", 100_000), ("--types", 100_000), ("--budget", 1_000_000)):
        message = _one_error(["compare", str(game), option, str(2**63 - 1)])
        assert message == f"{option} '9223372036854775807': expected an integer <= {top}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["solve", "{game}", "--top", "-1"], "--top '-1': expected an integer >= 1"),
        (["solve", "{game}", "--top", "0.5"], "--top '0.5': expected an integer"),
        (["solve", "{game}", "--top", "1e3"], "--top '1e3': expected an integer"),
        (
            ["audit", "{game}", "-j\u0661"],
            "--workers '\u0661': expected a number in ASCII digits (as 5, 0.5 or 1e-3)",
        ),
        (["audit", "{game}", "--tol", "1e400"], "--tol '1e400': expected a finite number"),
        (["solve", "{game}", "--ci", "0.2"], "--ci '0.2': expected a number >= 0.5"),
        (
            ["import", "x.csv", "--lambda", "\u0661"],
            "--lambda '\u0661': expected a number in ASCII digits (as 5, 0.5 or 1e-3)",
        ),
    ],
)
def test_issue_23_a_number_option_says_what_it_expected(game, args, message):
    assert _one_error([a.format(game=game) for a in args]) == message


def test_issue_23_plain_decimals_are_still_numbers(game):
    for args in (["--tol", "1e-3"], ["--tol=0.5"], ["--seed", "+3"]):
        result = runner.invoke(app, ["audit", str(game), "--budget", "10", "-q", *args])
        assert result.exit_code == 0, result.output


# --- sums that overflow, errors by the thousand, names of megabytes ---------------------------


def test_issue_23_prompt_weights_whose_sum_overflows(tmp_path):
    text = (GAMES / "prompts" / "three_prompts.yaml").read_text(encoding="utf-8")
    path = tmp_path / "w.yaml"
    path.write_text(text.replace("weight: 0.5", "weight: 1e308").replace("weight: 0.3", "weight: 1e308"))
    weights = load_game(path).weights
    # 0.2 / 1e308 is a subnormal number: the two big prompts share the mass
    np.testing.assert_allclose(weights, [0.5, 0.5, 1e-309], rtol=1e-9, atol=0)
    assert weights.sum() == 1.0
    path.write_text(text.replace("weight: 0.5", "weight: 1e308").replace("weight: 0.3", "weight: 1e-300"))
    assert _one_error(["solve", str(path)]).startswith(f"{path}:21: prompts[1].weight: weight 1e-300 is 0")


def test_issue_23_thousands_of_bad_entries_are_counted_not_all_listed(tmp_path):
    """Every bad entry of a union field (``payment:``) is judged in one pass (it was quadratic:
    80,000 entries took 354 s); 50 are listed and the rest counted in one line."""
    entries = ", ".join(["[1]"] * 5000)
    path = tmp_path / "g.yaml"
    path.write_text(
        VALID_GAME.replace(
            "payment: affine_maximizer",
            f"payment: {{rule: intermediate_checkpoints, checkpoints: [{entries}]}}",
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 51
    assert lines[0] == f"error: {path}:7: payment.checkpoints[0]: Input should be a valid string"
    assert lines[-1] == f"error: {path}: and 4950 more problems"


def test_issue_23_duplicate_keys_by_the_thousand_are_counted(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(VALID_GAME + "".join("x: 1\n" for _ in range(3000)), encoding="utf-8")
    lines = runner.invoke(app, ["solve", str(path)]).stderr.splitlines()
    assert len(lines) == 51 and lines[-1].endswith("more problems")
    assert lines[0] == f"error: {path}:16: x: duplicate key 'x'"  # the second x


@pytest.mark.parametrize("field", ["name: g1", "name: base", "outcomes: [a, b, c]"])
def test_issue_23_a_name_of_a_million_characters_is_refused_and_says_why(tmp_path, field):
    long = "x" * 1_000_000
    text = VALID_GAME.replace(
        field, field.replace("g1", long).replace("base", long).replace("[a,", f"[{long},")
    )
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2 and "1024" in result.stderr and len(result.stderr) < 2000


# --- terminals and CI logs ------------------------------------------------------------------


@pytest.fixture
def hostile_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a game whose file name holds ESC and CR and fails its expect: block,
    and an invalid file whose name holds a newline and a GitHub workflow command."""
    (tmp_path / "exp\r\x1b[2J.yaml").write_text(VALID_GAME + "expect: {dsic: false}\n", encoding="utf-8")
    (tmp_path / "bad\n::error::pwned.yaml").write_text("name: [\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _no_control(text: str) -> bool:
    return not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in text)


@pytest.mark.parametrize("fmt", ["text", "github", "junit", "sarif", "json"])
def test_issue_23_file_names_cannot_act_on_a_terminal_or_a_ci_log(hostile_names, fmt):
    result = runner.invoke(app, ["audit", ".", "--budget", "10", "-q", "--format", fmt, "--color", "never"])
    assert result.exit_code == 2
    for stream in (result.stdout, result.stderr):
        assert _no_control(stream)
        # only the tool's own annotations start a line with a workflow command
        assert all(
            not line.startswith("::") or line.startswith("::error file=") for line in stream.splitlines()
        )
    assert result.stderr.splitlines() == [
        "error: bad\\x0a::error::pwned.yaml:2: invalid YAML: did not find expected node content"
    ]
    if fmt == "junit":
        suites = ET.fromstring(result.stdout).findall("testsuite")
        assert {s.get("name") for s in suites} == {"exp\\x0d\\x1b[2J.yaml", "bad\\x0a::error::pwned.yaml"}
    if fmt in ("sarif", "json"):
        json.loads(result.stdout)


def test_issue_23_the_junit_file_is_printable_too(hostile_names):
    runner.invoke(app, ["audit", ".", "--budget", "10", "-q", "--junit", "report.xml"])
    text = (hostile_names / "report.xml").read_text(encoding="utf-8")
    assert _no_control(text) and ET.fromstring(text).get("errors") == "1"


def test_issue_23_json_output_escapes_what_json_leaves_raw(tmp_path):
    """A prompt from a log may hold a bidi override (U+202E) or a C1 control, which JSON allows
    raw: ``--format json`` writes them as ``\\uXXXX`` escapes, the same value."""
    prompt = "a\x1b[31m\u202eb\x85\u2028é"
    path = tmp_path / "h.jsonl"
    path.write_text(
        "".join(
            json.dumps({"input": prompt, "output": o, "reward": r}) + "\n"
            for o, r in (("x", 1.0), ("y", 2.0))
        ),
        encoding="utf-8",
    )
    out = tmp_path / "h.yaml"
    assert runner.invoke(app, ["import", str(path), "--from", "openrlhf", "-o", str(out)]).exit_code == 0
    result = runner.invoke(app, ["solve", str(out), "--format", "json"])
    assert result.exit_code == 0 and _no_control(result.stdout) and "\u202e" not in result.stdout
    assert '"a\\u001b[31m\\u202eb\\u0085\\u2028é"' in result.stdout
    assert json.loads(result.stdout)["prompts"][0]["prompt"] == prompt


# --- a parameter's list of outcomes is a set ----------------------------------------------------


@pytest.mark.parametrize(
    ("payment", "line", "index"),
    [
        ("{rule: intermediate_checkpoints, checkpoints: [a, b, a]}", 7, 2),
        ("{rule: intermediate_checkpoints, checkpoints: [b, 'b']}", 7, 1),
        ("\n  rule: intermediate_checkpoints\n  checkpoints:\n    - a\n    - c\n    - a", 12, 2),
    ],
)
def test_issue_23_a_repeated_checkpoint_is_refused_at_the_repeat(tmp_path, payment, line, index):
    path = tmp_path / "g.yaml"
    path.write_text(VALID_GAME.replace(" affine_maximizer", " " + payment.lstrip(" ")), encoding="utf-8")
    message = _one_error(["solve", str(path)])
    assert message.startswith(f"{path}:{line}: payment.checkpoints[{index}]: outcome "), message
    assert message.endswith("given twice")


def test_issue_23_a_repeated_checkpoint_of_a_candidate_game(tmp_path):
    text = (GAMES / "heuristics" / "candidate_checkpoints.yaml").read_text(encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("checkpoints: [c1, c4]", "checkpoints: [c1, c4, c1]"), encoding="utf-8")
    assert _one_error(["solve", str(path)]) == f"{path}:18: payment.checkpoints[2]: outcome 'c1' given twice"


def test_issue_23_a_repeated_checkpoint_on_the_command_line_and_in_the_api(game):
    args = ["solve", str(game), "--payment", "intermediate_checkpoints"]
    args += ["--payment-param", "checkpoints=a,c,a"]
    assert _one_error(args) == "--payment-param checkpoints: outcome 'a' given twice"
    from rlhf_mech.core import get_payment_rule

    rule = get_payment_rule("intermediate_checkpoints")
    with pytest.raises(ValueError, match="`checkpoints` lists an outcome twice"):
        rule.with_parameters(checkpoints=[2, 0, 2])
    assert rule.with_parameters(checkpoints=[2, 0]).setting("checkpoints") == (2, 0)


@pytest.mark.parametrize("rule", ["none", "affine_maximizer", "early_stopped"])
def test_issue_23_checkpoints_on_a_rule_without_them_are_refused(tmp_path, rule):
    path = tmp_path / "g.yaml"
    path.write_text(
        VALID_GAME.replace("payment: affine_maximizer", f"payment: {{rule: {rule}, checkpoints: [a]}}"),
        encoding="utf-8",
    )
    assert _one_error(["solve", str(path)]).startswith(f"{path}:7: payment.checkpoints: unknown field")
    path.write_text(VALID_GAME + "checkpoints: [a]\n", encoding="utf-8")
    assert _one_error(["solve", str(path)]).startswith(f"{path}:15: checkpoints: unknown field")
    args = [
        "solve",
        str(path).replace("g.yaml", "h.yaml"),
        "--payment",
        rule,
        "--payment-param",
        "checkpoints=a",
    ]
    (tmp_path / "h.yaml").write_text(VALID_GAME, encoding="utf-8")
    assert _one_error(args) == (
        f"--payment-param: payment rule {rule!r} has no parameter 'checkpoints'"
        f" (its parameters: {'none' if rule != 'early_stopped' else 'steps, step_size'})"
    )


def test_issue_23_reverse_kl_early_stopped_at_a_tiny_lambda_has_finite_payments(tmp_path):
    """It printed ``"payment": null`` with exit 0 (the early-stopped run collapsed to a point
    mass, and reverse KL's -log 0 made the payment NaN)."""
    path = tmp_path / "g.yaml"
    path.write_text(
        VALID_GAME.replace("kind: kl, lambda: 1.0", "kind: reverse_kl, lambda: 1e-8").replace(
            "payment: affine_maximizer", "payment: early_stopped"
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["solve", str(path), "--format", "json"])
    assert result.exit_code == 0 and result.stderr == "", result.output
    profiles = json.loads(result.stdout)["profiles"]
    groups = [g for profile in profiles.values() for g in profile["groups"]]
    assert len(groups) == 2 * len(profiles) >= 4
    assert all(isinstance(g["payment"], float) and isinstance(g["utility"], float) for g in groups), groups
