"""Named spectrogram geometries for datasets and models."""

from __future__ import annotations

import json
from pathlib import Path

from riffusion.spectrogram_params import SpectrogramParams

#: The shipped small model's geometry: 22.05 kHz, one column per 20 ms, an 80 ms window (75 % overlap,
#: an 1764-point FFT: cheap phase reconstruction), 64 mel rows over 0-10 kHz. 256 columns = 5.1 s.
SMALL_PARAMS = SpectrogramParams(
    sample_rate=22050,
    step_size_ms=20,
    window_duration_ms=80,
    padded_duration_ms=80,
    num_frequencies=64,
    min_frequency=0,
    max_frequency=10000,
)
SMALL_IMAGE_WIDTH = 256

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
