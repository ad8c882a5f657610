"""Continuation: audio of any length followed by new music that carries on from its end.

Each new clip is drawn with the previous audio's tail as fixed context (spectrogram outpainting): the left
``context`` columns of the clip's image are the tail of the previous audio's spectrogram, kept exactly by
the mask; the right part is repainted under the prompt. The repainted part does not start from pure noise
by default: it is initialised with the context's last whole bars repeated (on the input's beat grid) and
denoised at :data:`DEFAULT_DENOISING`, which keeps key, instruments and groove better than masking alone
(``denoising=1.0``; ``bench/bench_continuation.py`` measures both). A model with a rhythm input also gets
the input's beat grid, continued through every clip, so new clips stay on the input's bars.

Clips are joined inside their shared context: both sides of a junction render the same spectrogram there,
so an equal-power crossfade of ``crossfade_s`` between them is a change of phase, not of music, and the
new clip's level is matched to the audio it continues over that region. The input is kept sample for
sample except its last ``crossfade_s``, where it fades into the continuation.

A :class:`PromptSchedule` changes the prompt at given seconds of the continuation
(``"0:jazz piano,20:rock band"``), parsed once at the edge.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing as T

import numpy as np
from PIL import Image

from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.defaults import check_generation
from riffusion.generation import check_phase, concatenate, converter_for
from riffusion.protocols import SpectrogramPipeline
from riffusion.rhythm import BeatGrid, estimate_beat_grid

#: Img2img strength of the repainted part, from the context's repeated last bars (1.0: from noise alone).
DEFAULT_DENOISING = 0.9
#: Crossfade at each junction, in seconds.
DEFAULT_CROSSFADE_S = 0.2
#: Most seconds one call may add.
MAX_SECONDS = 600.0
#: Seconds of the input's end its beat grid is estimated from.
GRID_ANALYSIS_S = 15.0
#: Longest prompt of a schedule entry, in characters.
MAX_PROMPT_CHARS = 2000

_ENTRY_SPLIT = re.compile(r",\s*(?=\d+(?:\.\d*)?\s*:)")
_ENTRY = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*:(.*)$", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class PromptSchedule:
    """Prompts and the second of the continuation (0 = the end of the input) from which each applies.

    Parameters
    ----------
    changes : tuple of (float, str)
        ``(start_s, prompt)`` pairs with strictly increasing times, the first at 0, prompts not blank.
    """

    changes: T.Tuple[T.Tuple[float, str], ...]

    def __post_init__(self) -> None:
        changes = tuple((float(start), str(prompt)) for start, prompt in self.changes)
        if not changes:
            raise ValueError("a prompt schedule needs at least one prompt")
        previous = -math.inf
        for start, prompt in changes:
            if not math.isfinite(start) or start < 0:
                raise ValueError(f"schedule time {start!r} must be a finite number of seconds >= 0")
            if start <= previous:
                raise ValueError(f"schedule times must increase, got {start:g} s after {previous:g} s")
            if not prompt.strip():
                raise ValueError(f"the schedule's prompt at {start:g} s is blank")
            if len(prompt) > MAX_PROMPT_CHARS:
                raise ValueError(f"the schedule's prompt at {start:g} s is longer than {MAX_PROMPT_CHARS} characters")
            previous = start
        if changes[0][0] != 0:
            raise ValueError(f"a prompt schedule starts at 0 s, got its first prompt at {changes[0][0]:g} s")
        object.__setattr__(self, "changes", changes)

    @classmethod
    def constant(cls, prompt: str) -> "PromptSchedule":
        """One prompt throughout."""
        return cls(((0.0, prompt),))

    @classmethod
    def parse(cls, text: str) -> "PromptSchedule":
        """``"0:jazz piano,20:rock band"``: comma-separated ``SECONDS:PROMPT`` entries (a comma inside a
        prompt is kept unless a ``SECONDS:`` follows it). A text without ``SECONDS:`` is one prompt.

        Raises
        ------
        ValueError
            Naming the entry, for an entry without its seconds, times that do not increase from 0, or a
            blank prompt.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a prompt schedule must be text like '0:jazz piano,20:rock band', got {text!r}")
        if not _ENTRY.match(text):
            return cls.constant(text.strip())
        changes = []
        for entry in _ENTRY_SPLIT.split(text):
            match = _ENTRY.match(entry)
            if match is None:
                raise ValueError(f"schedule entry {entry.strip()[:80]!r} must look like SECONDS:PROMPT, e.g. 20:rock band")
            changes.append((float(match.group(1)), match.group(2).strip()))
        return cls(tuple(changes))

    @classmethod
    def of(cls, value: T.Union[str, "PromptSchedule"]) -> "PromptSchedule":
        """A schedule as it is, or parsed from text (:meth:`parse`)."""
        return value if isinstance(value, cls) else cls.parse(value)

    def prompt_at(self, seconds: float) -> str:
        """The prompt that applies at ``seconds`` into the continuation."""
        current = self.changes[0][1]
        for start, prompt in self.changes:
            if start > seconds:
                break
            current = prompt
        return current

    def __str__(self) -> str:
        return ",".join(f"{start:g}:{prompt}" for start, prompt in self.changes)


@dataclasses.dataclass(frozen=True)
class Continuation:
    """What :func:`continue_audio` returns.

    Attributes
    ----------
    waveform : np.ndarray, shape (channels, samples), float32
        The input followed by the continuation, at the input's rate and channels.
    sample_rate : int
        Hz.
    input_samples : int
        Samples of the input at the start of ``waveform``.
    junctions_s : tuple of float
        Where each new clip's own music begins, in seconds from the start (the first is the input's end).
    crossfades_s : tuple of (float, float)
        Each junction's crossfade (start, end) in seconds from the start: the first ends at the input's end,
        later ones a few columns before their junction.
    prompts : tuple of str
        Each new clip's prompt.
    grid : BeatGrid or None
        The beat grid the continuation follows, in the output's time (None: no clear pulse, or not asked).
    """

    waveform: np.ndarray
    sample_rate: int
    input_samples: int
    junctions_s: T.Tuple[float, ...]
    crossfades_s: T.Tuple[T.Tuple[float, float], ...]
    prompts: T.Tuple[str, ...]
    grid: T.Optional[BeatGrid]

    @property
    def duration_s(self) -> float:
        return self.waveform.shape[-1] / self.sample_rate


def continue_audio(
    pipeline: SpectrogramPipeline,
    waveform: np.ndarray,
    sample_rate: int,
    *,
    prompt: T.Union[str, PromptSchedule],
    seconds: float,
    seed: int = 42,
    negative_prompt: T.Optional[str] = None,
    num_inference_steps: T.Optional[int] = None,
    guidance: T.Optional[float] = None,
    denoising: float = DEFAULT_DENOISING,
    context: float = 0.5,
    crossfade_s: float = DEFAULT_CROSSFADE_S,
    bpm: T.Optional[float] = None,
    beats_per_bar: T.Optional[int] = None,
    phase: str = "default",
    progress: T.Optional[T.Callable[[int], None]] = None,
) -> Continuation:
    """``waveform`` followed by ``seconds`` of new music that carries on from its end.

    Parameters
    ----------
    pipeline : SpectrogramPipeline
    waveform : np.ndarray, shape (channels, samples) or (samples,)
        The input, float in [-1, 1], any length (at least ``crossfade_s``).
    sample_rate : int
        Its rate in Hz; the output keeps it (the new part is resampled from the model's rate).
    prompt : str or PromptSchedule, keyword-only
        What the continuation sounds like; a schedule changes it at given seconds of the continuation.
    seconds : float, keyword-only
        Seconds to add, in (0, :data:`MAX_SECONDS`].
    seed : int, keyword-only
        Clip ``k`` uses seed ``seed + k`` (noise and phase reconstruction): the same arguments give the
        same audio.
    num_inference_steps, guidance : optional, keyword-only
        The model's defaults when None.
    denoising : float, keyword-only
        Strength in (0, 1] of each repainted part, from the context's last bars repeated; 1.0 is plain
        outpainting from noise.
    context : float, keyword-only
        Share of each clip's columns, in (0, 1), kept as context (the rest is new music).
    crossfade_s : float, keyword-only
        Equal-power crossfade at each junction, in seconds.
    bpm, beats_per_bar : optional, keyword-only
        The input's tempo and metre; by default the tempo is estimated from the input's last
        :data:`GRID_ANALYSIS_S` seconds (the metre is then unknown unless given).
    phase : str, keyword-only
        Phase reconstruction method (:func:`riffusion.generation.check_phase`).
    progress : callable, optional, keyword-only
        Called with 1 after each clip.

    Returns
    -------
    Continuation
        ``waveform.shape[-1] == input samples + round(seconds * sample_rate)``.

    Raises
    ------
    ValueError
        Naming the value, for empty or non-finite audio, seconds out of range, a bad schedule or option.
    """
    run = ContinuationRun(pipeline, waveform, sample_rate, prompt=prompt, seconds=seconds, seed=seed,
                          negative_prompt=negative_prompt, num_inference_steps=num_inference_steps, guidance=guidance,
                          denoising=denoising, context=context, crossfade_s=crossfade_s, bpm=bpm,
                          beats_per_bar=beats_per_bar, phase=phase)
    while not run.done:
        run.step(pipeline)
        if progress is not None:
            progress(1)
    return run.result()


class ContinuationRun:
    """A continuation made one clip at a time, for a caller that schedules the clips itself (the server
    queues each as a request of its own, so other listeners' clips are made between them).

    The constructor checks every argument and analyses the input (beat grid, the first clip's context);
    :meth:`step` makes the next clip; :meth:`result` joins them once :attr:`done`. The arguments are
    :func:`continue_audio`'s (which drives one), with the same errors.
    """

    def __init__(
        self,
        pipeline: SpectrogramPipeline,
        waveform: np.ndarray,
        sample_rate: int,
        *,
        prompt: T.Union[str, PromptSchedule],
        seconds: float,
        seed: int = 42,
        negative_prompt: T.Optional[str] = None,
        num_inference_steps: T.Optional[int] = None,
        guidance: T.Optional[float] = None,
        denoising: float = DEFAULT_DENOISING,
        context: float = 0.5,
        crossfade_s: float = DEFAULT_CROSSFADE_S,
        bpm: T.Optional[float] = None,
        beats_per_bar: T.Optional[int] = None,
        phase: str = "default",
    ) -> None:
        from riffusion.audio import match_channels, resample

        schedule = PromptSchedule.of(prompt)
        x = _check_audio(waveform, sample_rate)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"seconds must be a number in (0, {MAX_SECONDS:g}], got {seconds!r}")
        if not 0.0 < denoising <= 1.0:
            raise ValueError(f"denoising must be in (0, 1], got {denoising!r}")
        if not 0.0 < context < 1.0:
            raise ValueError(f"context must be in (0, 1), got {context!r}")
        if not 0.0 <= crossfade_s <= 1.0:
            raise ValueError(f"crossfade_s must be in [0, 1] seconds, got {crossfade_s!r}")
        if x.shape[-1] < crossfade_s * sample_rate:
            raise ValueError(f"the input lasts {x.shape[-1] / sample_rate:.3f} s, shorter than the {crossfade_s:g} s crossfade")
        phase = check_phase(phase)

        params = pipeline.spectrogram_params
        rate, hop = params.sample_rate, params.hop_length
        width = pipeline.image_size[0]
        multiple = int(pipeline.width_multiple)
        keep = min(width - multiple, max(multiple, int(round(width * context / multiple)) * multiple))
        if keep < 2 or keep >= width:
            raise ValueError(f"context {context} leaves no room to keep or add columns in a {width}-column clip")
        steps = pipeline.default_num_inference_steps if num_inference_steps is None else num_inference_steps
        check_generation(num_inference_steps=steps)
        if steps < pipeline.min_num_inference_steps(denoising):
            raise ValueError(f"num_inference_steps={steps} is too few at denoising {denoising:g} for {pipeline.model_id}: "
                             f"use at least {pipeline.min_num_inference_steps(denoising)}")
        guidance = pipeline.default_guidance if guidance is None else float(guidance)
        fade = int(round(crossfade_s * rate))
        # Later junctions stay clear of the previous clip's last columns, where phase reconstruction is weakest.
        margin = min(4 * hop, (keep - 1) * hop // 4)
        if fade + margin >= (keep - 1) * hop // 2:
            raise ValueError(f"crossfade_s {crossfade_s:g} is too long for the {(keep - 1) * hop / rate:.2f} s of context "
                             f"this model keeps per clip")

        mono = match_channels(resample(x, sample_rate, rate), params.num_channels)
        end = mono.shape[-1]
        self.grid = _grid_of(mono, pipeline, bpm=bpm, beats_per_bar=beats_per_bar)
        self._converter = converter_for(pipeline, phase)

        # Clip k's column j sounds at model-rate sample a_k + j * hop; its context ends at t_k = a_k + ctx.
        ctx = (keep - 1) * hop
        new_per_clip = (width - keep) * hop
        need = int(math.ceil(seconds * rate)) + fade + 2 * hop
        #: Clips this continuation makes.
        self.num_clips = max(1, int(math.ceil(need / new_per_clip)))
        start = end - ctx
        segment = mono[:, max(start, 0) : end]
        if start < 0:  # an input shorter than the context: silence before it
            segment = np.pad(segment, ((0, 0), (-start, 0)))
        self._context_pixels = _pixels(self._converter.image_from_waveform(segment, rate))[:, -keep:]
        self._previous = segment  # the audio the next clip continues, over its context columns
        self._stream: T.Optional[np.ndarray] = None
        self._junctions: list[int] = []
        self._prompts: list[str] = []
        self._x, self._sample_rate, self._seconds = x, int(sample_rate), float(seconds)
        self._schedule, self._seed, self._negative_prompt = schedule, int(seed), negative_prompt
        self._steps, self._guidance, self._denoising = steps, guidance, denoising
        self._rate, self._end, self._ctx, self._new_per_clip = rate, end, ctx, new_per_clip
        self._keep, self._fade, self._margin = keep, fade, margin

    @property
    def done(self) -> bool:
        """Whether every clip is made."""
        return len(self._junctions) >= self.num_clips

    def step(self, pipeline: SpectrogramPipeline) -> int:
        """Make the next clip on ``pipeline`` (the one the run was planned with) and return how many are made.

        Raises
        ------
        RuntimeError
            When every clip is already made.
        """
        if self.done:
            raise RuntimeError(f"all {self.num_clips} clips of this continuation are made")
        k = len(self._junctions)
        rate, ctx, fade, margin = self._rate, self._ctx, self._fade, self._margin
        t = self._end + k * self._new_per_clip  # the end of clip k's context
        text = self._schedule.prompt_at((t - self._end) / rate)
        end_input = PromptInput(prompt=text, seed=self._seed + k, negative_prompt=self._negative_prompt,
                                denoising=self._denoising, guidance=self._guidance)
        clip_grid = None
        if self.grid is not None and pipeline.has_rhythm_input:
            clip_grid = self.grid.shifted((t - ctx) / rate)
        inputs = InferenceInput(start=end_input, end=end_input, alpha=0.0, num_inference_steps=self._steps,
                                seed_image_id=None, rhythm=clip_grid)
        image, audio = _outpaint(pipeline, self._converter, inputs, self._context_pixels, self.grid, seed=self._seed + k)
        # level: the clip's rendering of its context as loud as the audio it continues there
        gain = _rms(self._previous[:, margin : ctx - margin]) / max(_rms(audio[:, margin : ctx - margin]), 1e-9)
        audio = audio * float(np.clip(gain, 0.05, 20.0))
        if self._stream is None:
            self._stream = audio[:, ctx - fade :]  # starts where the input's crossfade starts
        else:
            cut = self._stream.shape[-1] - margin  # the stream ends at t; end it `margin` earlier
            self._stream = concatenate([self._stream[:, :cut], audio[:, ctx - margin - fade :]], rate,
                                       crossfade_s=fade / rate)
        self._junctions.append(t)
        self._prompts.append(text)
        self._previous = audio[:, audio.shape[-1] - ctx :]
        self._context_pixels = _pixels(image)[:, -self._keep :]
        return len(self._junctions)

    def result(self) -> Continuation:
        """The input followed by the continuation, once :attr:`done`.

        Raises
        ------
        RuntimeError
            When clips are still to be made.
        """
        from riffusion.audio import match_channels, resample

        if not self.done:
            raise RuntimeError(f"{self.num_clips - len(self._junctions)} of {self.num_clips} clips are still to be made")
        x, sample_rate, rate, end, fade = self._x, self._sample_rate, self._rate, self._end, self._fade
        new = match_channels(resample(np.clip(self._stream, -1.0, 1.0), rate, sample_rate), x.shape[0])
        out = concatenate([x, new], sample_rate, crossfade_s=fade / rate)
        total = x.shape[-1] + int(round(self._seconds * sample_rate))
        out = out[:, :total]
        if out.shape[-1] < total:  # rounding of the resampler: at most a few samples
            out = np.pad(out, ((0, 0), (0, total - out.shape[-1])))
        origin = x.shape[-1] / sample_rate  # the input's end, in output seconds
        kept = [k for k, t in enumerate(self._junctions) if (t - end) / rate < self._seconds]
        times = [origin + (self._junctions[k] - end) / rate for k in kept]
        margin = self._margin
        return Continuation(
            waveform=np.ascontiguousarray(out, dtype=np.float32), sample_rate=sample_rate, input_samples=x.shape[-1],
            junctions_s=tuple(times),
            crossfades_s=tuple((t - (fade + (margin if k else 0)) / rate, t - (margin if k else 0) / rate)
                               for k, t in zip(kept, times)),
            prompts=tuple(self._prompts[k] for k in kept), grid=self.grid,
        )


# --- helpers ----------------------------------------------------------------------------------------------------


def _check_audio(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[-1] == 0 or x.shape[0] == 0:
        raise ValueError(f"expected input audio of shape (channels, samples), got {np.shape(waveform)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("the input audio has NaN or infinite samples")
    return x


def input_beat_grid(pipeline: SpectrogramPipeline, waveform: np.ndarray, sample_rate: int, *,
                    bpm: T.Optional[float] = None, beats_per_bar: T.Optional[int] = None) -> T.Optional[BeatGrid]:
    """The beat grid a continuation of ``waveform`` follows, in the input's time (seconds from its start).

    The tempo is ``bpm``, else estimated (:func:`riffusion.rhythm.estimate_beat_grid`) from the input's last
    :data:`GRID_ANALYSIS_S` seconds in ``pipeline``'s spectrogram geometry; the phase is always estimated.

    Parameters
    ----------
    pipeline : SpectrogramPipeline
    waveform : np.ndarray, shape (channels, samples) or (samples,)
        Float audio at ``sample_rate``.
    sample_rate : int
        Hz.
    bpm : float, optional, keyword-only
        The known tempo.
    beats_per_bar : int, optional, keyword-only
        The known metre (else the grid has none).

    Returns
    -------
    BeatGrid or None
        None when the input has no clear pulse and no ``bpm`` was given.
    """
    from riffusion.audio import match_channels, resample

    params = pipeline.spectrogram_params
    x = match_channels(resample(_check_audio(waveform, sample_rate), sample_rate, params.sample_rate),
                       params.num_channels)
    return _grid_of(x, pipeline, bpm=bpm, beats_per_bar=beats_per_bar)


def _grid_of(mono: np.ndarray, pipeline: SpectrogramPipeline, *, bpm: T.Optional[float],
             beats_per_bar: T.Optional[int]) -> T.Optional[BeatGrid]:
    from riffusion.image import image_from_waveform

    params = pipeline.spectrogram_params
    rate = params.sample_rate
    start = max(0, mono.shape[-1] - int(GRID_ANALYSIS_S * rate))
    pixels = _pixels(image_from_waveform(mono[:, start:], rate, params))[..., 0]
    column_s = params.hop_length / rate
    if pixels.shape[-1] < 8:
        return None if bpm is None else BeatGrid(bpm=float(bpm), beats_per_bar=beats_per_bar)
    grid = estimate_beat_grid(pixels.astype(np.float32), column_s=column_s, bpm=bpm, beats_per_bar=beats_per_bar)
    return None if grid is None else grid.shifted(-start / rate)


def _outpaint(pipeline: SpectrogramPipeline, converter, inputs: InferenceInput, context: np.ndarray,
              grid: T.Optional[BeatGrid], *, seed: int) -> tuple[Image.Image, np.ndarray]:
    """One clip's image, its ``context`` columns kept by the mask and the rest repainted from
    :func:`_outpaint_init`, and its audio (peak-normalised, the model's channels)."""
    import torch

    from riffusion.audio import match_channels

    params = pipeline.spectrogram_params
    width, height = pipeline.image_size
    mask = np.full((height, width), 255, dtype=np.uint8)  # white: repaint
    mask[:, : context.shape[1]] = 0  # black: keep
    init = _outpaint_init(context, width, grid, column_s=params.hop_length / params.sample_rate)
    image = pipeline.riffuse_batch([(inputs, init, Image.fromarray(mask, "L"))])[0]
    audio = converter.waveform_from_image(image, generator=torch.Generator("cpu").manual_seed(seed),
                                          apply_filters=False)
    return image, match_channels(audio, params.num_channels)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _outpaint_init(context: np.ndarray, width: int, grid: T.Optional[BeatGrid], *, column_s: float) -> Image.Image:
    """The clip's starting image: the context on the left, then its last whole bars (whole beats when the
    metre is unknown; the whole context without a grid) repeated on the grid to fill ``width`` columns."""
    keep = context.shape[1]
    period = float(keep)
    if grid is not None:
        unit = grid.beat_s * (grid.beats_per_bar or 1) / column_s
        if unit > keep:  # a bar longer than the context: whole beats
            unit = grid.beat_s / column_s
        if unit <= keep:
            period = unit * max(1, math.floor(keep / unit))
    columns = np.arange(keep, width, dtype=np.float64)
    back = np.ceil((columns - (keep - 1)) / period) * period
    source = np.clip(np.round(columns - back), 0, keep - 1).astype(int)
    pixels = np.concatenate([context, context[:, source]], axis=1)
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
