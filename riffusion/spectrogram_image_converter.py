"""Audio <-> Riffusion spectrogram image (the original's ``SpectrogramImageConverter``)."""

from __future__ import annotations

import typing as T

import numpy as np
import pydub
import torch
from PIL import Image

from riffusion import image as codec
from riffusion.audio import normalize_loudness
from riffusion.spectrogram_converter import SpectrogramConverter
from riffusion.spectrogram_params import SpectrogramParams
from riffusion.util import audio_util

_INT16_SCALE = 32768.0  # the original computed spectrograms on raw 16-bit sample values


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
        self.converter = SpectrogramConverter(params=params, device=device, phase=phase)
        self.device = self.converter.device

    # --- arrays: what the library, server and pipeline use -------------------------------------------

    def image_from_waveform(self, waveform: np.ndarray, sample_rate: int) -> Image.Image:
        """Spectrogram image (EXIF attached) of float audio in [-1, 1], shape (channels, samples).

        Raises
        ------
        ValueError
            If ``sample_rate`` differs from ``params.sample_rate``.
        """
        if sample_rate != self.p.sample_rate:
            raise ValueError(
                f"audio sample rate is {sample_rate} Hz but the spectrogram parameters expect "
                f"{self.p.sample_rate} Hz; resample it first (riffusion.audio.resample)"
            )
        spectrogram = self.converter.spectrogram_from_waveform(np.asarray(waveform, np.float32) * _INT16_SCALE)
        return self._image_from_spectrogram(spectrogram)

    def waveform_from_image(
        self,
        image: Image.Image,
        *,
        apply_filters: bool = True,
        max_value: float = codec.DEFAULT_MAX_VALUE,
        generator: T.Optional[torch.Generator] = None,
        num_iters: T.Optional[int] = None,
    ) -> np.ndarray:
        """Audio from a spectrogram image, float32 in [-1, 1], shape (channels, hop * (width - 1)).

        Peak-normalised; with ``apply_filters`` the original's loudness post-filter (RMS -12 dBFS, peak
        -0.1 dBFS, :func:`riffusion.audio.normalize_loudness`). ``generator`` makes random-phase methods
        repeatable.
        """
        self._check_height(image)
        spectrogram = codec.spectrogram_from_image(
            image, power=self.p.power_for_image, stereo=self.p.stereo, max_value=max_value
        )
        samples = self.converter.waveform_from_spectrogram(spectrogram, generator=generator, num_iters=num_iters)
        if apply_filters:
            return normalize_loudness(samples, self.p.sample_rate)
        peak = float(np.abs(samples).max())
        return (samples / peak).astype(np.float32) if peak > 0 else samples.astype(np.float32)

    # --- pydub: the original's interface ---------------------------------------------------------------

    def spectrogram_image_from_audio(self, segment: pydub.AudioSegment) -> Image.Image:
        """Spectrogram image (with EXIF parameters and MAX_VALUE) of an ``AudioSegment``."""
        return self._image_from_spectrogram(self.converter.spectrogram_from_audio(segment))

    def audio_from_spectrogram_image(
        self,
        image: Image.Image,
        apply_filters: bool = True,
        max_value: float = codec.DEFAULT_MAX_VALUE,
        *,
        generator: T.Optional[torch.Generator] = None,
    ) -> pydub.AudioSegment:
        """A 16-bit ``AudioSegment`` from a spectrogram image."""
        waveform = self.waveform_from_image(image, apply_filters=apply_filters, max_value=max_value, generator=generator)
        return audio_util.segment_from_float(waveform, self.p.sample_rate)

    # ---------------------------------------------------------------------------------------------------

    def _image_from_spectrogram(self, spectrogram: np.ndarray) -> Image.Image:
        image = codec.image_from_spectrogram(spectrogram, power=self.p.power_for_image)
        return codec.attach_exif(image, self.p, max_value=float(np.max(spectrogram)))

    def _check_height(self, image: Image.Image) -> None:
        if image.height != self.p.num_frequencies:
            raise ValueError(
                f"image is {image.height} pixels high but these parameters have num_frequencies="
                f"{self.p.num_frequencies}; expected the height to match"
            )
