"""Games at the scale of trainer logs (issue 25): tables of prompts beside the YAML, the
loader's single copy of the rewards, the YAML reader and writer against libyaml."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlhf_mech.cli import app
from rlhf_mech.core import Mechanism, Profile, PromptGame
from rlhf_mech.errors import SpecError
from rlhf_mech.files import load_game, write_game
from rlhf_mech.files._prompt_tables import TABLE_FORMATS, game_columns

runner = CliRunner()
FORMATS = tuple(suffix.lstrip(".") for suffix in TABLE_FORMATS)


def random_prompt_game(seed: int = 0, prompts: int = 12, named: bool = True) -> PromptGame:
    """Prompts of 1..6 outcomes each with a ``pi_init`` of its own (sample counts), outcome
    names, prompt weights, group ``b`` misreporting on some prompts and in size."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 7, prompts)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    T = int(offsets[-1])
    samples = rng.integers(1, 4, T).astype(float)
    pi_init = samples / np.repeat(np.add.reduceat(samples, offsets[:-1]), counts)
    raw = rng.random((3, T)) + 1e-3
    truth = raw / np.repeat(np.add.reduceat(raw, offsets[:-1], axis=1), counts, axis=1)
    reports = truth.copy()
    reports[1, : offsets[3]] = np.repeat(1.0 / counts[:3], counts[:3])
    weights = rng.random(prompts) + 0.5
    names = tuple(f"r{j}-{x}" for x, c in enumerate(counts) for j in range(c)) if named else None
    return PromptGame(
        name="scale",
        prompts=tuple(f"prompt {x}: «{'é' * x}»\n" for x in range(prompts)),
        group_names=("a", "b", "c"),
        mechanism=Mechanism(pi_init[: offsets[1]], "kl", 0.7),
        normalization="sum",
        offsets=offsets,
        pi_init=pi_init,
        truth=Profile(truth, np.array([1.0, 2.0, 3.0])),
        reports=Profile(reports, np.array([1.0, 2.5, 3.0])),
        weights=weights / weights.sum(),
        outcome_names=names,
        max_size=10.0,
    )


def _solve_json(path: Path) -> bytes:
    result = runner.invoke(app, ["solve", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("named", [True, False])
def test_a_table_of_prompts_solves_to_the_bytes_of_the_yaml_form(
    tmp_path: Path, fmt: str, named: bool
) -> None:
    game = random_prompt_game(named=named)
    listed = write_game(game, tmp_path / "listed.yaml", table="yaml")
    tabled = write_game(game, tmp_path / "tabled.yaml", table=fmt)
    assert [p.name for p in listed] == ["listed.yaml"]
    assert [p.name for p in tabled] == ["tabled.yaml", f"tabled.prompts.{fmt}"]
    assert f"prompts: {{file: tabled.prompts.{fmt}}}" in tabled[0].read_text()
    # the same game: every array equal, and the same bytes out of `solve --format json`
    a, b = load_game(listed[0]), load_game(tabled[0])
    for field in ("offsets", "pi_init", "weights"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.truth.rewards, b.truth.rewards)
    np.testing.assert_array_equal(a.reports.rewards, b.reports.rewards)
    assert (a.prompts, a.outcome_names, a.notes) == (b.prompts, b.outcome_names, b.notes)
    assert _solve_json(listed[0]) == _solve_json(tabled[0])


def test_a_truthful_table_holds_no_reports_and_loads_one_profile(tmp_path: Path) -> None:
    game = random_prompt_game()
    truthful = PromptGame(
        **{**game.__dict__, "reports": game.truth, "lines": {}, "weights": np.full(12, 1 / 12)}
    )
    path = write_game(truthful, tmp_path / "t.yaml", table="npz")[0]
    with zipfile.ZipFile(tmp_path / "t.prompts.npz") as archive:
        members = {info.filename for info in archive.infolist()}
    assert "reports.npy" not in members and "weights.npy" not in members
    loaded = load_game(path)
    assert loaded.reports is loaded.truth  # one object: neither copied nor compared entry by entry
    # the npz is stored uncompressed: its rewards are memory-mapped, not read into memory
    assert isinstance(loaded.truth.rewards.base, np.memmap)


def test_import_writes_a_table_above_the_threshold(tmp_path: Path, monkeypatch) -> None:
    import rlhf_mech.files._writer as writer

    game = random_prompt_game()
    monkeypatch.setattr(writer, "TABLE_THRESHOLD", game.n_prompts)
    assert len(write_game(game, tmp_path / "at.yaml")) == 1  # the default: "auto"
    monkeypatch.setattr(writer, "TABLE_THRESHOLD", game.n_prompts - 1)
    assert [p.name for p in write_game(game, tmp_path / "above.yaml")] == ["above.yaml", "above.prompts.npz"]
    assert _solve_json(tmp_path / "at.yaml") == _solve_json(tmp_path / "above.yaml")


# --- a table that is missing, corrupt or does not match its YAML: one error at prompts.file ---


def _npz_members(game: PromptGame) -> dict[str, np.ndarray]:
    buffer = io.BytesIO()
    TABLE_FORMATS[".npz"].write(buffer, game_columns(game))
    buffer.seek(0)
    with np.load(buffer) as archive:
        return {name: archive[name] for name in archive.files}


def _with(**changes: object):
    def change(members: dict[str, np.ndarray]) -> None:
        for name, value in changes.items():
            if value is None:
                del members[name]
            elif callable(value):
                members[name] = value(members[name])
            else:
                members[name] = value

    return change


def _negative(rewards: np.ndarray) -> np.ndarray:
    out = rewards.copy()
    out[2, 7] = -0.5
    return out


def _off_sum(rewards: np.ndarray) -> np.ndarray:
    out = rewards.copy()
    out[0, 0] += 0.1
    return out


def _zero_initial(initial: np.ndarray) -> np.ndarray:
    out = initial.copy()
    out[4] = 0.0
    return out


def _byte_replaced(character: str, byte: int):
    return lambda text: np.where(text == ord(character), byte, text).astype(np.uint8)


def _np_text(texts: list[str] | str) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.encode() for t in texts]
    return np.frombuffer(b"".join(encoded), np.uint8), np.cumsum([len(e) for e in encoded])


#: (name, change of the members, field named, words of the message)
BAD_NPZ = [
    ("missing_rewards", _with(rewards=None), "rewards", "missing"),
    ("rewards_of_two_groups", _with(rewards=lambda r: r[:2]), "rewards", "expected shape (3, "),
    ("negative_reward", _with(rewards=_negative), "rewards", "group 'c' on prompt"),
    ("rewards_off_their_sum", _with(rewards=_off_sum), "rewards", "rewards sum to"),
    ("nan_report", _with(reports=lambda r: np.where(r > 0.9, np.nan, r)), "reports", "must be finite"),
    ("zero_probability", _with(initial=_zero_initial), "initial", "every p must be > 0"),
    ("initial_too_short", _with(initial=lambda q: q[:-1]), "initial", "expected"),
    ("negative_weight", _with(weights=lambda w: -w), "weights", "weights must be > 0"),
    ("offsets_decreasing", _with(offsets=lambda o: o[::-1].copy()), "offsets", "must grow from 0"),
    ("offsets_of_floats", _with(offsets=lambda o: o.astype(float)), "offsets", "holds"),
    ("other_groups", _with(group_utf8=_np_text("abd")[0]), "group_utf8", "are not the file's"),
    ("prompt_text_not_utf8", _with(prompt_utf8=_byte_replaced("p", 0xFF)), "prompt_utf8", "not UTF-8"),
    ("prompt_ends_past_the_text", _with(prompt_ends=lambda e: e + 1), "prompt_ends", "must grow from 0"),
    ("object_member", _with(weights=np.array([None] * 12, dtype=object)), "weights", "Python objects"),
    ("control_character", _with(outcome_utf8=_byte_replaced("r", 7)), "outcome_utf8", "control characters"),
]  # fmt: skip


def _error_lines(path: Path) -> list[str]:
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line]


@pytest.mark.parametrize(("case", "change", "field", "words"), BAD_NPZ, ids=[c[0] for c in BAD_NPZ])
def test_a_bad_npz_table_is_one_error_naming_the_table_and_its_field(
    tmp_path: Path, case: str, change, field: str, words: str
) -> None:
    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="npz")[0]
    members = _npz_members(random_prompt_game())
    change(members)
    np.savez(tmp_path / "game.prompts.npz", **members)
    lines = _error_lines(path)
    assert len(lines) == 1
    line = (path.read_text().splitlines().index("prompts: {file: game.prompts.npz}")) + 1
    assert lines[0].startswith(f"error: {path}:{line}: prompts.file: 'game.prompts.npz': {field}: ")
    assert words in lines[0]


def _rezipped(data: bytes, member: str, content: bytes) -> bytes:
    """The archive ``data`` with ``member`` holding ``content``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, content if info.filename == member else source.read(info))
    return out.getvalue()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda data: b"", "not a readable .npz archive"),
        (lambda data: data[: len(data) // 2], "not a readable .npz archive"),
        (lambda data: b"PK\x03\x04" + bytes(200), "not a readable .npz archive"),
        (lambda data: data.replace(b"\x93NUMPY", b"\x93NUMPZ", 1), "Bad CRC-32 for file 'offsets.npy'"),
        (lambda data: _rezipped(data, "rewards.npy", b"not an array"), "rewards: not a .npy file"),
        (
            lambda data: _rezipped(data, "rewards.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'"),
            "rewards: ",
        ),
    ],
    ids=["empty", "truncated", "zip_garbage", "bad_crc", "member_not_npy", "member_header_cut"],
)
def test_a_corrupt_npz_table_is_one_error(tmp_path: Path, damage, words: str) -> None:
    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="npz")[0]
    table = tmp_path / "game.prompts.npz"
    table.write_bytes(damage(table.read_bytes()))
    lines = _error_lines(path)
    assert len(lines) == 1 and "prompts.file: 'game.prompts.npz': " in lines[0] and words in lines[0]


def test_a_compressed_member_claiming_more_than_deflate_can_hold_is_refused(tmp_path: Path) -> None:
    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="npz")[0]
    table = tmp_path / "game.prompts.npz"
    members = _npz_members(random_prompt_game())
    np.savez_compressed(table, **members)
    assert load_game(path).n_prompts == 12  # a compressed table is read, not mapped
    # rewrite the central directory's uncompressed size of rewards.npy to 2^40 bytes
    data = bytearray(table.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("rewards.npy")
    central = bytes(data).find(b"PK\x01\x02")  # the central directory's entries, then its own
    while bytes(data[central + 46 : central + 46 + len(b"rewards.npy")]) != b"rewards.npy":
        central = bytes(data).find(b"PK\x01\x02", central + 4)
    assert int.from_bytes(data[central + 24 : central + 28], "little") == info.file_size
    data[central + 24 : central + 28] = (0xFFFFFFFF).to_bytes(4, "little")
    table.write_bytes(bytes(data))
    lines = _error_lines(path)
    assert len(lines) == 1 and "rewards: claims more data than its compressed size can hold" in lines[0]


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        ("missing.npz", "'missing.npz': No such file or directory"),
        ("table.csv", "expected a .npz or .parquet file"),
        ("../outside.npz", "outside the game file's folder"),
        ("folder.npz", "not a regular file"),
    ],
)
def test_a_table_reference_that_leads_nowhere_is_one_error(
    tmp_path: Path, reference: str, words: str
) -> None:
    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="npz")[0]
    (tmp_path / "folder.npz").mkdir()
    path.write_text(path.read_text().replace("game.prompts.npz", reference))
    lines = _error_lines(path)
    assert len(lines) == 1 and "prompts.file" in lines[0] and words in lines[0]


def test_a_table_reference_takes_no_other_key(tmp_path: Path) -> None:
    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="npz")[0]
    path.write_text(path.read_text().replace("{file: game.prompts.npz}", "{file: game.prompts.npz, row: 1}"))
    with pytest.raises(SpecError, match=r"prompts\.row: unknown field \(expected one of: file\)"):
        load_game(path)


def _column(name: str, make):
    return lambda table: table.set_column(table.column_names.index(name), name, make(table))


def _shifted(table):
    """reward.c with one value moved from each prompt's list to the next's."""
    import pyarrow as pa

    lists = table.column("reward.c").to_pylist()
    return pa.array([lists[0][:-1], [lists[0][-1], *lists[1]], *lists[2:]])


def _negated(table):
    import pyarrow as pa

    return pa.array([-w for w in table.column("weight").to_pylist()])


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda t: t.drop_columns(["prompt"]), "prompt", "missing column"),
        (lambda t: t.drop_columns(["reward.c"]), "reward.<group> (the columns' names)", "are not the file's"),
        (_column("reward.c", _shifted), "reward.c", "lengths differ"),
        (_column("weight", _negated), "weight", "weights must be > 0"),
    ],
    ids=["no_prompt_column", "group_missing", "lists_of_other_lengths", "negative_weight"],
)  # fmt: skip
def test_a_bad_parquet_table_is_one_error_naming_its_column(
    tmp_path: Path, change, field: str, words: str
) -> None:
    import pyarrow.parquet as pq

    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="parquet")[0]
    table = tmp_path / "game.prompts.parquet"
    pq.write_table(change(pq.read_table(table)), table)
    lines = _error_lines(path)
    assert len(lines) == 1
    assert f"prompts.file: 'game.prompts.parquet': {field}: " in lines[0] and words in lines[0]


def test_a_table_format_without_its_extra_says_which_to_install(tmp_path: Path, monkeypatch) -> None:
    import builtins

    real = builtins.__import__

    def no_pyarrow(name: str, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="parquet")[0]
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(SpecError, match=r"pip install 'rlhf-mech\[parquet\]'"):
        load_game(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_writes_the_table_asked_for(tmp_path: Path, fmt: str) -> None:
    from trainer_logs import write_trl_run

    write_trl_run(tmp_path / "run", steps=(0, 2, 3), generations=3, seed=5)
    outputs = {}
    for table in ("yaml", fmt):
        out = tmp_path / f"{table}.yaml"
        result = runner.invoke(
            app, ["import", str(tmp_path / "run"), "-o", str(out), "--prompt-table", table]
        )
        assert result.exit_code == 0, result.output
        outputs[table] = out
    assert (tmp_path / f"{fmt}.prompts.{fmt}").is_file() and not (tmp_path / "yaml.prompts.npz").exists()
    assert _solve_json(outputs["yaml"]) == _solve_json(outputs[fmt])
    refused = runner.invoke(app, ["import", str(tmp_path / "run"), "-o", "x.yaml", "--prompt-table", "zip"])
    assert refused.exit_code == 2
    assert refused.stderr == "error: --prompt-table must be one of auto, yaml, npz, parquet, got 'zip'\n"


# --- the YAML reader: one match per scalar, the tags of PyYAML's resolver loop --------------------

SCALARS = (
    "", "~", "null", "Null", "NULL", "nul", "true", "True", "TRUE", "tRue", "false", "yes", "no", "on",
    "0", "-1", "+12", "0o17", "0o8", "0x1F", "0xg", "1.5", ".5", "5.", "1e5", "1E-5", "-.inf", ".Inf",
    ".NAN", ".nan", "+.nan", "1_000", "1:30", "2024-01-01", "abc", "e5", ".", "-", "+", "0b101", "1e",
    "x0", "-0.0", "1.7976931348623157e308", "007", "+.5e-3", "nan", "inf",
)  # fmt: skip


@pytest.mark.parametrize("plain", [True, False])
def test_the_reader_resolves_every_scalar_as_pyyaml_resolvers_do(plain: bool) -> None:
    import yaml

    from rlhf_mech.files._yaml import Loader

    loader = Loader("")
    for text in SCALARS:
        expected = yaml.resolver.BaseResolver.resolve(loader, yaml.ScalarNode, text, (plain, not plain))
        assert loader.resolve(yaml.ScalarNode, text, (plain, not plain)) == expected, text
    for kind in (yaml.SequenceNode, yaml.MappingNode):
        assert loader.resolve(kind, None, (True, False)) == yaml.resolver.BaseResolver.resolve(
            loader, kind, None, (True, False)
        )


def test_a_game_of_many_prompts_reads_the_same_with_and_without_anchors(tmp_path: Path) -> None:
    # a text without "&" takes the tree walk of the key checks; one with an anchor the full one
    path = write_game(random_prompt_game(), tmp_path / "game.yaml", table="yaml")[0]
    text = path.read_text()
    anchored = text.replace("divergence: {kind: kl", "divergence: &d {kind: kl").replace(
        "\nprompts:", "\nx: *d\nprompts:"
    )
    (tmp_path / "anchored.yaml").write_text(anchored)
    with pytest.raises(SpecError, match=r"anchored.yaml:\d+: x: unknown field"):
        load_game(tmp_path / "anchored.yaml")
    duplicated = text.replace("\nprompts:", "\nname: again\nprompts:")
    for label, variant in (
        ("plain", duplicated),
        ("anchored", duplicated.replace("{kind: kl", "&d {kind: kl")),
    ):
        (tmp_path / f"{label}.yaml").write_text(variant)
        with pytest.raises(SpecError, match=r"duplicate key 'name'"):
            load_game(tmp_path / f"{label}.yaml")


# --- the YAML writer: PyYAML's emitter, its per-character work skipped for numbers ----------------


def _number_texts() -> list[str]:
    rng = np.random.default_rng(3)
    values = [
        *rng.random(200),
        *(rng.standard_normal(200) * 10.0 ** rng.integers(-320, 308, 200)),
        0.0, -0.0, 1.0, -1.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2.0**53, 1e16,
        *rng.integers(-(2**53), 2**53, 50).astype(float),
    ]  # fmt: skip
    return [repr(v) for v in values] + ["0", "-12", "007", "1.5e+05", "1e-05", "12.", "-", "1.2.3", "e5"]


def test_the_writers_number_fast_paths_are_pyyamls_answers() -> None:
    import yaml

    from rlhf_mech.files._writer import _Dumper

    for text in _number_texts():
        dumper = _Dumper(io.StringIO())
        assert dumper.analyze_scalar(text).__dict__ == yaml.SafeDumper.analyze_scalar(dumper, text).__dict__
        for implicit in ((True, False), (False, True)):
            assert dumper.resolve(yaml.ScalarNode, text, implicit) == yaml.SafeDumper.resolve(
                dumper, yaml.ScalarNode, text, implicit
            ), text


@pytest.mark.parametrize("seed", range(3))
def test_the_writer_writes_pyyamls_bytes(seed: int) -> None:
    import yaml

    from rlhf_mech.files._writer import _Dumper, game_document

    class PyYAML(_Dumper):  # the emitter's own methods, every character looked at
        resolve = yaml.SafeDumper.resolve
        analyze_scalar = yaml.SafeDumper.analyze_scalar
        write_plain = yaml.SafeDumper.write_plain

    data = game_document(random_prompt_game(seed, prompts=30)).data
    data["prompts"][0]["prompt"] = "a plain text, with spaces\nand a break"
    data["prompts"][1]["prompt"] = "12 monkeys"
    data["prompts"][2]["prompt"] = "1.5"
    settings = {"sort_keys": False, "default_flow_style": None, "width": 1 << 30, "allow_unicode": True}
    fast = yaml.dump(data, Dumper=_Dumper, **settings)
    assert fast == yaml.dump(data, Dumper=PyYAML, **settings)
    assert "prompt: '1.5'" in fast  # a text that reads as a number stays quoted


# --- implementability: numpy's Bellman-Ford (the default) is scipy's, bit for bit ----------------


def _digraph(rng: np.random.Generator, kind: int) -> np.ndarray:
    """A complete digraph's weights: uniform, normal (negative cycles common), potential
    differences plus noise of +-1e-13 (ties, cycles within rounding of 0), small integers."""
    k = int(rng.integers(2, 60))
    if kind == 0:
        return rng.random((k, k))
    if kind == 1:
        return rng.standard_normal((k, k)) + rng.uniform(0.0, 2.0)
    if kind == 2:
        p = rng.standard_normal(k)
        return p[None, :] - p[:, None] + rng.uniform(-1e-13, 1e-12, (k, k))
    return rng.integers(-1, 5, (k, k)).astype(float)


def test_numpy_shortest_paths_are_scipys_bit_for_bit_with_and_without_negative_cycles() -> None:
    from rlhf_mech.analysis._implementability import negative_cycle, rochet_payments, shortest_paths

    rng = np.random.default_rng(25)
    cycles = 0
    for trial in range(240):
        weights = _digraph(rng, trial % 4)
        by_numpy, by_scipy = shortest_paths(weights), rochet_payments(weights)
        assert (by_numpy is None) == (by_scipy is None), trial
        if by_scipy is None:
            cycles += 1
            cycle = negative_cycle(weights)
            assert cycle is not None and weights[cycle, np.roll(cycle, -1)].sum() < 0
        else:
            np.testing.assert_array_equal(by_numpy, by_scipy)
            assert negative_cycle(weights) is None
    assert 60 <= cycles <= 180  # both kinds of digraph are tried


def test_implementability_takes_the_numpy_graph_by_default_with_scipys_numbers() -> None:
    from rlhf_mech.analysis import implementability, type_set

    game = load_game(Path(__file__).resolve().parents[1] / "games" / "chi2_three_groups.yaml")
    types = type_set(game, 0, "random", 80, [1, 2, 4], seed=2)
    default, by_scipy = implementability(game, 0, types), implementability(game, 0, types, graph="scipy")
    assert default.payments is not None and by_scipy.payments is not None
    np.testing.assert_array_equal(default.payments, by_scipy.payments)
    assert default.dsic_violation == by_scipy.dsic_violation and default.aff_gap == by_scipy.aff_gap


# --- the dask backend: each game shipped once, the tasks refer to it ----------------------------


class _Done:
    def __init__(self, value: object) -> None:
        self.value = value

    def result(self) -> object:
        return self.value


class _RecordingClient:
    """A stand-in for ``dask.distributed.Client`` that runs each task at once and records what
    was sent: the games by ``scatter``, and what each task carried."""

    def __init__(self) -> None:
        self.scattered: list[object] = []
        self.submitted: list[tuple[object, ...]] = []
        self.cancelled = 0

    def nthreads(self) -> dict[str, int]:
        return {"worker-0": 1, "worker-1": 1}

    def scatter(self, data: list[object], hash: bool = True) -> list[_Done]:
        self.scattered += data
        return [_Done(item) for item in data]

    def submit(self, func, *args: object, pure: bool = True) -> _Done:
        self.submitted.append(args)
        return _Done(func(*(a.value if isinstance(a, _Done) else a for a in args)))

    def cancel(self, futures: list[object]) -> None:
        self.cancelled += len(futures)


def test_the_dask_backend_ships_each_game_once_and_gives_the_bytes_of_one_process() -> None:
    from rlhf_mech.analysis import AuditOptions, run_audits
    from rlhf_mech.render._audit import audit_to_json

    folder = Path(__file__).resolve().parents[1] / "games"
    games = [
        load_game(folder / "chi2_three_groups.yaml"),
        load_game(folder / "prompts" / "three_prompts.yaml"),
    ]
    client = _RecordingClient()
    options = AuditOptions(budget=20)
    remote = run_audits(games, options, seed=3, dask_client=client)
    local = run_audits(games, options, seed=3)
    assert client.scattered == games  # each game once ...
    assert client.submitted and all(
        isinstance(args[0], _Done) for args in client.submitted
    )  # ... then referred to
    assert not any(isinstance(a, type(games[0])) for args in client.submitted for a in args)
    assert client.cancelled == len(client.submitted) + len(games)  # released when done
    assert [audit_to_json(a) for a in remote] == [audit_to_json(a) for a in local]


def test_a_game_of_many_prompts_is_split_into_tasks_by_its_prompts(monkeypatch) -> None:
    """Above PROMPT_CHUNK prompts the work of a game is one task per (group, chunk of prompts),
    each chunk with its own seed, and the audit is the same, byte for byte, in one process and
    on the cluster."""
    from rlhf_mech.analysis import AuditOptions, _prompt_search, run_audits
    from rlhf_mech.render._audit import audit_to_json

    monkeypatch.setattr(_prompt_search, "PROMPT_CHUNK", 2)
    game = load_game(Path(__file__).resolve().parents[1] / "games" / "prompts" / "three_prompts.yaml")
    options = AuditOptions(budget=10)
    client = _RecordingClient()
    remote = run_audits([game], options, seed=3, dask_client=client)
    local = run_audits([game], options, seed=3)
    assert len(client.submitted) == game.n_groups * 2  # prompts 0-1 and 2, every group
    assert audit_to_json(remote[0]) == audit_to_json(local[0])
