"""Spectrum of a whole sound (the original's ``riffusion.util.fft_util``)."""

from __future__ import annotations

import typing as T

import numpy as np
import pydub

from riffusion.util.audio_util import waveform_from_segment


def compute_fft(sound: pydub.AudioSegment) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and magnitudes of the real FFT of each channel of ``sound``.

    Returns
    -------
    frequencies : np.ndarray, shape (n_bins,)
    amplitudes : np.ndarray, shape (channels, n_bins)
    """
    samples = waveform_from_segment(sound, raw=True)
    frequencies = np.fft.rfftfreq(samples.shape[1], d=1.0 / sound.frame_rate)
    return frequencies, np.abs(np.fft.rfft(samples, axis=1))


def plot_ffts(
    sounds: T.Mapping[str, pydub.AudioSegment],
    *,
    title: str = "FFT",
    min_frequency: float = 20.0,
    max_frequency: float = 20000.0,
):
    """Plot the spectra of named sounds on one log-frequency figure (needs matplotlib or plotly)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # plotting is optional
        raise ImportError("plot_ffts needs matplotlib: pip install matplotlib") from exc
    figure, axis = plt.subplots()
    for name, sound in sounds.items():
        frequencies, amplitudes = compute_fft(sound)
        keep = (frequencies >= min_frequency) & (frequencies <= max_frequency)
        axis.plot(frequencies[keep], 20 * np.log10(amplitudes[0, keep] + 1e-12), label=name)
    axis.set_xscale("log")
    axis.set_xlabel("frequency (Hz)")
    axis.set_ylabel("magnitude (dB)")
    axis.set_title(title)
    axis.legend()
    return figure
