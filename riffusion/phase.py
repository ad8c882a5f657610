"""Phase reconstruction under its earlier module name: the public names of :mod:`riffusion.reconstruction`
(methods and algorithms) and :mod:`riffusion.stft` (geometry), re-exported so that code importing
``riffusion.phase`` keeps working. New code imports from those modules."""

from riffusion.reconstruction import *  # noqa: F401,F403
from riffusion.reconstruction import __all__ as _reconstruction_names
from riffusion.stft import compact_geometry, reduced_rate_geometry  # noqa: F401

__all__ = [*_reconstruction_names, "compact_geometry", "reduced_rate_geometry"]
