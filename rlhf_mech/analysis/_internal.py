"""The package-internal tier of :mod:`rlhf_mech.analysis`: names the layers above import and a
user does not need. The list is ``_internal.pyi``; the public names are the package's own."""

from rlhf_mech.core._internal import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
