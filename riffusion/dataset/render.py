"""Rendered MIDI with exact captions: MMA accompaniment styles and generated instrument parts.

Two generators of (MIDI file, caption facts):

* :func:`mma_jobs` walks the grooves of Musical MIDI Accompaniment (``mma``, GPL-2+), whose standard
  library names ~1100 grooves by genre; each job is a short song in a chosen key, tempo and chord
  progression.
* :func:`part_jobs` writes single-instrument and small-ensemble parts (melody, bass line, pad chords, drum
  pattern) with our own MIDI writer, so that instrument words ("flute", "bass", "drums", "pad") get clean
  examples.

Every MIDI file is rendered with ``fluidsynth`` and the FluidR3 General MIDI soundfont (MIT), and its
caption is built from what the file actually plays (GM programs read per MIDI channel), its tempo and key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import shutil
import subprocess
import typing as T
from pathlib import Path

from riffusion.dataset.midi import GM_FAMILIES, GM_PROGRAMS, PERCUSSION_CHANNEL, Note, read_midi_summary, write_midi

MMA_STDLIB = Path("/usr/share/mma/lib/stdlib")
SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
)
SOUNDFONT_LICENSE = "MIT"
SOUNDFONT_ATTRIBUTION = "FluidR3_GM soundfont by Frank Wen and contributors (MIT), Debian fluid-soundfont-gm"

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_MAJOR_PROGRESSIONS = ((0, 7, 9, 5), (0, 5, 7, 5), (0, 9, 5, 7), (2, 7, 0, 0), (0, 5, 0, 7))
_MINOR_PROGRESSIONS = ((0, 8, 3, 10), (0, 5, 7, 0), (0, 10, 8, 7), (0, 5, 10, 3))
# Chord quality of the scale degree (semitones above the tonic) in major and in natural minor keys.
_MAJOR_QUALITY = {0: "", 2: "m", 4: "m", 5: "", 7: "", 9: "m", 11: "dim"}
_MINOR_QUALITY = {0: "m", 2: "dim", 3: "", 5: "m", 7: "m", 8: "", 10: ""}


def find_soundfont() -> Path:
    """Path of the FluidR3 GM soundfont, or a clear error saying which package installs it."""
    for path in SOUNDFONTS:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "FluidR3_GM.sf2 not found; install it with `apt-get install fluid-soundfont-gm`"
    )


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"`{name}` is not installed; install it with `apt-get install {package}`")
    return path


@dataclasses.dataclass(frozen=True)
class RenderJob:
    """One MIDI file to make and render, with the caption facts known before rendering."""

    id: str
    kind: str  # "mma" | "part" | "solo"
    style: str  # words for the caption ("bossa nova", "solo flute melody")
    tempo_bpm: int
    key: str  # "A minor"
    bars: int
    beats_per_bar: int = 4  # the metre's beats (MMA's `Time`); parts are in 4/4
    mma_source: T.Optional[str] = None  # the .mma song text for kind "mma"
    notes: tuple = ()  # Notes for kind "part"
    programs: tuple = ()  # (channel, program) pairs for kinds "part" and "solo"
    author: str = ""
    license: str = ""
    # What the caption names as the instruments, where the MIDI file cannot say (a percussion-channel solo
    # of one instrument reads as "drums"); empty: read from the rendered MIDI file.
    instrument_names: tuple = ()


def _stable_rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def split_camel(name: str) -> str:
    """``"BossaNova1Sus"`` -> ``"bossa nova 1 sus"``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])", " ", name)
    words = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", " ", words)
    return words.lower().replace("  ", " ").strip()


@dataclasses.dataclass(frozen=True)
class MmaGroove:
    name: str
    description: str
    style_file: str
    beats_per_bar: int
    author: str


def list_mma_grooves(stdlib: Path = MMA_STDLIB) -> list[MmaGroove]:
    """Grooves defined in MMA's standard library (intros, endings and fills left out), sorted by name."""
    grooves = []
    for path in sorted(stdlib.glob("*.mma")):
        text = path.read_text(errors="replace")
        time = re.search(r"^\s*Time\s+(\d+)", text, re.M)
        author = re.search(r"^\s*Author\s+(.+)$", text, re.M)
        for match in re.finditer(r"^\s*DefGroove\s+(\S+)\s*(.*)$", text, re.M):
            name, description = match.group(1), match.group(2).strip().rstrip("\\").strip()
            if re.search(r"(intro|end|fill|break|metronome|count)", name, re.I):
                continue
            grooves.append(
                MmaGroove(
                    name=name,
                    description=description,
                    style_file=path.stem,
                    beats_per_bar=int(time.group(1)) if time else 4,
                    author=author.group(1).strip() if author else "MMA contributors",
                )
            )
    return sorted(grooves, key=lambda g: g.name.lower())


def _tempo_range(name: str) -> tuple[int, int]:
    n = name.lower()
    for words, span in (
        (("ballad", "slow", "lullaby", "dirge", "hymn"), (60, 84)),
        (("waltz", "68", "minuet"), (84, 140)),
        (("march", "polka"), (104, 132)),
        (("swing", "jazz", "bebop", "bigband", "dixie", "bluegrass", "country", "jive"), (110, 180)),
        (("rock", "boogie", "twist", "punk", "hiphop", "disco", "funk"), (100, 150)),
        (("bossa", "samba", "rhumba", "mambo", "salsa", "tango", "beguine", "bolero", "latin", "calypso",
          "reggae", "ska", "cha"), (90, 132)),
    ):
        if any(w in n for w in words):
            return span
    return (80, 150)


def _key_signature_name(tonic: int, minor: bool) -> str:
    # MMA knows the key signatures of the circle of fifths: minor keys on Db/Gb/Ab are spelt C#/F#/G#.
    if minor:
        return ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")[tonic] + " minor"
    return NOTE_NAMES[tonic] + " major"


def _chord_name(tonic: int, degree: int, minor: bool) -> str:
    quality = (_MINOR_QUALITY if minor else _MAJOR_QUALITY).get(degree, "")
    return NOTE_NAMES[(tonic + degree) % 12] + quality


def _third(degree: int, minor: bool) -> int:
    """Semitones from the root to the third of the key's chord on ``degree`` (3: minor chord, else 4)."""
    return 3 if (_MINOR_QUALITY if minor else _MAJOR_QUALITY).get(degree, "") == "m" else 4


def mma_jobs(
    *, seed: int = 0, max_grooves: T.Optional[int] = None, songs_per_groove: int = 1, seconds: float = 30.0,
    stdlib: Path = MMA_STDLIB,
) -> list[RenderJob]:
    """Songs over MMA grooves: one job per (groove, variant), reproducible from ``seed``.

    ``max_grooves`` picks that many grooves spread evenly over the sorted list (all when None).
    """
    grooves = list_mma_grooves(stdlib)
    if max_grooves is not None and max_grooves < len(grooves):
        step = len(grooves) / max_grooves
        grooves = [grooves[int(i * step)] for i in range(max_grooves)]
    jobs = []
    for groove in grooves:
        for variant in range(songs_per_groove):
            rng = _stable_rng(seed, groove.name, variant)
            low, high = _tempo_range(groove.name)
            tempo = rng.randrange(low, high + 1)
            tonic = rng.randrange(12)
            minor = rng.random() < 0.4
            progression = rng.choice(_MINOR_PROGRESSIONS if minor else _MAJOR_PROGRESSIONS)
            bars = max(4, int(round(seconds * tempo / 60.0 / groove.beats_per_bar)))
            chords = [_chord_name(tonic, progression[i % len(progression)], minor) for i in range(bars)]
            key = f"{NOTE_NAMES[tonic]} {'minor' if minor else 'major'}"
            source = "\n".join(
                # RndSeed: MMA humanises timing and volume at random; seeded, the render is reproducible.
                [f"RndSeed {rng.randrange(1 << 30)}", f"Tempo {tempo}", f"Groove {groove.name}", f"KeySig {_key_signature_name(tonic, minor)}"]
                + [f"{i + 1} {chord}" for i, chord in enumerate(chords)]
            ) + "\n"
            style = split_camel(groove.name)
            if groove.description:
                style = f"{style} ({groove.description.rstrip('.').lower()})"
            jobs.append(
                RenderJob(
                    id=f"mma-{groove.name.lower()}-{variant}",
                    kind="mma",
                    style=style,
                    tempo_bpm=tempo,
                    key=key,
                    bars=bars,
                    beats_per_bar=groove.beats_per_bar,
                    mma_source=source,
                    author=f"{groove.author} (MMA style {groove.style_file}); rendered by riffusion dataset build",
                    license="GPL-2.0-or-later (MMA library); rendering MIT (FluidR3_GM)",
                )
            )
    return jobs


# --- generated instrument parts -------------------------------------------------------------------------

_PART_PROGRAMS = {
    "melody": (73, 72, 71, 68, 56, 65, 40, 0, 11, 12, 24, 22, 79, 75, 80, 60, 70, 57),
    "bass": (32, 33, 34, 35, 38, 43),
    "pad": (88, 89, 90, 91, 92, 94, 48, 49, 52, 19),
    "chords": (0, 4, 24, 25, 16, 46, 26, 5),
}
# Octaves a melody instrument plays in (pitch = 12 * octave + degree: 5 starts at middle C, MIDI 60), so
# that clips of one program span registers and "low"/"high" words are not instrument names in disguise.
_MELODY_OCTAVES = {73: (5, 6), 72: (6, 7), 79: (5, 6), 75: (5, 6), 11: (5, 6), 12: (4, 5, 6), 70: (3, 4),
                   57: (3, 4), 60: (4, 5), 71: (4, 5)}
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Drum patterns over 8 eighth notes of a 4/4 bar: (GM note, eighth positions).
_DRUM_PATTERNS = {
    "rock beat": ((36, (0, 4)), (38, (2, 6)), (42, (0, 1, 2, 3, 4, 5, 6, 7))),
    "four on the floor beat": ((36, (0, 2, 4, 6)), (39, (2, 6)), (46, (1, 3, 5, 7))),
    "half time beat": ((36, (0, 3)), (38, (4,)), (42, (0, 2, 4, 6))),
    "breakbeat": ((36, (0, 5)), (38, (2, 7)), (42, (0, 1, 2, 3, 4, 5, 6, 7))),
    "shuffle beat": ((36, (0, 4)), (38, (2, 6)), (51, (0, 2, 3, 4, 6, 7))),
}


def _melody(rng: random.Random, tonic: int, scale, bars: int, beats: int, channel: int, octave: int,
            density: float) -> list[Note]:
    notes = []
    degree = 0
    t = 0.0
    total = bars * beats
    while t < total:
        length = rng.choice((0.5, 0.5, 1.0, 1.0, 1.5, 2.0)) if density > 0.5 else rng.choice((1.0, 2.0, 2.0, 3.0))
        degree = max(-3, min(9, degree + rng.choice((-2, -1, -1, 0, 1, 1, 2, 3, -3))))
        pitch = 12 * octave + tonic + scale[degree % 7] + 12 * (degree // 7)
        if rng.random() > 0.1:
            notes.append(Note(t, min(length, total - t) * 0.95, pitch, rng.randrange(80, 115), channel))
        t += length
    return notes


def part_jobs(*, seed: int = 0, count: int = 120, seconds: float = 20.0) -> list[RenderJob]:
    """Generated instrument parts with exact captions ("solo flute melody, 96 bpm, D minor")."""
    jobs = []
    for index in range(count):
        rng = _stable_rng(seed, "part", index)
        kind = ("melody", "bass", "pad", "chords", "drums", "melody+bass", "band")[index % 7]
        tempo = rng.randrange(50, 191)  # wide, so that tempo words from "very slow" to "very fast" occur
        tonic = rng.randrange(12)
        mode = rng.choice(("major", "minor"))
        scale = _SCALES[mode]
        progression = rng.choice(_MINOR_PROGRESSIONS if mode == "minor" else _MAJOR_PROGRESSIONS)
        bars = max(2, int(round(seconds * tempo / 60.0 / 4)))
        notes: list[Note] = []
        programs: dict[int, int] = {}
        words: list[str] = []
        if kind in ("melody", "melody+bass", "band"):
            program = rng.choice(_PART_PROGRAMS["melody"])
            programs[0] = program
            octave = rng.choice(_MELODY_OCTAVES.get(program, (4, 5)))
            notes += _melody(rng, tonic, scale, bars, 4, 0, octave, rng.random())
            register = "high " if octave >= 6 else "low " if octave <= 3 else ""
            words.append(f"{register}{GM_PROGRAMS[program]} melody")
        if kind in ("bass", "melody+bass", "band"):
            program = rng.choice(_PART_PROGRAMS["bass"])
            programs[1] = program
            for bar in range(bars):
                root = 36 + tonic + progression[bar % len(progression)]
                root = root - 12 if root > 47 else root
                for beat in range(4):
                    if beat in (0, 2) or rng.random() < 0.5:
                        pitch = root + (7 if beat == 3 and rng.random() < 0.5 else 0)
                        notes.append(Note(bar * 4 + beat, 0.9, pitch, rng.randrange(90, 120), 1))
            words.append(f"{GM_PROGRAMS[program]} line")
        if kind in ("pad", "chords", "band"):
            program = rng.choice(_PART_PROGRAMS["pad" if kind == "pad" else "chords"])
            programs[2] = program
            for bar in range(bars):
                root = 60 + tonic + progression[bar % len(progression)]
                third = _third(progression[bar % len(progression)], mode == "minor")
                chord = (root - 12, root - 12 + third, root - 12 + 7, root)
                if kind == "pad":
                    notes += [Note(bar * 4, 3.98, p, 80, 2) for p in chord]
                else:
                    for beat in (0, 1, 2, 3) if rng.random() < 0.5 else (0, 2):
                        notes += [Note(bar * 4 + beat, 0.8, p, 85, 2) for p in chord]
            words.append(f"sustained {GM_PROGRAMS[program]} chords" if kind == "pad"
                         else f"{GM_PROGRAMS[program]} chords")
        if kind in ("drums", "band"):
            pattern_name = rng.choice(sorted(_DRUM_PATTERNS))
            programs[PERCUSSION_CHANNEL] = 0
            for bar in range(bars):
                for drum, positions in _DRUM_PATTERNS[pattern_name]:
                    for pos in positions:
                        notes.append(Note(bar * 4 + pos / 2, 0.25, drum, rng.randrange(85, 120), PERCUSSION_CHANNEL))
            words.append(f"drums playing a {pattern_name}")
        listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
        style = ("solo " if len(words) == 1 and kind != "drums" else "") + listed
        jobs.append(
            RenderJob(
                id=f"part-{index:04d}",
                kind="part",
                style=style,
                tempo_bpm=tempo,
                key=f"{NOTE_NAMES[tonic]} {mode}",
                bars=bars,
                notes=tuple(notes),
                programs=tuple(sorted(programs.items())),
                author="generated by riffusion dataset build",
                license="CC0-1.0 (generated); rendering MIT (FluidR3_GM)",
            )
        )
    return jobs


# --- instrument solos over the whole General MIDI set ----------------------------------------------------

#: Octaves (as in _melody: 5 starts at middle C) each melodic GM program plays solos in, from the instrument's
#: usual range; programs not listed play in octaves 4-5. Solos leave out the sound effects (96-103, 120-127)
#: and programs whose names repeat an earlier one.
_SOLO_OCTAVES = {
    **{p: (3, 4, 5, 6) for p in range(0, 8)}, 8: (5, 6), 9: (6, 7), 10: (5, 6, 7), 12: (3, 4, 5), 13: (5, 6),
    **{p: (3, 4, 5) for p in range(16, 21)}, **{p: (3, 4, 5) for p in range(24, 32)},
    **{p: (2, 3) for p in range(32, 40)}, 40: (5, 6), 42: (3, 4), 43: (2, 3), 45: (3, 4, 5), 46: (3, 4, 5, 6),
    47: (3, 4), 48: (3, 4, 5), 49: (3, 4, 5), 56: (5, 6), 57: (3, 4), 58: (2, 3), 59: (5, 6), 62: (3, 4, 5),
    64: (5, 6), 66: (3, 4), 67: (3, 4), 68: (5, 6), 70: (3, 4), 72: (6, 7), 73: (5, 6), 74: (5, 6),
    75: (5, 6), 78: (6, 7), 79: (5, 6), **{p: (3, 4, 5, 6) for p in range(80, 88)},
    **{p: (3, 4, 5) for p in range(88, 96)}, 108: (5, 6), 110: (5, 6), 111: (5, 6), 112: (6, 7),
    113: (5, 6), 114: (5, 6), 115: (5, 6), 116: (2, 3), 117: (3, 4), 118: (3, 4),
}
_SOLO_PROGRAMS = tuple(p for p in range(120) if not 96 <= p <= 103 and GM_PROGRAMS[p] not in GM_PROGRAMS[:p])
#: Instruments that strike or pluck: their solos are rhythms of short notes rather than melodies.
_STRUCK = frozenset((*range(8, 16), 45, 46, 47, *range(104, 109), *range(112, 120)))
#: Instruments that hold notes: half their solos are long notes and held chords.
_HELD = frozenset((*range(16, 24), *range(40, 45), *range(48, 54), *range(56, 80), *range(88, 96), 109))
#: Solo percussion of the GM drum map: caption name -> the kit notes that play it.
SOLO_PERCUSSION = {
    "triangle": (80, 81), "cowbell": (56,), "congas": (62, 63, 64), "bongos": (60, 61), "tambourine": (54,),
    "maracas": (70,), "claves": (75,), "wood blocks": (76, 77), "timbales": (65, 66), "agogo bells": (67, 68),
    "hand claps": (39,), "cabasa": (69,), "guiro": (73, 74), "ride cymbal": (51, 59), "hi-hat": (42, 44, 46),
    "snare drum": (38, 40), "bass drum": (35, 36), "toms": (41, 43, 45, 47, 48, 50), "crash cymbal": (49, 57),
    "cuica": (78, 79),
}


def _struck_pattern(rng: random.Random, bars: int, beats: int) -> list[float]:
    """Onset times (beats) of a repeated one-bar rhythm on the sixteenth-note grid, a little varied per bar."""
    density = rng.choice((0.25, 0.4, 0.6, 0.8))
    grid = [i / 4 for i in range(beats * 4)]
    bar = [t for t in grid if t % 1 == 0 or rng.random() < density * (0.8 if t % 0.5 == 0 else 0.5)]
    onsets = []
    for b in range(bars):
        onsets += [b * beats + t for t in bar if rng.random() > 0.08]
    return onsets


def solo_jobs(*, seed: int = 0, count: int = 254, seconds: float = 20.0) -> list[RenderJob]:
    """Solos of single instruments over the whole General MIDI set and the drum map's hand percussion, in each
    instrument's usual range ("solo low tuba melody, 72 bpm, C major", "solo triangle rhythm, ..."), so that
    prompts naming an instrument find it; job ``i`` plays instrument ``i`` modulo their number."""
    instruments = [("kit", name) for name in SOLO_PERCUSSION] + [("program", p) for p in _SOLO_PROGRAMS]
    jobs = []
    for index in range(count):
        rng = _stable_rng(seed, "solo", index)
        kind, which = instruments[index % len(instruments)]
        beats = rng.choice((4, 4, 4, 3))
        tempo = rng.randrange(56, 181)
        tonic = rng.randrange(12)
        mode = rng.choice(("major", "minor"))
        scale = _SCALES[mode]
        bars = max(2, int(round(seconds * tempo / 60.0 / beats)))
        notes: list[Note] = []
        names: tuple = ()
        if kind == "kit":
            kit = SOLO_PERCUSSION[T.cast(str, which)]
            for t in _struck_pattern(rng, bars, beats):
                accent = t % beats == 0
                velocity = rng.randrange(100, 124) if accent else rng.randrange(60, 105)
                notes.append(Note(t, 0.2, rng.choice(kit), velocity, PERCUSSION_CHANNEL))
            programs = {PERCUSSION_CHANNEL: 0}
            style = f"solo {which} rhythm"
            names = (str(which),)
        else:
            program = T.cast(int, which)
            programs = {0: program}
            octave = rng.choice(_SOLO_OCTAVES.get(program, (4, 5)))
            register = "high " if octave >= 6 else "low " if octave <= 3 else ""
            name = GM_PROGRAMS[program]
            if program in _STRUCK:
                degree = 0
                for t in _struck_pattern(rng, bars, beats):
                    degree = max(-3, min(9, degree + rng.choice((-2, -1, 0, 0, 1, 2))))
                    pitch = 12 * octave + tonic + scale[degree % 7] + 12 * (degree // 7)
                    notes.append(Note(t, 0.3, pitch, rng.randrange(70, 120), 0))
                style = f"solo {register}{name} rhythm" if program >= 112 else f"solo {register}{name} melody"
            elif program in _HELD and rng.random() < 0.5:
                progression = rng.choice(_MINOR_PROGRESSIONS if mode == "minor" else _MAJOR_PROGRESSIONS)
                for bar in range(bars):
                    root = 12 * octave + tonic + progression[bar % len(progression)]
                    third = _third(progression[bar % len(progression)], mode == "minor")
                    notes += [Note(bar * beats, beats - 0.02, pitch, 85, 0) for pitch in (root, root + third, root + 7)]
                style = f"sustained {register}{name} chords"
            else:
                notes += _melody(rng, tonic, scale, bars, beats, 0, octave, rng.random())
                style = f"solo {register}{name} melody"
        jobs.append(RenderJob(
            id=f"solo-{index:04d}", kind="solo", style=style, tempo_bpm=tempo, key=f"{NOTE_NAMES[tonic]} {mode}",
            bars=bars, beats_per_bar=beats, notes=tuple(notes), programs=tuple(sorted(programs.items())),
            author="generated by riffusion dataset build", license="CC0-1.0 (generated); rendering MIT (FluidR3_GM)",
            instrument_names=names,
        ))
    return jobs


def render_job(job: RenderJob, workdir: Path, *, sample_rate: int, soundfont: T.Optional[Path] = None,
               timeout: float = 120.0) -> tuple[Path, list[str]]:
    """Make the job's MIDI file and render it to a WAV at ``sample_rate``.

    Returns the WAV path and the instruments that actually play (read per MIDI channel from the MIDI
    file, so the caption never names an instrument that is silent nor misses one that plays).
    """
    soundfont = soundfont or find_soundfont()
    workdir.mkdir(parents=True, exist_ok=True)
    midi = workdir / f"{job.id}.mid"
    wav = workdir / f"{job.id}.wav"
    if job.kind == "mma":
        mma = require_tool("mma", "mma")
        song = workdir / f"{job.id}.mma"
        song.write_text(job.mma_source or "")
        result = subprocess.run([mma, "-f", str(midi), str(song)], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0 or not midi.is_file():
            raise RuntimeError(f"mma failed on {job.id}: {(result.stderr or result.stdout).strip()[-300:]}")
    else:
        write_midi(midi, list(job.notes), tempo_bpm=job.tempo_bpm, programs=dict(job.programs))
    fluidsynth = require_tool("fluidsynth", "fluidsynth")
    result = subprocess.run(
        [fluidsynth, "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(wav), str(soundfont), str(midi)],
        capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0 or not wav.is_file():
        raise RuntimeError(f"fluidsynth failed on {job.id}: {(result.stderr or result.stdout).strip()[-300:]}")
    summary = read_midi_summary(midi)
    return wav, summary.instruments(min_notes=2)


def instrument_families(instruments: T.Iterable[str]) -> list[str]:
    """Broad family words (GM families) for instrument names, e.g. "flute" -> "pipe"."""
    families = []
    for name in instruments:
        if name == "drums":
            continue
        if name in GM_PROGRAMS:
            family = GM_FAMILIES[GM_PROGRAMS.index(name) // 8]
            if family not in families:
                families.append(family)
    return families
