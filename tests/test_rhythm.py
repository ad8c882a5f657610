"""Beat grids: their encoding as model input, their estimation from spectrogram images, dataset rows."""

from __future__ import annotations

import numpy as np
import pytest

from riffusion.rhythm import (
    IMAGE_ONSET_LAG_S, RHYTHM_FEATURES, BeatGrid, beat_contrast, estimate_beat_grid, grid_for_clip, onset_envelope, parse_metre, rhythm_features,
)

COLUMN_S = 0.02


def click_image(bpm: float, offset_s: float, *, columns: int = 256, height: int = 64) -> np.ndarray:
    """A spectrogram image (grey values, loud dark as the format draws it) of broadband clicks on a beat grid,
    decaying over ~100 ms, drawn as real images show onsets: :data:`IMAGE_ONSET_LAG_S` late."""
    image = np.full((height, columns), 235.0)
    times = np.arange(columns) * COLUMN_S
    beat = 60.0 / bpm
    since = np.mod(times - offset_s - IMAGE_ONSET_LAG_S, beat)
    image -= 200.0 * np.exp(-since / 0.05)[None, :]
    return image


def test_features_are_phase_codes_of_the_beat_and_the_bar():
    grid = BeatGrid(bpm=120, beats_per_bar=4, offset_s=0.1)
    features = rhythm_features(grid, num_columns=256, column_s=COLUMN_S)
    assert features.shape == (RHYTHM_FEATURES, 256) and features.dtype == np.float32
    # a beat every 0.5 s = 25 columns, from column 5; a bar every 100 columns
    assert features[0, 5] == pytest.approx(1.0) and features[1, 5] == pytest.approx(0.0, abs=1e-6)
    assert features[0, 30] == pytest.approx(1.0) and features[0, 17] < -0.9
    assert features[2, 5] == pytest.approx(1.0) and features[2, 105] == pytest.approx(1.0)
    assert features[2, 30] == pytest.approx(0.0, abs=1e-6)  # a quarter of the bar later
    np.testing.assert_allclose(features[0] ** 2 + features[1] ** 2, 1.0, atol=1e-6)


def test_no_grid_and_no_metre_give_zero_rows():
    assert not rhythm_features(None, num_columns=10, column_s=COLUMN_S).any()
    free = rhythm_features(BeatGrid(bpm=90, beats_per_bar=None), num_columns=10, column_s=COLUMN_S)
    assert free[:2].any() and not free[2:].any()


@pytest.mark.parametrize("bad", [{"bpm": 10}, {"bpm": float("nan")}, {"bpm": True}, {"bpm": 120, "beats_per_bar": 0},
                                 {"bpm": 120, "beats_per_bar": 2.5}, {"bpm": 120, "offset_s": float("inf")}])
def test_invalid_grids_are_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match=next(k for k in ("offset_s", "beats_per_bar", "bpm") if k in bad)):
        BeatGrid(**bad)


def test_from_dict_round_trip_and_unknown_fields():
    grid = BeatGrid(bpm=96.5, beats_per_bar=3, offset_s=0.25)
    assert BeatGrid.from_dict(grid.to_dict()) == grid
    with pytest.raises(ValueError, match="tempo"):
        BeatGrid.from_dict({"bpm": 100, "tempo": 3})
    with pytest.raises(ValueError, match="bpm"):
        BeatGrid.from_dict({"beats_per_bar": 3})


def test_shifted_grid_keeps_the_same_beats_in_absolute_time():
    grid = BeatGrid(bpm=100, beats_per_bar=4, offset_s=0.3)
    later = grid.shifted(1.0)
    phase = grid.beat_phase(later.beat_times(5.0) + 1.0)
    assert np.all(np.minimum(phase, 1 - phase) < 1e-9)


@pytest.mark.parametrize("bpm,offset", [(120, 0.1), (90, 0.37), (140, 0.0), (75, 0.6)])
def test_estimate_finds_tempo_and_phase_of_clicks(bpm, offset):
    grid = estimate_beat_grid(click_image(bpm, offset), column_s=COLUMN_S)
    assert grid is not None
    assert grid.bpm == pytest.approx(bpm, rel=0.04)
    # the phase: the estimated beats fall within 30 ms of the true ones
    error = (grid.offset_s - offset) / grid.beat_s
    assert abs(error - round(error)) * grid.beat_s < 0.03


def test_estimate_with_a_known_tempo_only_finds_the_phase():
    grid = estimate_beat_grid(click_image(100, 0.2), column_s=COLUMN_S, bpm=100, beats_per_bar=4)
    assert grid.bpm == 100 and grid.beats_per_bar == 4
    assert abs(grid.offset_s - 0.2) < 0.03


def test_no_pulse_gives_none():
    rng = np.random.default_rng(0)
    assert estimate_beat_grid(np.full((64, 256), 80.0), column_s=COLUMN_S) is None
    # Random walks have no pulse; by chance one in a few shows an autocorrelation peak over the threshold.
    walks = [np.cumsum(rng.normal(size=(64, 256)), axis=1) * 0.01 + 100 for _ in range(40)]
    found = sum(estimate_beat_grid(walk, column_s=COLUMN_S) is not None for walk in walks)
    assert found <= 10


def test_onset_envelope_and_beat_contrast():
    image = click_image(120, 0.1)
    envelope = onset_envelope(image)
    assert envelope.shape == (256,) and envelope[0] == 0 and envelope.max() > 0
    on = beat_contrast(envelope, BeatGrid(bpm=120, offset_s=0.1), column_s=COLUMN_S, lag_s=IMAGE_ONSET_LAG_S)
    off = beat_contrast(envelope, BeatGrid(bpm=120, offset_s=0.35), column_s=COLUMN_S, lag_s=IMAGE_ONSET_LAG_S)
    assert on > 0.9 and off < 0.1
    with pytest.raises(ValueError, match="height, width"):
        onset_envelope(np.zeros(10))


def test_grid_of_a_rendered_clip_puts_downbeats_at_whole_bars_from_the_render_start():
    row = {"tempo_bpm": 120.0, "beats_per_bar": 3, "start_s": 5.1}
    grid = grid_for_clip(row)
    bar_s = 1.5
    # the render's downbeats are at 0, 1.5, 3, 4.5, 6 s: in the clip, 6 - 5.1 = 0.9 s
    assert grid.offset_s == pytest.approx(0.9) and grid.beats_per_bar == 3
    phase = grid.bar_phase(np.array([0.9 + bar_s]))[0]
    assert min(phase, 1 - phase) < 1e-9
    assert grid_for_clip({"tempo_bpm": 120.0, "start_s": 0.0}) is None  # a recording: no metre known


@pytest.mark.parametrize("text,beats", [("4/4", 4), ("3/4", 3), ("6/8", 6), (" 5 ", 5), ("12/8", 12)])
def test_metres_are_read_as_beats_per_bar(text, beats):
    assert parse_metre(text) == beats


@pytest.mark.parametrize("text", ["", "four", "3/5", "0/4", "17/8", "4/"])
def test_bad_metres_are_refused_naming_the_text(text):
    with pytest.raises(ValueError, match="metre"):
        parse_metre(text)


def test_a_window_in_seconds_is_the_same_at_every_tempo():
    from riffusion.rhythm import BEAT_TOLERANCE_S, grid_strength

    envelope = np.zeros(256)
    envelope[[3, 28, 53]] = 1.0  # onsets 60 ms after beats at 0, 0.5 and 1.0 s (120 bpm)
    grid = BeatGrid(bpm=120, beats_per_bar=4)
    assert grid_strength(envelope, grid, column_s=COLUMN_S, width_s=BEAT_TOLERANCE_S) > 0
    assert grid_strength(envelope, grid, column_s=COLUMN_S, width_s=0.02) == 0
    assert beat_contrast(envelope, grid, column_s=COLUMN_S, width_s=BEAT_TOLERANCE_S) == 1.0


def test_onsets_of_real_audio_fall_on_its_beats_in_the_formats_image():
    # Clicks in audio, drawn by the format itself (loud dark): the envelope must peak at the clicks, not
    # where each click has died away.
    from riffusion.dataset.presets import SMALL_PARAMS
    from riffusion.image import image_from_waveform

    sr, bpm, offset_s = SMALL_PARAMS.sample_rate, 120.0, 0.13
    t = np.arange(int(5.1 * sr)) / sr
    since = np.mod(t - offset_s, 60.0 / bpm)
    rng = np.random.default_rng(0)
    audio = (0.5 * rng.normal(size=t.size) * np.exp(-since / 0.03) * (t >= offset_s)).astype(np.float32)
    pixels = np.asarray(image_from_waveform(audio, sr, SMALL_PARAMS).getchannel("R"), dtype=np.float32)
    envelope = onset_envelope(pixels)
    column_s = SMALL_PARAMS.step_size_ms / 1000
    on = beat_contrast(envelope, BeatGrid(bpm=bpm, offset_s=offset_s), column_s=column_s, lag_s=IMAGE_ONSET_LAG_S,
                       width_s=0.03)
    assert on > 0.9
    # each beat's strongest column is the click's own (within one column), not where it has decayed
    beat_columns = (offset_s + np.arange(10) * 60.0 / bpm) / column_s
    for start in beat_columns[:-1]:
        window = envelope[int(start) - 5: int(start) + 20]
        assert abs(int(start) - 5 + int(np.argmax(window)) - start) <= 1.5


def test_onset_strength_is_higher_for_struck_than_for_held_sound():
    from riffusion.rhythm import onset_strength

    held = np.full((64, 256), 60.0)
    assert onset_strength(held) == 0.0
    assert onset_strength(click_image(120, 0.1)) > 5 * onset_strength(held - np.linspace(0, 20, 256)[None, :])  # a slow swell
    with pytest.raises(ValueError, match="height, width"):
        onset_strength(np.zeros(10))
