"""``riffusion eval`` as a subprocess."""

import json

import numpy as np
import pytest

from conftest import run_cli
from riffusion import image as codec
from riffusion import spectral
from riffusion.audio import write_audio
from riffusion.spectrogram_params import SpectrogramParams

RATE = 44100


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A one-second chord (wav), its spectrogram image (png) and a noisier copy (flac)."""
    folder = tmp_path_factory.mktemp("eval")
    params = SpectrogramParams()
    t = np.arange(params.num_samples(101)) / RATE
    x = (sum(np.sin(2 * np.pi * f * t) for f in (220, 330, 440)) * 0.2)[None].astype(np.float32)
    noisy = x + 0.05 * np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    mel = spectral.waveform_to_mel(x * 32768, params).numpy()
    image = codec.attach_exif(codec.image_from_spectrogram(mel), params, max_value=float(mel.max()))
    paths = {"clean": folder / "clean.wav", "noisy": folder / "noisy.flac", "image": folder / "clean.png"}
    write_audio(paths["clean"], x, RATE)
    write_audio(paths["noisy"], noisy, RATE)
    codec.save_image(image, paths["image"])
    return paths


def test_eval_prints_all_metrics(files):
    result = run_cli("eval", files["noisy"], "--image", files["image"], "--reference", files["clean"])
    assert result.returncode == 0, result.stderr
    names = ("mel_consistency", "spectral_convergence", "log_spectral_distance", "high_band_energy", "loop_seam")
    for name in names:
        assert f"{name}_db" in result.stdout


def test_eval_json_and_ordering(files):
    clean = run_cli("eval", files["clean"], "--image", files["image"], "--json")
    noisy = run_cli("eval", files["noisy"], "--image", files["image"], "--json")
    assert clean.returncode == 0 and noisy.returncode == 0, clean.stderr + noisy.stderr
    clean_numbers, noisy_numbers = json.loads(clean.stdout), json.loads(noisy.stdout)
    assert set(clean_numbers) == {"mel_consistency_db", "high_band_energy_db", "loop_seam_db"}
    assert clean_numbers["mel_consistency_db"] < noisy_numbers["mel_consistency_db"] - 5
    assert clean_numbers["high_band_energy_db"] < noisy_numbers["high_band_energy_db"]


def test_eval_missing_file_is_a_clear_error(tmp_path):
    result = run_cli("eval", tmp_path / "missing.wav")
    assert result.returncode == 2
    assert "riffusion eval: error:" in result.stderr and "missing.wav" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_non_image_is_a_clear_error(files):
    result = run_cli("eval", files["clean"], "--image", files["clean"])
    assert result.returncode == 2
    assert "riffusion eval: error:" in result.stderr and "Traceback" not in result.stderr
