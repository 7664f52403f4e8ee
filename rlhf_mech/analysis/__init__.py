"""The analysis layer: misreport families, sweeps, the best-response search, audits.

Built on :mod:`rlhf_mech.core` only; pure (no file is read or written here). Implementations
live in private modules; this namespace is the layer's public surface.
"""

from rlhf_mech.core._internal import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
