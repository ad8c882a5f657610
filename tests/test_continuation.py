"""Continuation: the engine's contract on the shipped small model and tiny-random, prompt schedules, the
notebook one-liner and the ``riffusion continue`` command."""

import numpy as np
import pytest
import soundfile as sf

from riffusion.continuation import (
    DEFAULT_CROSSFADE_S,
    Continuation,
    ContinuationRun,
    PromptSchedule,
    continue_audio,
    input_beat_grid,
)
from riffusion.loading import load_pipeline
from tests.conftest import run_cli

PHASE = "pghi"  # deterministic and fast


@pytest.fixture(scope="module")
def small():
    return load_pipeline(None, device="cpu")


def beat(seconds=3.0, rate=22050, bpm=120.0):
    """Clicks on a 120 bpm grid over a quiet tone, mono float32."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.05 * np.sin(2 * np.pi * 220 * t)
    period = int(rate * 60 / bpm)
    for start in range(0, x.size, period):
        n = min(600, x.size - start)
        x[start : start + n] += 0.6 * np.exp(-np.arange(n) / 80.0) * np.sin(np.arange(n) * 0.9)
    return x.astype(np.float32)[None]


# --- the engine -------------------------------------------------------------------------------------------------


def test_output_is_the_input_then_the_seconds_asked(small):
    rate = 22050
    x = beat(rate=rate)
    result = continue_audio(small, x, rate, prompt="jazz piano", seconds=3.0, seed=3, phase=PHASE)
    assert isinstance(result, Continuation)
    assert result.waveform.shape == (1, x.shape[-1] + 3 * rate)
    assert result.sample_rate == rate and result.input_samples == x.shape[-1]
    untouched = x.shape[-1] - int(round(DEFAULT_CROSSFADE_S * rate))
    np.testing.assert_array_equal(result.waveform[:, :untouched], x[:, :untouched])
    assert result.junctions_s[0] == pytest.approx(3.0)
    assert all(a < b <= j for (a, b), j in zip(result.crossfades_s, result.junctions_s))
    new = result.waveform[:, x.shape[-1] :]
    assert np.all(np.isfinite(new)) and np.abs(new).max() <= 1.0 and np.sqrt(np.mean(new ** 2)) > 1e-3
    # the clicks' tempo is found and followed
    assert result.grid is not None and result.grid.bpm == pytest.approx(120, rel=0.05)


def test_same_seed_same_audio_other_seed_other_audio(small):
    x = beat()
    first = continue_audio(small, x, 22050, prompt="rock band", seconds=1.0, seed=7, phase=PHASE)
    again = continue_audio(small, x, 22050, prompt="rock band", seconds=1.0, seed=7, phase=PHASE)
    other = continue_audio(small, x, 22050, prompt="rock band", seconds=1.0, seed=8, phase=PHASE)
    np.testing.assert_array_equal(first.waveform, again.waveform)
    assert not np.array_equal(first.waveform, other.waveform)


def test_a_run_made_clip_by_clip_is_continue_audio(small):
    x = beat()
    whole = continue_audio(small, x, 22050, prompt="0:rock band,2:jazz piano", seconds=4.0, seed=5, phase=PHASE)
    run = ContinuationRun(small, x, 22050, prompt="0:rock band,2:jazz piano", seconds=4.0, seed=5, phase=PHASE)
    with pytest.raises(RuntimeError, match=f"{run.num_clips} of {run.num_clips} clips are still to be made"):
        run.result()
    made = [run.step(small) for _ in range(run.num_clips)]
    assert made == list(range(1, run.num_clips + 1)) and run.done and run.num_clips >= 2
    with pytest.raises(RuntimeError, match=f"all {run.num_clips} clips of this continuation are made"):
        run.step(small)
    result = run.result()
    np.testing.assert_array_equal(result.waveform, whole.waveform)
    assert result.junctions_s == whole.junctions_s and result.prompts == whole.prompts
    with pytest.raises(ValueError, match="seconds must be a number"):
        ContinuationRun(small, x, 22050, prompt="rock", seconds=0)


def test_keeps_the_input_rate_and_channels_and_follows_the_schedule(small):
    rate = 16000
    x = np.repeat(beat(rate=rate), 2, axis=0)
    result = continue_audio(small, x, rate, prompt=PromptSchedule.parse("0:jazz piano,2:rock band"), seconds=4.0,
                            seed=1, phase=PHASE, bpm=120, beats_per_bar=4)
    assert result.waveform.shape == (2, x.shape[-1] + 4 * rate)
    assert result.prompts[0] == "jazz piano" and result.prompts[-1] == "rock band"
    assert result.grid.bpm == 120 and result.grid.beats_per_bar == 4


def test_an_input_shorter_than_the_context_and_plain_outpainting(small):
    x = beat(seconds=0.5)
    result = continue_audio(small, x, 22050, prompt="ambient pads", seconds=1.5, denoising=1.0, seed=0, phase=PHASE)
    assert result.waveform.shape[-1] == x.shape[-1] + int(1.5 * 22050)


def test_a_stable_diffusion_layout_model_continues_too():
    pipe = load_pipeline("tiny-random", device="cpu")
    x = beat(seconds=1.0, rate=44100)
    result = continue_audio(pipe, x, 44100, prompt="jazz", seconds=0.5, num_inference_steps=2, phase=PHASE)
    assert result.waveform.shape == (1, x.shape[-1] + 22050)
    assert result.grid is not None  # estimated; tiny-random has no rhythm input and does not get it


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seconds=0), "seconds must be"),
        (dict(seconds=601), "seconds must be"),
        (dict(seconds=True), "seconds must be"),
        (dict(denoising=0.0), "denoising must be in (0, 1]"),
        (dict(context=1.0), "context must be in (0, 1)"),
        (dict(crossfade_s=-0.1), "crossfade_s must be"),
        (dict(crossfade_s=1.0, context=0.2), "too long"),
        (dict(prompt="0:jazz,0:rock"), "must increase"),
        (dict(waveform=np.zeros((1, 0), np.float32)), "shape (channels, samples)"),
        (dict(waveform=np.full((1, 100), np.nan, np.float32)), "NaN"),
        (dict(sample_rate=0), "sample_rate must be"),
        (dict(num_inference_steps=0), "num_inference_steps"),
    ],
)
def test_bad_values_are_named(small, kwargs, message):
    args = dict(waveform=beat(seconds=1.0), sample_rate=22050, prompt="jazz", seconds=1.0)
    args.update(kwargs)
    waveform, rate = args.pop("waveform"), args.pop("sample_rate")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        continue_audio(small, waveform, rate, **args)


def test_input_beat_grid(small):
    grid = input_beat_grid(small, beat(seconds=4.0), 22050)
    assert grid.bpm == pytest.approx(120, rel=0.05) and grid.beats_per_bar is None
    assert input_beat_grid(small, beat(seconds=4.0), 22050, bpm=120, beats_per_bar=3) .beats_per_bar == 3
    assert input_beat_grid(small, np.zeros((1, 22050 * 2), np.float32), 22050) is None
    with pytest.raises(ValueError, match="shape"):
        input_beat_grid(small, np.zeros((2, 2, 2), np.float32), 22050)


# --- prompt schedules --------------------------------------------------------------------------------------------


def test_schedule_parsing():
    plan = PromptSchedule.parse("0:jazz piano, with brushes,20:rock band, 45.5: (strings:1.2) ")
    assert plan.changes == ((0.0, "jazz piano, with brushes"), (20.0, "rock band"), (45.5, "(strings:1.2)"))
    assert [plan.prompt_at(t) for t in (0, 19.9, 20, 100)] == ["jazz piano, with brushes", "jazz piano, with brushes",
                                                               "rock band", "(strings:1.2)"]
    assert PromptSchedule.parse("lofi hip hop").changes == ((0.0, "lofi hip hop"),)
    assert PromptSchedule.of(plan) is plan and PromptSchedule.of("x") == PromptSchedule.constant("x")
    assert PromptSchedule.parse(str(plan)) == plan


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "must be text"),
        ("0:jazz,rock:1", None),  # a comma without SECONDS: after it is part of the prompt
        ("5:jazz,20:rock", "starts at 0 s"),
        ("0:jazz,20:rock,10:pop", "must increase"),
        ("0:jazz,20:  ", "blank"),
        ("0:" + "x" * 2001, "longer than"),
    ],
)
def test_schedule_errors(text, message):
    if message is None:
        assert PromptSchedule.parse(text).changes == ((0.0, "jazz,rock:1"),)
        return
    with pytest.raises(ValueError, match=message):
        PromptSchedule.parse(text)


def test_schedule_values_are_checked_on_construction():
    with pytest.raises(ValueError, match="at least one"):
        PromptSchedule(())
    with pytest.raises(ValueError, match="finite"):
        PromptSchedule(((0.0, "a"), (float("inf"), "b")))


# --- the notebook and the command line ---------------------------------------------------------------------------


def test_notebook_one_liner(tmp_path):
    from riffusion.notebook import Audio
    from riffusion.notebook import continue_audio as continue_notebook

    path = tmp_path / "in.wav"
    sf.write(path, beat(seconds=2.0)[0], 22050)
    out = continue_notebook(str(path), "0:jazz,1:rock", seconds=1.0, seed=2, phase=PHASE)
    assert isinstance(out, Audio) and out.sample_rate == 22050 and out.waveform.shape[-1] == 3 * 22050
    with pytest.raises(ValueError, match="sample_rate"):
        continue_notebook(beat(), "jazz", seconds=1.0)


def test_cli_continue_writes_the_input_and_the_continuation(tmp_path):
    source, out = tmp_path / "in.wav", tmp_path / "out.flac"
    sf.write(source, beat(seconds=2.0)[0], 22050)
    done = run_cli("continue", "--input", source, "--schedule", "0:jazz,1:rock", "--seconds", "2", "--audio", out,
                   "--seed", "5", "--phase", PHASE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(out)
    data, rate = sf.read(out)
    assert rate == 22050 and data.shape[0] == 4 * 22050
    assert [p.name for p in tmp_path.iterdir()] == sorted(["in.wav", "out.flac"]) or len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", "a", "--schedule", "0:b"], "give --prompt or --schedule"),
        (["--schedule", "3:b"], "starts at 0 s"),
        (["--prompt", "a", "--seconds", "0"], "--seconds must be"),
        (["--prompt", "a", "--audio", "out.xyz"], "unsupported audio format"),
        (["--prompt", "a", "--input", "missing.wav"], "--input file not found"),
        (["--prompt", "a", "--denoising", "0"], "--denoising"),
        (["--prompt", "a", "--metre", "3/4"], "--metre needs --bpm"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    source = tmp_path / "in.wav"
    sf.write(source, beat(seconds=1.0)[0], 22050)
    base = {"--input": str(source), "--seconds": "1", "--audio": str(tmp_path / "out.wav")}
    for flag in ("--input", "--seconds", "--audio"):
        if flag in args:
            base.pop(flag)
    argv = ["continue", *args, *[item for pair in base.items() for item in pair]]
    done = run_cli(*argv, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "out.wav").exists()
