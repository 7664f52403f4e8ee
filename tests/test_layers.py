"""The package's layers, enforced: core <- analysis <- files <- render <- cli.

Every import of every module (top-level, inside functions, under ``TYPE_CHECKING``) is read
from the source. A module may import its own layer and the layers below it; it reaches
another layer only through that layer's public namespace (``rlhf_mech.core``, not
``rlhf_mech.core._solver``); and the lower layers do not import the libraries of the edges
(pydantic and YAML belong to ``files``, Rich to ``render`` and ``cli``, Typer to ``cli``).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import rlhf_mech

PACKAGE = Path(rlhf_mech.__file__).resolve().parent
#: Layer name -> rank; ``errors`` is the shared base every layer may raise from.
LAYERS: dict[str, int] = {"errors": 0, "core": 1, "analysis": 2, "files": 3, "render": 4, "cli": 5}
#: Third-party libraries a layer must not import (an edge's library kept out of the layers below).
FORBIDDEN: dict[str, frozenset[str]] = {
    "errors": frozenset({"numpy", "scipy", "pydantic", "yaml", "rich", "typer", "joblib", "matplotlib"}),
    "core": frozenset({"pydantic", "yaml", "rich", "typer", "joblib", "threadpoolctl", "matplotlib", "dask"}),
    "analysis": frozenset({"pydantic", "yaml", "rich", "typer", "matplotlib"}),
    "files": frozenset({"rich", "typer", "matplotlib", "joblib"}),
    "render": frozenset({"typer", "pydantic", "yaml"}),
    "cli": frozenset(),
}


def _layer(module: str) -> str | None:
    """``rlhf_mech.core._solver`` -> ``core``; the root package (the facade) has no layer."""
    parts = module.split(".")
    if parts[0] != "rlhf_mech" or len(parts) < 2 or parts[1] in ("__main__",):
        return None
    return parts[1] if parts[1] in LAYERS else None


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


MODULES = _modules()


def test_every_module_is_in_a_layer() -> None:
    unplaced = [
        name
        for name, _ in MODULES
        if name not in ("rlhf_mech", "rlhf_mech.__main__") and _layer(name) is None
    ]
    assert not unplaced, f"modules outside the layers {list(LAYERS)}: {unplaced}"


@pytest.mark.parametrize("name,path", MODULES, ids=[name for name, _ in MODULES])
def test_a_module_imports_only_its_layer_and_the_ones_below(name: str, path: Path) -> None:
    layer = _layer(name)
    if layer is None:
        return  # the root facade and ``python -m rlhf_mech`` see everything
    problems = []
    for imported, line in _imports(path):
        top = imported.split(".")[0]
        if top in FORBIDDEN[layer]:
            problems.append(f"line {line}: the {layer} layer imports {imported}")
        target = _layer(imported)
        if imported.startswith("rlhf_mech") and target is None and imported != "rlhf_mech":
            problems.append(f"line {line}: {imported} is in no layer")
        if target is None:
            continue
        if LAYERS[target] > LAYERS[layer]:
            problems.append(f"line {line}: {layer} imports the higher layer {target} ({imported})")
        parts = imported.split(".")[2:]
        private = any(part.startswith("_") for part in parts) and parts != ["_internal"]
        if target != layer and private:
            problems.append(
                f"line {line}: {imported} is private to {target}; import from rlhf_mech.{target}"
                f" (or rlhf_mech.{target}._internal)"
            )
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_walk_finds_a_violation(tmp_path: Path) -> None:
    """The check itself: a core module that imports rich or the analysis layer is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from rlhf_mech.analysis import sweep\nimport rich\n", encoding="utf-8")
    imported = [module for module, _ in _imports(bad)]
    assert _layer(imported[0]) == "analysis" and LAYERS["analysis"] > LAYERS["core"]
    assert imported[1] in FORBIDDEN["core"]


@pytest.mark.slow
def test_cli_start_up_imports_no_heavy_module() -> None:
    """``rlhf-mech --help`` loads neither numpy, scipy, pydantic, YAML, joblib nor the layers
    below the command line (but the table of output formats, which imports nothing heavy, and
    the lazy namespaces it is reached through)."""
    code = (
        "import sys; from rlhf_mech.cli import app; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'scipy', 'pydantic', 'yaml', 'joblib', 'matplotlib', 'dask', 'threadpoolctl') "
        "or m.startswith(('rlhf_mech.core.', 'rlhf_mech.analysis', 'rlhf_mech.files', 'rlhf_mech.render.')) "
        "and m not in ('rlhf_mech.render._outputs', 'rlhf_mech.core._lazy', "
        "'rlhf_mech.core._internal', 'rlhf_mech.render._internal'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""


TIERED = ("core", "analysis", "files", "render")
NAMESPACES = ["rlhf_mech", *(f"rlhf_mech.{layer}{tier}" for layer in TIERED for tier in ("", "._internal"))]


@pytest.mark.parametrize("package", NAMESPACES)
def test_a_lazy_namespace_serves_every_name_of_its_stub(package: str) -> None:
    """``__init__.pyi`` is the one list of a lazy namespace's names; each loads on first use."""
    namespace = importlib.import_module(package)
    assert namespace.__all__ and set(dir(namespace)) <= set(namespace.__all__)
    for name in namespace.__all__:
        assert getattr(namespace, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        namespace.nope  # noqa: B018


@pytest.mark.parametrize("layer", TIERED)
def test_a_layer_tells_its_public_names_from_its_internal_tier(layer: str) -> None:
    """A name is in a layer's public namespace (the concepts a user composes) or in its
    package-internal tier (what the layers above need, scipy's ``_lib`` idea), not both; the
    root facade offers public names only."""
    public = set(importlib.import_module(f"rlhf_mech.{layer}").__all__)
    internal = set(importlib.import_module(f"rlhf_mech.{layer}._internal").__all__)
    assert public and internal and not public & internal
    root = importlib.import_module("rlhf_mech")
    assert not {name for name in root.__all__ if name in internal}


def test_solve_loads_neither_the_importers_nor_scipy() -> None:
    """``rlhf-mech solve`` imports what it uses: the files namespace is lazy (issue 15)."""
    code = (
        "import sys; from rlhf_mech.files import load_game; from rlhf_mech.render import solution_to_json; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy' "
        "or m.startswith(('rlhf_mech.files._importer', 'rlhf_mech.analysis')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""
