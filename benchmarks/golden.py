"""Golden outputs: every command's output on every bundled game, saved and compared byte for byte.

A refactoring that must not change behaviour (issue 20) is checked by saving the outputs before
it and comparing after::

    python benchmarks/golden.py save /tmp/golden-before
    ...  (the change)
    python benchmarks/golden.py compare /tmp/golden-before

Each case is one command line (``solve``, ``sweep`` of the three families, ``audit``,
``implementability``, ``import``) in JSON and in text; its stdout, stderr and exit code are
kept. ``compare`` prints the cases whose bytes differ, with the first differing line, and
exits 1 when any does. Run from the repository root with the project installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GAMES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "games").rglob("*.yaml"))
#: Games whose outcome set is not a game file of its own (data of another game).
SKIP = {"games/import_example/responses.yaml", "games/import_example/candidates.yaml"}


def _first_group(game: str) -> str | None:
    text = (ROOT / game).read_text(encoding="utf-8")
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- name:"):
            return stripped.split(":", 1)[1].strip().strip("'\"")
    return None


def cases() -> dict[str, list[str]]:
    """Case name -> argv of ``rlhf-mech``."""
    out: dict[str, list[str]] = {}
    for game in GAMES:
        if game in SKIP:
            continue
        key = game.removeprefix("games/").removesuffix(".yaml").replace("/", "__")
        out[f"{key}.solve.json"] = ["solve", game, "--format", "json"]
        out[f"{key}.solve.txt"] = ["solve", game, "--color", "never"]
        for family, values in (("alpha", "0.2,0.5,1.5,3"), ("beta", "0,0.5,0.8"), ("epsilon", "0.1,0.3")):
            out[f"{key}.sweep-{family}.json"] = [
                "sweep",
                game,
                "--all-groups",
                f"--{family}",
                values,
                "--format",
                "json",
            ]
        out[f"{key}.sweep-alpha.txt"] = [
            "sweep",
            game,
            "--all-groups",
            "--alpha",
            "0.5,2",
            "--color",
            "never",
        ]
        group = _first_group(game)
        if group:
            out[f"{key}.implementability.json"] = [
                "implementability",
                game,
                "--group",
                group,
                "--points",
                "3",
                "--format",
                "json",
            ]
    out["all.audit.json"] = ["audit", "games/", "--format", "json", "-j", "2", "-q"]
    out["all.audit.txt"] = ["audit", "games/", "-j", "2", "--color", "never"]
    out["all.audit.sarif"] = ["audit", "games/", "--format", "sarif", "-j", "2", "-q"]
    out["all.audit-others.json"] = [
        "audit",
        "games/chi2_three_groups.yaml",
        "games/rules/maxmin.yaml",
        "--others",
        "grid 3",
        "--noise",
        "0.01",
        "--format",
        "json",
        "-q",
    ]
    out["import.csv.yaml"] = [
        "import",
        "games/import_example/init_samples.csv",
        "--from",
        "csv",
        "--as",
        "responses",
        "--output",
        "-",
    ]
    return out


def run(argv: list[str]) -> bytes:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
    exe = Path(sys.executable).with_name("rlhf-mech")
    proc = subprocess.run([str(exe), *argv], cwd=ROOT, capture_output=True, env=env, timeout=900)
    return b"".join(
        [
            f"$ rlhf-mech {' '.join(argv)}\nexit {proc.returncode}\n--- stdout\n".encode(),
            proc.stdout,
            b"\n--- stderr\n",
            proc.stderr,
        ]
    )


def save(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, argv in cases().items():
        (folder / name).write_bytes(run(argv))
        print(name, hashlib.sha256((folder / name).read_bytes()).hexdigest()[:12], flush=True)


def compare(folder: Path) -> int:
    differ = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in cases().items():
            before = (folder / name).read_bytes() if (folder / name).exists() else b""
            after = run(argv)
            (Path(tmp) / name).write_bytes(after)
            if before == after:
                print(f"same     {name}", flush=True)
                continue
            differ += 1
            a, b = before.decode(errors="replace").splitlines(), after.decode(errors="replace").splitlines()
            line = next(
                (k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
            )
            print(f"DIFFERS  {name} at line {line + 1}", flush=True)
            print(f"   before: {a[line][:200] if line < len(a) else '<end>'}")
            print(f"   after:  {b[line][:200] if line < len(b) else '<end>'}")
    print(json.dumps({"cases": len(cases()), "differ": differ}))
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.action == "save":
        save(args.folder)
        return 0
    return compare(args.folder)


if __name__ == "__main__":
    raise SystemExit(main())
