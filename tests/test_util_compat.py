"""The original package's module paths and names (compat-api.md) exist and behave."""

import dataclasses
import importlib
import io

import numpy as np
import pytest
import torch


@pytest.mark.parametrize(
    "module,names",
    [
        ("riffusion.spectrogram_params", ["SpectrogramParams"]),
        ("riffusion.spectrogram_converter", ["SpectrogramConverter"]),
        ("riffusion.spectrogram_image_converter", ["SpectrogramImageConverter"]),
        ("riffusion.util.image_util", ["image_from_spectrogram", "spectrogram_from_image", "exif_from_image"]),
        ("riffusion.util.audio_util", ["audio_from_waveform", "apply_filters", "stitch_segments", "overlay_segments"]),
        ("riffusion.util.torch_util", ["check_device", "slerp"]),
        ("riffusion.datatypes", ["PromptInput", "InferenceInput", "InferenceOutput"]),
        ("riffusion.util.fft_util", ["compute_fft", "plot_ffts"]),
        ("riffusion.util.base64_util", ["encode"]),
        ("riffusion.cli", ["audio_to_image", "image_to_audio", "sample_clips", "print_exif",
                           "audio_to_images_batch", "sample_clips_batch"]),
    ],
)
def test_names_exist(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name}"


def test_datatypes_defaults_and_frozen():
    from riffusion.datatypes import InferenceInput, PromptInput

    start = PromptInput(prompt="jazz", seed=1)
    assert (start.negative_prompt, start.denoising, start.guidance) == (None, 0.75, 7.0)
    inputs = InferenceInput(start=start, end=PromptInput(prompt="rock", seed=2), alpha=0.5)
    assert (inputs.num_inference_steps, inputs.seed_image_id, inputs.mask_image_id) == (50, "og_beat", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        inputs.alpha = 1.0  # type: ignore[misc]


def test_slerp_torch_and_numpy_agree_and_hit_endpoints():
    from riffusion.util.torch_util import slerp

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, 8, generator=g), torch.randn(4, 8, 8, generator=g)
    torch.testing.assert_close(slerp(0.0, a, b), a)
    torch.testing.assert_close(slerp(1.0, a, b), b, rtol=1e-5, atol=1e-5)
    mid_t = slerp(0.3, a, b)
    mid_n = slerp(0.3, a.numpy(), b.numpy())
    np.testing.assert_allclose(mid_t.numpy(), mid_n, rtol=1e-5, atol=1e-5)
    # Norm is kept (roughly) on the sphere, unlike linear interpolation.
    assert float(mid_t.norm()) > float(((1 - 0.3) * a + 0.3 * b).norm())
    # Nearly parallel vectors fall back to linear interpolation.
    torch.testing.assert_close(slerp(0.5, a, a * 1.0000001), a, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="equal shapes"):
        slerp(0.5, a, b[:2])


def test_check_device():
    from riffusion.util.torch_util import check_device

    assert check_device("cpu") == "cpu"
    assert check_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device"):
        check_device("tpu")


def test_validate_device_accepts_absent_devices_and_refuses_unknown_ones():
    from riffusion.util.torch_util import validate_device

    for name in ("auto", "cpu", "cuda", "cuda:1", "mps"):  # known kinds, whether or not this machine has them
        validate_device(name)
    with pytest.raises(ValueError, match="unknown device 'tpu:0'; expected"):
        validate_device("tpu:0")


def test_audio_util_segments(tone):
    from riffusion.util import audio_util

    seg = audio_util.audio_from_waveform(tone * 20000, 44100)
    assert seg.channels == 2 and seg.sample_width == 2
    loud = audio_util.audio_from_waveform(tone * 1e9, 44100)  # clipped, never wrapped around
    assert max(loud.get_array_of_samples()) == 32767
    norm = audio_util.audio_from_waveform(tone, 44100, normalize=True)
    assert max(abs(s) for s in norm.get_array_of_samples()) >= 32766
    filtered = audio_util.apply_filters(seg)
    assert filtered.max_dBFS == pytest.approx(-0.1, abs=0.05)
    stitched = audio_util.stitch_segments([seg, seg], crossfade_s=0.5)
    assert len(stitched) == pytest.approx(2 * len(seg) - 500, abs=2)
    assert len(audio_util.overlay_segments([seg, seg[:1000]])) == len(seg)
    with pytest.raises(ValueError):
        audio_util.stitch_segments([], crossfade_s=0.1)
    with pytest.raises(ValueError, match="1 or 2 channels"):
        audio_util.audio_from_waveform(np.zeros((3, 10)), 44100)


def test_image_util_and_base64():
    from riffusion.util import base64_util, image_util

    spec = np.random.default_rng(0).random((1, 512, 16)).astype(np.float32)
    img = image_util.image_from_spectrogram(spec, 0.25)
    back = image_util.spectrogram_from_image(img, 0.25, False, 1.0)
    assert back.shape == (1, 512, 16)
    assert image_util.exif_from_image(img) == {}
    assert base64_util.encode(io.BytesIO(b"riff")) == "cmlmZg=="


def test_fft_util(tone):
    from riffusion.util import audio_util, fft_util

    freqs, amps = fft_util.compute_fft(audio_util.segment_from_float(tone[:1], 44100))
    assert freqs[np.argmax(amps[0])] == pytest.approx(440, abs=1)
