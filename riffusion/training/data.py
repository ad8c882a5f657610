"""Training data: a built dataset folder in memory, with reproducible, resumable batch order."""

from __future__ import annotations

import re
import typing as T
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from riffusion.dataset.builder import load_metadata
from riffusion.rhythm import onset_strength
from riffusion.spectrogram_params import SpectrogramParams


class SpectrogramImages:
    """All images of a dataset as one uint8 tensor (N, 1, height, width) plus their captions.

    Parameters
    ----------
    data_dir : path
        A folder made by ``riffusion dataset build`` (or any imagefolder with metadata.jsonl/csv).
    width, height : int
        The model's image size. Images of another size are resized (bilinear) to it, with a warning once.
    params : SpectrogramParams, optional
        The model's parameters; when the dataset says its own (dataset.json or EXIF) and they differ in
        anything but size, that is an error: a model must not learn another geometry by accident.
    """

    def __init__(self, data_dir: T.Union[str, Path], *, width: int, height: int,
                 params: T.Optional[SpectrogramParams] = None, log: T.Callable[[str], None] = print):
        from riffusion.image import params_from_image

        data_dir = Path(data_dir)
        rows, description = load_metadata(data_dir)
        if not rows:
            raise ValueError(f"dataset {str(data_dir)!r} has no rows")
        if params is not None:
            dataset_params = None
            if "spectrogram_params" in description:
                dataset_params = SpectrogramParams.from_dict(description["spectrogram_params"])
            else:
                with Image.open(data_dir / rows[0]["file_name"]) as first:
                    dataset_params = params_from_image(first, warn=False)
            if _geometry(dataset_params) != _geometry(params):
                raise ValueError(
                    f"dataset {str(data_dir)!r} was built with spectrogram params {dataset_params} but the model "
                    f"uses {params}; rebuild it with `riffusion dataset build --params <model folder>`"
                )
        pixels = np.empty((len(rows), 1, height, width), dtype=np.uint8)
        resized = 0
        for i, row in enumerate(rows):
            path = data_dir / row["file_name"]
            with Image.open(path) as image:
                grey = image.convert("RGB").getchannel("R")
                if grey.size != (width, height):
                    grey = grey.resize((width, height), Image.BILINEAR)
                    resized += 1
                pixels[i, 0] = np.asarray(grey)
        if resized:
            log(f"resized {resized} of {len(rows)} images to the model's {width}x{height}")
        self.pixels = torch.from_numpy(pixels)
        # how busy each clip sounds, for caption variants' texture words; measured here for datasets built
        # before the builder recorded it
        for i, row in enumerate(rows):
            if row.get("onset_strength") is None:
                row["onset_strength"] = round(onset_strength(pixels[i, 0]), 3)
        self.captions = [str(row["text"]) for row in rows]
        self.rows = rows
        self.description = description
        self._grids: T.Optional[list] = None  # beat grids, made on first use (see beat_grids)

    def __len__(self) -> int:
        return len(self.captions)

    def batch(self, indices: T.Sequence[int]) -> torch.Tensor:
        """Images of ``indices`` as float (B, 1, H, W) in [-1, 1]."""
        return self.pixels[list(indices)].float() / 127.5 - 1.0

    def beat_grids(self, *, column_s: float) -> list:
        """Each image's :class:`~riffusion.rhythm.BeatGrid` (None where it has no clear pulse): exact for
        rendered MIDI (rows with ``tempo_bpm``, ``beats_per_bar``, ``start_s``), else estimated from the
        image. Computed once."""
        if self._grids is None:
            from riffusion.rhythm import estimate_beat_grid, grid_for_clip

            self._grids = [grid_for_clip(row) or estimate_beat_grid(self.pixels[i, 0].numpy(), column_s=column_s)
                           for i, row in enumerate(self.rows)]
        return self._grids

    def rhythm(self, indices: T.Sequence[int], *, column_s: float) -> torch.Tensor:
        """Rhythm features (:func:`riffusion.rhythm.rhythm_features`) of ``indices``: (B, 4, W) float."""
        from riffusion.rhythm import rhythm_features

        grids = self.beat_grids(column_s=column_s)
        width = self.pixels.shape[-1]
        return torch.from_numpy(np.stack([rhythm_features(grids[i], num_columns=width, column_s=column_s)
                                          for i in indices]))


def _geometry(p: SpectrogramParams) -> tuple:
    return (p.sample_rate, p.stereo, p.step_size_ms, p.window_duration_ms, p.padded_duration_ms,
            p.num_frequencies, p.min_frequency, p.max_frequency, p.power_for_image)


def batch_indices(step: int, *, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> list[int]:
    """Indices of the batch at global ``step``: epochs are seeded permutations, so the order is a pure
    function of (seed, step) and a resumed run sees exactly the batches it would have seen."""
    per_step = batch_size * world
    start = step * per_step + rank * batch_size
    out = []
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, size)
        out.append(int(_permutation(seed, epoch, size)[offset]))
    return out


def parse_oversample(spec: str) -> tuple[str, int]:
    """``"REGEX=FACTOR"`` -> (regex, factor); the last ``=`` separates them, so the regex may contain ``=``."""
    pattern, sep, factor = spec.rpartition("=")
    if not sep or not pattern:
        raise ValueError(f"oversample rule {spec!r} must look like REGEX=FACTOR, e.g. 'sustained=3'")
    try:
        count = int(factor)
    except ValueError:
        raise ValueError(f"oversample factor in {spec!r} must be a whole number >= 1, got {factor!r}") from None
    if count < 1:
        raise ValueError(f"oversample factor in {spec!r} must be a whole number >= 1, got {count}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"oversample pattern {pattern!r} is not a regular expression: {exc}") from None
    return pattern, count


def oversampled_order(captions: T.Sequence[T.Union[str, T.Sequence[str]]],
                      rules: T.Sequence[tuple[str, int]]) -> list[int]:
    """Clip indices with each clip repeated as often as the rules say, for one epoch.

    ``captions`` holds one caption per clip, or each clip's list of captions (the full caption and its
    short variants, when training on variants). A clip matches a rule when any of its captions matches the
    rule's regular expression (``re.search``, case-insensitive); it then appears that rule's factor of
    times per epoch; with several matching rules, the largest factor wins; other clips appear once. It is
    how a few rare kinds of clip (drum-free sustained pads, very slow or very fast tempos) get seen more
    often without rebuilding the dataset; matching the variants reaches the measured tempo words
    ("slow ...", "very fast ...") that full captions do not carry.
    """
    compiled = [(re.compile(pattern, re.IGNORECASE), factor) for pattern, factor in rules]
    order: list[int] = []
    for i, texts in enumerate(captions):
        texts = [texts] if isinstance(texts, str) else list(texts)
        factor = max([f for regex, f in compiled if any(regex.search(t) for t in texts)], default=1)
        order.extend([i] * factor)
    return order


_PERM_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def _permutation(seed: int, epoch: int, size: int) -> np.ndarray:
    key = (seed, epoch, size)
    if key not in _PERM_CACHE:
        if len(_PERM_CACHE) > 4:
            _PERM_CACHE.clear()
        _PERM_CACHE[key] = np.random.default_rng([seed, epoch]).permutation(size)
    return _PERM_CACHE[key]
