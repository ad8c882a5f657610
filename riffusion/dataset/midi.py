"""Just enough Standard MIDI File (SMF) reading and writing for exact captions and generated melodies.

Reading gathers, per MIDI channel, the General MIDI programs that sound notes (a program change applies to
its channel from that moment on, whichever track carries it), whether the percussion channel (10) plays,
and the tempo. Writing makes type-1 files from note lists. No third-party MIDI library is needed.
"""

from __future__ import annotations

import dataclasses
import struct
import typing as T
from pathlib import Path

#: General MIDI level 1 program names (0-based program number -> name).
GM_PROGRAMS = (
    "acoustic grand piano", "bright acoustic piano", "electric grand piano", "honky-tonk piano",
    "electric piano", "electric piano", "harpsichord", "clavinet",
    "celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone", "tubular bells", "dulcimer",
    "drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ", "accordion", "harmonica",
    "tango accordion",
    "nylon string guitar", "steel string guitar", "jazz guitar", "clean electric guitar", "muted guitar",
    "overdriven guitar", "distortion guitar", "guitar harmonics",
    "acoustic bass", "fingered electric bass", "picked electric bass", "fretless bass", "slap bass",
    "slap bass", "synth bass", "synth bass",
    "violin", "viola", "cello", "contrabass", "tremolo strings", "pizzicato strings", "harp", "timpani",
    "string ensemble", "slow strings", "synth strings", "synth strings", "choir aahs", "voice oohs",
    "synth voice", "orchestra hit",
    "trumpet", "trombone", "tuba", "muted trumpet", "french horn", "brass section", "synth brass",
    "synth brass",
    "soprano sax", "alto sax", "tenor sax", "baritone sax", "oboe", "english horn", "bassoon", "clarinet",
    "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi", "whistle", "ocarina",
    "square lead synth", "sawtooth lead synth", "calliope lead", "chiff lead", "charang lead", "voice lead",
    "fifths lead", "bass and lead synth",
    "new age pad", "warm pad", "polysynth pad", "choir pad", "bowed pad", "metallic pad", "halo pad",
    "sweep pad",
    "rain effect", "soundtrack effect", "crystal effect", "atmosphere effect", "brightness effect",
    "goblins effect", "echoes effect", "sci-fi effect",
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai",
    "tinkle bell", "agogo", "steel drums", "woodblock", "taiko drum", "melodic tom", "synth drum",
    "reverse cymbal",
    "guitar fret noise", "breath noise", "seashore", "bird tweet", "telephone ring", "helicopter",
    "applause", "gunshot",
)
assert len(GM_PROGRAMS) == 128

#: Broad families of GM programs (program // 8), words a caption can add for plain-English prompts.
GM_FAMILIES = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass", "reed",
    "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects",
)

PERCUSSION_CHANNEL = 9  # 0-based: "channel 10"


@dataclasses.dataclass
class MidiSummary:
    """What a MIDI file plays: instruments per channel, drums, tempo, length."""

    programs: dict[int, list[int]]  # channel -> programs that sounded notes there, in order of first use
    notes_per_channel: dict[int, int]
    drums: bool
    tempo_bpm: T.Optional[float]  # the first tempo event (None: the SMF default of 120)
    duration_s: float
    pitch_range: dict[int, tuple[int, int]]  # channel -> (lowest, highest) MIDI note

    def instruments(self, *, min_notes: int = 1) -> list[str]:
        """Names of the instruments that play at least ``min_notes`` notes, melodic first, drums last."""
        names: list[str] = []
        for channel in sorted(self.programs):
            if channel == PERCUSSION_CHANNEL or self.notes_per_channel.get(channel, 0) < min_notes:
                continue
            for program in self.programs[channel]:
                name = GM_PROGRAMS[program]
                if name not in names:
                    names.append(name)
        if self.drums and self.notes_per_channel.get(PERCUSSION_CHANNEL, 0) >= min_notes:
            names.append("drums")
        return names


def _read_varlen(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated variable-length quantity in MIDI data")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos


def read_midi_summary(path: T.Union[str, Path]) -> MidiSummary:
    """Summarise a Standard MIDI File (format 0 or 1).

    Programs are tracked per channel over time: a program counts for a channel only if a note starts on
    that channel while it is selected (programs set but never played are ignored, and a track that
    switches channels is handled). Channels without a program change play program 0.

    Raises
    ------
    ValueError
        If the file is not a Standard MIDI File.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"MThd" or len(data) < 14:
        raise ValueError(f"{str(path)!r} is not a Standard MIDI File (no MThd header)")
    header_len = struct.unpack(">I", data[4:8])[0]
    _fmt, ntracks, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        raise ValueError(f"{str(path)!r} uses SMPTE time division, which is not supported")
    pos = 8 + header_len
    # Events of all tracks, as (tick, order, kind, channel, value) for a global time-ordered pass.
    events: list[tuple[int, int, str, int, int]] = []
    order = 0
    for _ in range(ntracks):
        if data[pos : pos + 4] != b"MTrk":
            break
        length = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        track = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
        tick = 0
        i = 0
        status = 0
        while i < len(track):
            delta, i = _read_varlen(track, i)
            tick += delta
            byte = track[i]
            if byte == 0xFF:  # meta event
                meta_type = track[i + 1]
                mlen, i = _read_varlen(track, i + 2)
                payload = track[i : i + mlen]
                i += mlen
                if meta_type == 0x51 and mlen == 3:
                    events.append((tick, order, "tempo", -1, int.from_bytes(payload, "big")))
                    order += 1
                continue
            if byte in (0xF0, 0xF7):  # sysex
                slen, i = _read_varlen(track, i + 1)
                i += slen
                continue
            if byte & 0x80:
                status = byte
                i += 1
            kind = status & 0xF0
            channel = status & 0x0F
            if kind in (0xC0, 0xD0):
                value = track[i]
                i += 1
                if kind == 0xC0:
                    events.append((tick, order, "program", channel, value))
                    order += 1
            else:
                note, velocity = track[i], track[i + 1]
                i += 2
                if kind == 0x90 and velocity > 0:
                    events.append((tick, order, "note", channel, note))
                    order += 1
                elif kind in (0x80, 0x90):
                    events.append((tick, order, "off", channel, note))
                    order += 1
    events.sort()
    current = {ch: 0 for ch in range(16)}
    programs: dict[int, list[int]] = {}
    counts: dict[int, int] = {}
    ranges: dict[int, tuple[int, int]] = {}
    tempo_us = None
    seconds = 0.0
    last_tick = 0
    us_per_beat = 500000
    for tick, _, kind, channel, value in events:
        seconds += (tick - last_tick) * us_per_beat / 1e6 / division
        last_tick = tick
        if kind == "tempo":
            us_per_beat = value
            tempo_us = value if tempo_us is None else tempo_us
        elif kind == "program":
            current[channel] = value
        elif kind == "note":
            counts[channel] = counts.get(channel, 0) + 1
            low, high = ranges.get(channel, (value, value))
            ranges[channel] = (min(low, value), max(high, value))
            if channel != PERCUSSION_CHANNEL:
                used = programs.setdefault(channel, [])
                if current[channel] not in used:
                    used.append(current[channel])
            else:
                programs.setdefault(channel, [])
    return MidiSummary(
        programs=programs,
        notes_per_channel=counts,
        drums=counts.get(PERCUSSION_CHANNEL, 0) > 0,
        tempo_bpm=None if tempo_us is None else round(60e6 / tempo_us, 1),
        duration_s=seconds,
        pitch_range=ranges,
    )


@dataclasses.dataclass(frozen=True)
class Note:
    """One note: start and length in beats, MIDI pitch, velocity 1-127, 0-based channel."""

    start: float
    length: float
    pitch: int
    velocity: int = 96
    channel: int = 0


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def write_midi(
    path: T.Union[str, Path],
    notes: T.Sequence[Note],
    *,
    tempo_bpm: float,
    programs: T.Mapping[int, int],
    ticks_per_beat: int = 480,
) -> None:
    """Write a type-0 Standard MIDI File.

    Parameters
    ----------
    path : path
    notes : sequence of Note
    tempo_bpm : float, keyword-only
    programs : mapping, keyword-only
        0-based channel -> GM program, set at time 0 (ignored for the percussion channel 9).
    """
    if not 20 <= tempo_bpm <= 400:
        raise ValueError(f"tempo_bpm must be in [20, 400], got {tempo_bpm}")
    timed: list[tuple[int, int, bytes]] = []
    us = int(round(60e6 / tempo_bpm))
    timed.append((0, 0, b"\xFF\x51\x03" + us.to_bytes(3, "big")))
    for channel, program in programs.items():
        if channel != PERCUSSION_CHANNEL:
            timed.append((0, 1, bytes([0xC0 | channel, program & 0x7F])))
    for note in notes:
        on = int(round(note.start * ticks_per_beat))
        off = max(on + 1, int(round((note.start + note.length) * ticks_per_beat)))
        timed.append((on, 3, bytes([0x90 | note.channel, note.pitch & 0x7F, max(1, min(127, note.velocity))])))
        timed.append((off, 2, bytes([0x80 | note.channel, note.pitch & 0x7F, 0])))
    timed.sort(key=lambda e: (e[0], e[1]))
    body = bytearray()
    last = 0
    for tick, _, message in timed:
        body += _varlen(tick - last) + message
        last = tick
    body += _varlen(0) + b"\xFF\x2F\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    Path(path).write_bytes(header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body))
