"""Quality metrics against hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from riffusion import metrics
from riffusion import image as codec
from riffusion import spectral
from riffusion.spectrogram_params import SpectrogramParams

RATE = 44100


def test_spectral_convergence_hand_computed():
    reference = np.array([[3.0, 4.0]])  # norm 5
    estimate = np.array([[3.0, 4.5]])  # error norm 0.5 -> ratio 0.1 -> -20 dB
    assert metrics.spectral_convergence(estimate, reference) == pytest.approx(-20.0)
    assert metrics.spectral_convergence(reference, reference) == -math.inf
    assert metrics.spectral_convergence(np.zeros((1, 2)), reference) == pytest.approx(0.0)


def test_spectral_convergence_scale_invariant():
    reference = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert metrics.spectral_convergence(2 * reference, reference) == pytest.approx(0.0)  # error = reference
    assert metrics.spectral_convergence(2 * reference, reference, scale_invariant=True) == -math.inf
    # orthogonal estimate: the best gain is 0, so the error is the whole reference (0 dB)
    orthogonal = metrics.spectral_convergence(np.array([0.0, 1.0]), np.array([1.0, 0.0]), scale_invariant=True)
    assert orthogonal == pytest.approx(0.0)


def test_spectral_convergence_errors():
    with pytest.raises(ValueError, match="same shape"):
        metrics.spectral_convergence(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="all zeros"):
        metrics.spectral_convergence(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        metrics.spectral_convergence(np.array([np.nan, 1.0]), np.ones(2))


def test_log_spectral_distance_hand_computed():
    reference = np.full((4, 3), 2.0)
    assert metrics.log_spectral_distance(reference, reference) == pytest.approx(0.0)
    assert metrics.log_spectral_distance(10 * reference, reference) == pytest.approx(20.0)
    # half the bins 20 dB high, half equal: per-frame RMS = sqrt(400 / 2)
    estimate = reference.copy()
    estimate[:2] *= 10
    assert metrics.log_spectral_distance(estimate, reference) == pytest.approx(math.sqrt(200.0))


def test_log_spectral_distance_floors_silence():
    reference = np.array([[1.0], [0.0]])
    estimate = np.array([[1.0], [1e-12]])
    assert metrics.log_spectral_distance(estimate, reference, floor_db=-60.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="floor_db"):
        metrics.log_spectral_distance(estimate, reference, floor_db=10.0)
    with pytest.raises(ValueError, match="frequencies, frames"):
        metrics.log_spectral_distance(np.ones(3), np.ones(3))


def test_high_band_energy_hand_computed():
    t = np.arange(RATE) / RATE
    both = np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 15000 * t)  # equal power below and above
    assert metrics.high_band_energy(both, RATE) == pytest.approx(10 * math.log10(0.5), abs=0.01)
    assert metrics.high_band_energy(np.sin(2 * np.pi * 1000 * t), RATE) < -100
    with pytest.raises(ValueError, match="cutoff_hz"):
        metrics.high_band_energy(both, RATE, cutoff_hz=30000)
    with pytest.raises(ValueError, match="silent"):
        metrics.high_band_energy(np.zeros(1000), RATE)


def test_loop_seam_smooth_versus_cut():
    t = np.arange(RATE) / RATE
    whole_cycles = np.sin(2 * np.pi * 441 * t)  # 441 whole cycles: loops seamlessly
    cut = whole_cycles[:-50]  # ends mid-cycle: a jump at the seam
    assert abs(metrics.loop_seam_discontinuity(whole_cycles, RATE)) < 6.0
    assert metrics.loop_seam_discontinuity(cut, RATE) > 30.0
    noise = np.random.default_rng(0).standard_normal((2, RATE))  # noise has no seam to hear
    assert abs(metrics.loop_seam_discontinuity(noise, RATE)) < 6.0


def test_loop_seam_of_a_track_ending_in_silence_is_finite():
    t = np.arange(RATE * 2) / RATE
    song = np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    song[-RATE // 2 :] = 0.0  # digital silence at the end, then the loop restarts on sound
    seam = metrics.loop_seam_discontinuity(song, RATE)
    assert math.isfinite(seam) and 10.0 < seam < 80.0


def test_loop_seam_errors():
    with pytest.raises(ValueError, match="need at least"):
        metrics.loop_seam_discontinuity(np.zeros(100), RATE)
    with pytest.raises(ValueError, match="sample_rate"):
        metrics.loop_seam_discontinuity(np.zeros(100000), 0)
    with pytest.raises(ValueError, match=r"\(channels, samples\)"):
        metrics.loop_seam_discontinuity(np.zeros((1, 2, 100000)), RATE)


@pytest.fixture(scope="module")
def clip_and_image():
    """One second of a chord with a beat, and its Riffusion image (default geometry)."""
    params = SpectrogramParams()
    t = np.arange(params.num_samples(101)) / RATE
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0)
    x = sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440)) * beat * 0.2
    mel = spectral.waveform_to_mel(x[None] * 32768, params).numpy()
    image = codec.attach_exif(codec.image_from_spectrogram(mel), params)
    return x[None].astype(np.float32), image, params


def test_mel_consistency_of_the_source_audio_is_high(clip_and_image):
    clip, image, params = clip_and_image
    assert metrics.mel_consistency(clip, image) < -35.0
    assert metrics.mel_consistency(clip * 0.01, image) == pytest.approx(metrics.mel_consistency(clip, image), abs=1e-3)
    mel = spectral.waveform_to_mel(clip, params)
    assert metrics.mel_consistency(clip, mel, params) == -math.inf or metrics.mel_consistency(clip, mel, params) < -100


def test_mel_consistency_of_noise_is_low(clip_and_image):
    clip, image, _ = clip_and_image
    noise = np.random.default_rng(0).standard_normal(clip.shape).astype(np.float32)
    assert metrics.mel_consistency(noise, image) > -10.0


def test_mel_consistency_bad_shape():
    with pytest.raises(ValueError, match="num_frequencies|512"):
        metrics.mel_consistency(np.zeros((1, 4410)), np.ones((1, 100, 11)))


def test_evaluate_audio_keys(clip_and_image):
    clip, image, _ = clip_and_image
    result = metrics.evaluate_audio(clip, RATE, reference=clip, image=image)
    assert set(result) == {
        "mel_consistency_db",
        "spectral_convergence_db",
        "log_spectral_distance_db",
        "high_band_energy_db",
        "loop_seam_db",
    }
    assert result["spectral_convergence_db"] < -100
    assert result["log_spectral_distance_db"] == pytest.approx(0.0, abs=1e-3)
    assert set(metrics.evaluate_audio(clip, RATE)) == {"high_band_energy_db", "loop_seam_db"}
    with pytest.raises(ValueError, match="22050 Hz"):
        metrics.evaluate_audio(clip, 22050, image=image)
