import numpy as np
import pytest

from riffusion import audio


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_write_and_read_every_format(tmp_path, tone, fmt):
    path = tmp_path / f"x.{fmt}"
    audio.write_audio(path, tone, 44100)
    back, rate = audio.read_audio(path)
    assert rate == 44100 and back.shape[0] == 2
    assert abs(back.shape[1] - tone.shape[1]) < 3000  # lossy codecs pad a little
    assert back.dtype == np.float32
    if fmt in ("wav", "flac"):
        np.testing.assert_allclose(back, tone, atol=1e-4)


def test_encode_audio_in_memory(tone):
    data = audio.encode_audio(tone, 44100, "mp3")
    back, rate = audio.read_audio(data)
    assert rate == 44100 and back.shape[0] == 2


def test_read_resamples_and_downmixes(tmp_path, tone):
    path = tmp_path / "x.wav"
    audio.write_audio(path, tone, 44100)
    back, rate = audio.read_audio(path, sample_rate=22050, mono=True)
    assert rate == 22050 and back.shape[0] == 1
    assert abs(back.shape[1] - tone.shape[1] // 2) <= 1


def test_resample_preserves_a_tone():
    t = np.arange(48000) / 48000
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)[None]
    y = audio.resample(x, 48000, 44100)
    spectrum = np.abs(np.fft.rfft(y[0]))
    assert np.argmax(spectrum) * 44100 / y.shape[1] == pytest.approx(1000, abs=2)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        audio.read_audio(tmp_path / "missing.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF1234WAVEjunkjunk")
    with pytest.raises(ValueError, match="cannot decode"):
        audio.read_audio(corrupt)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError):
        audio.read_audio(empty)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="unsupported audio file extension"):
        audio.read_audio(text)


def test_zero_length_wav_is_an_error(tmp_path):
    import soundfile as sf

    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 44100)
    with pytest.raises(ValueError, match="no audio samples"):
        audio.read_audio(path)


def test_write_errors_leave_nothing(tmp_path, tone):
    with pytest.raises(ValueError, match="m4a"):
        audio.write_audio(tmp_path / "x.m4a", tone, 44100)
    with pytest.raises(ValueError, match="channels, samples"):
        audio.write_audio(tmp_path / "x.wav", np.zeros((1, 0)), 44100)
    with pytest.raises(FileNotFoundError, match="directory"):
        audio.write_audio(tmp_path / "nope" / "x.wav", tone, 44100)
    assert list(tmp_path.iterdir()) == []


def test_normalize_loudness_hits_both_targets_without_clipping():
    rng = np.random.default_rng(0)
    # Peaky material: quiet noise with a few loud clicks, where the original's gain clipped hard.
    x = 0.01 * rng.standard_normal((2, 44100)).astype(np.float32)
    x[:, ::5000] = 0.9
    y = audio.normalize_loudness(x, 44100)
    peak_db = 20 * np.log10(np.abs(y).max())
    rms_db = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    assert peak_db == pytest.approx(-0.1, abs=1e-3)
    assert rms_db == pytest.approx(-12.0, abs=1.5)
    assert np.mean(np.abs(y) >= 0.98) < 0.01  # no flat-topped clipping


@pytest.mark.parametrize("fmt, rate", [("mp3", 44100), ("mp3", 22050), ("ogg", 44100), ("ogg", 22050)])
def test_lossy_formats_are_encoded_well(tone, fmt, rate):
    """Not libsndfile's low defaults: MP3 at a constant 192 kbps (96 at 22.05 kHz), Vorbis at high quality."""
    import io

    import soundfile as sf

    noise = 0.1 * np.random.default_rng(0).standard_normal((1, rate * 4)).astype(np.float32)
    x = np.tile(tone[:1, : rate * 2], (1, 2)) + noise  # 4 s mono, not trivially compressible
    data = audio.encode_audio(x, rate, fmt)
    plain = io.BytesIO()
    sf.write(plain, x.T, rate, format=audio.WRITE_FORMATS[fmt][0], subtype=audio.WRITE_FORMATS[fmt][1])
    assert len(data) > 1.3 * len(plain.getvalue())
    if fmt == "mp3":
        assert 0.9 * (192 if rate > 24000 else 96) <= len(data) * 8 / (x.shape[1] / rate) / 1000 <= 200
    back, back_rate = audio.read_audio(data)
    assert back_rate == rate and abs(back.shape[1] - x.shape[1]) < 4096


def test_normalize_loudness_clips_a_few_db_and_keeps_the_rest_untouched():
    """Overs of at most ``clip_db`` are clipped: every other sample keeps one common gain (no gain dips)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 44100)).astype(np.float32)  # crest ~13 dB: about 1 dB over at -12 dBFS RMS
    y = audio.normalize_loudness(x, 44100)
    ceiling = 10 ** (-0.1 / 20)
    inside = np.abs(y) < ceiling * 0.999
    gains = y[inside] / x[inside]
    assert np.ptp(gains) < 1e-5 * gains.mean()
    assert 0 < np.mean(~inside) < 0.01  # a few peaks clipped
    assert 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2))) == pytest.approx(-12.0, abs=0.3)
    limited = audio.normalize_loudness(x, 44100, clip_db=0.0)  # limiter only: gain dips around the peaks
    assert np.ptp(limited[inside] / x[inside]) > 0.05 * gains.mean()
    assert np.mean(np.abs(limited) >= ceiling * 0.999) < np.mean(~inside)


@pytest.mark.parametrize("kwargs, match", [({"clip_db": -1.0}, "clip_db must be >= 0"),
                                           ({"clip_db": float("nan")}, "clip_db must be >= 0"),
                                           ({"window_ms": 0.0}, "window_ms must be > 0")])
def test_normalize_loudness_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        audio.normalize_loudness(np.ones((1, 100), np.float32), **kwargs)


def test_normalize_loudness_of_silence_is_silence():
    assert not audio.normalize_loudness(np.zeros((1, 100), np.float32)).any()


def test_outputs_get_normal_permissions(tmp_path, tone):
    import os
    import stat

    audio.write_audio(tmp_path / "x.wav", tone, 44100)
    mode = stat.S_IMODE(os.stat(tmp_path / "x.wav").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_match_channels_numpy_and_torch():
    import torch

    from riffusion.audio import match_channels

    stereo = np.stack([np.ones(4), -np.ones(4)]).astype(np.float32)
    np.testing.assert_array_equal(match_channels(stereo, 1), np.zeros((1, 4)))
    assert match_channels(stereo[0], 2).shape == (2, 4)
    assert match_channels(np.zeros((3, 4)), 2).shape == (2, 4)
    assert match_channels(stereo, 2) is stereo
    t = torch.from_numpy(stereo)
    assert match_channels(t[:1], 2).shape == (2, 4) and isinstance(match_channels(t, 1), torch.Tensor)
    with pytest.raises(ValueError, match="channels must be at least 1"):
        match_channels(stereo, 0)
