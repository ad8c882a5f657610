import numpy as np
import pytest
import torch

from riffusion import spectral
from riffusion.spectrogram_params import SpectrogramParams

librosa = pytest.importorskip("librosa")


def test_mel_matrix_matches_librosa_htk():
    ours = spectral.mel_matrix(SpectrogramParams()).numpy()
    ref = librosa.filters.mel(sr=44100, n_fft=17640, n_mels=512, fmin=0, fmax=10000, htk=True, norm=None)
    assert ours.shape == (512, 8821)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    # Only bins up to 10 kHz (2.5 Hz apart) carry weight.
    assert ours[:, 4001:].max() == 0


def test_slaney_scale_and_norm_match_librosa():
    ours = spectral.mel_filterbank(sample_rate=22050, n_fft=2048, n_mels=64, norm="slaney", mel_scale="slaney")
    ref = librosa.filters.mel(sr=22050, n_fft=2048, n_mels=64, htk=False, norm="slaney")
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-4, atol=1e-7)


def test_mel_magnitudes_match_librosa(tone):
    p = SpectrogramParams()
    x = tone[:1] * 32768
    ours = spectral.waveform_to_mel(x, p).numpy()
    window = np.zeros(p.n_fft)
    offset = (p.n_fft - p.win_length) // 2
    window[offset : offset + p.win_length] = np.hanning(p.win_length + 1)[:-1]
    stft = np.abs(librosa.stft(x[0].astype(np.float64), n_fft=p.n_fft, hop_length=p.hop_length, window=window,
                               center=True, pad_mode="reflect"))
    ref = librosa.filters.mel(sr=44100, n_fft=p.n_fft, n_mels=512, fmin=0, fmax=10000, htk=True, norm=None) @ stft
    assert ours.shape == (1, 512, 512)
    np.testing.assert_allclose(ours[0], ref, rtol=2e-3, atol=1e-3 * ref.max())


def test_mel_shapes_mono_and_stereo(tone):
    p = SpectrogramParams()
    assert spectral.waveform_to_mel(tone, p).shape == (2, 512, 512)
    assert spectral.waveform_to_mel(tone[0], p).shape == (1, 512, 512)
    five_point_one_two_s = np.zeros((1, int(5.12 * 44100)), np.float32)
    assert spectral.waveform_to_mel(five_point_one_two_s + 0.1, p).shape[-1] == 513


def test_mel_to_linear_is_consistent_and_non_negative(tone):
    p = SpectrogramParams()
    mel = spectral.waveform_to_mel(tone * 32768, p)
    linear = spectral.mel_to_linear(mel, p)
    assert linear.shape == (2, 8821, 512)
    assert linear.min() >= 0
    back = spectral.mel_matrix(p) @ linear
    assert float((back - mel).norm() / mel.norm()) < 0.01


def test_mel_to_linear_fills_the_bins_no_filter_sees():
    """The lowest HTK filter starts at 0 Hz with zero weight, so the mel says nothing about the DC bin; it
    takes its neighbour's value instead of a hole that phase reconstruction would read as two lobes."""
    p = SpectrogramParams()
    assert float(spectral.mel_matrix(p)[:, 0].sum()) == 0.0
    mel = spectral.waveform_to_mel(np.full((1, 44100), 0.25, np.float32) * 32768, p)
    linear = spectral.mel_to_linear(mel, p)
    assert torch.equal(linear[:, 0], linear[:, 1]) and float(linear[:, 0].min()) > 0


def test_mel_to_linear_rejects_wrong_height():
    with pytest.raises(ValueError, match="512"):
        spectral.mel_to_linear(torch.ones(1, 100, 10), SpectrogramParams())


def test_waveform_shape_errors():
    with pytest.raises(ValueError, match="channels, samples"):
        spectral.waveform_to_mel(np.zeros((1, 2, 3)), SpectrogramParams())
    with pytest.raises(ValueError, match="mel_scale"):
        spectral.hz_to_mel(100.0, mel_scale="bark")
