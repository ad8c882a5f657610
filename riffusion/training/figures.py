"""Figures for a model card, drawn with PIL only: the loss curve and a grid of labelled spectrograms."""

from __future__ import annotations

import json
import typing as T
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def loss_curve(log_path: T.Union[str, Path], out_path: T.Union[str, Path], *, width: int = 640, height: int = 320,
               window: int = 50) -> Path:
    """Plot the moving average of the training loss from a run's ``log.jsonl`` (log-scale y axis)."""
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{str(log_path)!r} has no training steps")
    steps = np.array([r["step"] for r in rows], dtype=float)
    loss = np.array([r["loss"] for r in rows], dtype=float)
    kernel = np.ones(min(window, len(loss))) / min(window, len(loss))
    smooth = np.convolve(loss, kernel, mode="valid")
    xs = steps[len(steps) - len(smooth):]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 60, width - 20, 20, height - 40
    lo, hi = np.log10(max(smooth.min(), 1e-6)), np.log10(max(smooth.max(), 1e-6))
    hi = hi if hi > lo else lo + 1
    def to_xy(x, y):
        px = left + (x - xs[0]) / max(xs[-1] - xs[0], 1) * (right - left)
        py = bottom - (np.log10(max(y, 1e-6)) - lo) / (hi - lo) * (bottom - top)
        return float(px), float(py)
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.line([to_xy(x, y) for x, y in zip(xs, smooth)], fill=(30, 90, 200), width=2)
    draw.text((left, bottom + 8), f"step {int(xs[0])}", fill="black")
    draw.text((right - 80, bottom + 8), f"step {int(xs[-1])}", fill="black")
    draw.text((4, top), f"{10 ** hi:.3f}", fill="black")
    draw.text((4, bottom - 10), f"{10 ** lo:.3f}", fill="black")
    draw.text((left + 8, top + 6), f"training loss (moving average of {len(kernel)} steps)", fill="black")
    image.save(out_path)
    return Path(out_path)


def spectrogram_grid(images: T.Sequence[Image.Image], labels: T.Sequence[str], out_path: T.Union[str, Path], *,
                     scale: int = 2) -> Path:
    """Stack spectrogram images vertically with a text label above each."""
    if len(images) != len(labels) or not images:
        raise ValueError("need one label per image and at least one image")
    w = max(im.width for im in images) * scale
    rows = [im.convert("RGB").resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    height = sum(r.height + 18 for r in rows)
    grid = Image.new("RGB", (w, height), "white")
    draw = ImageDraw.Draw(grid)
    y = 0
    for row, label in zip(rows, labels):
        draw.text((4, y + 3), label, fill="black")
        grid.paste(row, (0, y + 18))
        y += row.height + 18
    grid.save(out_path)
    return Path(out_path)
