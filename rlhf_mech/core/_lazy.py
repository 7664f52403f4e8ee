"""Lazy public namespaces: a package's names are read from its ``__init__.pyi`` and each is
imported on first use (the ``attach_stub`` idea of scientific-python's ``lazy_loader``).

The stub is the one list of a namespace's public names: type checkers read it, and
:func:`attach_stub` turns its ``from MODULE import NAME as NAME`` lines into the module's
``__getattr__``, ``__dir__`` and ``__all__``, so that importing the package costs nothing
until a name is used (the command line's start-up imports the registries and nothing else).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

_IMPORT = re.compile(r"from (?P<module>[\w.]+) import (?P<name>\w+) as (?P=name)")


def attach_stub(
    package: str, init_file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` from the ``.pyi`` beside ``init_file``.

    Raises
    ------
    ValueError
        when the stub holds anything but ``from MODULE import NAME as NAME`` lines, a one-line
        docstring, comments and blank lines.
    """
    stub = Path(init_file).with_suffix(".pyi")
    origin: dict[str, str] = {}
    # line by line, not with ``ast``: importing ``ast`` costs the start-up ~5 ms
    for line in stub.read_text(encoding="utf-8").splitlines():
        match = _IMPORT.fullmatch(line)
        if match:
            origin[match["name"]] = match["module"]
        elif line.strip() and not line.startswith(('"""', "#")):
            raise ValueError(f"{stub}: only `from MODULE import NAME as NAME` lines belong in a stub")
    names = sorted(origin)
    namespace = importlib.import_module(package)

    def __getattr__(name: str) -> Any:
        if name not in origin:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(origin[name]), name)
        setattr(namespace, name, value)
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
