"""Seed spectrograms and masks for img2img, with their tempo and bar count.

The images in this folder are rendered from loops synthesised by ``scripts/make_seed_images.py``; each
seed is a whole number of bars across the 5.11 s clip, so clips made from it loop on the beat. Masks are
grey images: white = repaint, black = keep the seed image.

A model folder may bring its own seed images (``<model>/seed_images/*.png``, with an optional
``seed_images.json`` of the same shape as this folder's). Those come first: a model made for another image
geometry ships seeds of its own size under the same ids (``og_beat``), and any other file there is usable
by its name (``"my_loop"`` or ``"my_loop.png"``).

Private seed loops (a server's uploads) are found by id through lookups added with
:func:`add_private_lookup`; they are never listed, so only whoever holds an id can use it.

>>> from riffusion.seed_images import list_seed_images, load_seed_image
>>> [s.id for s in list_seed_images() if s.kind == "seed"][:2]
['og_beat', 'agile']
>>> load_seed_image("og_beat").size
(512, 512)
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing as T
from pathlib import Path

from PIL import Image

from riffusion.image import copy_exif

SEED_IMAGES_DIR = Path(__file__).resolve().parent
DEFAULT_SEED_IMAGE = "og_beat"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

ModelLike = T.Union[None, str, os.PathLike, T.Any]  # a pipeline (with .path), a model folder, or None


@dataclasses.dataclass(frozen=True)
class SeedImage:
    """One seed image or mask: its id, file, and (seeds) tempo and bar count."""

    id: str
    path: Path
    tempo_bpm: T.Optional[float]
    bars: T.Optional[int]
    kind: str  # "seed" or "mask"
    description: str = ""
    beats_per_bar: T.Optional[int] = None

    def to_dict(self) -> dict[str, T.Any]:
        """JSON-able metadata (without the file path)."""
        return {
            "id": self.id, "kind": self.kind, "tempo_bpm": self.tempo_bpm, "bars": self.bars,
            "beats_per_bar": self.beats_per_bar, "description": self.description,
        }


def _model_folder(model: ModelLike) -> T.Optional[Path]:
    if model is None:
        return None
    path = getattr(model, "path", model)
    if path is None:
        return None
    path = Path(path)
    if path.is_file():  # a single-file model: seed images beside it are not looked for
        return None
    folder = path / "seed_images"
    return folder if folder.is_dir() else None


def _read_folder(folder: Path) -> dict[str, SeedImage]:
    """Entries of a seed image folder: its ``seed_images.json`` rows, then any other image by file name."""
    entries: dict[str, SeedImage] = {}
    metadata = folder / "seed_images.json"
    if metadata.is_file():
        for row in json.loads(metadata.read_text()):
            file = folder / row.get("file", f"{row['id']}.png")
            if not file.is_file():
                continue
            kind = row.get("kind") or ("mask" if row["id"].startswith("mask") else "seed")
            entries[row["id"]] = SeedImage(
                id=row["id"], path=file, tempo_bpm=row.get("tempo_bpm"), bars=row.get("bars"), kind=kind,
                description=row.get("description", ""), beats_per_bar=row.get("beats_per_bar"),
            )
    listed = {entry.path.name for entry in entries.values()}
    for file in sorted(folder.iterdir()):
        if file.suffix.lower() in IMAGE_SUFFIXES and file.name not in listed and file.stem not in entries:
            kind = "mask" if file.stem.startswith("mask") else "seed"
            entries[file.stem] = SeedImage(id=file.stem, path=file, tempo_bpm=None, bars=None, kind=kind)
    return entries


PrivateLookup = T.Callable[[str], T.Optional["SeedImage"]]
_PRIVATE_LOOKUPS: list[PrivateLookup] = []


def add_private_lookup(lookup: PrivateLookup) -> None:
    """Let :func:`find_seed_image` (and so generation) find ids that ``lookup`` knows (it returns the entry
    or None); such entries are not listed by :func:`list_seed_images`. Undo with
    :func:`remove_private_lookup`."""
    _PRIVATE_LOOKUPS.append(lookup)


def remove_private_lookup(lookup: PrivateLookup) -> None:
    """Stop consulting ``lookup`` (added by :func:`add_private_lookup`); no error if it was not there."""
    if lookup in _PRIVATE_LOOKUPS:
        _PRIVATE_LOOKUPS.remove(lookup)


def _private(image_id: str) -> T.Optional[SeedImage]:
    for lookup in list(_PRIVATE_LOOKUPS):
        entry = lookup(image_id)
        if entry is not None:
            return entry
    return None


def _catalogue(model: ModelLike) -> dict[str, SeedImage]:
    entries = {}
    folder = _model_folder(model)
    if folder is not None:
        entries.update(_read_folder(folder))
    for key, value in _read_folder(SEED_IMAGES_DIR).items():
        entries.setdefault(key, value)
    return entries


def list_seed_images(model: ModelLike = None, *, kind: T.Optional[str] = None) -> list[SeedImage]:
    """Seed images and masks available (the model folder's first), optionally only one ``kind``."""
    if kind not in (None, "seed", "mask"):
        raise ValueError(f"kind must be 'seed', 'mask' or None, got {kind!r}")
    return [entry for entry in _catalogue(model).values() if kind is None or entry.kind == kind]


def _check_id(image_id: str, what: str) -> str:
    if not isinstance(image_id, str) or not image_id.strip():
        raise ValueError(f"{what} id must be a non-empty name, got {image_id!r}")
    if "/" in image_id or "\\" in image_id or image_id.startswith(".") or "\x00" in image_id:
        raise ValueError(
            f"{what} id {image_id!r} looks like a path; ids are names such as {DEFAULT_SEED_IMAGE!r} "
            f"(see `list_seed_images()`)"
        )
    return image_id


def find_seed_image(image_id: str, model: ModelLike = None, *, kind: T.Optional[str] = None) -> SeedImage:
    """The entry of an id (or a file name such as ``"og_beat.png"``); LookupError naming the ids there are."""
    what = "mask" if kind == "mask" else "seed image"
    _check_id(image_id, what)
    catalogue = _catalogue(model)
    entry = catalogue.get(image_id)
    if entry is None:
        stem, suffix = os.path.splitext(image_id)
        if suffix.lower() in IMAGE_SUFFIXES:
            entry = catalogue.get(stem)
    if entry is None:
        entry = _private(image_id)
    if entry is None or (kind is not None and entry.kind != kind):
        choices = [e.id for e in catalogue.values() if kind is None or e.kind == kind]
        raise LookupError(f"unknown {what} {image_id!r}; available: {', '.join(choices)}")
    return entry


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy() if image.mode == "RGB" else copy_exif(image, image.convert("RGB"))


def load_seed_image(image_id: str = DEFAULT_SEED_IMAGE, model: ModelLike = None, *, width: T.Optional[int] = None) -> Image.Image:
    """The seed spectrogram ``image_id`` as an RGB image (EXIF kept).

    Parameters
    ----------
    image_id : str
        An id from :func:`list_seed_images` or a file name in the model's ``seed_images/`` folder.
    model : pipeline, path or None
        Look in this model's folder first.
    width : int, optional
        Columns wanted: the loop is repeated (or cut) to this width. Seeds are whole bars, so a repeated
        seed stays on the beat; wider images make longer clips.
    """
    image = _open(find_seed_image(image_id, model, kind="seed").path)
    return tile_image(image, width) if width is not None else image


def seed_beat_grid(image_id: str, image: Image.Image, model: ModelLike = None, *, column_s: float):
    """The beat grid of seed loop ``image_id`` as loaded (``image``, possibly tiled): a catalogued loop is
    whole bars from a downbeat at its start, at its catalogued tempo and metre; a loop without a tempo gets
    an estimated grid (:func:`riffusion.rhythm.estimate_beat_grid`; None when that finds no pulse)."""
    import numpy as np

    from riffusion.rhythm import BeatGrid, estimate_beat_grid

    entry = find_seed_image(image_id, model, kind="seed")
    if entry.tempo_bpm:
        return BeatGrid(bpm=float(entry.tempo_bpm), beats_per_bar=entry.beats_per_bar, offset_s=0.0)
    pixels = np.asarray(image.convert("RGB").getchannel("R"), dtype=np.float32)
    return estimate_beat_grid(pixels, column_s=column_s)


def load_mask(image_id: str, model: ModelLike = None, *, width: T.Optional[int] = None) -> Image.Image:
    """The mask ``image_id`` (white = repaint, black = keep), RGB, repeated or cut to ``width`` if given."""
    image = _open(find_seed_image(image_id, model, kind="mask").path)
    return tile_image(image, width) if width is not None else image


def tile_image(image: Image.Image, width: int) -> Image.Image:
    """Repeat ``image`` side by side (or cut it) to ``width`` columns; EXIF kept."""
    width = int(width)
    if width < 1:
        raise ValueError(f"width must be a positive number of columns, got {width}")
    if width == image.width:
        return image
    out = Image.new(image.mode, (width, image.height))
    for x in range(0, width, image.width):
        out.paste(image, (x, 0))
    return copy_exif(image, out)
