"""Clips, batches, interpolation schedules, joins, audio-to-audio and the notebook API on tiny-random."""

import io

import numpy as np
import pytest
import soundfile as sf

from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.generation import (
    Clip,
    alpha_schedule,
    audio_to_audio,
    concatenate,
    generate_clip,
    generate_clips,
    interpolation_inputs,
)
from riffusion.loading import load_pipeline

PHASE = "pghi"  # deterministic and the fastest method


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline("tiny-random", device="cpu")


def request(prompt="jazz", seed=1, **kw):
    p = PromptInput(prompt, seed=seed)
    return InferenceInput(start=p, end=p, alpha=0.0, num_inference_steps=kw.pop("steps", 6), **kw)


def test_clip_contract(pipe):
    clip = generate_clip(pipe, request(), phase=PHASE)
    assert isinstance(clip, Clip)
    assert clip.image.size == (512, 512)
    assert clip.waveform.dtype == np.float32 and clip.waveform.shape == (1, 225351)
    assert np.abs(clip.waveform).max() <= 1.0 and np.abs(clip.waveform).max() > 0.1
    assert clip.sample_rate == 44100 and clip.duration_s == pytest.approx(5.11)
    assert clip.inputs == request()


def test_same_request_same_audio_with_random_phase_unless_a_generator_says_otherwise(pipe):
    import torch

    narrow = dict(phase="griffin-lim", width=64)  # 0.63 s clips: Griffin-Lim is the slow part
    a = generate_clip(pipe, request(), **narrow).waveform
    b = generate_clip(pipe, request(), **narrow).waveform
    c = generate_clip(pipe, request(), generator=torch.Generator().manual_seed(5), **narrow).waveform
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_seed_image_and_mask_ids_are_used(pipe):
    plain = generate_clip(pipe, request(), phase=PHASE)
    other = generate_clip(pipe, request(seed_image_id="vibes"), phase=PHASE)
    masked = generate_clip(pipe, request(mask_image_id="mask_top_third_75"), phase=PHASE)
    assert not np.array_equal(np.asarray(plain.image), np.asarray(other.image))
    assert not np.array_equal(np.asarray(plain.image), np.asarray(masked.image))


def test_width_makes_longer_clips(pipe):
    clip = generate_clip(pipe, request(steps=3), phase=PHASE, width=1024)
    assert clip.image.size == (1024, 512)
    assert clip.duration_s == pytest.approx(1023 * 0.01)


@pytest.mark.parametrize("width", [500, 0, -8])
def test_width_must_be_a_multiple_of_8(pipe, width):
    with pytest.raises(ValueError, match="multiple of 8"):
        generate_clip(pipe, request(), width=width)


def test_unknown_ids_and_phase_are_clear_errors(pipe):
    with pytest.raises(LookupError, match="unknown seed image 'nope'"):
        generate_clip(pipe, request(seed_image_id="nope"))
    with pytest.raises(LookupError, match="unknown mask 'og_beat'"):
        generate_clip(pipe, request(mask_image_id="og_beat"))
    with pytest.raises(ValueError, match="unknown phase method 'magic'"):
        generate_clip(pipe, request(), phase="magic")


def test_generate_clips_in_batches_matches_single_clips(pipe):
    inputs = [request(seed=s) for s in (1, 2, 3)]
    clips = generate_clips(pipe, inputs, phase=PHASE, batch_size=2)
    assert [c.inputs.start.seed for c in clips] == [1, 2, 3]
    single = generate_clip(pipe, inputs[2], phase=PHASE)
    diff = np.abs(np.asarray(clips[2].image, np.int16) - np.asarray(single.image, np.int16))
    assert diff.max() <= 2


def test_alpha_schedules():
    assert alpha_schedule(4) == [0.25, 0.5, 0.75, 1.0]  # the web app's steps
    assert alpha_schedule(3, include_start=True) == [0.0, 0.5, 1.0]
    eased = alpha_schedule(5, curve="ease", include_start=True)
    assert eased[0] == 0.0 and eased[-1] == 1.0 and eased[2] == pytest.approx(0.5)
    assert eased[1] < 0.25 and np.all(np.diff(eased) > 0)
    with pytest.raises(ValueError, match="unknown alpha curve"):
        alpha_schedule(3, curve="wobbly")
    with pytest.raises(ValueError, match="at least 1"):
        alpha_schedule(0)


def test_interpolation_inputs():
    a, b = PromptInput("a", 1), PromptInput("b", 2)
    inputs = interpolation_inputs(a, b, num_clips=3, num_inference_steps=10, mask_image_id="mask_top_third_75")
    assert [i.alpha for i in inputs] == [0.0, 0.5, 1.0]
    assert all(i.start == a and i.end == b and i.mask_image_id == "mask_top_third_75" for i in inputs)


def test_concatenate_crossfades():
    a, b = np.ones((1, 1000), np.float32), np.ones((1, 1000), np.float32)
    joined = concatenate([a, b], 1000, crossfade_s=0.1)
    assert joined.shape == (1, 1900)
    assert np.array_equal(concatenate([a, b], 1000, crossfade_s=0), np.ones((1, 2000), np.float32))
    with pytest.raises(ValueError):
        concatenate([], 1000)


def test_audio_to_audio_keeps_length_and_rate(pipe):
    rng = np.random.default_rng(0)
    track = (0.1 * rng.standard_normal((2, 22050 * 8))).astype(np.float32)  # 8 s at 22.05 kHz, stereo
    start = PromptInput("rock", seed=3, denoising=0.5)
    out = audio_to_audio(pipe, track, 22050, start=start, end=PromptInput("jazz", seed=3, denoising=0.6),
                         num_inference_steps=4, phase=PHASE)
    assert out.shape == (1, track.shape[1]) and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    short = audio_to_audio(pipe, track[:, :5000], 22050, start=start, num_inference_steps=4, phase=PHASE)
    assert short.shape == (1, 5000)
    with pytest.raises(ValueError, match="overlap"):
        audio_to_audio(pipe, track, 22050, start=start, overlap=0.95)


def test_notebook_text_to_audio_plays_and_shows():
    from riffusion import notebook

    clip = notebook.text_to_audio("jazzy rapping from paris", seed=1, model="tiny-random", num_inference_steps=4,
                                  phase=PHASE, device="cpu")
    assert clip.image.size == (512, 512)
    assert clip.audio.sample_rate == 44100 and clip.audio.duration_s == pytest.approx(5.11)
    html = clip._repr_html_()
    assert "<audio" in html and "<img" in html and "jazzy rapping from paris" in html
    data, rate = sf.read(io.BytesIO(clip.audio.to_bytes("wav")))
    assert rate == 44100 and len(data) == 225351
    again = notebook.text_to_audio("jazzy rapping from paris", seed=1, model="tiny-random", num_inference_steps=4,
                                   phase=PHASE, device="cpu")
    assert np.array_equal(clip.waveform, again.waveform)
    assert [key[0] for key in notebook._PIPELINES].count("tiny-random") == 1  # loaded once


def test_notebook_render_session_joins_the_clips_as_the_jam_did(tmp_path):
    from riffusion import notebook
    from riffusion.sessions import SessionError

    request = {"alpha": 0.5, "num_inference_steps": 2, "seed_image_id": "og_beat", "mask_image_id": None,
               "start": {"prompt": "jazz", "seed": 1}, "end": {"prompt": "rock", "seed": 2}}
    clips = [{"start_s": 5.08 * i, "duration_s": 5.11, "request": request} for i in range(2)]
    session = {"schema": "riffusion-session", "version": 1, "model": "tiny-random", "phase": PHASE, "clips": clips}
    audio = notebook.render_session(session, device="cpu")
    assert isinstance(audio, notebook.Audio) and audio.sample_rate == 44100
    assert audio.waveform.shape[-1] == 2 * 225351 - round(0.03 * 44100)  # two clips overlapping by the crossfade
    with pytest.raises(SessionError, match="version"):
        notebook.render_session({**session, "version": 2})
    with pytest.raises(FileNotFoundError):
        notebook.render_session(tmp_path / "missing.json")


def test_top_level_text_to_audio_is_the_notebook_api():
    import riffusion
    from riffusion import notebook

    assert riffusion.text_to_audio is notebook.text_to_audio
