"""Audio <-> mel magnitude spectrogram (the original's ``SpectrogramConverter``), on the spectral engine."""

from __future__ import annotations

import typing as T

import numpy as np
import pydub
import torch

from riffusion import spectral
from riffusion.spectrogram_params import SpectrogramParams
from riffusion.util import audio_util
from riffusion.util.torch_util import check_device


def match_channels(waveform: np.ndarray, params: SpectrogramParams) -> np.ndarray:
    """Channel layout the parameters ask for: mono down-mixes; stereo duplicates mono and keeps 2 of more."""
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if params.stereo:
        if x.shape[0] == 1:
            return np.concatenate([x, x])
        return x[:2]
    return x.mean(axis=0, keepdims=True) if x.shape[0] > 1 else x


class SpectrogramConverter:
    """Convert audio to mel magnitude spectrograms and back, with the geometry of ``params``.

    Parameters
    ----------
    params : SpectrogramParams
    device : str
        ``"cuda"``, ``"mps"``, ``"cpu"`` or ``"auto"``; an unavailable device falls back to the CPU with a
        warning (the original crashed).
    phase : str
        Phase reconstruction method for :meth:`audio_from_spectrogram` (see :mod:`riffusion.phase`).
    """

    def __init__(self, params: SpectrogramParams, device: str = "cuda", *, phase: str = "default"):
        self.p = params
        self.device = check_device(device)
        self.phase = phase

    def spectrogram_from_waveform(self, waveform: np.ndarray) -> np.ndarray:
        """Mel magnitudes of a waveform (channels, samples) at ``params.sample_rate``, any units.

        Returns
        -------
        np.ndarray, shape (channels, num_frequencies, frames), float32
        """
        x = torch.from_numpy(match_channels(waveform, self.p)).to(self.device)
        return spectral.waveform_to_mel(x, self.p).cpu().numpy()

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
        generator: T.Optional[torch.Generator] = None,
        num_iters: T.Optional[int] = None,
    ) -> np.ndarray:
        """Audio (channels, hop * (frames - 1)) from mel magnitudes, in their units (not normalised)."""
        mel = torch.as_tensor(np.asarray(spectrogram, dtype=np.float32)).to(self.device)
        waveform = spectral.mel_to_waveform(mel, self.p, phase=self.phase, num_iters=num_iters, generator=generator)
        return waveform.cpu().numpy()

    def audio_from_spectrogram(
        self,
        spectrogram: np.ndarray,
        apply_filters: bool = True,
        *,
        generator: T.Optional[torch.Generator] = None,
    ) -> pydub.AudioSegment:
        """A 16-bit ``AudioSegment`` from mel magnitudes: peak-scaled, then the post-filter when asked."""
        samples = self.waveform_from_spectrogram(spectrogram, generator=generator)
        segment = audio_util.audio_from_waveform(samples, self.p.sample_rate, normalize=True)
        if apply_filters:
            segment = audio_util.apply_filters(segment, compression=False)
        return segment
