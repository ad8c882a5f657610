"""riffusion.dataset.scores and .performance: corpus pieces performed and rendered with an exact beat grid;
riffusion.dataset.builder.merge_datasets."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from riffusion.dataset import performance, scores
from riffusion.dataset.presets import SMALL_PARAMS

HAVE_FLUIDSYNTH = shutil.which("fluidsynth") is not None
needs_fluidsynth = pytest.mark.skipif(not HAVE_FLUIDSYNTH, reason="fluidsynth not installed")

# A reel with a one-eighth pickup: the window must start on the first full bar's downbeat (the "d").
REEL = """X:1
T:Test -- Reel
M:4/4
L:1/8
K:D
A|d2f2 a2f2|g2e2 c2A2|d2f2 a2f2|e2c2 d4|
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "ryansMammoth").mkdir()
    (tmp_path / "ryansMammoth" / "TestReel.abc").write_text(REEL)
    return tmp_path


def reel_job(**changes) -> scores.ScoreJob:
    job = scores.ScoreJob(id="score-test-reel", collection="ryansMammoth", path="ryansMammoth/TestReel.abc",
                          number=None, ensemble="fiddle and flute", pulse_bpm=100, seconds=12.0, window=0, seed=0)
    return scores.ScoreJob(**{**job.__dict__, **changes})


def test_window_starts_on_the_first_downbeat_and_repeats_a_short_tune(corpus):
    window = scores.load_window(reel_job(), root=corpus)
    assert (window.numerator, window.denominator, window.beat_ql, window.pulse_ql) == (4, 4, 1.0, 1.0)
    first = window.notes[0]
    assert first.start == 0.0 and first.pitch == 74  # the d of bar 1, not the pickup A
    assert window.bars == 5  # 12 s at 100 bpm = 20 beats: the 4-bar tune, then its first bar again
    assert window.notes[-1].start < 5 * 4 and window.key == "D major" and "Reel" in window.title
    assert all(n.start * 2 == int(n.start * 2) for n in window.notes)  # every onset on the eighth grid


def test_performance_keeps_the_beat_grid_and_says_what_is_heard(corpus):
    job = reel_job(percussion=True)
    window = scores.load_window(job, root=corpus)
    played = scores.perform(job, window)
    assert played.tempo_bpm == 100 and played.beats_per_bar == 4 and played.quarter_bpm == 100
    seconds_per_ql = 60.0 / played.quarter_bpm
    melodic = [n for n in played.notes if n.channel != 9]
    lead = sorted((n for n in melodic if n.channel == 0), key=lambda n: n.start)
    assert len(lead) == len(window.notes)
    for score_note, note in zip(window.notes, lead):
        assert abs(note.start - score_note.start) * seconds_per_ql <= performance.MAX_SHIFT_S + 1e-9
    drums = [n for n in played.notes if n.channel == 9]
    assert drums and all(n.start == int(n.start) for n in drums)  # light percussion exactly on the beats
    assert set(played.programs.values()) >= {110, 73}  # fiddle and flute double the melody
    caption = played.caption
    assert caption.startswith("a traditional reel on fiddle and flute with light percussion")
    assert "moderate" in caption and "100 bpm" in caption and "4/4" in caption and "D major" in caption


def test_compound_metre_counts_dotted_quarter_beats(corpus):
    from riffusion.rhythm import grid_for_clip

    (corpus / "ryansMammoth" / "TestJig.abc").write_text("X:1\nT:Test -- Jig\nM:6/8\nL:1/8\nK:G\nGAB cBA|d3 d3|\n")
    job = reel_job(path="ryansMammoth/TestJig.abc", pulse_bpm=110)
    window = scores.load_window(job, root=corpus)
    played = scores.perform(job, window)
    assert (window.beat_ql, window.pulse_ql) == (0.5, 1.5)
    assert played.beats_per_bar == 2 and played.tempo_bpm == 110  # two dotted-quarter beats a bar
    assert played.quarter_bpm == pytest.approx(165)
    grid = grid_for_clip({"tempo_bpm": played.tempo_bpm, "beats_per_bar": played.beats_per_bar, "start_s": 0.0})
    assert grid.beat_s * grid.beats_per_bar == pytest.approx(3 * 60 / played.quarter_bpm)  # one 6/8 bar
    assert "a traditional jig" in played.caption and "110 bpm" in played.caption and "6/8" in played.caption


def test_humanise_is_seeded_and_bounded():
    notes = [scores.ScoreNote(start=i * 0.5, length=0.5, pitch=60 + i % 7, part=i % 2) for i in range(64)]
    kwargs = dict(quarter_bpm=120, beat_ql=1.0, bar_ql=4.0, channels={0: 0, 1: 1}, gains={0: 1.0, 1: 0.7})
    first = performance.humanise(notes, rng=random.Random(3), **kwargs)
    assert first == performance.humanise(notes, rng=random.Random(3), **kwargs)
    assert first != performance.humanise(notes, rng=random.Random(4), **kwargs)
    shifts = np.array([(p.start - n.start) * 0.5 for n, p in zip(notes, first)])  # seconds at 120 bpm
    assert np.abs(shifts).max() <= performance.MAX_SHIFT_S and np.abs(shifts).max() > 0.002
    velocity = {n.start: p.velocity for n, p in zip(notes, first)}
    downbeats = [velocity[t] for t in velocity if t % 4 == 0 and t % 16 != 0]
    offbeats = [velocity[t] for t in velocity if t % 1 == 0.5]
    assert np.mean(downbeats) > np.mean(offbeats)  # accents on the downbeats
    swung = performance.humanise(notes, rng=random.Random(3), swing=0.25, **kwargs)
    for n, straight, late in zip(notes, first, swung):
        assert late.start - straight.start == pytest.approx(0.125 if n.start % 1 == 0.5 else 0.0)


def test_humanise_and_room_reject_bad_options():
    with pytest.raises(ValueError, match="swing"):
        performance.humanise([], quarter_bpm=100, beat_ql=1, bar_ql=4, channels={}, gains={}, rng=random.Random(),
                             swing=0.7)
    with pytest.raises(ValueError, match="positive"):
        performance.humanise([], quarter_bpm=0, beat_ql=1, bar_ql=4, channels={}, gains={}, rng=random.Random())
    with pytest.raises(ValueError, match="wet"):
        performance.add_room(np.zeros(100), 22050, rt60_s=1.0, wet=1.5, rng=random.Random())
    with pytest.raises(ValueError, match="rt60_s"):
        performance.room_impulse(22050, rt60_s=0, rng=random.Random())


def test_room_keeps_length_and_adds_a_tail():
    click = np.zeros(22050, dtype=np.float32)
    click[100] = 1.0
    wet = performance.add_room(click, 22050, rt60_s=0.5, wet=0.3, rng=random.Random(0))
    assert wet.shape == click.shape and np.abs(wet).max() == pytest.approx(0.9, abs=1e-6)
    assert np.abs(wet[5000:]).max() > 0 and np.abs(wet[:100]).max() < 1e-6  # a tail after, nothing before


def test_jobs_spread_over_collections_reproducibly_and_licences_are_recorded():
    jobs = scores.score_jobs(seed=0, count=40)
    assert jobs == scores.score_jobs(seed=0, count=40) and len(jobs) == 40
    assert {j.collection for j in jobs} >= {"bach", "palestrina", "ryansMammoth", "oneills1850"}
    assert all(scores.is_public_domain(c) for c in scores.COLLECTIONS.values())
    author, licence, attribution = scores.score_license(jobs[0], scores.MUSESCORE_ATTRIBUTION)
    assert licence.startswith("public-domain composition") and "music21" in licence and "MIT" in licence
    assert author in attribution and jobs[0].path in attribution and "MuseScore General" in attribution


def test_score_selection_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match="non-commercial"):
        scores.list_pieces("essenFolksong")
    with pytest.raises(ValueError, match="unknown score collection 'nope'"):
        scores.score_jobs(collections=["nope"])
    empty = tmp_path / "empty"
    (empty / "bach").mkdir(parents=True)
    with pytest.raises(ValueError, match="no public-domain pieces"):
        scores.score_jobs(collections=["bach"], root=empty)
    with pytest.raises(ValueError, match="count"):
        scores.score_jobs(count=0)
    with pytest.raises(FileNotFoundError, match="NoSuchTune"):
        scores.load_window(reel_job(path="ryansMammoth/NoSuchTune.abc"), root=corpus)


@needs_fluidsynth
def test_render_puts_the_audio_on_the_score_grid(corpus, tmp_path):
    import librosa
    import soundfile

    from riffusion.rhythm import grid_for_clip

    wav, played, instruments, window = scores.render_score(reel_job(), tmp_path / "work", sample_rate=22050,
                                                           root=corpus)
    audio, rate = soundfile.read(str(wav), dtype="float32")
    assert audio.ndim == 1 and len(audio) / rate >= window.bars * 4 * 0.6 - 0.1
    assert {"fiddle", "flute"} <= set(instruments)
    onsets = librosa.onset.onset_detect(y=audio, sr=rate, units="time", hop_length=128)
    eighth_s = 0.3
    assert len(onsets) >= 10
    off_grid = np.abs(onsets / eighth_s - np.round(onsets / eighth_s)) * eighth_s
    assert np.median(off_grid) < 0.04  # detected onsets sit on the score's eighth-note grid
    grid = grid_for_clip({"tempo_bpm": played.tempo_bpm, "beats_per_bar": played.beats_per_bar, "start_s": 0.0})
    assert grid.offset_s == 0.0 and grid.bpm == 100


# --- merging built datasets -----------------------------------------------------------------------------

def tiny_dataset(root: Path, name: str, freq: float) -> Path:
    from riffusion.audio import write_audio
    from riffusion.dataset import DatasetConfig, build_dataset

    folder = root / f"{name}-audio"
    folder.mkdir()
    t = np.arange(int(6 * 22050)) / 22050
    write_audio(folder / f"{name}.wav", (0.3 * np.sin(2 * np.pi * freq * t))[None].astype(np.float32), 22050)
    (folder / f"{name}.txt").write_text(f"a {name} tone")
    return build_dataset(root / name, DatasetConfig(params=SMALL_PARAMS, sources=(), user_folder=str(folder)),
                         progress=False, log=lambda m: None).out_dir


def test_merge_combines_images_rows_counts_and_credits(tmp_path):
    from riffusion.dataset.builder import load_metadata, merge_datasets

    a, b = tiny_dataset(tmp_path, "low", 110.0), tiny_dataset(tmp_path, "high", 880.0)
    # a second source kind in b, as a build of only new sources has
    rows = [json.loads(line) for line in (b / "metadata.jsonl").read_text().splitlines()]
    (b / "images" / "user").rename(b / "images" / "other")
    rows = [{**r, "file_name": r["file_name"].replace("images/user/", "images/other/"), "source": "other"} for r in rows]
    (b / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    description = json.loads((b / "dataset.json").read_text())
    (b / "dataset.json").write_text(json.dumps({**description, "counts": {"other": len(rows)}}))
    result = merge_datasets([a, b], tmp_path / "both", log=lambda m: None)
    merged, info = load_metadata(result.out_dir)
    assert len(merged) == result.num_images == 2 and info["counts"] == {"other": 1, "user": 1}
    assert [m["folder"] for m in info["merged_from"]] == ["low", "high"]
    assert all((result.out_dir / r["file_name"]).is_file() for r in merged)
    assert {r["text"] for r in merged} == {"a low tone", "a high tone"}
    assert (result.out_dir / "manifest.csv").read_text().count("\n") == 3
    assert "user-provided" in (result.out_dir / "ATTRIBUTION.md").read_text()


def test_merge_errors(tmp_path):
    from riffusion.dataset.builder import merge_datasets

    a = tiny_dataset(tmp_path, "low", 110.0)
    with pytest.raises(ValueError, match="at least two"):
        merge_datasets([a], tmp_path / "x")
    with pytest.raises(ValueError, match="in both"):
        merge_datasets([a, a], tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="not a built dataset"):
        merge_datasets([a, tmp_path], tmp_path / "x")
    other = tmp_path / "other"
    shutil.copytree(a, other)
    description = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps({**description, "image_width": 512}))
    with pytest.raises(ValueError, match="geometry"):
        merge_datasets([a, other], tmp_path / "x")
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_source_table_and_the_merge_and_table_commands(tmp_path):
    import os
    import subprocess
    import sys

    from riffusion.dataset.builder import format_source_table, source_table

    a, b = tiny_dataset(tmp_path, "low", 110.0), tiny_dataset(tmp_path, "high", 880.0)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")
    merged = tmp_path / "merged"
    result = subprocess.run([sys.executable, "-m", "riffusion", "dataset", "merge", str(a), str(b), "--out",
                             str(merged)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    table = source_table(merged)
    assert table[0] == {"source": "user", "licenses": ["user-provided"], "files": 2, "clips": 2,
                        "hours": pytest.approx(2 * 5.1 / 3600, rel=0.01)}
    assert table[-1]["source"] == "total" and table[-1]["clips"] == 2
    assert format_source_table(table).splitlines()[2].startswith("| user | user-provided | 2 | 2 | 0.00 |")
    result = subprocess.run([sys.executable, "-m", "riffusion", "dataset", "table", str(merged)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "| user | user-provided | 2 | 2 |" in result.stdout
    with pytest.raises(FileNotFoundError, match="not a built dataset"):
        source_table(tmp_path)


def test_caption_variants_of_a_score_clip_name_genre_metre_and_instruments():
    from riffusion.dataset.captions import caption_variants

    row = {"text": "a baroque chorale by Bach for string quartet, slow, 66 bpm, 4/4, G major", "source": "scores",
           "instruments": ["violin", "viola", "cello"], "families": ["strings"], "tempo_bpm": 66.0,
           "key": "G major", "metre": "4/4"}
    variants = caption_variants(row)
    assert variants[0] == row["text"]
    assert {"baroque chorale", "slow baroque chorale in 4/4", "baroque chorale by Bach for string quartet in G major",
            "slow baroque chorale by Bach for string quartet", "violin, viola and cello"} <= set(variants)


def test_scores_without_music21_is_one_line_naming_the_extra(tmp_path):
    # A Python where music21 cannot be imported (sys.modules[name] = None makes every import of it fail).
    import subprocess
    import sys

    code = ("import sys; sys.modules['music21'] = None; from riffusion.cli import main; "
            f"sys.exit(main(['dataset', 'build', '--out', {str(tmp_path / 'ds')!r}, '--sources', 'scores', "
            "'--scores', '2']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == f"riffusion dataset: error: {scores.MUSIC21_MISSING}"
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "ds").exists()
