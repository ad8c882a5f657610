"""riffusion.dataset: MIDI facts, sources and licences, measured captions, and `riffusion dataset build`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from riffusion.dataset import midi
from riffusion.dataset.presets import SMALL_IMAGE_WIDTH, SMALL_PARAMS, resolve_params

HAVE_RENDERER = shutil.which("fluidsynth") is not None and Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file()
needs_renderer = pytest.mark.skipif(not HAVE_RENDERER, reason="fluidsynth + fluid-soundfont-gm not installed")


def write_tone(path: Path, freq: float, seconds: float = 11.0, sample_rate: int = 22050, pulse_hz: float = 0.0):
    from riffusion.audio import write_audio

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    if pulse_hz:
        x *= (np.sin(2 * np.pi * pulse_hz * t) > 0.6).astype(float)
    write_audio(path, x[None].astype(np.float32), sample_rate)


def make_user_folder(root: Path) -> Path:
    folder = root / "my music"
    folder.mkdir()
    write_tone(folder / "low drone.wav", 110.0)
    (folder / "low drone.txt").write_text("a low cello drone\n")
    write_tone(folder / "high beeps.flac", 2000.0, pulse_hz=2.0)
    (folder / "high beeps.txt").write_text("bright beeping synth")
    return folder


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "riffusion", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# --- MIDI -----------------------------------------------------------------------------------------------


def test_midi_round_trip_reads_programs_per_channel(tmp_path):
    notes = [midi.Note(0, 1, 60, channel=0), midi.Note(1, 1, 40, channel=1), midi.Note(0, 0.25, 36, channel=9)]
    path = tmp_path / "a.mid"
    midi.write_midi(path, notes, tempo_bpm=100, programs={0: 73, 1: 33, 5: 0})
    summary = midi.read_midi_summary(path)
    assert summary.tempo_bpm == pytest.approx(100, abs=0.1)
    assert summary.drums
    # Channel 5 has a program but plays nothing: not an instrument of this file.
    assert summary.instruments() == ["flute", "fingered electric bass", "drums"]
    assert summary.pitch_range[1] == (40, 40)


def _track(events: bytes) -> bytes:
    import struct

    body = events + b"\x00\xFF\x2F\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def test_midi_programs_are_read_per_channel_not_per_track(tmp_path):
    import struct

    # Track 1 only sets programs (channel 0 -> 0 piano, channel 1 -> 73 flute); track 2 plays the notes,
    # and switches channel 0 to violin (40) half way. Per-track reading would miss the flute entirely.
    setup = b"\x00\xC0\x00" + b"\x00\xC1\x49"
    play = (b"\x00\x90\x3C\x60" + b"\x83\x60\x80\x3C\x00" + b"\x00\xC0\x28" + b"\x00\x90\x3E\x60"
            + b"\x83\x60\x80\x3E\x00" + b"\x00\x91\x48\x60" + b"\x83\x60\x81\x48\x00")
    path = tmp_path / "b.mid"
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 1, 2, 480) + _track(setup) + _track(play))
    summary = midi.read_midi_summary(path)
    assert summary.programs == {0: [0, 40], 1: [73]}
    assert summary.instruments() == ["acoustic grand piano", "violin", "flute"]
    assert not summary.drums and summary.tempo_bpm is None
    assert summary.duration_s == pytest.approx(1.5, abs=0.01)


def test_read_midi_rejects_other_files(tmp_path):
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"RIFF....WAVE")
    with pytest.raises(ValueError, match="not a Standard MIDI File"):
        midi.read_midi_summary(bad)


def test_write_midi_rejects_absurd_tempo(tmp_path):
    with pytest.raises(ValueError, match="tempo_bpm"):
        midi.write_midi(tmp_path / "x.mid", [], tempo_bpm=5000, programs={})


# --- captions from measurements -------------------------------------------------------------------------


def test_measured_tempo_and_brightness():
    from riffusion.dataset import features

    sr = 22050
    t = np.arange(sr * 8) / sr
    clicks = np.zeros_like(t)
    for beat in np.arange(0, 8, 0.5):  # 120 BPM
        i = int(beat * sr)
        clicks[i : i + 200] = np.hanning(200)
    assert features.estimate_tempo(clicks, sr) == pytest.approx(120, rel=0.04)
    low = np.sin(2 * np.pi * 150 * t)
    high = np.sin(2 * np.pi * 5000 * t)
    assert features.spectral_centroid(low, sr) < 400 < 4000 < features.spectral_centroid(high, sr)
    assert features.brightness_word(300) == "dark" and features.brightness_word(5000) == "bright"
    assert [features.tempo_word(b) for b in (0, 55, 70, 100, 120, 150, 180)] == [
        "", "very slow", "slow", "moderate", "upbeat", "fast", "very fast"]
    assert features.estimate_tempo(np.zeros(sr), sr) == 0.0


def _click_groove(bpm: float, *, soft: float, eighths: bool, accent_every: int = 1, sr: int = 22050,
                  seconds: float = 5.12) -> np.ndarray:
    """Noise clicks on each beat (every ``accent_every``-th loud, the others at ``soft``), and soft ones
    between the beats if ``eighths``."""
    rng = np.random.default_rng(0)
    x = np.zeros(int(sr * seconds))
    beat = 60 / bpm
    hits = [(t, 1.0 if k % accent_every == 0 else soft) for k, t in enumerate(np.arange(0, seconds - 0.05, beat))]
    if eighths:
        hits += [(t + beat / 2, soft) for t in np.arange(0, seconds - beat / 2 - 0.05, beat)]
    for t, amplitude in hits:
        i = int(t * sr)
        x[i : i + 200] += amplitude * np.hanning(200) * rng.standard_normal(200)
    return x


def test_tempo_octave_by_onset_rate_orders_slow_and_fast_music():
    from riffusion.dataset import features

    sr = 22050
    slow = _click_groove(65, soft=0.3, eighths=True)  # a slow beat with soft eighth notes
    fast = _click_groove(170, soft=0.05, eighths=False, accent_every=2)  # a fast beat, every other one soft
    prior = [features.estimate_tempo(x, sr) for x in (slow, fast)]
    by_rate = [features.estimate_tempo(x, sr, octave="onset-rate") for x in (slow, fast)]
    # the prior's octave reads the eighths as the beat and the fast beat as half-time: the wrong order
    assert prior[0] == pytest.approx(130, rel=0.04) and prior[1] == pytest.approx(85, rel=0.04)
    assert by_rate[0] == pytest.approx(65, rel=0.04) and by_rate[1] == pytest.approx(170, rel=0.04)
    # the onset rate only picks an octave of the same periodicity, inside the range
    for x in (slow, fast, _click_groove(120, soft=1.0, eighths=False)):
        a, b = features.estimate_tempo(x, sr), features.estimate_tempo(x, sr, octave="onset-rate")
        assert min(abs(b / a - k) for k in (0.5, 1.0, 2.0)) < 0.01 and 50 <= b <= 200
    assert features.estimate_tempo(np.zeros(sr), sr, octave="onset-rate") == 0.0


def test_estimate_tempo_rejects_bad_options():
    from riffusion.dataset import features

    x = _click_groove(120, soft=1.0, eighths=False)
    with pytest.raises(ValueError, match="octave must be one of 'prior', 'onset-rate', got 'median'"):
        features.estimate_tempo(x, 22050, octave="median")
    with pytest.raises(ValueError, match="need 0 < min_bpm < max_bpm, got 200 and 50"):
        features.estimate_tempo(x, 22050, min_bpm=200, max_bpm=50)


def test_key_of_a_major_triad():
    from riffusion.dataset import features

    sr = 22050
    t = np.arange(sr * 3) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0, 130.81))
    key, confidence = features.estimate_key(chord, sr)
    assert key in ("C major", "A minor", "E minor") and confidence > 0.5


# --- sources --------------------------------------------------------------------------------------------


def test_user_folder_captions_from_txt_and_csv(tmp_path):
    from riffusion.dataset.sources import user_folder_sources

    folder = make_user_folder(tmp_path)
    sources = user_folder_sources(folder)
    assert [s.caption for s in sources] == ["bright beeping synth", "a low cello drone"]
    (folder / "captions.csv").write_text("file_name,caption,license\nlow drone.wav,drone from csv,CC0-1.0\n"
                                         "high beeps.flac,beeps from csv,\n")
    by_name = {s.path.name: s for s in user_folder_sources(folder, license="mine")}
    assert by_name["low drone.wav"].caption == "drone from csv"
    assert by_name["low drone.wav"].license == "CC0-1.0"
    assert by_name["high beeps.flac"].license == "mine"


def test_user_folder_without_caption_names_the_track(tmp_path):
    from riffusion.dataset.sources import user_folder_sources

    folder = make_user_folder(tmp_path)
    (folder / "low drone.txt").unlink()
    with pytest.raises(ValueError, match="low drone.wav"):
        user_folder_sources(folder)
    with pytest.raises(FileNotFoundError):
        user_folder_sources(tmp_path / "nowhere")


def test_licence_check_refuses_non_commercial_terms(tmp_path):
    from riffusion.dataset.sources import GameMusicPackage, check_package_license

    pkg = GameMusicPackage("fake-music", ("*.ogg",), "CC-BY-SA-3.0", "Attribution", "someone", "style", "")
    doc = tmp_path / "usr/share/doc/fake-music"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("License: Creative Commons Attribution-NonCommercial 3.0\n")
    with pytest.raises(ValueError, match="non-free"):
        check_package_license(pkg, tmp_path)
    (doc / "copyright").write_text("License: GPL-2+\n")
    with pytest.raises(ValueError, match="no longer says"):
        check_package_license(pkg, tmp_path)
    (doc / "copyright").write_text("License: CC BY-SA 3.0, Attribution, ShareAlike\n")
    check_package_license(pkg, tmp_path)


def test_resolve_params_presets_and_errors(tmp_path):
    assert resolve_params("small") == (SMALL_PARAMS, SMALL_IMAGE_WIDTH)
    assert resolve_params("riffusion")[1] == 512
    (tmp_path / "spectrogram_params.json").write_text(json.dumps({**SMALL_PARAMS.to_dict(), "image_width": 128}))
    assert resolve_params(str(tmp_path)) == (SMALL_PARAMS, 128)
    with pytest.raises(ValueError, match="unknown spectrogram params"):
        resolve_params("huge")


def test_mma_grooves_and_captions_are_reproducible():
    from riffusion.dataset import render

    if not render.MMA_STDLIB.is_dir():
        pytest.skip("mma is not installed")
    a = render.mma_jobs(seed=3, max_grooves=5)
    b = render.mma_jobs(seed=3, max_grooves=5)
    assert a == b and len(a) == 5
    assert all(job.tempo_bpm > 0 and job.key for job in a)
    assert render.split_camel("BossaNova1Sus") == "bossa nova 1 sus"


def test_solo_jobs_cover_every_instrument_in_its_range_reproducibly():
    from riffusion.dataset import render
    from riffusion.dataset.midi import GM_PROGRAMS, PERCUSSION_CHANNEL

    instruments = len(render._SOLO_PROGRAMS) + len(render.SOLO_PERCUSSION)
    jobs = render.solo_jobs(seed=1, count=instruments)
    assert jobs == render.solo_jobs(seed=1, count=instruments) and len({j.id for j in jobs}) == instruments
    named = {GM_PROGRAMS[dict(j.programs)[0]] for j in jobs if 0 in dict(j.programs)}
    assert {"taiko drum", "kalimba", "bagpipe", "piccolo", "tuba", "celesta"} <= named
    assert not named & {"helicopter", "gunshot", "goblins effect"}  # sound effects are left out
    kit = [j for j in jobs if j.instrument_names]
    assert {j.instrument_names[0] for j in kit} == set(render.SOLO_PERCUSSION)
    assert all(dict(j.programs) == {PERCUSSION_CHANNEL: 0} and j.style.endswith(" rhythm") for j in kit)
    for job in jobs:
        assert job.notes and job.beats_per_bar in (3, 4) and 56 <= job.tempo_bpm <= 180
        pitches = [n.pitch for n in job.notes]
        assert 0 <= min(pitches) and max(pitches) <= 127
        if "tuba" in job.style or "taiko" in job.style:  # low instruments play low
            assert np.median(pitches) < 60
        if "piccolo" in job.style or "tinkle bell" in job.style:
            assert np.median(pitches) > 72


@needs_renderer
def test_solos_are_captioned_with_the_instrument_even_on_the_drum_channel(tmp_path):
    from riffusion.dataset import DatasetConfig, build_dataset
    from riffusion.dataset import render
    from riffusion.dataset.captions import caption_variants

    assert list(render.SOLO_PERCUSSION)[:2] == ["triangle", "cowbell"]  # the first two solos
    config = DatasetConfig(params=SMALL_PARAMS, sources=("solos",), solo_count=2, render_seconds=6.0,
                           cache_dir=str(tmp_path / "cache"))
    rows_path = build_dataset(tmp_path / "ds", config, log=lambda m: None).out_dir / "metadata.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    assert {r["source"] for r in rows} == {"solo"}
    kit = [r for r in rows if r["text"].startswith("solo triangle rhythm")]
    assert kit and all(r["instruments"] == ["triangle"] for r in kit)
    assert any("triangle" in v and "drums" not in v for v in caption_variants(kit[0])[1:])


# --- the command ----------------------------------------------------------------------------------------


@needs_renderer
def test_dataset_build_cli_rendered_midi_and_user_folder(tmp_path):
    folder = make_user_folder(tmp_path)
    out = tmp_path / "ds"
    result = run_cli("dataset", "build", "--out", str(out), "--sources", "mma,parts", "--max-grooves", "1", "--parts", "2",
                     "--render-seconds", "11", "--user-folder", str(folder), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    sources = {row["source"] for row in rows}
    assert sources == {"mma", "part", "user"}
    user_rows = [r for r in rows if r["source"] == "user"]
    assert {r["text"] for r in user_rows} == {"a low cello drone", "bright beeping synth"}
    assert len(user_rows) == 4  # 11 s tracks -> two 5.1 s clips each
    for row in rows:
        assert row["license"] and row["attribution"] and row["author"] is not None
        with Image.open(out / row["file_name"]) as image:
            assert image.size == (SMALL_IMAGE_WIDTH, SMALL_PARAMS.num_frequencies)
            from riffusion.image import params_from_image

            assert params_from_image(image) == SMALL_PARAMS
    rendered = [r for r in rows if r["source"] in ("part", "mma")]
    assert all("bpm" in r["text"] and r["key"] in r["text"] and r["instruments"] for r in rendered)
    mma_rows = [r for r in rows if r["source"] == "mma"]
    assert all(", with " in r["text"] and "GPL" in r["license"] for r in mma_rows)
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "origin,source,author,license,attribution,clips" and len(manifest) == 1 + 1 + 2 + 2
    description = json.loads((out / "dataset.json").read_text())
    assert description["num_images"] == len(rows)
    assert SMALL_PARAMS.from_dict(description["spectrogram_params"]) == SMALL_PARAMS
    assert not (tmp_path / "ds.partial").exists()

    # Reproducible: a second build gives the same rows and the same pixels.
    again = tmp_path / "ds2"
    result = run_cli("dataset", "build", "--out", str(again), "--sources", "mma,parts", "--max-grooves", "1", "--parts", "2",
                     "--render-seconds", "11", "--user-folder", str(folder), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert (again / "metadata.jsonl").read_text() == (out / "metadata.jsonl").read_text()
    first = rows[0]["file_name"]
    assert np.array_equal(np.asarray(Image.open(out / first)), np.asarray(Image.open(again / first)))

    # The Hugging Face `datasets` library reads it as an image folder, when installed.
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), split="train")
    assert len(loaded) == len(rows) and "text" in loaded.column_names


def test_rendered_midi_rows_give_each_clip_its_beat_grid(tmp_path):
    from riffusion.rhythm import IMAGE_ONSET_LAG_S, beat_contrast, grid_for_clip, onset_envelope

    out = tmp_path / "ds"
    result = run_cli("dataset", "build", "--out", str(out), "--sources", "mma", "--max-grooves", "2",
                     "--render-seconds", "16", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    contrasts = []
    for row in rows:
        assert row["beats_per_bar"] in (2, 3, 4, 5, 6)
        grid = grid_for_clip(row)
        pixels = np.asarray(Image.open(out / row["file_name"]).convert("RGB").getchannel("R"), dtype=float)
        contrasts.append(beat_contrast(onset_envelope(pixels), grid, column_s=SMALL_PARAMS.step_size_ms / 1000,
                                       lag_s=IMAGE_ONSET_LAG_S))
    # the grooves' onsets fall on the grids the rows give (0.5 would be no relation)
    assert np.median(contrasts) > 0.55, contrasts


def test_seed_loops_of_several_metres_render_into_a_model_folder(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "spectrogram_params.json").write_text(json.dumps({**SMALL_PARAMS.to_dict(), "image_width": 256}))
    (model / "seed_images").mkdir()
    (model / "seed_images" / "old.png").write_bytes(b"replaced")
    result = run_cli("dataset", "seeds", "--model", str(model))
    assert result.returncode == 0, result.stderr
    rows = json.loads((model / "seed_images" / "seed_images.json").read_text())
    assert {r["beats_per_bar"] for r in rows} >= {3, 4, 6}
    tempos = [r["tempo_bpm"] for r in rows]
    assert min(tempos) <= 75 and max(tempos) >= 170
    assert not (model / "seed_images" / "old.png").exists() and not (model / "seed_images.partial").exists()
    for row in rows:  # whole bars across the clip
        clip_s = SMALL_PARAMS.num_samples(256) / SMALL_PARAMS.sample_rate
        assert row["bars"] * row["beats_per_bar"] * 60 / row["tempo_bpm"] == pytest.approx(clip_s, rel=1e-3)
        with Image.open(model / "seed_images" / row["file"]) as image:
            assert image.size == (256, 64)
    missing = run_cli("dataset", "seeds", "--model", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "not a model folder" in missing.stderr and "Traceback" not in missing.stderr


def test_dataset_build_cli_errors(tmp_path):
    folder = make_user_folder(tmp_path)
    out = tmp_path / "ds"
    out.mkdir()
    (out / "something").write_text("x")
    result = run_cli("dataset", "build", "--out", str(out), "--sources", "", "--user-folder", str(folder))
    assert result.returncode == 2 and "--overwrite" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("dataset", "build", "--out", str(tmp_path / "x"), "--sources", "user")
    assert result.returncode == 2 and "user folder" in result.stderr
    result = run_cli("dataset", "build", "--out", str(tmp_path / "x"), "--params", "nonsense")
    assert result.returncode == 2 and "nonsense" in result.stderr
    (folder / "low drone.txt").unlink()
    result = run_cli("dataset", "build", "--out", str(tmp_path / "y"), "--sources", "", "--user-folder", str(folder))
    assert result.returncode == 2 and "low drone.wav" in result.stderr
    assert not (tmp_path / "y").exists() and not (tmp_path / "y.partial").exists()


def test_user_only_build_in_process(tmp_path):
    from riffusion.dataset import DatasetConfig, build_dataset, load_metadata

    folder = make_user_folder(tmp_path)
    result = build_dataset(tmp_path / "ds", DatasetConfig(params=SMALL_PARAMS, sources=(), user_folder=str(folder)),
                           progress=False, log=lambda m: None)
    rows, description = load_metadata(result.out_dir)
    assert result.num_images == len(rows) == 4 and description["counts"] == {"user": 4}
    assert "user-provided" in (result.out_dir / "ATTRIBUTION.md").read_text()


@needs_renderer
def test_build_tempo_octave_is_recorded_and_measured_its_way(tmp_path):
    from riffusion.dataset import DatasetConfig, build_dataset, load_metadata

    tempos = {}
    for octave in ("prior", "onset-rate"):
        config = DatasetConfig(params=SMALL_PARAMS, sources=("mma",), max_grooves=2, part_count=0, render_seconds=11,
                               cache_dir=str(tmp_path / "cache"), tempo_octave=octave)
        result = build_dataset(tmp_path / octave, config, progress=False, log=lambda m: None)
        rows, description = load_metadata(result.out_dir)
        assert description["config"]["tempo_octave"] == octave
        tempos[octave] = [r["measured_tempo_bpm"] for r in sorted(rows, key=lambda r: r["file_name"])]
    # the same clips and periodicity, an octave of it chosen either way
    assert len(tempos["prior"]) == len(tempos["onset-rate"]) > 0
    for a, b in zip(tempos["prior"], tempos["onset-rate"]):
        assert a > 0 and min(abs(b / a - k) for k in (0.5, 1.0, 2.0)) < 0.01


def test_build_rejects_unknown_tempo_octave(tmp_path):
    from riffusion.dataset import DatasetConfig, build_dataset

    folder = make_user_folder(tmp_path)
    with pytest.raises(ValueError, match="tempo_octave must be one of .*, got 'fastest'"):
        build_dataset(tmp_path / "bad", DatasetConfig(params=SMALL_PARAMS, sources=(), user_folder=str(folder),
                                                      tempo_octave="fastest"), progress=False, log=lambda m: None)
    assert not (tmp_path / "bad").exists()


def test_dataset_build_cli_rejects_unknown_tempo_octave(tmp_path):
    from riffusion.dataset.features import TEMPO_OCTAVES

    result = run_cli("dataset", "build", "--out", str(tmp_path / "x"), "--tempo-octave", "fastest")
    assert result.returncode == 2 and "fastest" in result.stderr and "Traceback" not in result.stderr
    assert all(f"'{o}'" in result.stderr for o in TEMPO_OCTAVES)  # the CLI offers the library's choices
    assert not (tmp_path / "x").exists()


def test_caption_variants_describe_the_whole_clip():
    import random

    from riffusion.dataset.captions import caption_variants, pick_caption

    band = {"text": "swing (basic swing), 120 bpm, C major, with flute, acoustic bass and drums",
            "instruments": ["flute", "acoustic bass", "drums"], "families": ["pipe", "bass"], "tempo_bpm": 120,
            "key": "C major", "source": "mma"}
    variants = caption_variants(band)
    assert variants[0] == band["text"] and len(variants) == len(set(variants)) > 4
    assert "flute, acoustic bass and drums" in variants and "upbeat band with drums" in variants
    assert not any(v in ("flute", "flute with drums", "acoustic bass with drums") for v in variants)
    solo = {"text": "solo flute melody, 90 bpm, D minor", "instruments": ["flute"], "tempo_bpm": 90, "source": "part"}
    assert {"solo flute", "moderate flute, no drums"} <= set(caption_variants(solo))
    assert caption_variants({"text": "my own loop", "source": "user"}) == ["my own loop"]
    bass = {"text": "solo electric bass line, 60 bpm, C major", "instruments": ["electric bass"], "tempo_bpm": 60,
            "measured_tempo_bpm": 121.0, "brightness": "dark", "source": "part"}
    bass_variants = caption_variants(bass)
    assert {"deep low electric bass", "deep low solo electric bass", "upbeat electric bass"} <= set(bass_variants)
    assert not any(v.startswith("slow") for v in bass_variants)  # the measured pulse wins over the score
    assert "high solo electric bass" in caption_variants({**bass, "brightness": "balanced"})
    with_drums = {**bass, "instruments": ["electric bass", "drums"]}
    assert not any("deep" in v for v in caption_variants(with_drums))  # drums, not pitch, set the centroid
    picks = [pick_caption(variants, random.Random(i)) for i in range(50)]
    assert picks == [pick_caption(variants, random.Random(i)) for i in range(50)]
    assert variants[0] in picks and len(set(picks)) > 3


def test_texture_words_say_how_busy_the_clip_sounds():
    from riffusion.dataset.captions import TEXTURE_WORDS, caption_variants, texture_words

    assert texture_words(1.0) == "sustained, long notes" and texture_words(3.0) == "" and texture_words(5.0) == "busy percussive"
    bounds = [bound for bound, _ in TEXTURE_WORDS]
    assert bounds == sorted(bounds) and bounds[-1] == float("inf")
    pad = {"text": "solo sustained string ensemble chords, 80 bpm, C major", "instruments": ["string ensemble"],
           "tempo_bpm": 80, "source": "part", "onset_strength": 1.2}
    assert {"sustained, long notes string ensemble", "moderate sustained, long notes music"} <= set(caption_variants(pad))
    groove = {"text": "funk, 110 bpm", "instruments": ["slap bass", "clavinet", "drums"], "tempo_bpm": 110,
              "source": "mma", "onset_strength": 5.0}
    assert "busy percussive slap bass and drums" in caption_variants(groove)
    middling = caption_variants({**groove, "onset_strength": 3.0})
    assert not any("busy" in v or "sustained" in v for v in middling)
    assert caption_variants({**groove, "onset_strength": None}) == middling  # not measured: no texture words
    assert caption_variants({"text": "my own loop", "source": "user", "onset_strength": 1.0}) == ["my own loop"]


def test_training_images_get_their_onset_strength(tmp_path):
    """Datasets built before the builder recorded ``onset_strength`` get it measured on loading."""
    import json as _json

    from riffusion.rhythm import onset_strength
    from riffusion.training.data import SpectrogramImages

    folder = tmp_path / "ds"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        pixels = rng.integers(0, 256, size=(SMALL_PARAMS.num_frequencies, SMALL_IMAGE_WIDTH), dtype=np.uint8)
        Image.fromarray(pixels).convert("RGB").save(folder / "images" / f"{i}.png")
        rows.append({"file_name": f"images/{i}.png", "text": f"clip {i}"})
    rows[1]["onset_strength"] = 9.5  # recorded at build time: kept
    (folder / "metadata.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in rows))
    (folder / "dataset.json").write_text(_json.dumps({"spectrogram_params": SMALL_PARAMS.to_dict()}))
    data = SpectrogramImages(folder, width=SMALL_IMAGE_WIDTH, height=SMALL_PARAMS.num_frequencies, params=SMALL_PARAMS)
    expected = onset_strength(np.asarray(Image.open(folder / "images" / "0.png").getchannel("R"), np.float32))
    assert data.rows[0]["onset_strength"] == pytest.approx(expected, abs=1e-3)
    assert data.rows[1]["onset_strength"] == 9.5
