"""Public-domain scores from music21's corpus, rendered expressively with the MuseScore General soundfont.

A :class:`ScoreJob` names one window of one piece (a Bach chorale, a Haydn quartet movement, a reel from
Ryan's Mammoth Collection, ...) and how to play it: an ensemble of General MIDI programs, a tempo, a
reverb. :func:`render_score` turns it into a WAV as a performer would play it rather than as a sequencer
does:

* timing: every onset moves by a small seeded jitter plus a slow rubato curve, both bounded by
  :data:`riffusion.dataset.performance.MAX_SHIFT_S`; hornpipes and clogs swing their off-beat eighths
  (beats never move), so the score's beat grid holds to within that bound;
* velocity: phrase arches over four bars, accents on downbeats and lighter off-beats, a per-part gain (the
  mix), and a little noise;
* instruments: the score's voices go to an ensemble (strings, woodwinds, brass, organ, choir, piano,
  guitar, ...); single-line folk tunes get a doubled melody, a bass and chord accompaniment worked out per
  bar, and sometimes light percussion;
* room: fluidsynth's reverb with per-render settings, then a seeded synthetic room (decaying noise
  impulse response) mixed in, then the mono mix is normalised.

Every render starts on the first full bar's downbeat, so the clip's beat grid follows from ``start_s``,
``tempo_bpm`` and ``beats_per_bar`` exactly as for the other rendered MIDI (see
:func:`riffusion.rhythm.grid_for_clip`). Both count the felt pulse: the time signature's note value, but
dotted quarters in compound metres (a jig in 6/8 has two beats a bar), which also keeps fast jigs inside
the beat grid's tempo range.

Licences: the compositions are public domain (each collection names its composer and year of death, or
is traditional music from a collection printed before 1925); the encodings ship with music21 (BSD-3-Clause,
corpus terms in ``music21/corpus/license.txt``). The Essen folksong collection is left out: its encodings
are distributed for non-commercial use only.
"""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import typing as T
from pathlib import Path

import numpy as np

from riffusion.dataset.midi import PERCUSSION_CHANNEL, Note, read_midi_summary, write_midi
from riffusion.dataset.performance import add_room, humanise
from riffusion.dataset.render import _stable_rng, find_soundfont, require_tool

# The uncompressed SF2 (musescore-general-soundfont-lossless) first: fluidsynth loads only the samples a
# render uses from it, about ten times less work per render than decoding the SF3's compressed samples.
MUSESCORE_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/MuseScore_General_Full.sf2"),
    Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3"),
)
MUSESCORE_ATTRIBUTION = (
    "MuseScore General soundfont by S. Christian Collins (MIT; parts CC0 and public domain), "
    "Debian musescore-general-soundfont(-lossless)"
)
CORPUS_LICENSE_NOTE = "encoding from the music21 corpus (music21 BSD-3-Clause; corpus terms in music21/corpus/license.txt)"
PUBLIC_DOMAIN_DIED_BEFORE = 1925  # life + 100 years: public domain nearly everywhere


@dataclasses.dataclass(frozen=True)
class Collection:
    """A public-domain repertory of the music21 corpus and how to play it."""

    folder: str  # under music21/corpus
    composer: str
    died: T.Optional[int]  # composer's year of death; None: traditional tunes (``printed`` applies)
    style: str  # caption phrase
    ensembles: tuple[str, ...]  # keys of ENSEMBLES (polyphonic) or FOLK_LEADS (single-line tunes)
    pulse_bpm: tuple[int, int]  # range of the felt pulse's tempo
    weight: float  # share of the jobs
    pattern: str = r".*\.(mxl|xml|krn|abc)$"
    printed: T.Optional[int] = None  # year the collection was printed (traditional music)
    folk: bool = False


ENSEMBLES: dict[str, tuple[int, ...]] = {  # programs from the top voice to the bottom one
    "string quartet": (40, 40, 41, 42),
    "string orchestra": (48, 48, 48, 48),
    "woodwind quartet": (73, 68, 71, 70),
    "brass quartet": (56, 60, 57, 58),
    "saxophone quartet": (64, 65, 66, 67),
    "church organ": (19,),
    "choir": (52,),
    "piano": (0,),
    "harpsichord": (6,),
    "flute, clarinet, viola and cello": (73, 71, 41, 42),
    "nylon string guitars": (24,),
    "recorder consort": (74, 74, 74, 70),
}
FOLK_LEADS: dict[str, tuple[int, ...]] = {  # melody doubled by these, then an accompaniment
    "fiddle and flute": (110, 73),
    "violin": (40,),
    "tin whistle and accordion": (78, 21),
    "accordion": (21,),
    "flute": (73,),
    "clarinet": (71,),
    "oboe and harp": (68, 46),
    "recorder": (74,),
    "fiddle": (110,),
    "piano": (0,),
    "harmonica": (22,),
}
FOLK_BASS = (32, 42, 70, 58)  # acoustic bass, cello, bassoon, tuba
FOLK_CHORDS = (24, 25, 0, 46, 21)  # nylon guitar, steel guitar, piano, harp, accordion

_POLY = ("string quartet", "string orchestra", "woodwind quartet", "brass quartet", "church organ", "choir",
         "piano", "flute, clarinet, viola and cello", "saxophone quartet")
COLLECTIONS: dict[str, Collection] = {
    c.folder: c for c in (
        Collection("bach", "Johann Sebastian Bach", 1750, "baroque chorale", _POLY + ("harpsichord",),
                   (54, 84), 0.30, pattern=r"^bwv[\d.]+\.mxl$"),
        Collection("beethoven", "Ludwig van Beethoven", 1827, "classical string quartet movement",
                   ("string quartet", "string quartet", "string orchestra", "piano", "woodwind quartet"),
                   (60, 132), 0.05, pattern=r".*\.mxl$"),
        Collection("mozart", "Wolfgang Amadeus Mozart", 1791, "classical string quartet movement",
                   ("string quartet", "string orchestra", "piano", "woodwind quartet"), (66, 138), 0.05,
                   pattern=r".*\.mxl$"),
        Collection("haydn", "Joseph Haydn", 1809, "classical string quartet movement",
                   ("string quartet", "string orchestra", "piano"), (66, 132), 0.04, pattern=r".*\.mxl$"),
        Collection("schubert", "Franz Schubert", 1828, "romantic song", ("piano", "string quartet"),
                   (56, 80), 0.01),
        Collection("palestrina", "Giovanni Pierluigi da Palestrina", 1594, "renaissance mass movement",
                   ("choir", "choir", "church organ", "recorder consort", "brass quartet", "string orchestra"),
                   (50, 76), 0.12, pattern=r".*\.krn$"),
        Collection("monteverdi", "Claudio Monteverdi", 1643, "renaissance madrigal",
                   ("choir", "recorder consort", "string quartet", "nylon string guitars", "woodwind quartet"),
                   (60, 96), 0.10, pattern=r".*\.mxl$"),
        Collection("ryansMammoth", "traditional (Ryan's Mammoth Collection, 1883)", None, "fiddle tune",
                   tuple(FOLK_LEADS), (84, 124), 0.20, pattern=r".*\.abc$", printed=1883, folk=True),
        Collection("oneills1850", "traditional (O'Neill's Music of Ireland, 1903)", None, "irish tune",
                   tuple(FOLK_LEADS), (66, 120), 0.13, pattern=r".*\.abc$", printed=1903, folk=True),
    )
}
#: Kept out on purpose (see the module docstring).
EXCLUDED_COLLECTIONS = {"essenFolksong": "encodings licensed for non-commercial use only"}

_DANCES = ("reel", "jig", "slipjig", "slip jig", "hornpipe", "strathspey", "clog", "fling", "polka", "march",
           "waltz", "schottische", "quadrille", "set dance", "slide")


def is_public_domain(collection: Collection) -> bool:
    """Whether the collection's music is out of copyright: composer died, or tunes printed, before 1925."""
    year = collection.died if collection.died is not None else collection.printed
    return year is not None and year < PUBLIC_DOMAIN_DIED_BEFORE


@dataclasses.dataclass(frozen=True)
class ScoreJob:
    """One window of one corpus piece and how to perform it."""

    id: str
    collection: str  # a COLLECTIONS key
    path: str  # relative to the corpus root
    number: T.Optional[int]  # tune number in a multi-tune ABC file
    ensemble: str
    pulse_bpm: int
    seconds: float
    window: int  # which window of a long piece (seeds the choice of start bar)
    seed: int
    percussion: bool = False


#: What to install for the ``scores`` source.
MUSIC21_MISSING = "the 'scores' source needs music21 and its corpus: pip install -e '.[data]'"


class Music21Missing(ModuleNotFoundError):
    """music21 is not installed: the message is :data:`MUSIC21_MISSING`."""


def _music21():
    """The ``music21`` module. Raises :class:`Music21Missing` when it is absent."""
    try:
        import music21
    except ModuleNotFoundError:
        raise Music21Missing(MUSIC21_MISSING) from None
    return music21


def corpus_root() -> Path:
    music21 = _music21()

    return Path(music21.__file__).parent / "corpus"


def list_pieces(collection: str, *, root: T.Optional[Path] = None) -> list[tuple[str, T.Optional[int]]]:
    """(path relative to the corpus root, tune number or None) of every piece of a collection, sorted."""
    if collection not in COLLECTIONS:
        why = EXCLUDED_COLLECTIONS.get(collection)
        raise ValueError(f"unknown score collection {collection!r}" + (f" (excluded: {why})" if why else "")
                         + f"; expected one of {sorted(COLLECTIONS)}")
    root = root or corpus_root()
    pattern = re.compile(COLLECTIONS[collection].pattern)
    pieces: list[tuple[str, T.Optional[int]]] = []
    for path in sorted((root / collection).rglob("*")):
        if not path.is_file() or not pattern.match(path.name):
            continue
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".abc":
            numbers = [int(n) for n in re.findall(r"^X:\s*(\d+)", path.read_text(errors="replace"), re.M)]
            if len(numbers) > 1:
                pieces += [(rel, n) for n in dict.fromkeys(numbers)]
                continue
        pieces.append((rel, None))
    return pieces


def score_jobs(
    *, seed: int = 0, count: int = 260, seconds: float = 40.8, collections: T.Optional[T.Sequence[str]] = None,
    root: T.Optional[Path] = None,
) -> list[ScoreJob]:
    """``count`` render jobs spread over the collections by weight, reproducible from ``seed``.

    Raises
    ------
    ValueError
        For an unknown collection, ``count < 1`` or a selection with no pieces.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    names = list(collections) if collections else list(COLLECTIONS)
    pieces = {name: list_pieces(name, root=root) for name in names}
    names = [n for n in names if pieces[n] and is_public_domain(COLLECTIONS[n])]
    if not names:
        raise ValueError(f"no public-domain pieces found in score collections {list(collections or COLLECTIONS)}")
    total = sum(COLLECTIONS[n].weight for n in names)
    shares = [max(1, int(round(count * COLLECTIONS[n].weight / total))) for n in names]
    while sum(shares) > count:
        shares[shares.index(max(shares))] -= 1
    while sum(shares) < count:
        shares[shares.index(min(shares))] += 1
    jobs = []
    for name, share in zip(names, shares):
        coll = COLLECTIONS[name]
        rng = _stable_rng(seed, "scores", name)
        chosen = rng.sample(pieces[name], len(pieces[name]))
        for i in range(share):
            path, number = chosen[i % len(chosen)]
            window = i // len(chosen)
            job_rng = _stable_rng(seed, "score", path, number, window)
            ensemble = job_rng.choice(coll.ensembles)
            low, high = coll.pulse_bpm
            stem = re.sub(r"[^a-z0-9]+", "-", Path(path).with_suffix("").as_posix().lower()).strip("-")
            jobs.append(ScoreJob(
                id=f"score-{stem}" + (f"-{number}" if number is not None else "") + (f"-w{window}" if window else ""),
                collection=name, path=path, number=number, ensemble=ensemble,
                pulse_bpm=job_rng.randrange(low, high + 1), seconds=seconds, window=window, seed=seed,
                percussion=coll.folk and job_rng.random() < 0.4,
            ))
    return jobs


# --- from a music21 score to timed notes ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ScoreNote:
    """A note of the score: start and length in quarter notes from the window's first downbeat."""

    start: float
    length: float
    pitch: int
    part: int


@dataclasses.dataclass(frozen=True)
class ScoreWindow:
    """The notes of a window of whole bars, its metre, key and title."""

    notes: tuple[ScoreNote, ...]
    parts: int
    numerator: int
    denominator: int
    bars: int
    key: str
    title: str

    @property
    def beat_ql(self) -> float:
        """The time signature's note value in quarter notes."""
        return 4.0 / self.denominator

    @property
    def pulse_ql(self) -> float:
        """The felt pulse in quarter notes: dotted in compound metres (6/8, 9/8, 12/8), else the beat."""
        if self.denominator == 8 and self.numerator % 3 == 0:
            return 3 * self.beat_ql
        return self.beat_ql


def load_window(job: ScoreJob, *, root: T.Optional[Path] = None) -> ScoreWindow:
    """Parse the job's piece and cut a window of whole bars in one metre, starting on a downbeat.

    Raises
    ------
    FileNotFoundError
        If the piece is not in the corpus.
    ValueError
        If the piece has no full bar or no pitched notes.
    """
    _music21()
    from music21 import converter, meter, stream

    root = root or corpus_root()
    path = root / job.path
    if not path.is_file():
        raise FileNotFoundError(f"score {job.path!r} is not in the music21 corpus at {root}")
    score = converter.parse(path, number=job.number) if job.number is not None else converter.parse(path)
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    score = score.stripTies()
    parts = list(score.parts) or [score]
    first = parts[0]
    signatures = [(float(ts.getOffsetInHierarchy(first)), ts) for ts in first.recurse().getElementsByClass(meter.TimeSignature)]
    if not signatures:
        raise ValueError(f"{job.path}: no time signature")
    measures = list(first.getElementsByClass(stream.Measure))
    candidates = []
    for m in measures:
        offset = float(m.offset)
        active = [ts for o, ts in signatures if o <= offset + 1e-6]
        ts = active[-1] if active else signatures[0][1]
        bar_ql = float(ts.barDuration.quarterLength)
        if abs(float(m.duration.quarterLength) - bar_ql) < 1e-6 and not m.paddingLeft:
            candidates.append((offset, ts, bar_ql))
    if not candidates:
        raise ValueError(f"{job.path}: no full bar")
    rng = _stable_rng(job.seed, "window", job.path, job.number, job.window)
    usable = candidates[: max(1, len(candidates) - 4)]
    start, ts, bar_ql = usable[0] if job.window == 0 else rng.choice(usable)
    pulse_ql = 3 * 4.0 / ts.denominator if ts.denominator == 8 and ts.numerator % 3 == 0 else 4.0 / ts.denominator
    wanted = max(1, int(math.ceil(job.seconds * job.pulse_bpm / 60.0 * pulse_ql / bar_ql)))
    end = start + wanted * bar_ql
    later = [o for o, other in signatures if start + 1e-6 < o < end and other.ratioString != ts.ratioString]
    if later:  # stop at a change of metre, so that one grid covers the render
        end = start + max(1, int((min(later) - start) // bar_ql)) * bar_ql
    end = min(end, start + max(1, math.ceil((float(first.highestTime) - start) / bar_ql - 1e-6)) * bar_ql)
    notes = []
    for index, part in enumerate(parts):
        for element in part.flatten().notes:
            offset = float(element.offset)
            length = float(element.quarterLength)
            if length <= 0 or offset < start - 1e-6 or offset >= end - 1e-6:
                continue
            for pitch in element.pitches:
                notes.append(ScoreNote(offset - start, min(length, end - offset), int(pitch.midi), index))
    if not notes:
        raise ValueError(f"{job.path}: no notes in bars from offset {start}")
    bars = int(round((end - start) / bar_ql))
    if bars < wanted and not later:  # a short tune is played again, as tunes are, to fill the render
        block = bars * bar_ql
        repeats = int(math.ceil(wanted / bars))
        notes = [dataclasses.replace(n, start=n.start + r * block) for r in range(repeats) for n in notes]
        notes = [n for n in notes if n.start < wanted * bar_ql - 1e-6]
        bars = wanted
    try:
        key = score.analyze("key")
        key_name = f"{key.tonic.name.replace('-', 'b')} {key.mode}"
    except Exception:  # music21 raises several types on odd material; the key is only a caption word
        key_name = ""
    title = (score.metadata.title if score.metadata and score.metadata.title else "") or Path(job.path).stem
    return ScoreWindow(notes=tuple(sorted(notes, key=lambda n: (n.start, n.part, n.pitch))), parts=len(parts),
                       numerator=int(ts.numerator), denominator=int(ts.denominator),
                       bars=bars, key=key_name, title=str(title))


# --- performance -------------------------------------------------------------------------------------------

def _chord_roots(notes: T.Sequence[ScoreNote], bars: int, bar_ql: float, tonic: int, minor: bool) -> list[int]:
    """Per bar, the pitch class of the diatonic triad (I, IV, V, vi / i, iv, V, VI) that fits the melody best."""
    degrees = (0, 5, 7, 8) if minor else (0, 5, 7, 9)
    roots = []
    for bar in range(bars):
        weights = np.zeros(12)
        for n in notes:
            if bar * bar_ql <= n.start < (bar + 1) * bar_ql:
                weights[n.pitch % 12] += n.length * (2.0 if abs(math.fmod(n.start, bar_ql)) < 1e-6 else 1.0)
        best, best_score = tonic, -1.0
        for degree in degrees:
            root = (tonic + degree) % 12
            third = 3 if (minor and degree in (0, 5)) or (not minor and degree == 9) else 4
            score = weights[root] + weights[(root + third) % 12] + weights[(root + 7) % 12] + (0.1 if degree == 0 else 0)
            if score > best_score:
                best, best_score = root, score
        roots.append(best)
    return roots


def _tune_type(title: str) -> str:
    lowered = title.lower().replace("-", " ")
    for dance in _DANCES:
        if re.search(rf"\b{dance}\b", lowered):
            return "slip jig" if dance == "slipjig" else dance
    return ""


@dataclasses.dataclass(frozen=True)
class Performance:
    """What :func:`perform` decided: the MIDI notes, programs and caption facts."""

    notes: tuple[Note, ...]
    programs: dict[int, int]
    quarter_bpm: float
    tempo_bpm: float  # of the felt pulse (the beat grid's beat)
    beats_per_bar: int
    caption: str
    style: str


def perform(job: ScoreJob, window: ScoreWindow) -> Performance:
    """Assign instruments, add the folk accompaniment, humanise, and write the caption."""
    from riffusion.dataset.features import tempo_word

    coll = COLLECTIONS[job.collection]
    rng = _stable_rng(job.seed, "perform", job.id)
    quarter_bpm = job.pulse_bpm * window.pulse_ql
    tempo_bpm = float(job.pulse_bpm)
    bar_ql = window.numerator * window.beat_ql
    programs: dict[int, int] = {}
    channels: dict[int, int] = {}
    gains: dict[int, float] = {}
    extra: list[ScoreNote] = []
    free = [c for c in range(16) if c != PERCUSSION_CHANNEL]
    tune = _tune_type(window.title) if coll.folk else ""
    if coll.folk:
        leads = FOLK_LEADS[job.ensemble]
        melody = [n for n in window.notes if n.part == 0]
        for i, program in enumerate(leads):  # the melody doubled: one part per lead instrument
            channels[i], programs[free[i]], gains[i] = free[i], program, 1.0 if i == 0 else 0.7
            if i:
                extra += [dataclasses.replace(n, part=i) for n in melody]
        base = len(leads)
        tonic_name, _, mode = window.key.partition(" ")
        tonic = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}.get(tonic_name[:1], 0)
        tonic = (tonic + tonic_name.count("#") - tonic_name.count("b")) % 12
        roots = _chord_roots(melody, window.bars, bar_ql, tonic, mode == "minor")
        bass_prog, chord_prog = rng.choice(FOLK_BASS), rng.choice(FOLK_CHORDS)
        channels[base], programs[free[base]], gains[base] = free[base], bass_prog, 0.8
        channels[base + 1], programs[free[base + 1]], gains[base + 1] = free[base + 1], chord_prog, 0.6
        pulses = [p * window.pulse_ql for p in range(int(round(bar_ql / window.pulse_ql)))]
        for bar, root in enumerate(roots):
            minor_chord = mode == "minor" and (root - tonic) % 12 in (0, 5) or mode != "minor" and (root - tonic) % 12 == 9
            for j, pulse in enumerate(pulses):
                t = bar * bar_ql + pulse
                extra.append(ScoreNote(t, window.pulse_ql * 0.9, 36 + root + (7 if j % 2 else 0), base))
                for interval in (0, 3 if minor_chord else 4, 7):
                    extra.append(ScoreNote(t, window.pulse_ql * 0.7, 55 + (root + interval - 7) % 12 + 0, base + 1))
        notes = melody + extra
    else:
        voices = ENSEMBLES[job.ensemble]
        for part in range(window.parts):
            channel = free[part % len(free)]
            pick = voices[0] if len(voices) == 1 else voices[round(part * (len(voices) - 1) / max(1, window.parts - 1))]
            channels[part], programs[channel], gains[part] = channel, pick, rng.uniform(0.75, 1.0) * (1.1 if part == 0 else 1.0)
        notes = list(window.notes)
    played = humanise(notes, quarter_bpm=quarter_bpm, beat_ql=window.beat_ql, bar_ql=bar_ql, channels=channels,
                      gains=gains, rng=rng, swing=rng.uniform(0.1, 0.3) if tune in ("hornpipe", "strathspey", "clog") else 0.0,
                      legato=0.8 if coll.folk else 0.95)
    if job.percussion:
        programs[PERCUSSION_CHANNEL] = 0
        for bar in range(window.bars):
            for j in range(int(round(bar_ql / window.pulse_ql))):
                t = bar * bar_ql + j * window.pulse_ql
                played.append(Note(t, 0.2, 45 if j == 0 else 54, 70 if j == 0 else 48, PERCUSSION_CHANNEL))
    speed = tempo_word(job.pulse_bpm)
    metre = f"{window.numerator}/{window.denominator}"
    if coll.folk:
        origin = "irish" if job.collection == "oneills1850" else "traditional"
        words = f"{origin} {tune}" if tune else coll.style
        style = f"{'an' if words[0] in 'aeiou' else 'a'} {words}"
        phrase = f"{style} on {job.ensemble}" + (" with light percussion" if job.percussion else "")
    else:
        style = f"a {coll.style} by {coll.composer.split()[-1]}"
        phrase = f"{style} for {job.ensemble}" if job.ensemble not in ("church organ", "piano", "harpsichord", "choir") \
            else f"{style} on {job.ensemble}" if job.ensemble != "choir" else f"{style} sung by a choir"
    caption = f"{phrase}, {speed}, {job.pulse_bpm} bpm, {metre}" + (f", {window.key}" if window.key else "")
    return Performance(notes=tuple(played), programs=programs, quarter_bpm=quarter_bpm, tempo_bpm=tempo_bpm,
                       beats_per_bar=int(round(bar_ql / window.pulse_ql)), caption=caption, style=style)


# --- rendering ---------------------------------------------------------------------------------------------

def find_score_soundfont() -> tuple[Path, str]:
    """The MuseScore General soundfont and its attribution, else FluidR3_GM's (``apt-get install
    musescore-general-soundfont`` gives the better one)."""
    from riffusion.dataset.render import SOUNDFONT_ATTRIBUTION

    for path in MUSESCORE_SOUNDFONTS:
        if path.is_file():
            return path, MUSESCORE_ATTRIBUTION
    return find_soundfont(), SOUNDFONT_ATTRIBUTION


def render_score(
    job: ScoreJob, workdir: Path, *, sample_rate: int, soundfont: T.Optional[Path] = None, timeout: float = 180.0,
    root: T.Optional[Path] = None,
) -> tuple[Path, Performance, list[str], ScoreWindow]:
    """Perform and render one job to a mono WAV in ``workdir``.

    Returns the WAV, the performance, the instruments that sound (read back from the MIDI file) and the
    score window.
    """
    import soundfile

    soundfont = soundfont or find_score_soundfont()[0]
    workdir.mkdir(parents=True, exist_ok=True)
    window = load_window(job, root=root)
    performance = perform(job, window)
    midi, wav = workdir / f"{job.id}.mid", workdir / f"{job.id}.wav"
    write_midi(midi, list(performance.notes), tempo_bpm=performance.quarter_bpm, programs=performance.programs)
    rng = _stable_rng(job.seed, "room", job.id)
    fluidsynth = require_tool("fluidsynth", "fluidsynth")
    settings = {"synth.dynamic-sample-loading": 1, "synth.reverb.room-size": round(rng.uniform(0.3, 0.85), 2),
                "synth.reverb.damp": round(rng.uniform(0.2, 0.6), 2), "synth.reverb.level": round(rng.uniform(0.3, 0.8), 2),
                "synth.reverb.width": round(rng.uniform(0.5, 1.0), 2)}
    command = [fluidsynth, "-ni", "-q", "-R", "1", "-g", "0.5", "-r", str(sample_rate)]
    for name, value in settings.items():
        command += ["-o", f"{name}={value}"]
    result = subprocess.run(command + ["-F", str(wav), str(soundfont), str(midi)], capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0 or not wav.is_file():
        raise RuntimeError(f"fluidsynth failed on {job.id}: {(result.stderr or result.stdout).strip()[-300:]}")
    audio, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    mono = add_room(audio.mean(axis=1), rate, rt60_s=rng.uniform(0.8, 2.4), wet=rng.uniform(0.1, 0.35), rng=rng)
    soundfile.write(str(wav), mono, rate)
    instruments = read_midi_summary(midi).instruments(min_notes=2)
    midi.unlink(missing_ok=True)
    return wav, performance, instruments, window


def score_license(job: ScoreJob, soundfont_attribution: str) -> tuple[str, str, str]:
    """(author, licence, attribution) of a rendered job."""
    coll = COLLECTIONS[job.collection]
    died = f", d. {coll.died}" if coll.died else ""
    license_ = f"public-domain composition; {CORPUS_LICENSE_NOTE}; rendering MIT ({'MuseScore General' if 'MuseScore' in soundfont_attribution else 'FluidR3_GM'})"
    attribution = f"{job.path}" + (f" #{job.number}" if job.number is not None else "") + \
        f": {coll.composer}{died}, music21 corpus; {soundfont_attribution}"
    return coll.composer, license_, attribution


