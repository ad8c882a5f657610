"""Your own loop in: audio of any length -> a seed loop of a model's shape, with its tempo, bars and metre.

:func:`seed_loop_from_audio` measures the audio's beat grid (tempo and beat phase by
:func:`riffusion.rhythm.estimate_beat_grid`, the downbeat as the beat of the bar with the most low-frequency
onset strength), cuts whole bars from its first downbeat, and fits them to the model's clip: the bar count
nearest the clip's length, stretched in time so that the bars span the clip exactly, like the catalogued
seed loops (:mod:`riffusion.seed_images`: whole bars across the clip, a downbeat at its start).

The stretch is done on the spectrogram, not on the waveform: the image keeps no phase, so a phase
vocoder's phase propagation would be work thrown away, and resampling the audio would shift its pitch
(by up to a few semitones at the stretches a bar count allows). The image's columns are read at the
stretched times and interpolated linearly between neighbours, which is a phase vocoder's magnitude path
(Flanagan & Golden, 1966; Laroche & Dolson, 1999): the pitch is unchanged and the length is exact.
Columns are read from the bars taken circularly, so a loop repeated side by side joins on its bar.

Numpy and the image codec only: this module never imports the server, the CLI or a model.
"""

from __future__ import annotations

import dataclasses
import math
import typing as T

import numpy as np
from PIL import Image

from riffusion.rhythm import (IMAGE_ONSET_LAG_S, MAX_BEATS_PER_BAR, MAX_BPM, MIN_BPM, BeatGrid, estimate_beat_grid,
                              onset_envelope)
from riffusion.spectrogram_params import SpectrogramParams

#: The spectrogram the beat is measured on: 10 ms columns at 16 kHz (cheap for a minute of audio).
ANALYSIS_PARAMS = SpectrogramParams(sample_rate=16000, step_size_ms=10, window_duration_ms=100,
                                    padded_duration_ms=128, num_frequencies=128, max_frequency=8000)

#: Tempo range searched when no tempo is given, in beats per minute.
MIN_MEASURED_BPM, MAX_MEASURED_BPM = 60.0, 180.0

#: Peak level under which audio counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4

#: A first downbeat this close before the start (a fraction of a beat) is taken as the start.
_START_TOLERANCE_BEATS = 0.1

#: Share of the lowest mel rows whose onsets mark the downbeat (kick drums and bass notes fall there).
_BASS_SHARE = 0.25


class LoopError(ValueError):
    """Audio that cannot become a seed loop (too short, silent, no pulse); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class SeedLoop:
    """A seed loop made from audio: whole bars across the model's clip, starting on a downbeat.

    Attributes
    ----------
    image : PIL.Image.Image
        The spectrogram image, the model's size, its parameters in EXIF.
    tempo_bpm : float
        The loop's tempo as fitted: ``bars * beats_per_bar`` beats across the clip.
    bars : int
        Whole bars across the clip.
    beats_per_bar : int
        The metre (4 for 4/4, 3 for 3/4, 6 for 6/8).
    source_bpm : float
        The audio's tempo, measured or given.
    start_s : float
        Where in the audio the first bar starts, in seconds.
    stretch : float
        The clip's length over the bars' length in the audio (above 1: slowed down).
    """

    image: Image.Image
    tempo_bpm: float
    bars: int
    beats_per_bar: int
    source_bpm: float
    start_s: float
    stretch: float

    @property
    def grid(self) -> BeatGrid:
        """The loop's beat grid: a downbeat at its start."""
        return BeatGrid(bpm=self.tempo_bpm, beats_per_bar=self.beats_per_bar, offset_s=0.0)

    def to_dict(self) -> dict[str, T.Any]:
        """JSON-able description (without the image)."""
        return {"tempo_bpm": self.tempo_bpm, "bars": self.bars, "beats_per_bar": self.beats_per_bar,
                "source_bpm": self.source_bpm, "start_s": self.start_s, "stretch": self.stretch}


def _mono(waveform: np.ndarray) -> np.ndarray:
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"waveform must be (samples,) or (channels, samples), got shape {x.shape}")
    return x


def _pixels(waveform: np.ndarray, sample_rate: int, params: SpectrogramParams) -> np.ndarray:
    """Grey values (height, columns) of ``waveform``'s image with ``params``, resampled to their rate."""
    from riffusion.audio import resample
    from riffusion.image import image_from_waveform

    x = resample(waveform, sample_rate, params.sample_rate)
    image = image_from_waveform(x.mean(axis=0), params.sample_rate, params)
    return np.asarray(image.getchannel("R"), dtype=np.float32)


def measure_grid(waveform: np.ndarray, sample_rate: int, *, bpm: T.Optional[float] = None,
                 beats_per_bar: int = 4) -> BeatGrid:
    """The beat grid of audio with a downbeat estimate: ``offset_s`` is its first downbeat.

    The tempo (unless given) and the beat phase come from :func:`riffusion.rhythm.estimate_beat_grid` on
    an analysis spectrogram (:data:`ANALYSIS_PARAMS`); the downbeat is the beat of the bar whose
    occurrences hold the most onset strength in the lowest mel rows.

    Parameters
    ----------
    waveform : np.ndarray, shape (channels, samples) or (samples,)
        Audio in [-1, 1].
    sample_rate : int
        In Hz.
    bpm : float, optional, keyword-only
        The known tempo: only the phase is measured.
    beats_per_bar : int, keyword-only
        The metre.

    Returns
    -------
    BeatGrid
        ``offset_s`` in ``[-0.1 beat, bar)``: the first downbeat of the audio.

    Raises
    ------
    LoopError
        Silent audio, or no steady pulse found (give ``bpm``).
    """
    x = _mono(waveform)
    if not np.isfinite(x).all() or float(np.max(np.abs(x), initial=0.0)) < SILENCE_PEAK:
        raise LoopError("the audio is silent (peak under -80 dBFS); a loop needs a beat to follow")
    pixels = _pixels(x, sample_rate, ANALYSIS_PARAMS)
    column_s = ANALYSIS_PARAMS.hop_length / ANALYSIS_PARAMS.sample_rate
    grid = estimate_beat_grid(pixels, column_s=column_s, bpm=bpm, min_bpm=MIN_MEASURED_BPM, max_bpm=MAX_MEASURED_BPM)
    if grid is None:
        raise LoopError("no steady pulse found in the audio; give its tempo in beats per minute (bpm)")
    bass = onset_envelope(pixels[-max(2, int(pixels.shape[0] * _BASS_SHARE)):])
    lag_columns = IMAGE_ONSET_LAG_S / column_s
    beat_s = grid.beat_s
    first_beat = grid.offset_s % beat_s
    strengths = []
    for k in range(beats_per_bar):
        times = np.arange(first_beat + k * beat_s, pixels.shape[1] * column_s, beats_per_bar * beat_s)
        columns = np.rint(times / column_s + lag_columns).astype(int)
        windows = [bass[max(0, c - 2):c + 3] for c in columns if c < bass.size]
        strengths.append(np.mean([w.max() for w in windows if w.size]) if windows else 0.0)
    downbeat = first_beat + int(np.argmax(strengths)) * beat_s
    bar_s = beat_s * beats_per_bar
    if downbeat > bar_s - _START_TOLERANCE_BEATS * beat_s:
        downbeat -= bar_s
    return BeatGrid(bpm=float(grid.bpm), beats_per_bar=beats_per_bar, offset_s=round(float(downbeat), 4))


def _check_options(bpm: T.Optional[float], beats_per_bar: int, width: int) -> None:
    if bpm is not None and (isinstance(bpm, bool) or not isinstance(bpm, (int, float))
                            or not MIN_BPM <= float(bpm) <= MAX_BPM):
        raise ValueError(f"bpm must be a number in [{MIN_BPM:g}, {MAX_BPM:g}], got {bpm!r}")
    if isinstance(beats_per_bar, bool) or not isinstance(beats_per_bar, int) or not (
            1 <= beats_per_bar <= MAX_BEATS_PER_BAR):
        raise ValueError(f"beats_per_bar must be an integer in [1, {MAX_BEATS_PER_BAR}], got {beats_per_bar!r}")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 2:
        raise ValueError(f"width must be at least 2 columns, got {width!r}")


def seed_loop_from_audio(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    params: SpectrogramParams,
    width: int,
    bpm: T.Optional[float] = None,
    beats_per_bar: int = 4,
) -> SeedLoop:
    """A seed loop of a model's shape from audio: whole bars from its first downbeat, fitted to the clip.

    Parameters
    ----------
    waveform : np.ndarray, shape (channels, samples) or (samples,)
        Audio in [-1, 1], any length holding at least one bar.
    sample_rate : int
        In Hz.
    params : SpectrogramParams, keyword-only
        The model's spectrogram parameters (``pipeline.spectrogram_params``).
    width : int, keyword-only
        The model's image width in columns (``pipeline.image_size[0]``); the clip lasts
        ``params.duration_s(width)``.
    bpm : float, optional, keyword-only
        The audio's tempo; measured when omitted (60 to 180 bpm).
    beats_per_bar : int, keyword-only
        The metre: 4 for 4/4 (default), 3 for 3/4, 6 for 6/8.

    Returns
    -------
    SeedLoop
        ``bars`` is the whole number of bars nearest the clip's length (bars repeat when the audio holds
        fewer); the image holds them exactly across the clip, a downbeat at its start.

    Raises
    ------
    LoopError
        Silent audio, no pulse found (give ``bpm``), or audio shorter than one bar from its first downbeat.
    ValueError
        Options out of range (naming the value).
    """
    _check_options(bpm, beats_per_bar, width)
    x = _mono(waveform)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    duration_s = x.shape[1] / sample_rate
    shortest_bar_s = 60.0 / (float(bpm) if bpm is not None else MAX_MEASURED_BPM) * beats_per_bar
    if duration_s < shortest_bar_s:
        raise LoopError(f"the audio lasts {duration_s:.2f} s, shorter than one bar ({shortest_bar_s:.2f} s of "
                        f"{beats_per_bar} beats at {60.0 * beats_per_bar / shortest_bar_s:g} bpm)")
    grid = measure_grid(x, sample_rate, bpm=bpm, beats_per_bar=beats_per_bar)
    bar_s = grid.beat_s * beats_per_bar
    start_s = max(0.0, grid.offset_s)
    available = int((duration_s - start_s) / bar_s + 1e-6)
    if available < 1:
        raise LoopError(f"the audio holds {duration_s - start_s:.2f} s from its first downbeat at {start_s:.2f} s, "
                        f"shorter than one bar ({bar_s:.2f} s at {grid.bpm:g} bpm)")
    clip_s = params.duration_s(width)
    bars = max(1, int(round(clip_s / bar_s)))
    image = _fitted_image(x, sample_rate, params, width=width, start_s=start_s, bar_s=bar_s, available=available,
                          bars=bars)
    return SeedLoop(image=image, tempo_bpm=round(60.0 * bars * beats_per_bar / clip_s, 3), bars=bars,
                    beats_per_bar=beats_per_bar, source_bpm=float(grid.bpm), start_s=round(start_s, 4),
                    stretch=round(clip_s / (bars * bar_s), 4))


def _fitted_image(x: np.ndarray, sample_rate: int, params: SpectrogramParams, *, width: int, start_s: float,
                  bar_s: float, available: int, bars: int) -> Image.Image:
    """The image of ``bars`` bars from ``start_s`` (repeating the ``available`` ones), ``width`` columns
    across exactly those bars: columns read at the stretched times from the bars taken circularly."""
    from riffusion.audio import resample
    from riffusion.image import copy_exif, image_from_waveform

    rate = params.sample_rate
    audio = resample(x, sample_rate, rate)
    bar_samples = bar_s * rate
    pieces = []
    for bar in range(bars):
        begin = int(round(start_s * rate + (bar % available) * bar_samples))
        end = int(round(start_s * rate + (bar % available + 1) * bar_samples))
        pieces.append(audio[:, begin:end])
    loop = np.concatenate(pieces, axis=1)
    hop = params.hop_length
    pad = int(math.ceil(params.n_fft / 2 / hop)) * hop
    tiled = np.tile(loop, (1, int(math.ceil(pad / loop.shape[1]))))  # a loop shorter than the padding repeats
    ext = np.concatenate([tiled[:, tiled.shape[1] - pad:], loop, tiled[:, :pad]], axis=1)
    source = image_from_waveform(ext, rate, params)
    pixels = np.asarray(source, dtype=np.float32)  # (height, columns, 3)
    # target column j sits at j / (width - 1) of the loop; source column c at c * hop - pad samples
    position = (np.arange(width) / (width - 1) * loop.shape[1] + pad) / hop
    position = np.clip(position, 0, pixels.shape[1] - 1)
    left = np.floor(position).astype(int)
    right = np.minimum(left + 1, pixels.shape[1] - 1)
    frac = (position - left)[None, :, None]
    stretched = pixels[:, left] * (1 - frac) + pixels[:, right] * frac
    image = Image.fromarray(np.clip(np.rint(stretched), 0, 255).astype(np.uint8))
    return copy_exif(source, image)
