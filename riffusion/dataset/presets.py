"""Named spectrogram geometries for datasets and models."""

from __future__ import annotations

import json
from pathlib import Path

from riffusion.small.config import SMALL_IMAGE_WIDTH, SMALL_PARAMS  # the small models own their geometry
from riffusion.spectrogram_params import SpectrogramParams

PRESETS: dict[str, tuple[SpectrogramParams, int]] = {
    "small": (SMALL_PARAMS, SMALL_IMAGE_WIDTH),
    "riffusion": (SpectrogramParams(), 512),
}


def resolve_params(spec: str) -> tuple[SpectrogramParams, int]:
    """``"small"``, ``"riffusion"``, a JSON file of SpectrogramParams fields (optionally with
    ``"image_width"``), or a model folder with ``spectrogram_params.json`` -> (params, image width)."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.is_dir():
        path = path / "spectrogram_params.json"
    if not path.is_file():
        raise ValueError(
            f"unknown spectrogram params {spec!r}: expected one of {sorted(PRESETS)}, a JSON file, or a model "
            "folder containing spectrogram_params.json"
        )
    data = json.loads(path.read_text())
    width = int(data.pop("image_width", 512))
    return SpectrogramParams.from_dict(data), width
