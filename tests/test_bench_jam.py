"""bench/bench_jam.py's reference: the steering statistics between real clips of a built dataset."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_jam as bj  # noqa: E402
from riffusion.dataset.presets import SMALL_PARAMS  # noqa: E402
from riffusion.image import attach_exif, image_from_waveform, save_image  # noqa: E402


def _dataset(folder: Path) -> Path:
    sr = SMALL_PARAMS.sample_rate
    t = np.arange(int(5.1 * sr)) / sr
    rng = np.random.default_rng(0)
    clicks = rng.normal(size=t.size) * np.exp(-np.mod(t, 0.25) / 0.02)
    sounds = {
        "solo low bassoon melody, 90 bpm": ("part", None, np.sin(2 * np.pi * 110 * t)),
        "solo high flute melody, 90 bpm": ("part", None, np.sin(2 * np.pi * 1760 * t)),
        "solo sustained organ chords, 90 bpm": ("part", None, sum(np.sin(2 * np.pi * f * t) for f in (262, 330, 392))),
        "drums playing a rock beat, 90 bpm": ("part", ["drums"], clicks),
    }
    (folder / "images").mkdir(parents=True)
    rows = []
    for i, (text, (source, instruments, audio)) in enumerate(sounds.items()):
        image = attach_exif(image_from_waveform((0.3 * audio / np.abs(audio).max()).astype(np.float32), sr, SMALL_PARAMS),
                            SMALL_PARAMS)
        save_image(image, folder / "images" / f"{i}.png")
        rows.append({"file_name": f"images/{i}.png", "text": text, "source": source, "instruments": instruments})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_reference_moves_both_statistics_between_clearly_different_clips(tmp_path):
    found = {name: (share, median) for name, _, share, median in bj.reference(str(_dataset(tmp_path / "ds")),
                                                                                ratio=1.5, pairs=4)}
    assert set(found) == {"centroid", "flux"}
    assert found["centroid"][0] == 1.0 and found["centroid"][1] > 4  # 110 Hz against 1760 Hz
    assert found["flux"][1] > 1.0  # clicks bring more new energy than held chords


def test_reference_needs_both_kinds(tmp_path):
    folder = _dataset(tmp_path / "ds")
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if "drums" not in r["text"]))
    with pytest.raises(SystemExit, match="no clips of 'solo sustained chords' or 'drum parts'"):
        bj.reference(str(folder), ratio=1.5, pairs=2)


HAVE_RENDERER = shutil.which("fluidsynth") is not None and Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file()


@pytest.mark.skipif(not HAVE_RENDERER, reason="fluidsynth + fluid-soundfont-gm not installed")
def test_audio_reference_measures_rendered_kinds_as_played_and_through_the_format(tmp_path):
    rows = bj.audio_reference(tmp_path, ratio=1.5, clips=1)
    assert [name for name, *_ in rows] == [name for name, *_ in bj.AUDIO_REFERENCE_PAIRS]
    for _name, kinds, share, median, share_format, median_format in rows:
        assert " < " in kinds
        assert 0.0 <= share <= 1.0 and 0.0 <= share_format <= 1.0
        assert median > 0 and median_format > 0
    centroid = rows[0]
    assert centroid[3] > 1.5 and centroid[5] > 1.5  # a high melody is brighter than a low one, either way


def test_audio_reference_refuses_no_clips(tmp_path):
    with pytest.raises(ValueError, match="need clips >= 1, got 0"):
        bj.audio_reference(tmp_path, ratio=1.5, clips=0)
