"""The generation commands end to end, as subprocesses, on tiny-random and offline."""

import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from conftest import run_cli
from riffusion.cli import main


class InProcess:
    """Result of ``riffusion.cli.main(args)`` run in this process (fast for error paths)."""

    def __init__(self, capsys, *args):
        self.returncode = main([str(a) for a in args])
        captured = capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err

FAST = ("--model", "tiny-random", "--device", "cpu", "--num-inference-steps", "4", "--phase", "pghi")


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_text_to_audio_writes_audio_and_images(tmp_path):
    audio, image = tmp_path / "jazz.mp3", tmp_path / "jazz.png"
    result = run_cli("text-to-audio", "--prompt", "jazzy (rapping:1.2) from paris", "--negative-prompt", "noise",
                     "--seed", "7", "--guidance", "6", "--scheduler", "euler", "--audio", audio, "--image", image,
                     "--num-clips", "2", "--width", "256", "--seed-image", "og_beat", *FAST)
    assert result.returncode == 0, result.stderr
    for i in range(2):
        info = sf.info(str(tmp_path / f"jazz_00{i}.mp3"))
        assert info.samplerate == 44100 and info.duration == pytest.approx(2.55, abs=0.1)
        assert Image.open(tmp_path / f"jazz_00{i}.png").size == (256, 512)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jazz_000.mp3", "jazz_000.png", "jazz_001.mp3", "jazz_001.png"]
    assert str(tmp_path / "jazz_000.mp3") in result.stdout


def test_text_to_audio_makes_music_from_the_prompt_alone_by_default(tmp_path):
    audio, image = tmp_path / "a.wav", tmp_path / "a.png"
    result = run_cli("text-to-audio", "--prompt", "a slow sad cello", "--audio", audio, "--image", image, *FAST)
    assert result.returncode == 0, result.stderr
    # from noise: the same prompt and seed on the seed loop makes another picture
    looped = tmp_path / "b.png"
    result = run_cli("text-to-audio", "--prompt", "a slow sad cello", "--audio", tmp_path / "b.wav", "--image", looped,
                     "--seed-image", "og_beat", *FAST)
    assert result.returncode == 0, result.stderr
    assert not np.array_equal(np.asarray(Image.open(image)), np.asarray(Image.open(looped)))


@pytest.mark.parametrize("args, message", [
    (("--bpm", "90"), "--bpm needs a model with a rhythm input"),
    (("--metre", "3/4"), "--metre needs --bpm"),
    (("--bpm", "500", "--metre", "3/4"), "--bpm: bpm must be a number in [30, 300], got 500.0"),
    (("--bpm", "90", "--metre", "3/5"), "metre must look like 4/4, 3/4 or 6/8"),
    (("--mask", "mask_top_third_75"), "--mask keeps parts of a seed image: give --seed-image too"),
    (("--width", "256"), "--width makes a longer clip by repeating a seed loop: give --seed-image too"),
])
def test_text_to_audio_rhythm_and_loop_errors_are_one_line(capsys, tmp_path, args, message):
    result = InProcess(capsys, "text-to-audio", "--prompt", "x", "--audio", tmp_path / "x.wav", *FAST, *args)
    assert_clean_error(result, message)
    assert not list(tmp_path.iterdir())


def test_interpolate_writes_one_track_and_the_images(tmp_path):
    audio, images = tmp_path / "walk.wav", tmp_path / "images"
    images.mkdir()
    result = run_cli("interpolate", "--start-prompt", "church bells", "--end-prompt", "techno", "--start-seed", "1",
                     "--num-clips", "3", "--alpha-curve", "ease", "--mask", "mask_top_third_75", "--denoising", "0.6",
                     "--crossfade-s", "0", "--audio", audio, "--image-dir", images, *FAST)
    assert result.returncode == 0, result.stderr
    data, rate = sf.read(str(audio))
    assert rate == 44100 and len(data) == 3 * 225351
    assert len(list(images.glob("clip_*.png"))) == 3


def test_audio_to_audio_keeps_the_length(tmp_path):
    source = tmp_path / "in.wav"
    rng = np.random.default_rng(1)
    sf.write(str(source), 0.1 * rng.standard_normal((22050 * 7, 2)), 22050)
    out = tmp_path / "out.flac"
    result = run_cli("audio-to-audio", "--input", source, "--prompt", "rock", "--end-prompt", "jazz",
                     "--denoising", "0.4", "--audio", out, *FAST, "--phase", "default:2")  # NAME:N, last --phase wins
    assert result.returncode == 0, result.stderr
    data, rate = sf.read(str(out))
    assert rate == 22050 and len(data) == 22050 * 7


def test_text_to_audio_batch(tmp_path):
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps({
        "params": {"num_inference_steps": 3, "seed": 5, "guidance": 6},
        "entries": [{"prompt": "church bells"}, {"prompt": "techno", "seed": 9, "name": "tech", "mask": "mask_top_third_75"}],
    }))
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("text-to-audio-batch", "--json-file", spec, "--output-dir", out, "--extension", "ogg", "--images",
                     "--model", "tiny-random", "--device", "cpu", "--phase", "pghi")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["000_church_bells_seed5.ogg", "000_church_bells_seed5.png",
                                                     "tech.ogg", "tech.png"]


def test_batch_file_errors_name_the_entry(tmp_path, capsys):
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps({"entries": [{"prompt": "a"}, {"prompt": "b", "sed": 1}]}))
    result = InProcess(capsys, "text-to-audio-batch", "--json-file", spec, "--output-dir", tmp_path, "--model", "tiny-random")
    assert_clean_error(result, "unknown key 'sed' in entries[1]")


def test_download_offline_is_a_clear_error_and_tiny_random_needs_nothing():
    result = run_cli("download", "riffusion/riffusion-model-v1")
    assert_clean_error(result, "could not download model 'riffusion/riffusion-model-v1'")
    assert run_cli("download", "tiny-random").returncode == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (("--scheduler", "warp-drive"), "unknown scheduler 'warp-drive'"),
        (("--seed-image", "nope"), "unknown seed image 'nope'; available: og_beat"),
        (("--seed-image", "../../etc/passwd"), "looks like a path"),
        (("--width", "500"), "--width must be a positive multiple of 8"),
        (("--phase", "magic"), "unknown phase method 'magic'"),
        (("--phase", "pghi:3"), "'pghi' does not iterate"),
        (("--seed-image", "og_beat", "--denoising", "0.75", "--num-inference-steps", "1"),
         "num_inference_steps=1 at denoising 0.75 runs no UNet evaluation"),
    ],
)
def test_text_to_audio_error_paths(tmp_path, capsys, args, message):
    out = tmp_path / "x.wav"
    result = InProcess(capsys, "text-to-audio", "--prompt", "x", "--audio", out, "--model", "tiny-random", "--device", "cpu",
                     *args)
    assert_clean_error(result, message)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_missing_model_offline_says_how_to_get_it(tmp_path):
    result = run_cli("text-to-audio", "--prompt", "x", "--audio", tmp_path / "x.wav", "--model",
                     "riffusion/riffusion-model-v1")
    assert_clean_error(result, "not in the local Hugging Face cache", "riffusion download riffusion/riffusion-model-v1")
    assert list(tmp_path.iterdir()) == []


def test_bad_output_paths_fail_before_any_work(tmp_path, capsys):
    result = InProcess(capsys, "text-to-audio", "--prompt", "x", "--audio", tmp_path / "x.xyz", "--model", "tiny-random")
    assert_clean_error(result, "unsupported audio format 'xyz'")
    result = InProcess(capsys, "interpolate", "--start-prompt", "a", "--end-prompt", "b", "--audio", tmp_path / "no" / "x.wav",
                     "--model", "tiny-random")
    assert_clean_error(result, "output directory does not exist")


def test_help_lists_the_generation_commands():
    result = run_cli("--help")
    for command in ("text-to-audio", "interpolate", "audio-to-audio", "text-to-audio-batch", "download"):
        assert command in result.stdout


def test_text_to_audio_mixes_prompts(tmp_path, capsys):
    def image(name, *mix):
        result = InProcess(capsys, "text-to-audio", "--prompt", "a slow sad cello", "--audio", tmp_path / f"{name}.wav",
                           "--image", tmp_path / f"{name}.png", *mix, *FAST)
        assert result.returncode == 0, result.stderr
        return np.asarray(Image.open(tmp_path / f"{name}.png"), dtype=np.int16)

    plain = image("plain")
    assert np.array_equal(image("silent", "--mix", "rain on a roof:0"), plain)  # a weight of 0 adds nothing
    mixed = image("mixed", "--mix", "rain on a roof:0.4", "--mix", "(church:1.2) bells: 1")
    assert np.abs(mixed - plain).mean() > 0.1


@pytest.mark.parametrize("mix, message", [
    (("--mix", "rain"), "--mix 'rain': expected PROMPT:WEIGHT"),
    (("--mix", "rain:lots"), "--mix 'rain:lots': expected PROMPT:WEIGHT"),
    (("--mix", ":0.4"), "--mix ':0.4': expected PROMPT:WEIGHT"),
    (("--mix", "rain:-1"), "--mix 'rain:-1': the weight must be a finite number >= 0, got -1"),
    (("--mix", "rain: nan"), "--mix 'rain: nan': the weight must be a finite number >= 0, got nan"),
    (("--mix", "a:1", "--mix", "b:1", "--mix", "c:1", "--mix", "d:1"), "--mix takes at most 3 prompts (4 with --prompt), got 4"),
])
def test_text_to_audio_mix_errors_are_one_line(capsys, tmp_path, mix, message):
    result = InProcess(capsys, "text-to-audio", "--prompt", "x", "--audio", tmp_path / "x.wav", *FAST, *mix)
    assert_clean_error(result, message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_seed_audio_becomes_the_seed_loop(tmp_path):
    from test_loops import drums

    loop_file, audio, image = tmp_path / "my loop.flac", tmp_path / "out.wav", tmp_path / "out.png"
    sf.write(str(loop_file), drums(120, 6, start_s=0.4), 44100)
    result = run_cli("text-to-audio", "--prompt", "jazz", "--seed-audio", loop_file, "--denoising", "0.3",
                     "--audio", audio, "--image", image, *FAST)
    assert result.returncode == 0, result.stderr
    assert "3 bars of 4 at 1" in result.stderr and "fitted to 140.9 bpm" in result.stderr
    assert Image.open(image).size == (512, 512)
    track = tmp_path / "track.wav"
    result = run_cli("interpolate", "--start-prompt", "a", "--end-prompt", "b", "--num-clips", "2", "--seed-audio",
                     loop_file, "--bpm", "120", "--audio", track, *FAST)
    assert result.returncode == 0, result.stderr
    assert "at 120 bpm" in result.stderr


@pytest.mark.parametrize("args,message", [
    (("--seed-image", "og_beat", "--seed-audio", "x.wav"), "give --seed-image or --seed-audio, not both"),
    (("--seed-audio", "missing.wav"), "--seed-audio file not found: 'missing.wav'"),
])
def test_seed_audio_errors_are_one_line(capsys, args, message):
    result = InProcess(capsys, "text-to-audio", "--prompt", "x", "--audio", "out.wav", *args, *FAST)
    assert_clean_error(result, message)


def test_seed_audio_without_a_pulse_suggests_bpm(capsys, tmp_path):
    hum = tmp_path / "hum.wav"
    sf.write(str(hum), 0.5 * np.sin(2 * np.pi * 220 * np.arange(44100 * 5) / 44100), 44100)
    result = InProcess(capsys, "interpolate", "--start-prompt", "a", "--end-prompt", "b", "--audio",
                       tmp_path / "o.wav", "--seed-audio", hum, *FAST)
    assert_clean_error(result, "no steady pulse", "with --bpm")
    result = InProcess(capsys, "interpolate", "--start-prompt", "a", "--end-prompt", "b", "--audio",
                       tmp_path / "o.wav", "--bpm", "100", *FAST)
    assert_clean_error(result, "give --seed-audio too")
