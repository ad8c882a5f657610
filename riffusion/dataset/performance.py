"""How a player and a room turn score notes into sound: humanised timing and dynamics, a synthetic room.

:func:`humanise` moves every onset by a seeded jitter plus a slow rubato curve, both within
:data:`MAX_SHIFT_S` of the score (swing delays off-beat eighths only, so beats stay on the grid), and
shapes velocities with four-bar phrase arches, accents on downbeats and lighter off-beats, and a per-part
gain (the mix). :func:`add_room` mixes in a convolution with a synthetic impulse response (decaying noise
whose high frequencies die first), the usual cheap model of a diffuse reverberant tail (Schroeder's
statistical room model: exponential energy decay with time constant set by RT60).
"""

from __future__ import annotations

import math
import random
import typing as T

import numpy as np

from riffusion.dataset.midi import Note

#: Largest shift of any onset from its score position by jitter plus rubato, in seconds.
MAX_SHIFT_S = 0.03


class TimedNote(T.Protocol):
    """What :func:`humanise` reads of a score note: start and length in quarter notes, pitch, part."""

    start: float
    length: float
    pitch: int
    part: int


def humanise(
    notes: T.Sequence[TimedNote],
    *,
    quarter_bpm: float,
    beat_ql: float,
    bar_ql: float,
    channels: T.Mapping[int, int],
    gains: T.Mapping[int, float],
    rng: random.Random,
    swing: float = 0.0,
    max_shift_s: float = MAX_SHIFT_S,
    legato: float = 0.95,
) -> list[Note]:
    """Score notes to MIDI notes played with human timing and dynamics.

    Parameters
    ----------
    notes : sequence of TimedNote
        Starts and lengths in quarter notes from a downbeat.
    quarter_bpm : float, keyword-only
        Tempo of the render in quarter notes per minute.
    beat_ql, bar_ql : float, keyword-only
        The beat and the bar in quarter notes (accents fall on them).
    channels, gains : mapping, keyword-only
        Part index -> MIDI channel, and -> velocity gain (the mix).
    rng : random.Random, keyword-only
        Seeded source of the jitter, rubato phase and velocity noise.
    swing : float, keyword-only
        Delay of off-beat eighths as a fraction of an eighth (0: straight).
    max_shift_s : float, keyword-only
        Bound on the timing shift of any note from jitter plus rubato, in seconds.

    Returns
    -------
    list of Note
        Starts in quarter notes, never negative.
    """
    if quarter_bpm <= 0 or beat_ql <= 0 or bar_ql <= 0:
        raise ValueError(f"tempo, beat and bar must be positive, got {quarter_bpm}, {beat_ql}, {bar_ql}")
    if not 0 <= swing < 0.5:
        raise ValueError(f"swing must be in [0, 0.5), got {swing}")
    seconds_per_ql = 60.0 / quarter_bpm
    phase = rng.uniform(0, 2 * math.pi)
    out = []
    for note in notes:
        shift_s = 0.6 * max_shift_s * math.sin(phase + 2 * math.pi * note.start / (4 * bar_ql))  # rubato
        shift_s += float(np.clip(rng.gauss(0.0, max_shift_s / 4), -0.4 * max_shift_s, 0.4 * max_shift_s))
        start = note.start + shift_s / seconds_per_ql
        in_beat = math.fmod(note.start, 1.0)
        if swing and abs(in_beat - 0.5) < 1e-6 and beat_ql <= 1.0:  # off-beat eighth of a quarter-note pulse
            start += swing * 0.5
        position = math.fmod(note.start, bar_ql)
        accent = 14 if position < 1e-6 else 5 if abs(math.fmod(position, beat_ql)) < 1e-6 else -4
        arch = 18 * math.sin(math.pi * math.fmod(note.start, 4 * bar_ql) / (4 * bar_ql))  # phrase dynamics
        velocity = (62 + arch + accent + rng.gauss(0, 4)) * gains.get(note.part, 1.0)
        out.append(Note(max(0.0, start), max(0.05, note.length * legato), note.pitch,
                        int(np.clip(round(velocity), 1, 127)), channels[note.part]))
    return out


def room_impulse(sample_rate: int, *, rt60_s: float, rng: random.Random) -> np.ndarray:
    """A synthetic room: exponentially decaying noise, darker as it decays.

    Returns
    -------
    np.ndarray, shape=(n,)
        Impulse response of ``1.2 * rt60_s`` seconds, unit energy, no direct sound.
    """
    if rt60_s <= 0:
        raise ValueError(f"rt60_s must be positive, got {rt60_s}")
    n = max(1, int(1.2 * rt60_s * sample_rate))
    t = np.arange(n) / sample_rate
    noise = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(n)
    smooth = np.convolve(noise, np.ones(4) / 4, mode="same")  # duller tail: high frequencies die first
    mix = np.exp(-t / (0.4 * rt60_s))
    ir = (noise * mix + smooth * (1 - mix)) * 10 ** (-3 * t / rt60_s)
    return (ir / np.sqrt(np.sum(ir ** 2))).astype(np.float32)


def add_room(waveform: np.ndarray, sample_rate: int, *, rt60_s: float, wet: float, rng: random.Random) -> np.ndarray:
    """Mix a reverberated copy into ``waveform`` (shape ``(n,)``), same length, peak-normalised to 0.9."""
    from scipy.signal import fftconvolve

    if not 0 <= wet <= 1:
        raise ValueError(f"wet must be in [0, 1], got {wet}")
    dry = np.asarray(waveform, dtype=np.float32)
    tail = fftconvolve(dry, room_impulse(sample_rate, rt60_s=rt60_s, rng=rng))[: dry.shape[-1]]
    tail *= np.sqrt(np.mean(dry ** 2) / max(float(np.mean(tail ** 2)), 1e-12))
    out = (1 - wet) * dry + wet * tail
    return (out * 0.9 / max(float(np.max(np.abs(out))), 1e-9)).astype(np.float32)
