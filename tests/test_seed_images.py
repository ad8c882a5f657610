"""The seed image library: ids, metadata (whole bars), masks, model folders, errors, reproducibility."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from riffusion.image import params_from_image
from riffusion.seed_images import (
    SEED_IMAGES_DIR,
    find_seed_image,
    list_seed_images,
    load_mask,
    load_seed_image,
    tile_image,
)
from riffusion.spectrogram_params import SpectrogramParams

ORIGINAL_MASKS = {
    "mask_beat_lines_80", "mask_gradient_dark", "mask_gradient_top_70", "mask_gradient_top_fifth_75",
    "mask_top_third_75", "mask_top_third_95",
}
CLIP_S = SpectrogramParams().num_samples(512) / 44100  # 5.11 s


def test_at_least_five_seeds_and_the_six_masks():
    seeds = list_seed_images(kind="seed")
    masks = {m.id for m in list_seed_images(kind="mask")}
    assert len(seeds) >= 5
    assert seeds[0].id == "og_beat"
    assert ORIGINAL_MASKS <= masks


@pytest.mark.parametrize("entry", list_seed_images(kind="seed"), ids=lambda e: e.id)
def test_seeds_are_whole_bars_across_the_clip(entry):
    assert entry.tempo_bpm and entry.bars and entry.beats_per_bar
    beats = entry.tempo_bpm / 60 * CLIP_S
    assert beats == pytest.approx(entry.bars * entry.beats_per_bar, abs=1e-3)
    image = load_seed_image(entry.id)
    assert image.size == (512, 512) and image.mode == "RGB"
    assert params_from_image(image, warn=False) == SpectrogramParams()
    assert entry.description


def test_masks_are_grey_with_both_keep_and_repaint():
    for mask_id in ORIGINAL_MASKS:
        pixels = np.asarray(load_mask(mask_id).convert("L"))
        assert pixels.shape == (512, 512)
        assert pixels.min() == 0 and pixels.max() > 100, mask_id


def test_top_third_mask_repaints_only_the_top():
    pixels = np.asarray(load_mask("mask_top_third_95").convert("L"))
    assert pixels[:100].min() > 200 and pixels[-300:].max() == 0


def test_file_names_work_as_ids():
    assert find_seed_image("og_beat.png").id == "og_beat"


@pytest.mark.parametrize("bad", ["../og_beat", "/etc/passwd", "sub/og_beat", ".hidden", "a\\b"])
def test_path_like_ids_are_rejected(bad):
    with pytest.raises(ValueError, match="looks like a path"):
        load_seed_image(bad)


def test_unknown_ids_list_the_choices():
    with pytest.raises(LookupError, match="unknown seed image 'nope'; available: og_beat"):
        load_seed_image("nope")
    with pytest.raises(LookupError, match="unknown mask 'og_beat'"):
        load_mask("og_beat")
    with pytest.raises(ValueError, match="non-empty"):
        load_seed_image("")


def test_model_folder_seeds_come_first_and_are_usable_by_file_name(tmp_path):
    folder = tmp_path / "model" / "seed_images"
    folder.mkdir(parents=True)
    Image.new("RGB", (256, 64), (10, 10, 10)).save(folder / "og_beat.png")
    Image.new("RGB", (256, 64), (200, 200, 200)).save(folder / "my_loop.png")
    (folder / "seed_images.json").write_text(json.dumps([
        {"id": "og_beat", "file": "og_beat.png", "tempo_bpm": 94.0, "bars": 2, "kind": "seed"},
    ]))
    model = tmp_path / "model"
    assert load_seed_image("og_beat", model).size == (256, 64)
    assert load_seed_image("my_loop", model).getpixel((0, 0)) == (200, 200, 200)
    assert load_seed_image("my_loop.png", model).size == (256, 64)
    ids = [s.id for s in list_seed_images(model)]
    assert ids[:2] == ["og_beat", "my_loop"] and "vibes" in ids  # the library is still there

    class Pipeline:  # anything with .path works: a loaded pipeline
        path = model

    assert load_seed_image("my_loop", Pipeline()).size == (256, 64)
    with pytest.raises(LookupError):
        load_seed_image("my_loop")  # not without the model


def test_tiling_repeats_the_loop():
    image = load_seed_image("og_beat")
    wide = load_seed_image("og_beat", width=1280)
    assert wide.size == (1280, 512)
    a = np.asarray(wide)
    assert np.array_equal(a[:, :512], a[:, 512:1024])
    assert np.array_equal(a[:, 1024:], np.asarray(image)[:, :256])
    assert tile_image(image, 100).size == (100, 512)
    with pytest.raises(ValueError, match="positive"):
        tile_image(image, 0)


def test_script_reproduces_the_shipped_images(tmp_path):
    subprocess.run([sys.executable, "scripts/make_seed_images.py", "--out-dir", str(tmp_path)], check=True,
                   capture_output=True, cwd=SEED_IMAGES_DIR.parents[1], timeout=120)
    shipped = json.loads((SEED_IMAGES_DIR / "seed_images.json").read_text())
    assert json.loads((tmp_path / "seed_images.json").read_text()) == shipped
    for row in shipped:
        new = np.asarray(Image.open(tmp_path / row["file"]).convert("RGB"), dtype=np.int16)
        old = np.asarray(Image.open(SEED_IMAGES_DIR / row["file"]).convert("RGB"), dtype=np.int16)
        # Same sound up to float noise: numpy/torch builds differ in their last bits, and truncation to
        # 8 bits after the 0.25 power turns such noise into a step of 1-2 grey levels in a few quiet pixels.
        diff = np.abs(new - old)
        assert diff.max() <= 3 and (diff > 1).mean() < 1e-3 and diff.mean() < 0.2, (
            f"{row['id']} changed (max {diff.max()}, {(diff > 1).sum()} pixels off by more than 1): "
            "rerun scripts/make_seed_images.py"
        )


def test_a_catalogued_loop_gives_its_grid_from_a_downbeat_at_the_start():
    from riffusion.rhythm import BeatGrid
    from riffusion.seed_images import seed_beat_grid

    entry = find_seed_image("waltz")
    grid = seed_beat_grid("waltz", load_seed_image("waltz"), column_s=0.01)
    assert grid == BeatGrid(bpm=entry.tempo_bpm, beats_per_bar=3, offset_s=0.0)
    with pytest.raises(LookupError, match="unknown seed image"):
        seed_beat_grid("no-such-loop", load_seed_image("waltz"), column_s=0.01)


def test_private_lookup_finds_unlisted_ids(tmp_path):
    from riffusion.seed_images import SeedImage, add_private_lookup, remove_private_lookup

    source = find_seed_image("og_beat")
    entry = SeedImage(id="upload-abc", path=source.path, tempo_bpm=120.0, bars=2, kind="seed", beats_per_bar=4)

    def lookup(image_id):
        return entry if image_id == entry.id else None

    add_private_lookup(lookup)
    try:
        assert find_seed_image("upload-abc") == entry
        assert load_seed_image("upload-abc").size == (512, 512)
        assert "upload-abc" not in [s.id for s in list_seed_images()]
        with pytest.raises(LookupError, match="unknown seed image 'upload-abd'") as error:
            find_seed_image("upload-abd")
        assert "upload-abc" not in str(error.value)  # never named to others
    finally:
        remove_private_lookup(lookup)
    with pytest.raises(LookupError):
        find_seed_image("upload-abc")
