"""Spectrogram image helpers (the original's ``riffusion.util.image_util``); the codec is riffusion.image."""

from __future__ import annotations

import typing as T

import numpy as np
from PIL import Image

from riffusion import image as _codec


def image_from_spectrogram(spectrogram: np.ndarray, power: float = 0.25) -> Image.Image:
    """Encode a (channels, n_mels, frames) spectrogram as an RGB image; see :mod:`riffusion.image`."""
    return _codec.image_from_spectrogram(spectrogram, power=power)


def spectrogram_from_image(
    image: Image.Image, power: float = 0.25, stereo: bool = False, max_value: float = 30e6
) -> np.ndarray:
    """Decode an image to a (channels, height, width) float32 spectrogram; see :mod:`riffusion.image`."""
    return _codec.spectrogram_from_image(image, power=power, stereo=stereo, max_value=max_value)


def exif_from_image(pil_image: Image.Image) -> dict[str, T.Any]:
    """EXIF tags by name (``SAMPLE_RATE``, ``STEREO``, ..., ``MAX_VALUE``)."""
    return _codec.exif_from_image(pil_image)
