import io
import warnings

import numpy as np
import pytest
from PIL import Image

from riffusion import image as codec
from riffusion.spectrogram_params import SpectrogramParams


def _spec(channels=1, seed=0):
    return np.random.default_rng(seed).random((channels, 512, 64)).astype(np.float32) * 1e6


def test_encoding_follows_the_format_exactly():
    spec = _spec()
    img = codec.image_from_spectrogram(spec)
    assert img.mode == "RGB" and img.size == (64, 512)
    px = np.asarray(img)
    expected = (255 - (spec[0] / spec.max()) ** 0.25 * 255).astype(np.uint8)[::-1]  # truncation, flipped
    np.testing.assert_array_equal(px[..., 0], expected)
    np.testing.assert_array_equal(px[..., 0], px[..., 1])
    np.testing.assert_array_equal(px[..., 0], px[..., 2])


def test_truncation_not_rounding():
    spec = np.full((1, 512, 4), 0.0, np.float32)
    spec[0, 0, 0] = 1.0
    spec[0, 0, 1] = (1 - 200.6 / 255) ** 4  # 255 - x*255 = 200.6 -> truncates to 200
    px = np.asarray(codec.image_from_spectrogram(spec))
    assert px[-1, 0, 0] == 0  # loudest = black, lowest bin = bottom row
    assert px[-1, 1, 0] == 200
    assert px[0, 3, 0] == 255  # silence = white


def test_stereo_layout_and_decode():
    spec = _spec(2)
    img = codec.image_from_spectrogram(spec)
    px = np.asarray(img)
    assert px[..., 0].max() == 0  # R = 0, G = left, B = right
    back = codec.spectrogram_from_image(img, stereo=True, max_value=float(spec.max()))
    assert back.shape == (2, 512, 64)
    # 8-bit quantisation of x ** 0.25: relative error is largest for quiet bins; check loud ones.
    loud = spec > 0.3 * spec.max()
    np.testing.assert_allclose(back[loud], spec[loud], rtol=0.05)


def test_mono_round_trip_in_pixels():
    img = codec.image_from_spectrogram(_spec())
    again = codec.image_from_spectrogram(codec.spectrogram_from_image(img))
    # Truncation after float round-off can take one level off a pixel, exactly as in the original.
    diff = np.asarray(img).astype(int) - np.asarray(again).astype(int)
    assert diff.min() >= 0 and diff.max() <= 1


def test_palette_and_grey_images_decode_like_rgb():
    img = codec.image_from_spectrogram(_spec())
    ref = codec.spectrogram_from_image(img)
    np.testing.assert_array_equal(codec.spectrogram_from_image(img.convert("L")), ref)
    np.testing.assert_array_equal(codec.spectrogram_from_image(img.convert("P", palette=Image.ADAPTIVE, colors=256).convert("RGB")).shape, ref.shape)


def test_stereo_image_decoded_as_mono_is_an_error():
    img = codec.image_from_spectrogram(_spec(2))
    with pytest.raises(ValueError, match="stereo"):
        codec.spectrogram_from_image(img, stereo=False)


def test_bad_spectrogram_shapes():
    with pytest.raises(ValueError, match="1 or 2 channels"):
        codec.image_from_spectrogram(np.ones((3, 8, 8)))
    with pytest.raises(ValueError, match="non-negative"):
        codec.image_from_spectrogram(-np.ones((1, 8, 8)))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_round_trip_through_files(tmp_path, suffix):
    p = SpectrogramParams(stereo=True, max_frequency=9000)
    spec = _spec(2)
    img = codec.attach_exif(codec.image_from_spectrogram(spec), p, max_value=float(spec.max()))
    path = tmp_path / f"x{suffix}"
    codec.save_image(img, path)
    loaded = codec.open_image(path)
    assert codec.params_from_image(loaded) == p
    assert codec.max_value_from_image(loaded) == pytest.approx(float(spec.max()))
    names = codec.exif_from_image(loaded)
    assert names["SAMPLE_RATE"] == 44100 and names["STEREO"] == 1 and names["POWER_FOR_IMAGE"] == 0.25
    assert SpectrogramParams.from_exif(loaded.getexif()) == p


def test_image_without_exif_uses_defaults_with_warning():
    img = codec.image_from_spectrogram(_spec())
    with pytest.warns(UserWarning, match="default spectrogram parameters"):
        assert codec.params_from_image(img) == SpectrogramParams()


def test_height_must_match_params():
    img = Image.new("RGB", (16, 100), "white")
    with pytest.raises(ValueError, match="100 pixels high"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codec.params_from_image(img)


def test_open_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        codec.open_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(ValueError, match="cannot read"):
        codec.open_image(junk)


def test_save_image_rejects_unknown_extension_and_leaves_nothing(tmp_path):
    img = codec.image_from_spectrogram(_spec())
    with pytest.raises(ValueError, match=".xyz"):
        codec.save_image(img, tmp_path / "out.xyz")
    assert list(tmp_path.iterdir()) == []


def test_encode_image_formats():
    img = codec.image_from_spectrogram(_spec())
    assert codec.encode_image(img, "jpeg")[:2] == b"\xff\xd8"
    assert codec.encode_image(img, "png")[:4] == b"\x89PNG"
    assert Image.open(io.BytesIO(codec.encode_image(img, "png"))).size == img.size
    with pytest.raises(ValueError, match="gif"):
        codec.encode_image(img, "gif")


def test_mask_tensor_soft_and_thresholded():
    from riffusion.image import mask_tensor

    grey = Image.fromarray(np.array([[0, 100], [200, 255]], dtype=np.uint8), mode="L")
    soft = mask_tensor(grey, 2, 2)
    assert soft.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(soft[0, 0].numpy(), np.array([[0, 100], [200, 255]]) / 255.0, rtol=1e-6)
    hard = mask_tensor(grey, 2, 2, threshold=0.5)
    np.testing.assert_array_equal(hard[0, 0].numpy(), [[0, 0], [1, 1]])
    assert mask_tensor(grey, 4, 1).shape == (1, 1, 1, 4)  # resized to the grid
    with pytest.raises(ValueError, match="threshold must be in"):
        mask_tensor(grey, 2, 2, threshold=2.0)
    with pytest.raises(ValueError, match="mask size must be positive"):
        mask_tensor(grey, 0, 2)


def test_engine_image_audio_round_trip():
    from riffusion.image import image_from_waveform, waveform_from_image
    from riffusion.spectrogram_params import SpectrogramParams

    params = SpectrogramParams()
    t = np.arange(params.num_samples(64)) / params.sample_rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    image = image_from_waveform(tone, params.sample_rate, params)
    assert (image.width, image.height) == (64, params.num_frequencies)
    audio = waveform_from_image(image, params, phase="pghi")
    assert audio.shape == (1, params.num_samples(64)) and audio.dtype == np.float32
    assert 0.5 < float(np.abs(audio).max()) <= 1.0
    with pytest.raises(ValueError, match="sample rate"):
        image_from_waveform(tone, params.sample_rate // 2, params)
    with pytest.raises(ValueError, match="pixels high"):
        waveform_from_image(image.resize((64, 100)), params)
