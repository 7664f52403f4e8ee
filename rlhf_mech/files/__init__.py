"""The files layer: game files (spec and writer), importers, counterexample files.

Everything that reads or writes a file lives here, on top of :mod:`rlhf_mech.core` and
:mod:`rlhf_mech.analysis`. Implementations live in private modules; this namespace is the
layer's public surface.

The names (listed in ``__init__.pyi``) load on first use, so that a command imports only
what it uses (``solve`` never loads the importers and SciPy).
"""

from rlhf_mech.core._internal import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
