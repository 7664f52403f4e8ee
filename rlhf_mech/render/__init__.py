"""The render layer: results -> Rich renderables, JSON-ready dicts, CSV, JUnit XML, plots.

Renderers compute nothing: every figure comes from :mod:`rlhf_mech.core` or
:mod:`rlhf_mech.analysis` results. Implementations live in private modules; this namespace is
the layer's public surface. Plots need the optional ``plot`` extra (matplotlib), imported when
a plot is drawn.
The names (listed in ``__init__.pyi``) load on first use, so that a command imports only
the renderers it uses.
"""

from rlhf_mech.core._internal import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
