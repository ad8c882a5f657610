"""pydub ``AudioSegment`` helpers (the original's ``riffusion.util.audio_util``).

This is the boundary where pydub types live; the engine itself works on arrays.
"""

from __future__ import annotations

import typing as T

import numpy as np
import pydub
import pydub.effects

from riffusion.audio import normalize_loudness

_INT16_MAX = float(np.iinfo(np.int16).max)


def audio_from_waveform(samples: np.ndarray, sample_rate: int, normalize: bool = False) -> pydub.AudioSegment:
    """A 16-bit ``AudioSegment`` from samples of shape (channels, samples) in int16 units.

    With ``normalize`` the peak is scaled to int16 full scale first. Values outside the int16 range are
    clipped (the original let them wrap around).
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"samples must have shape (channels, samples) with 1 or 2 channels, got {x.shape}")
    if normalize:
        peak = np.abs(x).max()
        if peak > 0:
            x = x * (_INT16_MAX / peak)
    pcm = np.clip(np.round(np.nan_to_num(x)), -32768, 32767).astype("<i2")
    return pydub.AudioSegment(
        data=np.ascontiguousarray(pcm.T).tobytes(), sample_width=2, frame_rate=int(sample_rate), channels=x.shape[0]
    )


def waveform_from_segment(segment: pydub.AudioSegment, *, raw: bool = False) -> np.ndarray:
    """Samples of ``segment`` as float32 (channels, samples): in [-1, 1], or the raw integers with ``raw``."""
    samples = np.array(segment.get_array_of_samples(), dtype=np.float32)
    samples = samples.reshape(-1, segment.channels).T
    if raw:
        return np.ascontiguousarray(samples)
    return np.ascontiguousarray(samples / float(1 << (8 * segment.sample_width - 1)))


def segment_from_float(waveform: np.ndarray, sample_rate: int) -> pydub.AudioSegment:
    """A 16-bit ``AudioSegment`` from float samples in [-1, 1], shape (channels, samples)."""
    return audio_from_waveform(np.asarray(waveform, dtype=np.float64) * 32767.0, sample_rate)


def apply_filters(segment: pydub.AudioSegment, compression: bool = False) -> pydub.AudioSegment:
    """The original post-filter: RMS to -12 dBFS and peak to -0.1 dBFS, clipping no peak by more than 3 dB.

    ``compression`` (the original's optional dynamic range compression before the gain) applies pydub's
    compressor first.
    """
    if compression:
        segment = pydub.effects.normalize(segment, headroom=0.1)
        segment = pydub.effects.compress_dynamic_range(segment, threshold=-20.0, ratio=4.0, attack=5.0, release=50.0)
    x = normalize_loudness(waveform_from_segment(segment), segment.frame_rate)
    return segment_from_float(x, segment.frame_rate)


def stitch_segments(segments: T.Sequence[pydub.AudioSegment], crossfade_s: float) -> pydub.AudioSegment:
    """Concatenate segments with a crossfade of ``crossfade_s`` seconds between neighbours."""
    if not segments:
        raise ValueError("stitch_segments needs at least one segment")
    crossfade_ms = int(crossfade_s * 1000)
    combined = segments[0]
    for segment in segments[1:]:
        combined = combined.append(segment, crossfade=min(crossfade_ms, len(combined), len(segment)))
    return combined


def overlay_segments(segments: T.Sequence[pydub.AudioSegment]) -> pydub.AudioSegment:
    """Mix segments on top of each other (the result has the first segment's length)."""
    if not segments:
        raise ValueError("overlay_segments needs at least one segment")
    result = segments[0]
    for segment in segments[1:]:
        result = result.overlay(segment)
    return result
