"""The surfaces of issue 23 for benchmarks/fuzz.py: each draws one hostile input, runs it
through the command line and judges it.

* ``cli numbers``: a numeric option of any command with a number at or past its limits, or
  one Python reads and an option must not (``1_0``, Arabic-Indic digits);
* ``config values``: a ``[tool.rlhf-mech]`` key with such a value, or nested past the parser;
* ``overflowing sums``: prompt weights, sizes and rewards whose sums leave the float range;
* ``import round-trip``: TRL parquet, OpenRLHF JSON Lines and MOD CSV with extreme rewards,
  long or odd prompts and names; an import that exits 0 must write a game ``solve`` accepts;
* ``parquet schema``: duplicated, missing, mistyped, null and nested columns;
* ``jsonl oddities``: duplicate keys, numbers as strings, BOM, NaN literals, lone surrogates;
* ``long inputs``: thousands of bad entries, duplicate keys, names of megabytes (under the
  size caps): a hang past the timeout is the failure;
* ``extreme numerics``: every training x payment rule x divergence at lambda 1e-100 / 1e100, one-hot
  rewards, sizes 1e12 (a solve must exit 0 with finite output, or refuse cleanly);
* ``control characters``: file names with ESC, CR, a newline and ``::error::`` through
  ``audit`` in every output format;
* ``rule parameters``: repeated checkpoints, checkpoints on a rule without them, numbers as
  text, in the file and through ``--payment-param`` (each must be refused);
* ``corrupt parquet``: a TRL file cut short or with control bytes written in (pyarrow's
  message must come out escaped).

A verdict is ``clean``, ``accepted``, ``traceback``, ``hang``, ``wrong_accept`` or
``unescaped`` (a control character of :func:`~rlhf_mech.errors.printable`'s set in what was
printed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fuzzing import BASE, Hang, classify, clean_error, run_cli

from rlhf_mech.cli._config import BOUNDS
from rlhf_mech.core import DIVERGENCES, PAYMENT_RULES, TRAINING_RULES
from rlhf_mech.errors import DECIMAL
from rlhf_mech.render import AUDIT_FORMATS

ROOT = Path(__file__).resolve().parent.parent
Verdict = tuple[str, str]  # (verdict, the input in words)

#: What printable() escapes, bar the newline that separates lines.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")

#: Numbers at and past the limits, and spellings Python reads and an option must not.
NUMBERS = (
    "nan", "inf", "-inf", "1e308", "-1e308", "1e11", "100000000000", "1000000", "1025", "-1", "0",
    "1e-320", "5e-324", "1_0", "\u0661", "\u0661\u0660", "0x10", "1e400", "9" * 401, "+3", "0.5",
    "10", "2", "1e-9", "1e100", "1e101", "9223372036854775807", "9" * 5000, "100001",
)  # fmt: skip

#: (command, numeric options) with a game file as the first argument.
NUMERIC_OPTIONS = (
    ("audit", ("--budget", "--tol", "--seed", "--noise", "--samples", "-j", "--time-limit")),
    ("solve", ("--top", "--ci", "--resamples")),
    # compare's --budget shares the audit's bound; at its top (10^6) a compare runs for minutes
    ("compare", ("--seed", "--samples", "--types")),
    ("implementability", ("--seed", "--tol", "--max-types", "--rows")),
    ("sweep", ("--alpha", "--beta", "--epsilon", "--report-size")),
)


def _unescaped(result) -> bool:
    return bool(_CONTROL.search(result.stdout) or _CONTROL.search(result.stderr))


def _judge(argv: list[str], timeout_s: float, *, refuse: bool = False) -> str:
    """A command's verdict: ``refuse``: it must not exit 0 (a wrong accept if it does)."""
    try:
        result = run_cli(argv, timeout_s)
    except Hang:
        return "hang"
    if "internal error" in result.stderr or result.exit_code not in (0, 1, 2):
        return "traceback"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    if _unescaped(result):
        return "unescaped"
    if result.exit_code == 2:
        # an audit reports an invalid file (stdout) beside the others and exits 2 (docs/audit.md)
        audit = argv[0] == "audit" and all(line.startswith("error: ") for line in result.stderr.splitlines())
        return "clean" if clean_error(result) or audit else "traceback"
    return "wrong_accept" if refuse else "accepted"


def cli_numbers(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    game = folder / "game.yaml"
    game.write_text(BASE, encoding="utf-8")
    command, options = NUMERIC_OPTIONS[int(rng.integers(len(NUMERIC_OPTIONS)))]
    option = options[int(rng.integers(len(options)))]
    value = NUMBERS[int(rng.integers(len(NUMBERS)))]
    argv = [command, str(game), option, value]
    if command == "sweep":
        argv += ["--group", "g1"]
    if command == "audit":
        argv += ["-q", "--budget", "10"] if option != "--budget" else ["-q"]
    if command == "compare":
        argv += ["--budget", "10"] + [x for o in ("--samples", "--types") if o != option for x in (o, "0")]
    # a number written as Python reads it and ASCII does not must be refused; so must a value
    # outside the bounds table (audit)
    key = {"-j": "workers"}.get(option, option.lstrip("-"))
    refused = not DECIMAL.fullmatch(value) or (
        command == "audit" and key in BOUNDS and not BOUNDS[key].accepts(_read(value, BOUNDS[key].integer))
    )
    return _judge(argv, timeout_s, refuse=refused), " ".join(argv[:1] + argv[2:])


def _read(text: str, integer: bool) -> float | int | None:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return None


#: TOML values of every type and size, for any key of [tool.rlhf-mech].
TOML_VALUES = (
    "1000000", "1025", "0", "-1", "10", "2", "nan", "inf", "-inf", "1e308", "1e-320", "1.5", "true",
    '"1"', '"text"', "[1, 2]", "{a = 1}", "9" * 30, "1_000", "0x10", "[" * 5000 + "]" * 5000,
    "[" * 100_000 + "]" * 100_000,
)  # fmt: skip


def config_values(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    game = folder / "game.yaml"
    game.write_text(BASE, encoding="utf-8")
    keys = (*BOUNDS, "paths", "output-format", "colour")
    key = keys[int(rng.integers(len(keys)))]
    value = TOML_VALUES[int(rng.integers(len(TOML_VALUES)))]
    (folder / "pyproject.toml").write_text(f"[tool.rlhf-mech]\n{key} = {value}\n", encoding="utf-8")
    import os
    import tomllib

    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        parsed = None
    if key == "output-format":
        refused = not isinstance(parsed, str) or parsed not in AUDIT_FORMATS
    elif key == "paths":  # a list of strings (the game on the command line is audited)
        refused = not (isinstance(parsed, list) and all(isinstance(p, str) for p in parsed))
    else:  # time-limit is a flag only
        refused = key not in BOUNDS or key == "time-limit" or not BOUNDS[key].accepts(parsed)
    here = os.getcwd()
    os.chdir(folder)
    try:
        verdict = _judge(["audit", "game.yaml", "-q"], timeout_s, refuse=refused)
    finally:
        os.chdir(here)
        (folder / "pyproject.toml").unlink()
    return verdict, f"{key} = {value[:40]}"


_MAGNITUDES = (1e308, 1e300, 1e200, 1.0, 1e-300, 5e-324, 1.7976931348623157e308)


def overflowing_sums(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    text = (ROOT / "games" / "prompts" / "three_prompts.yaml").read_text(encoding="utf-8")
    for old in ("weight: 0.5", "weight: 0.3", "weight: 0.2"):
        text = text.replace(old, f"weight: {_MAGNITUDES[int(rng.integers(len(_MAGNITUDES)))]!r}")
    if rng.random() < 0.5:
        text = text.replace("{name: helpful, size: 4}", "{name: helpful, size: 1e12}").replace(
            "max_size: 10", "max_size: 1e12"
        )
    path = folder / "sums.yaml"
    path.write_text(text, encoding="utf-8")
    return classify(path, timeout_s), re.sub(r"\s+", " ", " ".join(re.findall(r"weight: \S+", text)))


_REWARDS = (1e308, -1e308, 1e300, -1e300, 1e-320, 0.0, 1.0, -1.0, 1e100, 1e101, 1.7976931348623157e308)
_PROMPTS = ("p", "a\x1b[31m\u202eb\x00", "x" * ((1 << 20) - 1), "x" * ((1 << 20) + 1), "\n\nHuman: hi")
_NAMES = ("ok", "a\x1bb", "a\nb", "", "x" * 2000, "\u202e", "::error::x")


def _import_verdict(argv: list[str], out: Path, timeout_s: float) -> str:
    verdict = _judge(argv, timeout_s)
    if verdict != "accepted":
        return verdict
    if not out.exists():
        return "wrong_accept"
    loaded = _judge(["solve", str(out), "--format", "json"], timeout_s)
    return "accepted" if loaded == "accepted" else "wrong_accept"  # an import that does not load


def import_round_trip(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    kind = ("trl", "openrlhf", "mod")[int(rng.integers(3))]
    score = "1.0"
    rewards = [float(_REWARDS[int(rng.integers(len(_REWARDS)))]) for _ in range(3)]
    prompt = _PROMPTS[int(rng.integers(len(_PROMPTS)))]
    out = folder / "imported.yaml"
    out.unlink(missing_ok=True)
    if kind == "trl":
        path = folder / "run" / "completions" / "completions_00003.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = {
            "step": pa.array([3, 3, 3], pa.int64()),
            "prompt": pa.array([prompt] * 3),
            "completion": pa.array(["a", "b", "c"]),
            "r": pa.array(rewards),
            "advantage": pa.array([0.5, -0.5, 0.0]),
        }
        pq.write_table(pa.table(table), path)
        argv = ["import", str(path), "-o", str(out), "--force"]
    elif kind == "openrlhf":
        path = folder / "helpful.jsonl"
        rows = [{"input": prompt, "output": o, "reward": r} for o, r in zip("abc", rewards, strict=True)]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        argv = ["import", str(path), "--from", "openrlhf", "-o", str(out), "--force"]
    else:
        sub = folder / "mod"
        sub.mkdir(exist_ok=True)
        path = sub / "eval_data_pref0.5_0.5.csv"
        quoted = '"' + prompt.replace('"', '""') + '"'
        lines = [",prompt,response,obtained_score1,obtained_score2"]
        score = ("1.0", "1_000", "\u0661", "0x10", "infinity")[int(rng.integers(5))]
        lines += [f"{k},{quoted},r{k},{r!r},{score}" for k, r in enumerate(rewards)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        argv = ["import", str(sub), "-o", str(out), "--force"]
    if rng.random() < 0.3:
        argv += ["--name", _NAMES[int(rng.integers(len(_NAMES)))]]
    verdict = _import_verdict(argv, out, timeout_s)
    if kind == "mod" and score != "1.0" and verdict == "accepted":  # a score Python reads, no CSV writes
        verdict = "wrong_accept"
    return verdict, f"{kind} rewards={rewards} prompt={prompt[:12]!r}"


def parquet_schema(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    columns: dict[str, pa.Array] = {
        "step": pa.array([3, 3], pa.int64()),
        "prompt": pa.array(["p", "p"]),
        "completion": pa.array(["a", "b"]),
        "r": pa.array([1.0, 0.0]),
        "advantage": pa.array([0.7, -0.7]),
    }
    # which oddity -> (the column it replaces, its new values); None: added or removed
    edits: dict[str, tuple[str, pa.Array | None]] = {
        "duplicate reward column": ("r", None),
        "no prompt column": ("prompt", None),
        "string reward": ("r", pa.array(["1.0", "0.0"])),
        "int reward": ("r", pa.array([1, 0], pa.int64())),
        "null reward": ("r", pa.array([1.0, None])),
        "nan reward": ("r", pa.array([1.0, float("nan")])),
        "list reward": ("r", pa.array([[1.0], [0.0]])),
        "null prompt": ("prompt", pa.array(["p", None])),
        "struct prompt": ("prompt", pa.array([{"role": "user"}, {"role": "user"}])),
        "step as string": ("step", pa.array(["3", "3"])),
        "binary completion": ("completion", pa.array([b"\xff", b"\x00"])),
    }
    which = list(edits)[int(rng.integers(len(edits)))]
    column, values = edits[which]
    names, arrays = list(columns), list(columns.values())
    if which.startswith("duplicate"):
        names.append(column)
        arrays.append(pa.array([0.0, 1.0]))
    elif values is None:
        del arrays[names.index(column)], names[names.index(column)]
    else:
        arrays[names.index(column)] = values
    path = folder / "schema" / "completions" / "completions_00003.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, names), path)
    out = folder / "schema.yaml"
    out.unlink(missing_ok=True)
    return _import_verdict(["import", str(path), "-o", str(out), "--force"], out, timeout_s), which


_JSONL_LINES = (
    ('{"input": "p", "output": "a", "reward": 1.0, "reward": 2.0}', True),
    ('{"input": "p", "output": "a", "reward": "0.5"}', True),
    ('{"input": "p", "output": "a", "reward": NaN}', True),
    ('{"input": "p", "output": "a", "reward": Infinity}', True),
    ('{"input": "p", "output": "a", "reward": -Infinity}', True),
    ('\ufeff{"input": "p", "output": "a", "reward": 1.0}', True),
    ('{"input": "p\\ud800", "output": "a", "reward": 1.0}', True),
    ('{"input": "p", "output": "a", "reward": 1e400}', True),
    ('{"input": "p", "output": "a", "reward": ' + "9" * 5000 + "}", True),
    ('{"input": "p", "output": "a", "reward": true}', True),
    ('{"input": "p", "output": "a", "reward": [1.0]}', True),
    ('{"input": "p", "output": "a"}', True),
    ("[1, 2]", True),
    ('{"input": "p", "output": "a", "reward": 1.0, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", True),
    ('{"input": "p", "output": "b", "reward": 2.0}', False),
)


def jsonl_oddities(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    line, refused = _JSONL_LINES[int(rng.integers(len(_JSONL_LINES)))]
    path = folder / "helpful.jsonl"
    path.write_text('{"input": "p", "output": "z", "reward": 0.0}\n' + line + "\n", encoding="utf-8")
    out = folder / "odd.yaml"
    out.unlink(missing_ok=True)
    argv = ["import", str(path), "--from", "openrlhf", "-o", str(out), "--force"]
    verdict = _import_verdict(argv, out, timeout_s)
    if refused and verdict == "accepted":
        verdict = "wrong_accept"
    return verdict, line[:60]


def long_inputs(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    n = int(rng.choice([1_000, 20_000, 80_000]))
    kind = int(rng.integers(4))
    if kind == 0:
        entries = ", ".join(["[1]"] * n)
        text = BASE.replace(
            "payment: affine_maximizer",
            f"payment: {{rule: intermediate_checkpoints, checkpoints: [{entries}]}}",
        )
    elif kind == 1:
        text = BASE + "".join(f"x: {k}\n" for k in range(n))
    elif kind == 2:
        text = BASE.replace("name: g1", "name: " + "x" * (n * 125))  # up to 10 million characters
    else:
        text = BASE.replace("[0.2, 0.3, 0.5]", "[" + ", ".join(["bad"] * n) + "]")
    path = folder / "long.yaml"
    path.write_text(text, encoding="utf-8")
    verdict = classify(path, timeout_s)
    return ("wrong_accept" if verdict == "accepted" else verdict), f"kind {kind}, n {n}"


def extreme_numerics(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    training = list(TRAINING_RULES)[int(rng.integers(len(TRAINING_RULES)))]
    payment = list(PAYMENT_RULES)[int(rng.integers(len(PAYMENT_RULES)))]
    lam = ("1e-100", "1e100", "1e-8", "1.0")[int(rng.integers(4))]
    divergence = list(DIVERGENCES)[int(rng.integers(len(DIVERGENCES)))]
    text = BASE.replace("kind: kl, lambda: 1.0", f"kind: {divergence}, lambda: {lam}").replace(
        "payment: affine_maximizer", f"payment: {payment}"
    )
    text = text.replace("max_size: 5", f"max_size: 1e12\ntraining: {training}")
    if rng.random() < 0.5:  # one-hot rewards
        text = text.replace("[0.2, 0.3, 0.5]", "[0, 0, 1]").replace("{a: 0.6, b: 0.2, c: 0.2}", "[1, 0, 0]")
    if rng.random() < 0.5:
        text = text.replace("size: 2", "size: 1e12")
    path = folder / "extreme.yaml"
    path.write_text(text, encoding="utf-8")
    return classify(path, timeout_s), f"{training} x {payment}, {divergence}, lambda {lam}"


_FILE_NAMES = (
    "ok\x1b[31m.yaml",
    "bad\n::error::pwned.yaml",
    "cr\r\x1b[2J.yaml",
    "bidi\u202e.yaml",
    "nul\x7f.yaml",
)


def control_characters(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    sub = folder / "names"
    sub.mkdir(exist_ok=True)
    for old in sub.iterdir():
        old.unlink()
    name = _FILE_NAMES[int(rng.integers(len(_FILE_NAMES)))]
    text = BASE if rng.random() < 0.5 else BASE + "expect: {dsic: false}\n"
    if rng.random() < 0.3:
        text = "name: [\n"
    (sub / name).write_text(text, encoding="utf-8")
    fmt = ("text", "github", "junit", "sarif", "json")[int(rng.integers(5))]
    argv = ["audit", str(sub), "--budget", "10", "--format", fmt]
    try:
        result = run_cli(argv, timeout_s)
    except Hang:
        return "hang", f"{name!r} {fmt}"
    if _unescaped(result) or any(
        line.startswith("::") and not line.startswith("::error file=") for line in result.stdout.splitlines()
    ):
        return "unescaped", f"{name!r} {fmt}"
    if "internal error" in result.stderr or result.exit_code not in (0, 1, 2):
        return "traceback", f"{name!r} {fmt}"
    return ("clean" if result.exit_code == 2 else "accepted"), f"{name!r} {fmt}"


#: (payment: mapping or --payment-param value, whether it must be refused) on BASE (outcomes a, b, c).
_RULE_PARAMETERS = (
    ("{rule: intermediate_checkpoints, checkpoints: [a, c]}", False),
    ("{rule: intermediate_checkpoints, checkpoints: [a, a]}", True),
    ("{rule: intermediate_checkpoints, checkpoints: [c, b, 'c']}", True),
    ("{rule: intermediate_checkpoints, checkpoints: [a, zz]}", True),
    ("{rule: intermediate_checkpoints, checkpoints: []}", True),
    ("{rule: affine_maximizer, checkpoints: [a]}", True),
    ("{rule: early_stopped, checkpoints: [a]}", True),
    ("{rule: early_stopped, steps: '10'}", True),
    ("{rule: early_stopped, steps: 1_0}", True),
    ("{rule: early_stopped, step_size: .nan}", True),
    ("{rule: early_stopped, steps: 10, steps: 11}", True),
    ("{rule: intermediate_checkpoints, checkpoint_every: 0}", True),
)
_PAYMENT_PARAMS = (
    ("intermediate_checkpoints", "checkpoints=a,c", False),
    ("intermediate_checkpoints", "checkpoints=a,a", True),
    ("intermediate_checkpoints", "checkpoints=b,c,b", True),
    ("affine_maximizer", "checkpoints=a", True),
    ("early_stopped", "steps=1_0", True),
    ("early_stopped", "step_size=\u0660.5", True),
    ("early_stopped", "steps=nan", True),
)


def rule_parameters(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    """A payment rule's parameters in the file and on the command line: repeated checkpoints,
    checkpoints on a rule that has none, numbers as text."""
    path = folder / "rules.yaml"
    if rng.random() < 0.5:
        payment, refused = _RULE_PARAMETERS[int(rng.integers(len(_RULE_PARAMETERS)))]
        path.write_text(BASE.replace("payment: affine_maximizer", f"payment: {payment}"), encoding="utf-8")
        verdict = classify(path, timeout_s)
        return ("wrong_accept" if refused and verdict == "accepted" else verdict), payment
    rule, setting, refused = _PAYMENT_PARAMS[int(rng.integers(len(_PAYMENT_PARAMS)))]
    path.write_text(BASE, encoding="utf-8")
    argv = ["solve", str(path), "--payment", rule, "--payment-param", setting, "--format", "json"]
    return _judge(argv, timeout_s, refuse=refused), f"--payment {rule} --payment-param {setting}"


def corrupt_parquet(rng: np.random.Generator, folder: Path, timeout_s: float) -> Verdict:
    """A TRL parquet file cut short or with bytes overwritten (control bytes among them): the
    reader's message (pyarrow's) must come out escaped."""
    path = folder / "corrupt" / "completions" / "completions_00003.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"step": [3, 3], "prompt": ["p", "p"], "completion": ["a", "b"], "r": [1.0, 0.0]})
    pq.write_table(table, path)
    data = bytearray(path.read_bytes())
    if rng.random() < 0.3:
        data = data[: int(rng.integers(1, len(data)))]
    else:
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(len(data)))] = int(rng.choice([0x1B, 0x0A, 0x0D, 0x00, 0x85, 0xFF]))
    path.write_bytes(bytes(data))
    out = folder / "corrupt.yaml"
    out.unlink(missing_ok=True)
    return _import_verdict(
        ["import", str(path), "-o", str(out), "--force"], out, timeout_s
    ), "corrupt parquet"


#: name -> (share of the campaign's inputs, the surface).
SURFACES: dict[str, tuple[float, Callable[[np.random.Generator, Path, float], Verdict]]] = {
    "cli numbers": (0.12, cli_numbers),
    "config values": (0.08, config_values),
    "overflowing sums": (0.05, overflowing_sums),
    "import round-trip": (0.12, import_round_trip),
    "parquet schema": (0.05, parquet_schema),
    "jsonl oddities": (0.05, jsonl_oddities),
    "long inputs": (0.02, long_inputs),
    "extreme numerics": (0.08, extreme_numerics),
    "control characters": (0.05, control_characters),
    "rule parameters": (0.03, rule_parameters),
    "corrupt parquet": (0.02, corrupt_parquet),
}
