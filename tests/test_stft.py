"""The STFT engine and its geometry: values against torch, compact and reduced-rate grids, upsampling."""

import math

import pytest
import torch

from riffusion import stft as dsp
from riffusion.spectrogram_params import SpectrogramParams


def test_hann_window_is_torch_periodic_hann_and_cached():
    window = dsp.hann_window(256)
    assert torch.equal(window, torch.hann_window(256)) and window.dtype == torch.float32
    assert dsp.hann_window(256, device=torch.device("cpu")) is window


def test_window_offset_is_torch_stft_padding():
    assert dsp.window_offset(1024, 256) == 384 and dsp.window_offset(999, 301) == 349


@pytest.mark.parametrize("n_fft,hop,win", [(1764, 441, 1764), (8820, 441, 4410), (1000, 100, 300), (512, 128, 400)])
def test_stft_engine_matches_torch(n_fft, hop, win):
    """The frames-major STFT the methods iterate with gives torch.stft / torch.istft's values, zero-padded
    windows (whose overlap-add skips the padding) included."""
    x = torch.randn(2, hop * 60, generator=torch.Generator().manual_seed(0))
    window = torch.hann_window(win)
    expected = torch.stft(x, n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True)
    engine = dsp.stft_engine(n_fft, hop, win, device="cpu")
    assert dsp.stft_engine(n_fft, hop, win) is engine  # cached
    spectrum = engine.forward(x)
    torch.testing.assert_close(spectrum, expected.transpose(1, 2), atol=1e-3, rtol=1e-4)
    noisy = spectrum + 0.1 * torch.randn_like(spectrum)  # not a consistent spectrum: tests the overlap-add
    want = torch.istft(noisy.transpose(1, 2), n_fft, hop, win, window, center=True, length=x.shape[-1])
    torch.testing.assert_close(engine.inverse(noisy, x.shape[-1]), want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "bad, geometry, match",
    [
        (torch.ones(100, 10), (1024, 64, 256), r"n_fft // 2 \+ 1 = 513"),
        (torch.ones(513, 1), (1024, 64, 256), "need at least 2"),
        (torch.full((513, 10), float("inf")), (1024, 64, 256), "NaN or infinite"),
        (torch.ones(513, 10, dtype=torch.complex64), (1024, 64, 256), "complex"),
        (torch.ones(513, 10), (1024, 0, 256), "hop_length >= 1"),
    ],
)
def test_check_magnitude_errors(bad, geometry, match):
    n_fft, hop, win = geometry
    with pytest.raises(ValueError, match=match):
        dsp.check_magnitude(bad, n_fft=n_fft, hop_length=hop, win_length=win)


def test_check_magnitude_gives_float32():
    out = dsp.check_magnitude(torch.ones(513, 4, dtype=torch.float64), n_fft=1024, hop_length=64, win_length=256)
    assert out.dtype == torch.float32


def test_occupied_bins():
    assert dsp.occupied_bins(torch.tensor([0.0, 2.0, 0.0, 1.0, 0.0])) == 4
    assert dsp.occupied_bins(torch.zeros(5)) == 1


def test_sparse_csr_keeps_the_matrix():
    matrix = torch.tensor([[0.0, 1.5], [2.0, 0.0]], dtype=torch.float64)
    sparse = dsp.sparse_csr(matrix, "cpu")
    assert sparse.layout == torch.sparse_csr and sparse.dtype == torch.float32
    assert torch.equal(sparse.to_dense(), matrix.float())


def test_compact_geometry():
    p = SpectrogramParams()
    assert dsp.compact_geometry(p.n_fft, p.win_length) == (4410, 4)
    assert dsp.compact_geometry(512, 512) == (512, 1)  # no padding: nothing smaller
    assert dsp.compact_geometry(1024, 256) == (256, 4)


def test_compact_phase_ramp_maps_full_grid_phase_to_the_compact_grid():
    x = torch.randn(1, 64 * 40, generator=torch.Generator().manual_seed(0))
    full = torch.stft(x, 1024, 64, 256, torch.hann_window(256), center=True, return_complex=True)
    compact = torch.stft(x, 256, 64, 256, torch.hann_window(256), center=True, return_complex=True)
    ramp = dsp.compact_phase_ramp(1024, 256, device="cpu", dtype=torch.float32)
    assert ramp.shape == (129, 1)
    shifted = full[:, ::4] * torch.polar(torch.ones_like(ramp), ramp)
    torch.testing.assert_close(shifted, compact, atol=1e-3, rtol=1e-4)


def test_coarser_fft_size():
    assert dsp.coarser_fft_size(17640, 4410, 2) == 8820
    assert dsp.coarser_fft_size(512, 512, 2) == 512  # the window would not fit
    assert dsp.coarser_fft_size(1024, 256, 1) == 1024


def test_is_fast_fft_size():
    assert dsp.is_fast_fft_size(8400) and dsp.is_fast_fft_size(1) and dsp.is_fast_fft_size(2 * 3 * 5 * 7)
    assert not dsp.is_fast_fft_size(11) and not dsp.is_fast_fft_size(2 * 13)


def test_reduced_rate_geometry_keeps_frames_and_bin_frequencies():
    p = SpectrogramParams()
    geometry = dsp.reduced_rate_geometry(p.n_fft, p.hop_length, p.win_length, 4001)  # bins up to 10 kHz
    assert geometry == (8400, 210, 2100)  # 21 kHz: 10 ms hops, 100 ms window, 2.5 Hz bins, as at 44.1 kHz
    n, hop, win = geometry
    rate = p.sample_rate * hop / p.hop_length
    assert rate / n == p.sample_rate / p.n_fft and win / rate == p.win_length / p.sample_rate
    assert n // 2 + 1 >= 4001
    # nothing to gain: the full band is used, or the saving is under 10 % (riffusion-small-v1's 64 mels)
    assert dsp.reduced_rate_geometry(p.n_fft, p.hop_length, p.win_length, p.n_fft // 2 + 1) is None
    assert dsp.reduced_rate_geometry(1764, 441, 1764, 801) is None


def test_upsample_is_band_limited_interpolation():
    frames, hop, hop_out = 40, 30, 64  # 3 kHz -> 6.4 kHz
    t_in = torch.arange(hop * (frames - 1), dtype=torch.float64) / 3000
    t_out = torch.arange(hop_out * (frames - 1), dtype=torch.float64) / 6400
    tone = lambda t: torch.sin(2 * math.pi * 440 * t) + 0.5 * torch.cos(2 * math.pi * 1234 * t)  # noqa: E731
    out = dsp.upsample(tone(t_in)[None].float(), hop=hop, hop_length=hop_out, frames=frames)
    assert out.shape == (1, hop_out * (frames - 1))
    error = (out[0] - tone(t_out).float()).abs()
    # exact up to the ends, which are extended (odd reflection) and ring for a few ms
    assert float(error[hop_out : -hop_out].max()) < 2e-3
    assert float(error[len(error) // 4 : -len(error) // 4].max()) < 1e-4
