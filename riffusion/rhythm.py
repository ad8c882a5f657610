"""Rhythm as its own input: a clip's beat grid, its encoding as model input, and its estimation.

A :class:`BeatGrid` says where the beats and bars of a clip fall: the tempo, the beats in a bar (when
known) and the time of one downbeat (or of one beat, when the metre is unknown). Rhythm-conditioned models
(``SmallModelConfig.rhythm_channels``) take it as :func:`rhythm_features`, four rows per spectrogram column:
the cosine and sine of the phase within the beat and within the bar (the bar rows are zero when the metre
is unknown, and all four are zero for "no rhythm given"). Phase encodings of a periodic position are what
transformer position codes and tempo-conditioned music models use (Vaswani et al., 2017; Copet et al.,
2023, MusicGen's rhythm conditioning), and a convolution reads a beat boundary off them as a zero crossing.

Rendered MIDI knows its grid exactly (the dataset builder records tempo, metre and clip start);
recordings and seed loops get an estimated one (:func:`estimate_beat_grid`, from the spectrogram image's
onset envelope: the tempo by autocorrelation, the phase by the comb of beat positions with the most onset
strength, as in Ellis, 2007, "Beat tracking by dynamic programming", without the dynamic programme).

Numpy only: this module is DSP and never imports torch, diffusers or the server.
"""

from __future__ import annotations

import dataclasses
import math
import typing as T

import numpy as np

#: The number of rows :func:`rhythm_features` returns.
RHYTHM_FEATURES = 4

#: Tempo limits a grid accepts, in beats per minute.
MIN_BPM, MAX_BPM = 30.0, 300.0

#: Metres a grid accepts (beats per bar).
MAX_BEATS_PER_BAR = 16

def onset_strength(pixels: np.ndarray) -> float:
    """How busy a clip sounds: the mean of :func:`onset_envelope` over its columns, in grey levels per
    column (0-255 images). Held notes give little (rendered sustained pads: median 2.2), drum parts much
    (median 4.8); images are peak-normalised, so the level of the recording does not enter."""
    return float(onset_envelope(pixels).mean())


#: How much later than the sound's onsets the peaks of :func:`onset_envelope` fall, in seconds, taken out
#: of estimated grids so that they are in the audio's time like the exact ones. Measured on rendered MIDI
#: with exact beat grids: the beat contrast peaks at a lag of 0-10 ms (the STFT frames are centred).
IMAGE_ONSET_LAG_S = 0.0


@dataclasses.dataclass(frozen=True)
class BeatGrid:
    """Where the beats of a clip fall.

    Parameters
    ----------
    bpm : float
        Beats per minute, in [30, 300].
    beats_per_bar : int or None
        Beats in a bar (3 for 3/4, 4 for 4/4, 6 for 6/8 counted in eighths); None when unknown.
    offset_s : float
        Time in seconds, from the start of the clip, of a downbeat (the first beat of a bar), or of any
        beat when ``beats_per_bar`` is None. Any real value: the grid repeats in both directions.
    """

    bpm: float
    beats_per_bar: T.Optional[int] = 4
    offset_s: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.bpm, bool) or not isinstance(self.bpm, (int, float)) or not (
                MIN_BPM <= float(self.bpm) <= MAX_BPM):
            raise ValueError(f"bpm must be a number in [{MIN_BPM:g}, {MAX_BPM:g}], got {self.bpm!r}")
        if self.beats_per_bar is not None and (
                isinstance(self.beats_per_bar, bool) or not isinstance(self.beats_per_bar, int)
                or not 1 <= self.beats_per_bar <= MAX_BEATS_PER_BAR):
            raise ValueError(f"beats_per_bar must be null or an integer in [1, {MAX_BEATS_PER_BAR}], "
                             f"got {self.beats_per_bar!r}")
        if isinstance(self.offset_s, bool) or not isinstance(self.offset_s, (int, float)) or not math.isfinite(
                self.offset_s):
            raise ValueError(f"offset_s must be a finite number of seconds, got {self.offset_s!r}")

    @property
    def beat_s(self) -> float:
        """The length of a beat in seconds."""
        return 60.0 / float(self.bpm)

    def beat_phase(self, times_s: np.ndarray) -> np.ndarray:
        """Position within the beat, in [0, 1), at each time (0 on a beat)."""
        return np.mod((np.asarray(times_s, dtype=np.float64) - self.offset_s) / self.beat_s, 1.0)

    def bar_phase(self, times_s: np.ndarray) -> T.Optional[np.ndarray]:
        """Position within the bar, in [0, 1), at each time (0 on a downbeat); None without a metre."""
        if self.beats_per_bar is None:
            return None
        bar_s = self.beat_s * self.beats_per_bar
        return np.mod((np.asarray(times_s, dtype=np.float64) - self.offset_s) / bar_s, 1.0)

    def beat_times(self, duration_s: float) -> np.ndarray:
        """Times in [0, duration_s) of the beats, in seconds."""
        first = self.offset_s - math.floor(self.offset_s / self.beat_s) * self.beat_s
        return np.arange(first, duration_s, self.beat_s)

    def shifted(self, seconds: float) -> "BeatGrid":
        """The same grid for a clip that starts ``seconds`` later (its beats fall that much earlier)."""
        return dataclasses.replace(self, offset_s=self.offset_s - float(seconds))

    def to_dict(self) -> dict[str, T.Any]:
        return {"bpm": float(self.bpm), "beats_per_bar": self.beats_per_bar, "offset_s": float(self.offset_s)}

    @classmethod
    def from_dict(cls, data: T.Mapping[str, T.Any]) -> "BeatGrid":
        unknown = sorted(set(data) - {"bpm", "beats_per_bar", "offset_s"})
        if unknown:
            raise ValueError(f"unknown beat grid fields {unknown}; expected bpm, beats_per_bar, offset_s")
        if "bpm" not in data:
            raise ValueError("a beat grid needs 'bpm'")
        return cls(bpm=data["bpm"], beats_per_bar=data.get("beats_per_bar", 4), offset_s=data.get("offset_s", 0.0))


def parse_metre(text: str) -> int:
    """Beats per bar of a time signature: ``"4/4"`` -> 4, ``"3/4"`` -> 3, ``"6/8"`` -> 6 (a grid's beats are
    then the denominator's notes, and its tempo counts them), or a plain count such as ``"5"``.

    Raises
    ------
    ValueError
        Naming the text, for anything else or a count outside [1, 16].
    """
    value = str(text).strip()
    top, slash, bottom = value.partition("/")
    try:
        beats = int(top)
        if slash and int(bottom) not in (1, 2, 4, 8, 16):
            raise ValueError
    except ValueError:
        raise ValueError(f"metre must look like 4/4, 3/4 or 6/8 (or a beat count), got {text!r}") from None
    if not 1 <= beats <= MAX_BEATS_PER_BAR:
        raise ValueError(f"metre {text!r} must have 1 to {MAX_BEATS_PER_BAR} beats per bar")
    return beats


def column_times(num_columns: int, *, column_s: float) -> np.ndarray:
    """Times in seconds of the centres of ``num_columns`` spectrogram columns ``column_s`` apart."""
    return np.arange(int(num_columns), dtype=np.float64) * float(column_s)


def rhythm_features(grid: T.Optional[BeatGrid], *, num_columns: int, column_s: float) -> np.ndarray:
    """The model input for a beat grid: cos/sin of the beat phase and of the bar phase at each column.

    Parameters
    ----------
    grid : BeatGrid or None
        None gives zeros: no rhythm asked for.
    num_columns : int, keyword-only
        Spectrogram columns.
    column_s : float, keyword-only
        Seconds between columns (the spectrogram's hop).

    Returns
    -------
    np.ndarray, shape (4, num_columns), float32
        Rows: cos and sin of 2 pi x beat phase, then of the bar phase (zeros without a metre).
    """
    if num_columns < 1 or column_s <= 0:
        raise ValueError(f"need num_columns >= 1 and column_s > 0, got {num_columns} and {column_s}")
    out = np.zeros((RHYTHM_FEATURES, int(num_columns)), dtype=np.float32)
    if grid is None:
        return out
    times = column_times(num_columns, column_s=column_s)
    beat = 2 * np.pi * grid.beat_phase(times)
    out[0], out[1] = np.cos(beat), np.sin(beat)
    bar = grid.bar_phase(times)
    if bar is not None:
        out[2], out[3] = np.cos(2 * np.pi * bar), np.sin(2 * np.pi * bar)
    return out


def onset_envelope(pixels: np.ndarray) -> np.ndarray:
    """Onset strength per column of a spectrogram image: half-wave-rectified flux of its rows, counting
    where the sound gets louder (Bello et al., 2005, "A tutorial on onset detection in music signals").

    Parameters
    ----------
    pixels : np.ndarray, shape (height, width)
        A Riffusion spectrogram image's grey values, loud dark and quiet light as the format draws them
        (0-255, or the model's [-1, 1]), low frequencies at the bottom.

    Returns
    -------
    np.ndarray, shape (width,), float64
        0 in the first column; elsewhere the mean over rows of how much darker (louder) each pixel is
        than in the column before, counting only increases of loudness.
    """
    x = np.asarray(pixels, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"pixels must be (height, width >= 2), got shape {x.shape}")
    flux = np.maximum(0.0, -np.diff(x, axis=1)).mean(axis=0)
    return np.concatenate([[0.0], flux])


#: Half-width in seconds of the window around a beat in which an onset counts as on it: the tolerance of
#: the MIREX beat-tracking evaluation (Davies, Degara and Plumbley, 2009, "Evaluation methods for musical
#: audio beat tracking algorithms").
BEAT_TOLERANCE_S = 0.07


def grid_strength(envelope: np.ndarray, grid: BeatGrid, *, column_s: float, width_beats: float = 0.08,
                  lag_s: float = 0.0, width_s: T.Optional[float] = None) -> float:
    """Onset strength on the beats of ``grid``: the envelope weighted by a triangle of half-width
    ``width_beats`` (a fraction of a beat) around each beat, averaged over the weights.

    Parameters
    ----------
    envelope : np.ndarray, shape (columns,)
        An onset envelope (:func:`onset_envelope`).
    grid : BeatGrid
    column_s : float, keyword-only
        Seconds between columns.
    width_beats : float, keyword-only
        Half-width of the window around each beat, as a fraction of a beat.
    lag_s : float, keyword-only
        How late the envelope's peaks fall after the onsets (:data:`IMAGE_ONSET_LAG_S` for
        :func:`onset_envelope`).
    width_s : float, optional, keyword-only
        The half-width in seconds instead (e.g. :data:`BEAT_TOLERANCE_S`), the same at every tempo.
    """
    env = np.asarray(envelope, dtype=np.float64)
    phase = grid.beat_phase(column_times(env.size, column_s=column_s) - lag_s)
    if width_s is not None:
        width_beats = float(width_s) / grid.beat_s
    distance = np.minimum(phase, 1.0 - phase)
    weight = np.maximum(0.0, 1.0 - distance / width_beats)
    total = weight.sum()
    return 0.0 if total <= 0 else float(np.dot(weight, env) / total)


def beat_contrast(envelope: np.ndarray, grid: BeatGrid, *, column_s: float, shift_beats: float = 0.5,
                  lag_s: float = 0.0, width_s: T.Optional[float] = None) -> float:
    """How much more onset strength falls on ``grid``'s beats than on the same grid shifted by
    ``shift_beats`` of a beat: ``on / (on + off)``, 0.5 meaning no preference, 1 all on the beat.
    ``lag_s`` and ``width_s`` as :func:`grid_strength`."""
    on = grid_strength(envelope, grid, column_s=column_s, lag_s=lag_s, width_s=width_s)
    off = grid_strength(envelope, grid.shifted(-shift_beats * grid.beat_s), column_s=column_s, lag_s=lag_s,
                        width_s=width_s)
    total = on + off
    return 0.5 if total <= 0 else on / total


def estimate_beat_grid(
    pixels: np.ndarray, *, column_s: float, bpm: T.Optional[float] = None, beats_per_bar: T.Optional[int] = None,
    min_bpm: float = 60.0, max_bpm: float = 180.0,
) -> T.Optional[BeatGrid]:
    """The beat grid of a spectrogram image, or None when it has no clear pulse.

    The tempo (unless given) is the lag of the highest autocorrelation peak of the onset envelope within
    ``[min_bpm, max_bpm]``; the phase is the offset whose comb of beats holds the most onset strength.
    The downbeat is not estimated: ``offset_s`` is the strongest beat, a good guess for loops that start
    on a downbeat only when the metre is given. Times are the audio's: the envelope's lag
    (:data:`IMAGE_ONSET_LAG_S`) is taken out.

    Parameters
    ----------
    pixels : np.ndarray, shape (height, width)
        The image's grey values.
    column_s : float, keyword-only
        Seconds between columns.
    bpm : float, optional, keyword-only
        A known tempo: only the phase is estimated.
    beats_per_bar : int, optional, keyword-only
        A known metre, copied into the grid.

    Returns
    -------
    BeatGrid or None
        None when the pulse is too weak (autocorrelation peak under 0.2) and no tempo was given.
    """
    known_tempo = bpm is not None
    raw = onset_envelope(pixels)
    # smoothed over ~5 columns, so that a period between two whole lags correlates at both
    env = np.convolve(raw, np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0, mode="same")
    env = env - env.mean()
    if not np.any(env):
        return None if bpm is None else BeatGrid(bpm=float(bpm), beats_per_bar=beats_per_bar, offset_s=0.0)
    if bpm is None:
        lags = np.arange(max(1, int(60.0 / max_bpm / column_s)), int(60.0 / min_bpm / column_s) + 2)
        lags = lags[lags < env.size // 2]
        if lags.size == 0:
            return None
        ac = np.array([np.dot(env[:-lag], env[lag:]) / (env.size - lag) for lag in lags]) / (env.var() + 1e-12)
        best = int(np.argmax(ac))
        if ac[best] < 0.2:
            return None
        # a pulse also correlates at whole multiples of its period: take the shortest period that
        # correlates almost as well (the beat, not the half-bar)
        for divisor in (2, 3):
            near = np.flatnonzero(np.abs(lags - lags[best] / divisor) <= 1.0)
            if near.size:
                candidate = int(near[np.argmax(ac[near])])
                if ac[candidate] >= 0.7 * ac[best]:
                    best = candidate
                    break
        # parabolic interpolation of the peak, for a tempo between whole lags
        lag = float(lags[best])
        if 0 < best < len(ac) - 1:
            a, b, c = ac[best - 1], ac[best], ac[best + 1]
            denom = a - 2 * b + c
            if denom < 0:
                lag += 0.5 * (a - c) / denom
        bpm = min(max(60.0 / (lag * column_s), MIN_BPM), MAX_BPM)
    # the phase (and, for an estimated tempo, the tempo within 3 %): the grid with the most onset strength
    tempos = [float(bpm)] if known_tempo else [float(bpm) * (1 + d) for d in np.linspace(-0.03, 0.03, 13)]
    best_score, best_grid = -1.0, None
    for tempo in tempos:
        if not MIN_BPM <= tempo <= MAX_BPM:
            continue
        beat_s = 60.0 / tempo
        for offset in np.linspace(0.0, beat_s, 48, endpoint=False):
            grid = BeatGrid(bpm=tempo, beats_per_bar=None, offset_s=float(offset))
            score = grid_strength(raw, grid, column_s=column_s, lag_s=IMAGE_ONSET_LAG_S)
            if score > best_score:
                best_score, best_grid = score, grid
    return BeatGrid(bpm=float(round(best_grid.bpm, 2)), beats_per_bar=beats_per_bar,
                    offset_s=round(best_grid.offset_s, 4))


def grid_for_clip(row: T.Mapping[str, T.Any]) -> T.Optional[BeatGrid]:
    """The exact beat grid of a dataset row of rendered MIDI, or None for other rows.

    Rendered MIDI starts on the first downbeat, so a clip cut at ``start_s`` has its downbeats at
    ``k * bar - start_s``. Rows need ``tempo_bpm`` (the score's), ``start_s`` and ``beats_per_bar``.
    """
    if row.get("beats_per_bar") is None or row.get("tempo_bpm") is None or row.get("start_s") is None:
        return None
    grid = BeatGrid(bpm=float(row["tempo_bpm"]), beats_per_bar=int(row["beats_per_bar"]), offset_s=0.0)
    bar_s = grid.beat_s * int(row["beats_per_bar"])
    offset = -math.fmod(float(row["start_s"]), bar_s)
    return dataclasses.replace(grid, offset_s=offset + bar_s if offset < 0 else offset)
