"""The original's ``SpectrogramConverter`` (audio <-> mel magnitudes), an adapter over the engine.

The engine's functions are :func:`riffusion.image.mel_from_waveform` and
:func:`riffusion.image.waveform_from_mel`; this class keeps the original's interface and pydub types.
"""

from __future__ import annotations

import typing as T

import numpy as np
import pydub

from riffusion import audio, image
from riffusion.devices import check_device
from riffusion.spectrogram_params import SpectrogramParams
from riffusion.util import audio_util

if T.TYPE_CHECKING:  # pragma: no cover
    import torch


def match_channels(waveform: np.ndarray, params: SpectrogramParams) -> np.ndarray:
    """float32 audio with the channel layout ``params`` asks for (:func:`riffusion.audio.match_channels`)."""
    return audio.match_channels(np.asarray(waveform, dtype=np.float32), 2 if params.stereo else 1)


class SpectrogramConverter:
    """Convert audio to mel magnitude spectrograms and back, with the geometry of ``params``.

    Parameters
    ----------
    params : SpectrogramParams
    device : str
        ``"cuda"``, ``"mps"``, ``"cpu"`` or ``"auto"``; an unavailable device falls back to the CPU with a
        warning.
    phase : str
        Phase reconstruction method for :meth:`audio_from_spectrogram` (see :mod:`riffusion.phase`).
    """

    def __init__(self, params: SpectrogramParams, device: str = "cuda", *, phase: str = "default"):
        self.p = params
        self.device = check_device(device)
        self.phase = phase

    def spectrogram_from_waveform(self, waveform: np.ndarray) -> np.ndarray:
        """Mel magnitudes (channels, num_frequencies, frames), float32, of audio (channels, samples) in any units."""
        return image.mel_from_waveform(waveform, self.p, device=self.device)

    def spectrogram_from_audio(self, audio: pydub.AudioSegment) -> np.ndarray:
        """Mel magnitudes of an ``AudioSegment`` from its raw integer samples, as the original computed them.

        Raises
        ------
        ValueError
            If the segment's sample rate differs from ``params.sample_rate``.
        """
        if audio.frame_rate != self.p.sample_rate:
            raise ValueError(
                f"audio sample rate is {audio.frame_rate} Hz but the spectrogram parameters expect "
                f"{self.p.sample_rate} Hz; resample it first (e.g. segment.set_frame_rate({self.p.sample_rate}))"
            )
        return self.spectrogram_from_waveform(audio_util.waveform_from_segment(audio, raw=True))

    def waveform_from_spectrogram(
        self,
        spectrogram: np.ndarray,
        *,
        generator: T.Optional["torch.Generator"] = None,
        num_iters: T.Optional[int] = None,
    ) -> np.ndarray:
        """Audio (channels, hop * (frames - 1)) from mel magnitudes, in their units (not normalised)."""
        return image.waveform_from_mel(spectrogram, self.p, phase=self.phase, device=self.device,
                                       generator=generator, num_iters=num_iters)

    def audio_from_spectrogram(
        self,
        spectrogram: np.ndarray,
        apply_filters: bool = True,
        *,
        generator: T.Optional["torch.Generator"] = None,
    ) -> pydub.AudioSegment:
        """A 16-bit ``AudioSegment`` from mel magnitudes: peak-scaled, then the post-filter when asked."""
        samples = self.waveform_from_spectrogram(spectrogram, generator=generator)
        segment = audio_util.audio_from_waveform(samples, self.p.sample_rate, normalize=True)
        if apply_filters:
            segment = audio_util.apply_filters(segment, compression=False)
        return segment
