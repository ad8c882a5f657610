"""Captioned datasets of Riffusion spectrogram images (``riffusion dataset build``).

See :mod:`riffusion.dataset.builder` for the output layout, :mod:`riffusion.dataset.sources` for the
recorded sources and their licence checks, and :mod:`riffusion.dataset.render` for rendered MIDI.
"""

from riffusion.dataset.builder import SOURCE_KINDS, BuildResult, DatasetConfig, build_dataset, load_metadata
from riffusion.dataset.presets import PRESETS, SMALL_IMAGE_WIDTH, SMALL_PARAMS, resolve_params

__all__ = [
    "SOURCE_KINDS", "BuildResult", "DatasetConfig", "build_dataset", "load_metadata", "PRESETS",
    "SMALL_IMAGE_WIDTH", "SMALL_PARAMS", "resolve_params",
]
