#!/usr/bin/env python
"""Render the seed spectrograms and masks shipped in ``riffusion/seed_images/``.

Every seed is synthesised here with numpy (no samples, no soundfonts): drum and instrument loops whose
length is an exact whole number of bars across the 5.11 s clip (512 image columns of 10 ms at 44.1 kHz,
``hop * (512 - 1)`` samples), so a generated clip loops on the beat. Each loop is rendered circularly
(sound ringing past the end wraps around to the start), so the first and last columns join seamlessly.

Tempo = beats per clip * 60 / 5.11 s:

=========  =====  ====  ===========================================================
id         bars   time  tempo (bpm)
=========  =====  ====  ===========================================================
og_beat    2      4/4   93.933  boom-bap drums with a sub bass line (the default)
agile      4      4/4   187.867 drum and bass breakbeat
marim      2      4/4   93.933  marimba arpeggios over a shaker
motorway   3      4/4   140.900 four-on-the-floor kick, off-beat hats, driving saw bass
vibes      2      4/4   93.933  vibraphone chords with tremolo and a soft kick
waltz      3      3/4   105.675 piano waltz: bass note on one, chords on two and three
=========  =====  ====  ===========================================================

Masks (512 x 512, grey: white = repaint, black = keep the seed image; the number is the percent of white
in the repainted region), one of each kind the original offered:
mask_beat_lines_80, mask_gradient_dark, mask_gradient_top_70, mask_gradient_top_fifth_75,
mask_top_third_75, mask_top_third_95.

Usage::

    python scripts/make_seed_images.py [--out-dir riffusion/seed_images]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 44100
WIDTH = 512  # image columns
REPO = Path(__file__).resolve().parents[1]


# --- synthesis (float64 numpy, mono) ---------------------------------------------------------------------


def _env(n: int, decay_s: float, attack_s: float = 0.002) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return np.minimum(1.0, t / attack_s) * np.exp(-t / decay_s)


def kick(n: int = 22050, *, f0: float = 140.0, f1: float = 45.0) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    freq = f1 + (f0 - f1) * np.exp(-t / 0.04)
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    return np.sin(phase) * _env(n, 0.25, 0.001)


def snare(rng: np.random.Generator, n: int = 13230) -> np.ndarray:
    noise = rng.standard_normal(n)
    noise = noise - np.concatenate([[0.0], noise[:-1]]) * 0.6  # brighten
    tone = np.sin(2 * np.pi * 185 * np.arange(n) / SAMPLE_RATE)
    return 0.45 * noise * _env(n, 0.09) + 0.6 * tone * _env(n, 0.05)


def hat(rng: np.random.Generator, n: int = 8820, *, decay_s: float = 0.03) -> np.ndarray:
    noise = rng.standard_normal(n)
    high = noise - np.concatenate([[0.0], noise[:-1]])  # first difference: a high-pass
    return 0.25 * high * _env(n, decay_s, 0.0005)


def shaker(rng: np.random.Generator, n: int = 4410) -> np.ndarray:
    noise = rng.standard_normal(n)
    high = noise - np.concatenate([[0.0], noise[:-1]])
    t = np.arange(n) / SAMPLE_RATE
    return 0.12 * high * np.sin(np.pi * np.minimum(t / 0.06, 1.0))


def midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def bass(note: float, n: int, *, saw: bool = False) -> np.ndarray:
    """A bass note: sine (sub) or band-limited sawtooth, plucked envelope."""
    f = midi_hz(note)
    t = np.arange(n) / SAMPLE_RATE
    if saw:
        harmonics = [k for k in range(1, 24) if k * f < 8000]
        wave = sum(np.sin(2 * np.pi * k * f * t) / k * np.exp(-t * k / 1.5) for k in harmonics)
    else:
        wave = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t)
    release = np.clip((n - np.arange(n)) / (0.01 * SAMPLE_RATE), 0, 1)
    return 0.5 * wave * _env(n, 0.6, 0.004) * release


def marimba(note: float, n: int = 33075) -> np.ndarray:
    f = midi_hz(note)
    t = np.arange(n) / SAMPLE_RATE
    return 0.35 * (np.sin(2 * np.pi * f * t) * _env(n, 0.45, 0.001) + 0.4 * np.sin(2 * np.pi * 3.93 * f * t) * _env(n, 0.06, 0.001))


def vibraphone(note: float, n: int) -> np.ndarray:
    f = midi_hz(note)
    t = np.arange(n) / SAMPLE_RATE
    tremolo = 1.0 - 0.35 * (0.5 + 0.5 * np.sin(2 * np.pi * 5.5 * t))
    partials = np.sin(2 * np.pi * f * t) + 0.25 * np.sin(2 * np.pi * 4 * f * t) * np.exp(-t / 0.3)
    return 0.18 * partials * tremolo * _env(n, 1.6, 0.003)


def piano(note: float, n: int) -> np.ndarray:
    f = midi_hz(note)
    t = np.arange(n) / SAMPLE_RATE
    wave = sum(
        np.sin(2 * np.pi * k * f * np.sqrt(1 + 0.0004 * k * k) * t) / k**1.3 * np.exp(-t * (0.8 + 0.9 * k))
        for k in range(1, 9)
        if k * f < 9000
    )
    return 0.25 * wave * _env(n, 2.0, 0.002)


# --- loops --------------------------------------------------------------------------------------------------


class Loop:
    """A circular buffer of one clip; events are placed in beats and wrap around the end."""

    def __init__(self, *, bars: int, beats_per_bar: int, num_samples: int):
        self.bars = bars
        self.beats_per_bar = beats_per_bar
        self.num_samples = num_samples
        self.beats = bars * beats_per_bar
        self.samples_per_beat = num_samples / self.beats
        self.buffer = np.zeros(num_samples)

    @property
    def tempo_bpm(self) -> float:
        return self.beats * 60.0 * SAMPLE_RATE / self.num_samples

    def add(self, beat: float, sound: np.ndarray, gain: float = 1.0) -> None:
        start = int(round(beat * self.samples_per_beat)) % self.num_samples
        index = (start + np.arange(len(sound))) % self.num_samples
        np.add.at(self.buffer, index, gain * sound)

    def beat_len(self, beats: float) -> int:
        return int(beats * self.samples_per_beat)


def make_loops(num_samples: int) -> dict[str, tuple[Loop, str]]:
    rng = np.random.default_rng(20221215)  # Riffusion's release date: fixed, so the images are reproducible
    loops: dict[str, tuple[Loop, str]] = {}

    # og_beat: boom-bap, 2 bars of 4/4.
    loop = Loop(bars=2, beats_per_bar=4, num_samples=num_samples)
    for bar in range(2):
        b = bar * 4
        for k in (0, 1.75, 2.5) if bar == 0 else (0, 0.75, 2.5, 3.25):
            loop.add(b + k, kick(), 0.9)
        for k in (1, 3):
            loop.add(b + k, snare(rng), 0.8)
        for k in np.arange(0, 4, 0.5):
            loop.add(b + k, hat(rng), 0.7 if k % 1 else 1.0)
    for beat, note, length in ((0, 36, 1.5), (1.75, 36, 0.5), (2.5, 43, 1.0), (4, 34, 1.5), (5.75, 34, 0.5), (6.5, 41, 1.0)):
        loop.add(beat, bass(note, loop.beat_len(length)), 0.9)
    loops["og_beat"] = (loop, "boom-bap drums with a sub bass line, 2 bars of 4/4 (the default seed)")

    # agile: drum and bass breakbeat, 4 bars of 4/4.
    loop = Loop(bars=4, beats_per_bar=4, num_samples=num_samples)
    for bar in range(4):
        b = bar * 4
        for k in (0, 2.5) if bar % 2 == 0 else (0, 1.75, 2.5):
            loop.add(b + k, kick(f0=160, f1=50), 0.9)
        for k in (1, 3) if bar % 2 == 0 else (1, 3, 3.75):
            loop.add(b + k, snare(rng), 0.8 if k % 1 == 0 else 0.4)
        for k in np.arange(0, 4, 0.5):
            loop.add(b + k, hat(rng, decay_s=0.02), 0.6)
    for bar in range(4):
        loop.add(bar * 4, bass((33, 33, 36, 31)[bar], loop.beat_len(3.5), saw=True), 0.5)
    loops["agile"] = (loop, "drum and bass breakbeat with a reese bass, 4 bars of 4/4")

    # marim: marimba arpeggios, 2 bars of 4/4.
    loop = Loop(bars=2, beats_per_bar=4, num_samples=num_samples)
    arpeggio = (60, 64, 67, 72, 76, 72, 67, 64, 57, 60, 64, 69, 72, 69, 64, 60)
    for i, note in enumerate(arpeggio):
        loop.add(i * 0.5, marimba(note))
    for k in np.arange(0, 8, 0.25):
        loop.add(k, shaker(rng), 1.0 if k % 1 == 0.5 else 0.5)
    loop.add(0, bass(36, loop.beat_len(3.8)), 0.6)
    loop.add(4, bass(33, loop.beat_len(3.8)), 0.6)
    loops["marim"] = (loop, "marimba arpeggios (C, A minor) over a shaker, 2 bars of 4/4")

    # motorway: four on the floor, 3 bars of 4/4.
    loop = Loop(bars=3, beats_per_bar=4, num_samples=num_samples)
    for beat in range(12):
        loop.add(beat, kick(f0=120, f1=48), 1.0)
        loop.add(beat + 0.5, hat(rng, decay_s=0.08), 0.8)
        if beat % 2:
            loop.add(beat, snare(rng), 0.35)
    for i in range(24):
        note = (33, 33, 45, 33, 36, 33, 43, 33)[i % 8] + (0, 5, 3)[i // 8]
        loop.add(i * 0.5, bass(note, loop.beat_len(0.45), saw=True), 0.45)
    loops["motorway"] = (loop, "four-on-the-floor kick, off-beat open hats and a driving saw bass, 3 bars of 4/4")

    # vibes: vibraphone chords, 2 bars of 4/4.
    loop = Loop(bars=2, beats_per_bar=4, num_samples=num_samples)
    chords = (((60, 64, 67, 71), 0), ((62, 65, 69, 72), 2), ((57, 60, 64, 67), 4), ((55, 59, 62, 65), 6))
    for notes, beat in chords:
        for note in notes:
            loop.add(beat, vibraphone(note, loop.beat_len(2.0)))
    for beat in (0, 2.5, 4, 6.5):
        loop.add(beat, kick(f0=100, f1=45), 0.5)
    for beat in range(8):
        loop.add(beat + 0.5, shaker(rng), 0.6)
    loops["vibes"] = (loop, "vibraphone chords with tremolo, soft kick and shaker, 2 bars of 4/4")

    # waltz: piano in 3/4, 3 bars.
    loop = Loop(bars=3, beats_per_bar=3, num_samples=num_samples)
    harmony = ((43, (59, 62, 67)), (48, (60, 64, 67)), (50, (57, 62, 66)))
    for bar, (root, chord) in enumerate(harmony):
        loop.add(bar * 3, piano(root, loop.beat_len(2.9)), 1.0)
        for beat in (1, 2):
            for note in chord:
                loop.add(bar * 3 + beat, piano(note, loop.beat_len(0.9)), 0.55)
    loops["waltz"] = (loop, "piano waltz, bass on one and chords on two and three, 3 bars of 3/4")
    return loops


# --- masks --------------------------------------------------------------------------------------------------


def make_masks(width: int, height: int, *, beats: int) -> dict[str, tuple[np.ndarray, str]]:
    """Grey masks (uint8, height x width): 255 = repaint, 0 = keep. Row 0 is the top (high frequencies)."""
    rows = np.arange(height)[:, None] / (height - 1)  # 0 at the top, 1 at the bottom
    ones = np.ones((height, width))
    masks: dict[str, tuple[np.ndarray, str]] = {}

    lines = 0.8 * ones
    columns_per_beat = width / beats
    for beat in range(beats):
        start = int(round(beat * columns_per_beat))
        lines[:, start : start + max(2, int(columns_per_beat * 0.12))] = 0.0
    masks["mask_beat_lines_80"] = (lines, f"repaint 80% everywhere except black lines on each of the {beats} beats")
    masks["mask_gradient_dark"] = ((0.5 * (1 - rows)) * ones, "dark vertical gradient: 50% repaint at the top to none at the bottom")
    masks["mask_gradient_top_70"] = ((0.7 * (1 - rows)) * ones, "gradient from 70% repaint at the top to none at the bottom")
    fifth = np.clip(1 - rows * 5, 0, 1)
    masks["mask_gradient_top_fifth_75"] = ((0.75 * fifth) * ones, "gradient over the top fifth: 75% repaint at the top to none")
    third = (rows < 1 / 3).astype(float)
    masks["mask_top_third_75"] = ((0.75 * third) * ones, "repaint the top third (high frequencies) at 75%, keep the rest")
    masks["mask_top_third_95"] = ((0.95 * third) * ones, "repaint the top third (high frequencies) at 95%, keep the rest")
    return {k: (np.round(v * 255).astype(np.uint8), d) for k, (v, d) in masks.items()}


# --- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "riffusion" / "seed_images")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from PIL import Image

    from riffusion.image import save_image
    from riffusion.spectrogram_image_converter import SpectrogramImageConverter
    from riffusion.spectrogram_params import SpectrogramParams

    params = SpectrogramParams()
    num_samples = params.num_samples(WIDTH)  # hop * (512 - 1) = 225351 samples = 5.11 s
    converter = SpectrogramImageConverter(params, device="cpu")
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed_id, (loop, description) in make_loops(num_samples).items():
        waveform = loop.buffer / np.abs(loop.buffer).max() * 0.9
        image = converter.image_from_waveform(waveform[None].astype(np.float32), SAMPLE_RATE)
        if image.size != (WIDTH, params.num_frequencies):
            raise RuntimeError(f"{seed_id}: expected a {WIDTH}x{params.num_frequencies} image, got {image.size}")
        save_image(image, out / f"{seed_id}.png")
        rows.append({
            "id": seed_id, "file": f"{seed_id}.png", "kind": "seed", "tempo_bpm": round(loop.tempo_bpm, 3),
            "bars": loop.bars, "beats_per_bar": loop.beats_per_bar, "description": description,
        })
    for mask_id, (pixels, description) in make_masks(WIDTH, params.num_frequencies, beats=8).items():
        image = Image.fromarray(pixels, "L").convert("RGB")
        save_image(image, out / f"{mask_id}.png")
        rows.append({"id": mask_id, "file": f"{mask_id}.png", "kind": "mask", "tempo_bpm": None, "bars": None,
                     "beats_per_bar": None, "description": description})
    (out / "seed_images.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:  # package data: readable by everyone, whatever the temporary file's mode was
        (out / row["file"]).chmod(0o644)
    print(f"wrote {len(rows)} images and seed_images.json to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
