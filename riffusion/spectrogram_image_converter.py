"""The original's ``SpectrogramImageConverter`` (audio <-> spectrogram image), an adapter over the engine.

The engine's functions are :func:`riffusion.image.image_from_waveform` and
:func:`riffusion.image.waveform_from_image`; this class binds parameters, device and phase method to them
and adds the original's pydub interface.
"""

from __future__ import annotations

import typing as T

import numpy as np
import pydub
from PIL import Image

from riffusion import image as codec
from riffusion.devices import check_device
from riffusion.spectrogram_converter import SpectrogramConverter
from riffusion.spectrogram_params import SpectrogramParams
from riffusion.util import audio_util

if T.TYPE_CHECKING:  # pragma: no cover
    import torch


class SpectrogramImageConverter:
    """Convert audio to spectrogram images with EXIF parameters, and images back to audio.

    Parameters
    ----------
    params : SpectrogramParams
        Geometry used in both directions (images are decoded with these, not their EXIF; use
        :func:`riffusion.image.params_from_image` to build a converter for a given image).
    device : str
        Torch device; falls back to the CPU with a warning when unavailable.
    phase : str, keyword-only
        Phase reconstruction method (see :mod:`riffusion.phase`).
    """

    def __init__(self, params: SpectrogramParams, device: str = "cuda", *, phase: str = "default"):
        self.p = params
        self.device = check_device(device)
        self.phase = phase
        self.converter = SpectrogramConverter(params=params, device=self.device, phase=phase)

    def image_from_waveform(self, waveform: np.ndarray, sample_rate: int) -> Image.Image:
        """Spectrogram image (EXIF attached) of float audio in [-1, 1], shape (channels, samples)."""
        return codec.image_from_waveform(waveform, sample_rate, self.p, device=self.device)

    def waveform_from_image(
        self,
        image: Image.Image,
        *,
        apply_filters: bool = True,
        max_value: float = codec.DEFAULT_MAX_VALUE,
        generator: T.Optional["torch.Generator"] = None,
        num_iters: T.Optional[int] = None,
    ) -> np.ndarray:
        """Audio from a spectrogram image, float32 in [-1, 1], shape (channels, hop * (width - 1))."""
        return codec.waveform_from_image(image, self.p, phase=self.phase, device=self.device,
                                         apply_filters=apply_filters, max_value=max_value, generator=generator,
                                         num_iters=num_iters)

    def spectrogram_image_from_audio(self, segment: pydub.AudioSegment) -> Image.Image:
        """Spectrogram image (with EXIF parameters and MAX_VALUE) of an ``AudioSegment``."""
        return codec.image_from_mel(self.converter.spectrogram_from_audio(segment), self.p)

    def audio_from_spectrogram_image(
        self,
        image: Image.Image,
        apply_filters: bool = True,
        max_value: float = codec.DEFAULT_MAX_VALUE,
        *,
        generator: T.Optional["torch.Generator"] = None,
    ) -> pydub.AudioSegment:
        """A 16-bit ``AudioSegment`` from a spectrogram image."""
        waveform = self.waveform_from_image(image, apply_filters=apply_filters, max_value=max_value, generator=generator)
        return audio_util.segment_from_float(waveform, self.p.sample_rate)
