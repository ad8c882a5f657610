"""riffusion.loops: audio -> a seed loop of a model's shape (whole bars across the clip from a downbeat)."""

import numpy as np
import pytest

from riffusion.image import params_from_image
from riffusion.loops import LoopError, SeedLoop, measure_grid, seed_loop_from_audio
from riffusion.rhythm import beat_contrast, onset_envelope
from riffusion.spectrogram_params import SpectrogramParams

RATE = 44100
PARAMS = SpectrogramParams()  # riffusion-model-v1's: 512 columns = 5.11 s
SMALL = SpectrogramParams(sample_rate=22050, step_size_ms=20, window_duration_ms=80, padded_duration_ms=80,
                          num_frequencies=64)  # the shipped small model's: 256 columns = 5.1 s


def drums(bpm: float, seconds: float, *, start_s: float = 0.0, beats_per_bar: int = 4, rate: int = RATE):
    """A kick on each downbeat and a hi-hat on the other beats, the first downbeat at ``start_s`` (a
    pickup of hi-hats before it)."""
    rng = np.random.default_rng(0)
    x = np.zeros(int(seconds * rate), np.float32)
    t = np.arange(int(0.15 * rate)) / rate
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * t)) * t) * np.exp(-20 * t)
    hat = 0.3 * rng.standard_normal(int(0.03 * rate)) * np.exp(-150 * t[: int(0.03 * rate)])
    beat_s = 60.0 / bpm
    first = -int(start_s // beat_s)
    for k in range(first, int(seconds / beat_s) + 1):
        at = int(round((start_s + k * beat_s) * rate))
        if 0 <= at < x.size:
            sound = kick if k % beats_per_bar == 0 else hat
            x[at:at + sound.size] += sound[: x.size - at]
    return x


def test_measure_grid_finds_tempo_and_first_downbeat():
    grid = measure_grid(drums(120, 10, start_s=0.8), RATE)
    assert grid.bpm == pytest.approx(120, rel=0.02)
    assert grid.beats_per_bar == 4
    assert grid.offset_s == pytest.approx(0.8, abs=0.04)  # after three pickup beats, not on the first sound


def test_measure_grid_refuses_silence():
    with pytest.raises(LoopError, match="silent"):
        measure_grid(np.zeros(RATE * 4, np.float32), RATE)


def test_seed_loop_is_whole_bars_across_the_clip():
    loop = seed_loop_from_audio(drums(120, 12, start_s=0.3), RATE, params=PARAMS, width=512)
    assert isinstance(loop, SeedLoop)
    assert loop.image.size == (512, 512)
    assert params_from_image(loop.image) == PARAMS
    clip_s = PARAMS.duration_s(512)
    assert loop.bars == 3  # 2 s bars: 3 bars (6 s) is nearest 5.11 s
    assert loop.tempo_bpm == pytest.approx(60 * 3 * 4 / clip_s, abs=1e-3)
    assert loop.source_bpm == pytest.approx(120, rel=0.02)
    assert loop.start_s == pytest.approx(0.3, abs=0.04)
    assert loop.stretch == pytest.approx(clip_s / (3 * 60 * 4 / loop.source_bpm), abs=1e-3)
    # the stretched loop's onsets fall on its own grid, a downbeat at its start
    envelope = onset_envelope(np.asarray(loop.image.getchannel("R"), np.float32))
    assert beat_contrast(envelope, loop.grid, column_s=0.01, lag_s=0.06) > 0.75
    assert loop.to_dict()["bars"] == 3


def test_seed_loop_with_given_tempo_and_metre_for_the_small_model():
    loop = seed_loop_from_audio(drums(141, 8, beats_per_bar=3, rate=22050), 22050, params=SMALL, width=256,
                                bpm=141.0, beats_per_bar=3)
    assert loop.image.size == (256, 64)
    assert loop.source_bpm == 141.0
    assert loop.beats_per_bar == 3
    assert loop.bars == 4  # 1.28 s bars: 4 bars nearest 5.1 s
    assert loop.grid.beats_per_bar == 3


def test_seed_loop_repeats_bars_when_the_audio_holds_fewer():
    loop = seed_loop_from_audio(drums(120, 2.3), RATE, params=PARAMS, width=512, bpm=120)
    assert loop.bars == 3
    assert loop.image.size == (512, 512)


def test_seed_loop_errors_name_the_problem():
    with pytest.raises(LoopError, match="shorter than one bar"):
        seed_loop_from_audio(drums(120, 1.0), RATE, params=PARAMS, width=512)
    with pytest.raises(LoopError, match="shorter than one bar"):
        seed_loop_from_audio(drums(60, 3.5), RATE, params=PARAMS, width=512, bpm=60)
    with pytest.raises(LoopError, match="silent"):
        seed_loop_from_audio(np.zeros((2, RATE * 5), np.float32), RATE, params=PARAMS, width=512)
    hum = 0.5 * np.sin(2 * np.pi * 220 * np.arange(RATE * 6) / RATE).astype(np.float32)
    with pytest.raises(LoopError, match=r"no steady pulse.*bpm"):
        seed_loop_from_audio(hum, RATE, params=PARAMS, width=512)
    with pytest.raises(ValueError, match="bpm must be a number in"):
        seed_loop_from_audio(drums(120, 4), RATE, params=PARAMS, width=512, bpm=1000)
    with pytest.raises(ValueError, match="beats_per_bar"):
        seed_loop_from_audio(drums(120, 4), RATE, params=PARAMS, width=512, beats_per_bar=0)
