"""Seed images for img2img at a model's own geometry, rendered from MIDI loops.

The jam keeps the stream on the beat by making every clip img2img of the same seed image whose length is
a whole number of bars. These loops are written note by note, rendered with fluidsynth (FluidR3_GM), and
cut from the *second* repetition so the start already carries the reverb tail of the previous bar: the
image loops seamlessly.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import typing as T
from pathlib import Path

from riffusion.dataset.midi import PERCUSSION_CHANNEL, Note, write_midi
from riffusion.spectrogram_params import SpectrogramParams


@dataclasses.dataclass(frozen=True)
class SeedLoop:
    id: str
    description: str
    bars: int
    beats_per_bar: int
    programs: tuple[tuple[int, int], ...]
    notes: tuple[Note, ...]  # one loop, beats from 0 to beats_per_bar * bars


def _drums(pattern: T.Mapping[int, T.Sequence[float]], bars: int, velocity: int = 100, beats_per_bar: int = 4) -> list[Note]:
    return [Note(bar * beats_per_bar + beat, 0.2, drum, velocity, PERCUSSION_CHANNEL)
            for bar in range(bars) for drum, beats in pattern.items() for beat in beats]


def seed_loops() -> list[SeedLoop]:
    """The seed loops (ids follow the original's seed images where the idea matches)."""
    rock = {36: (0, 2.5), 38: (1, 3), 42: (0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5)}
    house = {36: (0, 1, 2, 3), 39: (1, 3), 46: (0.5, 1.5, 2.5, 3.5)}
    bass = [Note(bar * 4 + b, 0.45, p, 100, 1) for bar, root in enumerate((36, 36)) for b, p in
            ((0, root), (0.75, root), (1.5, root + 12), (2, root), (2.5, root + 7), (3.5, root + 10))]
    marimba = [Note(bar * 4 + i * 0.5, 0.4, p, 90, 0) for bar in range(2)
               for i, p in enumerate((60, 64, 67, 72, 67, 64, 62, 67) if bar == 0 else (57, 60, 64, 69, 64, 60, 59, 62))]
    vibes = [Note(bar * 4, 3.9, p, 75, 0) for bar, chord in enumerate(((60, 64, 67, 71), (57, 60, 64, 67)))
             for p in chord] + [Note(bar * 4 + 2, 1.9, p, 60, 0) for bar, chord in
                                enumerate(((62, 65, 69, 72), (55, 59, 62, 65))) for p in chord]
    motor_bass = [Note(bar * 4 + i * 0.5, 0.4, 33 + (5 if bar % 2 else 0), 105, 1) for bar in range(2) for i in range(8)]
    waltz_chords = ((48, (60, 64, 67)), (43, (59, 62, 67)), (45, (60, 64, 69)), (41, (60, 65, 69)))
    waltz = [n for bar, (root, chord) in enumerate(waltz_chords) for n in
             [Note(bar * 3, 0.9, root, 100, 1)] + [Note(bar * 3 + b, 0.5, p, 70, 0) for b in (1, 2) for p in chord]]
    waltz += _drums({36: (0,), 42: (1, 2)}, 4, 70, beats_per_bar=3)
    ballad_chords = ((45, (57, 60, 64)), (41, (57, 60, 65)))
    slow_waltz = [n for bar, (root, chord) in enumerate(ballad_chords) for n in
                  [Note(bar * 3, 2.8, root, 90, 1)] + [Note(bar * 3 + b, 0.9, p, 60, 0) for b in (1, 2) for p in chord]]
    jig_chords = ((50, (62, 66, 69)), (45, (61, 64, 69)))  # 6/8 counted in eighths: pulses on 1 and 4
    jig = [n for bar, (root, chord) in enumerate(jig_chords) for n in
           [Note(bar * 6, 1.4, root, 100, 1), Note(bar * 6 + 3, 1.4, root + 7, 90, 1)]
           + [Note(bar * 6 + b, 0.4, p, 65 if b % 3 else 85, 0) for b in range(6) for p in chord]]
    jig += _drums({36: (0, 3), 42: (1, 2, 4, 5)}, 2, 75, beats_per_bar=6)
    breakbeat = _drums({36: (0, 2.5), 38: (1, 3), 42: tuple(i / 2 for i in range(8))}, 4)
    return [
        SeedLoop("og_beat", "rock drum beat with a bass line, 2 bars of 4/4", 2, 4, ((1, 33),),
                 tuple(_drums(rock, 2) + bass)),
        SeedLoop("agile", "busy drum beat, 2 bars of 4/4", 2, 4, (),
                 tuple(_drums({36: (0, 0.75, 2.25), 38: (1, 3, 3.75), 42: tuple(i / 4 for i in range(16))}, 2))),
        SeedLoop("marim", "marimba arpeggios, 2 bars of 4/4", 2, 4, ((0, 12),), tuple(marimba)),
        SeedLoop("motorway", "four on the floor beat with driving synth bass, 2 bars of 4/4", 2, 4, ((1, 38),),
                 tuple(_drums(house, 2) + motor_bass)),
        SeedLoop("vibes", "vibraphone chords, 2 bars of 4/4", 2, 4, ((0, 11),), tuple(vibes)),
        SeedLoop("waltz", "waltz accompaniment, bass and piano chords, 4 bars of 3/4", 4, 3, ((0, 0), (1, 32)),
                 tuple(waltz)),
        SeedLoop("slow_waltz", "slow waltz, bass and piano chords, 2 bars of 3/4 (70.6 bpm)", 2, 3,
                 ((0, 0), (1, 32)), tuple(slow_waltz)),
        SeedLoop("jig", "jig in 6/8, bass on one and four under guitar chords, 2 bars (141 eighths per minute)", 2, 6,
                 ((0, 24), (1, 32)), tuple(jig)),
        SeedLoop("breakbeat", "fast drum beat, 4 bars of 4/4 (188 bpm)", 4, 4, (), tuple(breakbeat)),
    ]


def render_seed_images(out_dir: T.Union[str, Path], *, params: SpectrogramParams, width: int,
                       soundfont: T.Optional[Path] = None) -> list[dict[str, T.Any]]:
    """Render every loop of :func:`seed_loops` to ``out_dir/<id>.png`` (with EXIF) and write
    ``seed_images.json`` (id, file, tempo_bpm, bars, kind, description). Returns the metadata rows."""
    import subprocess

    from riffusion.audio import read_audio
    from riffusion.dataset.render import find_soundfont, require_tool
    from riffusion.image import image_from_waveform, save_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    soundfont = soundfont or find_soundfont()
    fluidsynth = require_tool("fluidsynth", "fluidsynth")
    clip_samples = params.num_samples(width)
    duration_s = clip_samples / params.sample_rate
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for loop in seed_loops():
            beats = loop.beats_per_bar * loop.bars
            tempo = beats * 60.0 / duration_s  # the loop fills the image exactly
            repeated = [dataclasses.replace(n, start=n.start + r * beats) for r in range(3) for n in loop.notes]
            midi = Path(tmp) / f"{loop.id}.mid"
            wav = Path(tmp) / f"{loop.id}.wav"
            write_midi(midi, repeated, tempo_bpm=tempo, programs=dict(loop.programs))
            subprocess.run([fluidsynth, "-ni", "-q", "-g", "0.6", "-r", str(params.sample_rate), "-F", str(wav),
                            str(soundfont), str(midi)], check=True, capture_output=True, timeout=120)
            waveform, _ = read_audio(wav, sample_rate=params.sample_rate, mono=not params.stereo)
            start = int(round(beats * 60.0 / tempo * params.sample_rate))
            clip = waveform[:, start : start + clip_samples]
            image = image_from_waveform(clip, params.sample_rate, params)
            save_image(image, out_dir / f"{loop.id}.png")
            rows.append({"id": loop.id, "file": f"{loop.id}.png", "tempo_bpm": round(tempo, 3), "bars": loop.bars,
                         "beats_per_bar": loop.beats_per_bar, "kind": "seed", "description": loop.description})
    (out_dir / "seed_images.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows
