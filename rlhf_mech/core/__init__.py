"""The core layer: divergences, the SW-Max solver, training and payment rules, the mechanism.

Pure functions on numpy arrays and frozen dataclasses; nothing here reads or writes a file,
imports pydantic, YAML or a terminal library. Implementations live in private modules; this
namespace is the layer's public surface.
"""

from rlhf_mech.core._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
