"""Measured caption words: tempo, key and brightness of a clip, from its waveform (numpy only).

These describe recordings that come without exact musical facts (game soundtracks, a user's folder).
They are deliberately simple and weight-free:

* tempo: autocorrelation of a spectral-flux onset envelope, with a log-Gaussian prior around 120 BPM
  (as in Ellis, 2007, "Beat tracking by dynamic programming"), or with the octave chosen by onset rate;
* key: correlation of a chroma vector with the Krumhansl-Kessler key profiles (Krumhansl, 1990);
* brightness: spectral centroid in Hz, mapped to a word.
"""

from __future__ import annotations

import typing as T

import numpy as np

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _stft_magnitude(x: np.ndarray, sample_rate: int, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = 1 + (x.size - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    return np.abs(np.fft.rfft(x[index] * np.hanning(n_fft)[None, :], axis=1)).T  # (bins, frames)


def _mono(waveform: np.ndarray) -> np.ndarray:
    w = np.asarray(waveform, dtype=np.float32)
    return w.mean(axis=0) if w.ndim == 2 else w


_FLUX_HOP = 256  # samples: ~86 frames/s at 22.05 kHz


def _log_flux(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Half-wave-rectified spectral flux of log1p(100 |STFT|), summed over bins: (frames - 1,)."""
    spec = np.log1p(100 * _stft_magnitude(x, sample_rate, 1024, _FLUX_HOP))
    return np.maximum(0, np.diff(spec, axis=1)).sum(axis=0)


#: Octave choices of :func:`estimate_tempo`.
TEMPO_OCTAVES = ("prior", "onset-rate")

#: Beats per onset for ``octave="onset-rate"``: the reference tempo is this times 60 x onsets per second.
#: Chosen on one rendered MMA dataset (646 clips, `bench/bench_tempo.py`) and checked on a second one drawn
#: with another seed (0.7-0.9 order truly slow and truly fast clips alike there; 0.75 best on the first).
_BEATS_PER_ONSET = 0.75


def estimate_tempo(waveform: np.ndarray, sample_rate: int, *, min_bpm: float = 50, max_bpm: float = 200,
                   octave: str = "prior") -> float:
    """Dominant tempo of a clip, in beats per minute.

    The periodicity comes from the autocorrelation of a log spectral-flux onset envelope (hop 256
    samples), weighted by a log-normal prior around 120 BPM of one octave (Ellis, 2007). That choice of
    metrical level is the tempo one taps along to, and on 5 s clips it is often half or twice the score's:
    slow music with eighth notes reads as fast, fast music as half-time.

    Parameters
    ----------
    waveform : np.ndarray, shape (channels, samples) or (samples,)
    sample_rate : int
        In Hz.
    min_bpm, max_bpm : float, keyword-only
        The range searched, in BPM.
    octave : {"prior", "onset-rate"}, keyword-only
        How the metrical level is chosen. ``"prior"``: the prior's peak (the captions of
        ``riffusion dataset build`` and the shipped model's training data use it). ``"onset-rate"``: among
        that tempo and its half and double inside the range, the one closest (in octaves) to 0.75 beats per
        onset of :func:`onset_rate`, so that sparse music measures slow and busy music fast (in the manner
        of the octave correction of Percival & Tzanetakis, 2014, with event density as the one feature).
        It orders a truly slow clip below a truly fast one far more often than ``"prior"``, at the cost
        of slightly fewer clips within 5 % of the score's tempo; ``python bench/bench_tempo.py`` measures
        both.

    Returns
    -------
    float
        BPM rounded to 0.1; 0.0 for silence or a clip too short to hold a beat.
    """
    if octave not in TEMPO_OCTAVES:
        raise ValueError(f"octave must be one of {', '.join(map(repr, TEMPO_OCTAVES))}, got {octave!r}")
    if not 0 < min_bpm < max_bpm:
        raise ValueError(f"need 0 < min_bpm < max_bpm, got {min_bpm} and {max_bpm}")
    x = _mono(waveform)
    flux = _log_flux(x, sample_rate)
    if flux.size < 8 or not np.any(flux > 0):
        return 0.0
    onsets_per_s = _peaks_per_second(flux, x.size / sample_rate) if octave == "onset-rate" else 0.0
    flux = flux - flux.mean()
    ac = np.correlate(flux, flux, "full")[flux.size - 1 :]
    frame_rate = sample_rate / _FLUX_HOP
    lags = np.arange(ac.size)
    with np.errstate(divide="ignore"):
        bpm = 60.0 * frame_rate / np.maximum(lags, 1e-9)
    valid = (bpm >= min_bpm) & (bpm <= max_bpm)
    if not np.any(valid):
        return 0.0
    weight = np.exp(-0.5 * (np.log2(np.maximum(bpm, 1e-9) / 120.0) / 1.0) ** 2)
    score = np.where(valid, ac * weight, -np.inf)
    tempo = float(bpm[int(np.argmax(score))])
    if octave == "onset-rate":
        reference = 60.0 * _BEATS_PER_ONSET * onsets_per_s
        if reference > 0:
            levels = [t for t in (tempo / 2, tempo, tempo * 2) if min_bpm <= t <= max_bpm]
            tempo = min(levels, key=lambda t: abs(np.log2(t / reference)))
    return float(round(tempo, 1))


def estimate_key(waveform: np.ndarray, sample_rate: int) -> tuple[str, float]:
    """Most likely key ("A minor") and its profile correlation (-1..1) from a chroma vector."""
    x = _mono(waveform)
    n_fft = 8192
    mag = _stft_magnitude(x, sample_rate, n_fft, 4096)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = (freqs > 55) & (freqs < 2000)
    pitch_class = np.round(12 * np.log2(freqs[band] / 440.0)).astype(int) % 12
    energy = (mag[band] ** 2).sum(axis=1)
    chroma = np.bincount((pitch_class + 9) % 12, weights=energy, minlength=12)  # 0 = C
    if chroma.sum() <= 0:
        return "", 0.0
    best = ("", -2.0)
    for tonic in range(12):
        for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
            r = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            if r > best[1]:
                best = (f"{NOTE_NAMES[tonic]} {mode}", r)
    return best


def onset_rate(waveform: np.ndarray, sample_rate: int, *, threshold: float = 1.5) -> float:
    """Onsets per second: peaks of the half-wave-rectified log spectral flux above ``threshold`` times its
    median-filtered local mean (a simple peak picker in the manner of Bock et al., 2012)."""
    x = _mono(waveform)
    return _peaks_per_second(_log_flux(x, sample_rate), x.size / sample_rate, threshold=threshold)


def _peaks_per_second(flux: np.ndarray, seconds: float, *, threshold: float = 1.5) -> float:
    if flux.size < 5 or not np.any(flux > 0):
        return 0.0
    k = 8
    padded = np.pad(flux, k, mode="edge")
    local = np.array([padded[i : i + 2 * k + 1].mean() for i in range(flux.size)])
    is_peak = (flux[1:-1] > flux[:-2]) & (flux[1:-1] >= flux[2:]) & (flux[1:-1] > threshold * local[1:-1])
    is_peak &= flux[1:-1] > 0.1 * flux.max()
    return float(is_peak.sum() / seconds)


#: Seconds between frames of :func:`onset_envelope` at a sample rate: ``FLUX_HOP / sample_rate``.
FLUX_HOP = _FLUX_HOP


def onset_envelope(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset strength per frame (hop :data:`FLUX_HOP` samples): the half-wave-rectified spectral flux of
    log1p(100 |STFT|) summed over bins, 0 in the first frame. Shape (frames,)."""
    return np.concatenate([[0.0], _log_flux(_mono(waveform), sample_rate)])


def spectral_flux(waveform: np.ndarray, sample_rate: int) -> float:
    """Mean log spectral flux per second: how much new energy onsets bring (high for percussion, low for
    sustained sounds). 0.0 for silence or clips shorter than two frames."""
    x = _mono(waveform)
    flux = _log_flux(x, sample_rate)
    return float(flux.sum() / (x.size / sample_rate)) if flux.size else 0.0


def spectral_centroid(waveform: np.ndarray, sample_rate: int) -> float:
    """Energy-weighted mean frequency in Hz over the whole clip (0.0 for silence)."""
    mag = _stft_magnitude(_mono(waveform), sample_rate)
    freqs = np.fft.rfftfreq(2048, 1.0 / sample_rate)
    total = mag.sum()
    return float((freqs[:, None] * mag).sum() / total) if total > 0 else 0.0


def brightness_word(centroid_hz: float) -> str:
    """A caption word for a spectral centroid: dark / warm / balanced / bright."""
    if centroid_hz < 800:
        return "dark"
    if centroid_hz < 1500:
        return "warm"
    if centroid_hz < 2600:
        return "balanced"
    return "bright"


def tempo_word(bpm: float) -> str:
    """A caption word for a tempo: very slow / slow / moderate / upbeat / fast / very fast ("" for none)."""
    if bpm <= 0:
        return ""
    if bpm < 62:
        return "very slow"
    if bpm < 76:
        return "slow"
    if bpm < 108:
        return "moderate"
    if bpm < 140:
        return "upbeat"
    if bpm < 168:
        return "fast"
    return "very fast"


#: Register words by :func:`brightness_word`, for clips without drums (drums put the centroid up whatever
#: the pitch): what people type ("a deep bass", "a high flute"). Measured on the generated parts, bass
#: lines sit at 300-700 Hz ("dark"), treble melodies at 1500-2600 Hz ("balanced"); the middle gets none.
REGISTER_WORDS = {"dark": "deep low", "warm": "", "balanced": "high", "bright": "bright high"}


def describe(waveform: np.ndarray, sample_rate: int, *, tempo_octave: str = "prior") -> dict[str, T.Any]:
    """All measured facts of a clip: tempo_bpm, key, key_confidence, centroid_hz, rms_dbfs, words.

    ``tempo_octave`` is :func:`estimate_tempo`'s ``octave``.
    """
    x = _mono(waveform)
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0
    tempo = estimate_tempo(x, sample_rate, octave=tempo_octave)
    key, confidence = estimate_key(x, sample_rate)
    centroid = spectral_centroid(x, sample_rate)
    return {
        "tempo_bpm": tempo,
        "key": key if confidence > 0.6 else "",
        "key_confidence": round(confidence, 3),
        "centroid_hz": round(centroid, 1),
        "rms_dbfs": round(20 * np.log10(max(rms, 1e-10)), 1),
        "brightness": brightness_word(centroid),
        "tempo_word": tempo_word(tempo),
    }
