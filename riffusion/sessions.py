"""Jam sessions: the record of a performance (every clip's request and where it played) and its offline
re-rendering.

A session is what the jam page writes (``window.__riff.session()``, the Share panel's download, a shared
link): a JSON document ``{"schema": "riffusion-session", "version": 1, ...}`` whose fields are described
in ``docs/sessions.md`` and ``riffusion/web/session.schema.json``. :func:`parse_session` reads it once
into a :class:`Session`; :func:`render_session` makes every clip again through
:func:`riffusion.generation.generate_clips` (the server's own path from a request to a clip) and lays the
clips out as the jam's player did: back to back, each overlapping the next by an equal-power crossfade,
with the bars the jam looped while a clip was late. Its two halves are public for a caller that makes
the clips its own way (the server queues each as a job of its own): :func:`session_requests` and
:func:`join_session`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing as T
from pathlib import Path

import numpy as np

from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.defaults import GENERATION
from riffusion.prompts import MAX_MIX_PROMPTS

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.generation import Clip
    from riffusion.protocols import SpectrogramPipeline
    from riffusion.reconstruction import PhaseMethod

SESSION_SCHEMA = "riffusion-session"
SESSION_VERSION = 1
# The jam's crossfade at each seam (riffusion/web/player.js CROSSFADE_S), in seconds.
CROSSFADE_S = 0.03
# The jam's fade curve: 32 points of sin(x * pi / 2) for x in [0, 1], which Web Audio's
# setValueCurveAtTime interpolates linearly over the fade (player.js EQUAL_POWER_IN).
_CURVE = np.sin(np.linspace(0.0, 1.0, 32) * (np.pi / 2)).astype(np.float32)
MAX_SEED = 2**53 - 1  # the largest integer a JavaScript page can write exactly
ALPHA_TOLERANCE = 1e-6  # an alpha this close outside [0, 1] is rounding and is clamped, as the server does
MAX_CLIPS = 100_000
MAX_SESSION_BYTES = 64 * 1024 * 1024


class SessionError(ValueError):
    """A session file that cannot be used; the message names the field at fault (``clips[3].request.alpha``)."""


@dataclasses.dataclass(frozen=True)
class SessionClip:
    """One clip of a session as the jam played it.

    Attributes
    ----------
    inputs : InferenceInput
        The request the jam sent for it.
    start_s : float
        Where it started on the jam's playback clock (transport seconds of music).
    duration_s : float
        Its audio's length as heard, seconds.
    bar_s : float
        The bar the jam looped while the next clip was late, seconds.
    loop_bars : int
        How many bars of it the jam looped after it, while the next clip was late.
    """

    inputs: InferenceInput
    start_s: float
    duration_s: float
    bar_s: float
    loop_bars: int = 0


@dataclasses.dataclass(frozen=True)
class Session:
    """A jam session, parsed and validated (:func:`parse_session`).

    Attributes
    ----------
    clips : tuple of SessionClip
        In the order they played.
    model : str or None
        The model the server ran (its ``/api/v1/defaults`` ``model``).
    sample_rate : int or None
        The server's audio rate, Hz.
    phase : PhaseMethod or None
        The server's phase reconstruction (its ``/api/v1/defaults`` ``phase``).
    crossfade_s : float
        The crossfade at each seam, seconds.
    """

    clips: T.Tuple[SessionClip, ...]
    model: T.Optional[str] = None
    sample_rate: T.Optional[int] = None
    phase: T.Optional["PhaseMethod"] = None
    crossfade_s: float = CROSSFADE_S


@dataclasses.dataclass(frozen=True)
class RenderedSession:
    """A session rendered offline.

    Attributes
    ----------
    waveform : np.ndarray, shape (channels, samples)
        float32 audio of the whole performance.
    sample_rate : int
        Hz.
    starts_s : tuple of float
        Where each clip starts in ``waveform``, seconds.
    clips : list of Clip
        The clips as generated (before the crossfades).
    """

    waveform: np.ndarray
    sample_rate: int
    starts_s: T.Tuple[float, ...]
    clips: T.List["Clip"]


# --- parsing ------------------------------------------------------------------------------------------------


def read_session(path: T.Union[str, Path]) -> Session:
    """The session in a JSON file (:func:`parse_session`); SessionError for a file that is not one,
    FileNotFoundError for a missing file."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_SESSION_BYTES:
        raise SessionError(f"{path}: {path.stat().st_size} bytes is more than a session may be "
                           f"({MAX_SESSION_BYTES} bytes)")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SessionError(f"{path} is not JSON: {exc}") from None
    try:
        return parse_session(data)
    except SessionError as exc:
        raise SessionError(f"{path}: {exc}") from None


def parse_session(data: T.Any) -> Session:
    """A session document (the decoded JSON) as a :class:`Session`, validated once.

    Raises
    ------
    SessionError
        Naming the field at fault and what was expected: another schema, a version this package does not
        read, a missing or out-of-range value.
    """
    if not isinstance(data, dict):
        raise SessionError(f"a session is a JSON object, got {_json_type(data)}")
    if data.get("schema") != SESSION_SCHEMA:
        raise SessionError(f"schema: expected {SESSION_SCHEMA!r}, got {_short(data.get('schema'))}")
    version = data.get("version")
    if version != SESSION_VERSION or isinstance(version, bool):
        raise SessionError(f"version: this riffusion reads {SESSION_SCHEMA} version {SESSION_VERSION}, "
                           f"got {_short(version)}")
    model = _optional(data, "model", str, "model")
    rate = _optional(data, "sample_rate", int, "sample_rate")
    if rate is not None and not 1000 <= rate <= 384000:
        raise SessionError(f"sample_rate: expected Hz in [1000, 384000], got {rate}")
    crossfade = _number(data.get("crossfade_s", CROSSFADE_S), "crossfade_s", low=0.0, high=1.0)
    phase = _optional(data, "phase", str, "phase")
    if phase is not None:
        from riffusion.generation import check_phase

        try:
            phase = check_phase(phase)
        except ValueError as exc:
            raise SessionError(f"phase: {exc}") from None
    clips = data.get("clips")
    if not isinstance(clips, list):
        raise SessionError(f"clips: expected a list of clips, got {_json_type(clips)}")
    if not clips:
        raise SessionError("clips: the session has no clips (nothing was played)")
    if len(clips) > MAX_CLIPS:
        raise SessionError(f"clips: at most {MAX_CLIPS} clips, got {len(clips)}")
    return Session(clips=tuple(_clip(c, f"clips[{i}]") for i, c in enumerate(clips)), model=model,
                   sample_rate=rate, phase=phase, crossfade_s=crossfade)


def _clip(data: T.Any, where: str) -> SessionClip:
    _object(data, where)
    duration = _number(data.get("duration_s"), f"{where}.duration_s", low=0.0, high=3600.0, low_open=True)
    bar = _number(data.get("bar_s", duration), f"{where}.bar_s", low=0.0, high=duration, low_open=True)
    loop_bars = data.get("loop_bars", 0)
    if isinstance(loop_bars, bool) or not isinstance(loop_bars, int) or not 0 <= loop_bars <= 100_000:
        raise SessionError(f"{where}.loop_bars: expected a whole number >= 0, got {_short(loop_bars)}")
    return SessionClip(inputs=_request(data.get("request"), f"{where}.request"),
                       start_s=_number(data.get("start_s"), f"{where}.start_s", low=0.0, high=math.inf),
                       duration_s=duration, bar_s=bar, loop_bars=loop_bars)


def _request(data: T.Any, where: str) -> InferenceInput:
    from riffusion.rhythm import MAX_BEATS_PER_BAR, MAX_BPM, MIN_BPM, BeatGrid

    _object(data, where)
    alpha = _number(data.get("alpha"), f"{where}.alpha", low=-ALPHA_TOLERANCE, high=1 + ALPHA_TOLERANCE)
    steps = data.get("num_inference_steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= GENERATION.max_inference_steps:
        raise SessionError(f"{where}.num_inference_steps: expected a whole number in "
                           f"[1, {GENERATION.max_inference_steps}], got {_short(steps)}")
    rhythm = data.get("rhythm")
    grid = None
    if rhythm is not None:
        _object(rhythm, f"{where}.rhythm")
        bpm = _number(rhythm.get("bpm"), f"{where}.rhythm.bpm", low=MIN_BPM, high=MAX_BPM)
        beats = rhythm.get("beats_per_bar", 4)
        if isinstance(beats, bool) or not isinstance(beats, int) or not 1 <= beats <= MAX_BEATS_PER_BAR:
            raise SessionError(f"{where}.rhythm.beats_per_bar: expected a whole number in "
                               f"[1, {MAX_BEATS_PER_BAR}], got {_short(beats)}")
        grid = BeatGrid(bpm=bpm, beats_per_bar=beats, offset_s=0.0)
    return InferenceInput(
        start=_end(data.get("start"), f"{where}.start"), end=_end(data.get("end"), f"{where}.end"),
        alpha=min(1.0, max(0.0, alpha)), num_inference_steps=steps,
        seed_image_id=_image_id(data.get("seed_image_id"), f"{where}.seed_image_id"),
        mask_image_id=_image_id(data.get("mask_image_id"), f"{where}.mask_image_id"), rhythm=grid,
    )


def _end(data: T.Any, where: str) -> PromptInput:
    _object(data, where)
    seed = data.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SessionError(f"{where}.seed: expected a whole number in [0, 2**53 - 1], got {_short(seed)}")
    options = {
        "seed": seed,
        "negative_prompt": _optional(data, "negative_prompt", str, f"{where}.negative_prompt"),
        "denoising": _number(data.get("denoising", GENERATION.denoising), f"{where}.denoising", low=0.0, high=1.0),
        "guidance": _number(data.get("guidance", GENERATION.guidance), f"{where}.guidance", low=0.0, high=1000.0),
    }
    prompt, prompts = data.get("prompt"), data.get("prompts")
    if (prompt is None) == (prompts is None):
        raise SessionError(f"{where}: give either prompt or prompts (a weighted mix), got "
                           f"{'both' if prompt is not None else 'neither'}")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise SessionError(f"{where}.prompt: expected a string, got {_json_type(prompt)}")
        return PromptInput(prompt=prompt, **options)
    if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_MIX_PROMPTS:
        raise SessionError(f"{where}.prompts: expected a list of 1 to {MAX_MIX_PROMPTS} {{prompt, weight}} objects, "
                           f"got {_short(prompts)}")
    mix = []
    for i, entry in enumerate(prompts):
        _object(entry, f"{where}.prompts[{i}]")
        text = entry.get("prompt")
        if not isinstance(text, str) or not text.strip():
            raise SessionError(f"{where}.prompts[{i}].prompt: expected a non-blank string, got {_short(text)}")
        mix.append((text, _number(entry.get("weight", 1.0), f"{where}.prompts[{i}].weight", low=0.0, high=1000.0)))
    try:
        return PromptInput.mixed(mix, **options)
    except ValueError as exc:
        raise SessionError(f"{where}.prompts: {exc}") from None


def _image_id(value: T.Any, where: str) -> T.Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64 or "/" in value or "\\" in value \
            or value.startswith("."):
        raise SessionError(f"{where}: expected a seed image id (a name, no path), got {_short(value)}")
    return value


def _object(value: T.Any, where: str) -> None:
    if not isinstance(value, dict):
        raise SessionError(f"{where}: expected an object, got {_json_type(value)}")


def _optional(data: dict, key: str, kind: type, where: str):
    value = data.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise SessionError(f"{where}: expected {'a string' if kind is str else 'a whole number'} or null, "
                           f"got {_short(value)}")
    return value


def _number(value: T.Any, where: str, *, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SessionError(f"{where}: expected a number, got {_short(value)}")
    if value < low or value > high or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise SessionError(f"{where}: expected a number in {interval}, got {value!r}")
    return float(value)


def _json_type(value: T.Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _short(value: T.Any) -> str:
    return "nothing" if value is None else f"{json.dumps(value)[:60]}"


# --- rendering ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Piece:
    """One stretch of a clip on the timeline: samples ``[0, length)`` of clip ``clip`` from sample ``at``."""

    clip: int
    at: int
    length: int


def session_schedule(lengths: T.Sequence[int], bars: T.Sequence[int], loop_bars: T.Sequence[int], *,
                     fade: int) -> list[Piece]:
    """The jam player's schedule in samples: each clip from where the last piece ends less ``fade``
    samples (the crossfade), then ``loop_bars`` repeats of its first bar (``bars`` samples, each played
    with ``fade`` more to fade out under the next piece).

    Parameters
    ----------
    lengths, bars, loop_bars : sequences of int, one per clip
        Each clip's samples, its bar in samples and the bars looped after it.
    fade : int
        Crossfade samples (>= 0).
    """
    if not len(lengths) == len(bars) == len(loop_bars):
        raise ValueError(f"lengths, bars and loop_bars must have one entry per clip, got "
                         f"{len(lengths)}, {len(bars)}, {len(loop_bars)}")
    if fade < 0:
        raise ValueError(f"fade must be >= 0 samples, got {fade}")
    pieces, at = [], 0
    for index, (length, bar, repeats) in enumerate(zip(lengths, bars, loop_bars)):
        if length <= 2 * fade:
            raise ValueError(f"clip {index} is {length} samples, too short for two {fade}-sample fades")
        pieces.append(Piece(index, at, length))
        at += length - fade
        for _ in range(repeats):
            pieces.append(Piece(index, at, min(length, bar + fade)))
            at += bar
    return pieces


def mix_schedule(waveforms: T.Sequence[np.ndarray], pieces: T.Sequence[Piece], *, fade: int) -> np.ndarray:
    """The pieces of ``waveforms`` (each (channels, samples)) summed on one timeline, each faded in over
    its first ``fade`` samples and out over its last with the jam's equal-power curve.

    Returns
    -------
    np.ndarray, shape (channels, samples)
        float32; ``samples`` is where the last piece ends.
    """
    if not pieces:
        raise ValueError("nothing to mix: no pieces")
    channels = max(np.asarray(w).shape[0] for w in waveforms)
    out = np.zeros((channels, max(p.at + p.length for p in pieces)), dtype=np.float32)
    # Web Audio reads a curve of N points over a fade of F samples at position i / F * (N - 1) for its
    # sample i: the fade-out is the same curve read backwards from its end, so the gains of the two sides
    # of a seam are sin and cos of one angle at every sample.
    points = np.arange(len(_CURVE))
    fade_in = np.interp(np.arange(fade) / max(fade, 1) * points[-1], points, _CURVE).astype(np.float32)
    fade_out = np.interp((fade - np.arange(fade)) / max(fade, 1) * points[-1], points, _CURVE).astype(np.float32)
    for piece in pieces:
        audio = np.asarray(waveforms[piece.clip], dtype=np.float32)[:, : piece.length]
        if audio.shape[0] != channels:  # mono among stereo clips: the same on both channels
            audio = np.repeat(audio[:1], channels, axis=0)
        gain = np.ones(audio.shape[-1], dtype=np.float32)
        n = min(fade, audio.shape[-1] // 2)
        gain[:n] = fade_in[:n]
        gain[audio.shape[-1] - n:] *= fade_out[fade - n:]
        out[:, piece.at : piece.at + audio.shape[-1]] += audio * gain
    return out


def render_session(
    session: Session,
    pipeline: "SpectrogramPipeline",
    *,
    num_inference_steps: T.Optional[int] = None,
    phase: T.Union[str, "PhaseMethod", None] = None,
    loops: bool = True,
    batch_size: int = 1,
    progress: T.Optional[T.Callable[[int], None]] = None,
) -> RenderedSession:
    """Make every clip of ``session`` again and join them as the jam played them.

    Each request goes through :func:`riffusion.generation.generate_clips`, the path the server's
    ``/api/v1/generate`` takes, so the same model, steps and phase method give the clips the jam heard.

    Parameters
    ----------
    session : Session
    pipeline : SpectrogramPipeline
        The model; the session's own (``session.model``) gives the audio as heard.
    num_inference_steps : int, optional
        Every clip with this many steps instead of the recorded ones (more: higher quality).
    phase : str or PhaseMethod, optional
        Phase reconstruction, as :func:`riffusion.generation.generate_clip`; by default the session's (the
        server's), else "default".
    loops : bool
        Keep the bars the jam looped while a clip was late (as heard); False joins the clips directly.
    batch_size : int
        Requests per UNet batch.
    progress : callable, optional
        Called with the number of clips finished after each batch.
    """
    from riffusion.generation import check_phase, generate_clips

    requests = session_requests(session, pipeline, num_inference_steps=num_inference_steps)
    phase = check_phase(phase if phase is not None else session.phase or "default")
    clips = generate_clips(pipeline, requests, phase=phase, batch_size=batch_size, progress=progress)
    return join_session(session, clips, loops=loops)


def session_requests(
    session: Session, pipeline: "SpectrogramPipeline", *, num_inference_steps: T.Optional[int] = None
) -> list["InferenceInput"]:
    """The requests that make ``session``'s clips again on ``pipeline``, checked before any is made.

    Parameters
    ----------
    session : Session
    pipeline : SpectrogramPipeline
    num_inference_steps : int, optional
        Every clip with this many steps instead of the recorded ones.

    Returns
    -------
    list of InferenceInput, one per clip in session order

    Raises
    ------
    SessionError
        Naming the clip whose rhythm, seed loop or mask this pipeline cannot use.
    ValueError
        For a step count outside the accepted range.
    """
    from riffusion.defaults import check_generation
    from riffusion.seed_images import find_seed_image

    check_generation(num_inference_steps=num_inference_steps)
    requests = [clip.inputs for clip in session.clips]
    if num_inference_steps is not None:
        requests = [dataclasses.replace(r, num_inference_steps=int(num_inference_steps)) for r in requests]
    for i, request in enumerate(requests):  # every id before the first clip is made
        if request.rhythm is not None and not pipeline.has_rhythm_input:
            raise SessionError(f"clips[{i}].request.rhythm: {pipeline.model_id} has no rhythm input; "
                               "render this session with a rhythm model (such as its own)")
        for field, image_id, kind in (("seed_image_id", request.seed_image_id, "seed"),
                                      ("mask_image_id", request.mask_image_id, "mask")):
            if image_id is None:
                continue
            try:
                find_seed_image(image_id, pipeline, kind=kind)
            except (LookupError, ValueError) as exc:
                hint = (" (a loop uploaded to the jam's server is kept there only; it cannot be rendered offline)"
                        if image_id.startswith("upload-") else "")
                raise SessionError(f"clips[{i}].request.{field}: {exc}{hint}") from None
    return requests


def join_session(session: Session, clips: T.Sequence["Clip"], *, loops: bool = True) -> RenderedSession:
    """Join clips made from :func:`session_requests` as the jam played them: gapless, crossfaded, with
    the bars it looped while a clip was late (``loops``).

    Parameters
    ----------
    session : Session
    clips : sequence of Clip, one per session clip, in order, all at one sample rate
    loops : bool, keyword-only

    Raises
    ------
    ValueError
        When the clips do not match the session's in number or sample rate.
    """
    if len(clips) != len(session.clips):
        raise ValueError(f"the session has {len(session.clips)} clips, got {len(clips)}")
    rates = {clip.sample_rate for clip in clips}
    if len(rates) != 1:
        raise ValueError(f"the clips must share one sample rate, got {sorted(rates)}")
    rate = rates.pop()
    fade = int(round(session.crossfade_s * rate))
    lengths = [clip.waveform.shape[-1] for clip in clips]
    bars = [_bar_samples(played, clip, rate) for played, clip in zip(session.clips, clips)]
    repeats = [played.loop_bars if loops else 0 for played in session.clips]
    pieces = session_schedule(lengths, bars, repeats, fade=fade)
    waveform = mix_schedule([clip.waveform for clip in clips], pieces, fade=fade)
    starts = tuple(p.at / rate for i, p in enumerate(pieces) if i == 0 or pieces[i - 1].clip != p.clip)
    return RenderedSession(waveform=waveform, sample_rate=rate, starts_s=starts, clips=list(clips))


def _bar_samples(played: SessionClip, clip: "Clip", rate: int) -> int:
    """The bar the jam looped, for the clip as rendered: the tempo's bar for a clip on a requested tempo,
    else the same share of the clip as the bar the jam played (a clip of the seed loop's bars)."""
    length = clip.waveform.shape[-1]
    grid = clip.inputs.rhythm
    if grid is not None and grid.offset_s == 0:
        seconds = grid.beat_s * grid.beats_per_bar
    else:
        seconds = clip.duration_s * played.bar_s / played.duration_s
    return max(1, min(length, int(round(seconds * rate))))
