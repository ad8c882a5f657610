"""From requests to sound: clips (image + waveform), interpolation runs and audio-to-audio.

The pipeline makes spectrogram images; this module resolves seed images and masks, turns images into audio
with the chosen phase method, and joins clips into continuous audio. The CLI, the notebook API and the
server call these functions.
"""

from __future__ import annotations

import dataclasses
import math
import typing as T

import numpy as np
from PIL import Image

from riffusion import image as image_codec
from riffusion.cancellation import CancelToken
from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.defaults import GENERATION
from riffusion.protocols import SpectrogramPipeline
from riffusion.spectrogram_params import SpectrogramParams

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.reconstruction import PhaseMethod
    from riffusion.rhythm import BeatGrid

ALPHA_CURVES = ("linear", "ease", "cosine")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One generated clip.

    Attributes
    ----------
    image : PIL.Image.Image
        The spectrogram image (RGB, the model's parameters in EXIF).
    waveform : np.ndarray, shape (channels, samples)
        float32 audio in [-1, 1].
    sample_rate : int
        Hz.
    duration_s : float
        ``samples / sample_rate``.
    inputs : InferenceInput
        The request that made it.
    """

    image: Image.Image
    waveform: np.ndarray
    sample_rate: int
    duration_s: float
    inputs: InferenceInput

    def write_audio(self, path) -> None:
        """Write the audio (format from the extension: wav, flac, ogg, mp3), atomically."""
        from riffusion.audio import write_audio

        write_audio(path, self.waveform, self.sample_rate)

    def save_image(self, path) -> None:
        """Write the spectrogram image (png or jpg, EXIF kept), atomically."""
        from riffusion.image import save_image

        save_image(self.image, path)


# --- converters and inputs --------------------------------------------------------------------------------


def check_phase(phase: T.Union[str, PhaseMethod]) -> PhaseMethod:
    """The phase method named by ``phase``, ``"name"`` or ``"name:iterations"``, parsed once here into
    the typed value that travels down (:meth:`riffusion.reconstruction.PhaseMethod.parse`; a
    ``PhaseMethod`` passes as it is), else ValueError saying what is accepted."""
    from riffusion.reconstruction import PhaseMethod

    return PhaseMethod.parse(phase)


@dataclasses.dataclass(frozen=True)
class ImageAudio:
    """Image <-> audio with one set of spectrogram parameters, phase method and torch device
    (:func:`riffusion.image.waveform_from_image`, :func:`riffusion.image.image_from_waveform`)."""

    params: SpectrogramParams
    phase: str = "default"
    device: str = "cpu"

    def waveform_from_image(self, image: Image.Image, **options) -> np.ndarray:
        """float32 audio (channels, samples) in [-1, 1]; ``options`` as :func:`riffusion.image.waveform_from_image`."""
        return image_codec.waveform_from_image(image, self.params, phase=self.phase, device=self.device, **options)

    def image_from_waveform(self, waveform: np.ndarray, sample_rate: int) -> Image.Image:
        """The spectrogram image (EXIF attached) of float audio at ``sample_rate``."""
        return image_codec.image_from_waveform(waveform, sample_rate, self.params, device=self.device)


def converter_for(pipeline: SpectrogramPipeline, phase: str = "default") -> ImageAudio:
    """Image <-> audio for a pipeline's spectrogram parameters: on its CUDA device, else on the CPU."""
    device = str(pipeline.device)
    return ImageAudio(pipeline.spectrogram_params, check_phase(phase), device if device.startswith("cuda") else "cpu")


def prepare_images(pipeline: SpectrogramPipeline, inputs: InferenceInput, *, width: T.Optional[int] = None,
                   seed_image: T.Optional[Image.Image] = None, mask_image: T.Optional[Image.Image] = None):
    """The seed image and mask of a request: given ones, else ``inputs.seed_image_id`` and
    ``inputs.mask_image_id`` looked up for this model, repeated to ``width`` columns if given;
    (None, None) for a request without a seed image (made from noise)."""
    from riffusion.seed_images import load_mask, load_seed_image, tile_image

    if width is not None:
        _check_width(pipeline, width)
    if seed_image is None and inputs.seed_image_id is None:
        if inputs.mask_image_id:
            raise ValueError(f"mask {inputs.mask_image_id!r} needs a seed image to keep parts of; name one")
        return None, None
    if seed_image is None:
        seed_image = load_seed_image(inputs.seed_image_id, pipeline, width=width)
    elif width is not None:
        seed_image = tile_image(seed_image.convert("RGB"), width)
    _, height = pipeline.image_size
    if seed_image.height != height:
        raise ValueError(
            f"seed image {inputs.seed_image_id!r} is {seed_image.height} px high; this model makes images "
            f"{height} px high"
        )
    if mask_image is None and inputs.mask_image_id:
        mask_image = load_mask(inputs.mask_image_id, pipeline, width=seed_image.width)
    return seed_image, mask_image


def with_loop_rhythm(pipeline: SpectrogramPipeline, inputs: InferenceInput, seed_image: T.Optional[Image.Image], *,
                     from_library: bool = True) -> InferenceInput:
    """``inputs`` with the beat grid of its seed loop, for a model with a rhythm input and a request that
    names no grid: the library's tempo and metre for a seed of the library (``from_library``), with the
    phase measured from the image; else the pipeline estimates the grid from the image itself."""
    if not pipeline.has_rhythm_input or inputs.rhythm is not None or not from_library or seed_image is None:
        return inputs
    from riffusion.seed_images import seed_beat_grid

    column_s = pipeline.spectrogram_params.step_size_ms / 1000.0
    grid = seed_beat_grid(inputs.seed_image_id, seed_image, pipeline, column_s=column_s)
    return dataclasses.replace(inputs, rhythm=grid) if grid is not None else inputs


def _check_width(pipeline: SpectrogramPipeline, width: int) -> None:
    factor = int(pipeline.width_multiple)
    if not isinstance(width, (int, np.integer)) or width < factor or width % factor:
        raise ValueError(f"width must be a positive multiple of {factor} pixels (columns), got {width!r}")


def _clip(pipeline: SpectrogramPipeline, image: Image.Image, inputs: InferenceInput, phase: str, apply_filters: bool,
          generator=None) -> Clip:
    import torch

    converter = converter_for(pipeline, phase)
    if generator is None:  # random-phase methods: the start seed makes the audio repeatable
        generator = torch.Generator("cpu").manual_seed(int(inputs.start.seed))
    waveform = converter.waveform_from_image(image, generator=generator, apply_filters=apply_filters)
    rate = pipeline.spectrogram_params.sample_rate
    if pipeline.has_rhythm_input and inputs.rhythm is not None:
        image, waveform = whole_bars(image, waveform, inputs.rhythm, sample_rate=rate,
                                     column_s=pipeline.spectrogram_params.step_size_ms / 1000.0)
    return Clip(image=image, waveform=waveform, sample_rate=rate, duration_s=waveform.shape[-1] / rate, inputs=inputs)


def whole_bars(image: Image.Image, waveform: np.ndarray, grid: "BeatGrid", *, sample_rate: int,
               column_s: float) -> tuple[Image.Image, np.ndarray]:
    """A clip on a requested grid (a downbeat at its start, ``grid.offset_s == 0``) cut to its whole bars,
    so that clips played back to back stay on the bar; unchanged for other grids, or when not even one bar
    fits. The image is cut to the columns that cover the kept audio."""
    if grid.offset_s != 0 or not grid.beats_per_bar:
        return image, waveform
    bar_samples = grid.beat_s * grid.beats_per_bar * sample_rate
    bars = int(waveform.shape[-1] // bar_samples + 1e-6)
    if bars < 1:
        return image, waveform
    keep = min(waveform.shape[-1], int(round(bars * bar_samples)))
    if keep >= waveform.shape[-1]:
        return image, waveform
    columns = min(image.width, int(math.ceil(keep / sample_rate / column_s)) + 1)
    cropped = image_codec.copy_exif(image, image.crop((0, 0, columns, image.height)))
    return cropped, np.ascontiguousarray(waveform[..., :keep])


# --- clips ----------------------------------------------------------------------------------------------------


def generate_clip(
    pipeline: SpectrogramPipeline,
    inputs: InferenceInput,
    *,
    phase: str = "default",
    width: T.Optional[int] = None,
    seed_image: T.Optional[Image.Image] = None,
    mask_image: T.Optional[Image.Image] = None,
    apply_filters: bool = True,
    use_reweighting: bool = True,
    generator=None,
) -> Clip:
    """One clip: the pipeline's image for ``inputs``, turned into audio.

    Parameters
    ----------
    pipeline : SpectrogramPipeline
    inputs : InferenceInput
        Seed image and mask come from ``inputs.seed_image_id`` / ``mask_image_id`` unless given.
    phase : str
        Phase reconstruction method: "default" (= "mel-griffin-lim"), "griffin-lim", "pghi",
        "pghi+griffin-lim", "mel-griffin-lim"; an iterative one may carry its iterations,
        "mel-griffin-lim:96" (:class:`riffusion.reconstruction.PhaseMethod`; parsed once, here).
    width : int, optional
        Image columns (10 ms each with the default parameters); the seed loop is repeated to fill them.
    apply_filters : bool
        The original's loudness post-filter (RMS -12 dBFS, peak -0.1 dBFS).
    generator : torch.Generator, optional
        Randomness of random-phase reconstruction; by default one seeded with ``inputs.start.seed``.
        (The image's randomness always comes from the request's seeds.)
    """
    return generate_clips(pipeline, [inputs], phase=phase, width=width, seed_image=seed_image,
                          mask_image=mask_image, apply_filters=apply_filters, use_reweighting=use_reweighting,
                          generator=generator)[0]


def generate_clips(
    pipeline: SpectrogramPipeline,
    inputs_list: T.Sequence[InferenceInput],
    *,
    phase: str = "default",
    width: T.Optional[int] = None,
    seed_image: T.Optional[Image.Image] = None,
    mask_image: T.Optional[Image.Image] = None,
    apply_filters: bool = True,
    use_reweighting: bool = True,
    batch_size: int = 4,
    progress: T.Optional[T.Callable[[int], None]] = None,
    generator=None,
    cancel: T.Optional[CancelToken] = None,
) -> list[Clip]:
    """Several clips, ``batch_size`` requests per UNet batch (:meth:`RiffusionPipeline.riffuse_batch`).

    ``progress(n)`` is called after every ``n`` finished clips (for progress bars). ``cancel``: a
    :class:`~riffusion.cancellation.CancelToken` the pipeline checks before every UNet step; once it is
    set, :class:`~riffusion.cancellation.Cancelled` is raised.
    """
    phase = check_phase(phase)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    clips: list[Clip] = []
    inputs_list = list(inputs_list)
    if not pipeline.has_rhythm_input and any(inputs.rhythm is not None for inputs in inputs_list):
        raise ValueError(f"{pipeline.model_id} has no rhythm input: a requested beat grid (rhythm) needs a rhythm "
                         "model; without one the clip follows its seed loop")
    for start in range(0, len(inputs_list), batch_size):
        chunk = inputs_list[start : start + batch_size]
        items = [(inputs, *prepare_images(pipeline, inputs, width=width, seed_image=seed_image, mask_image=mask_image))
                 for inputs in chunk]
        items = [(with_loop_rhythm(pipeline, inputs, image, from_library=seed_image is None), image, mask)
                 for inputs, image, mask in items]
        chunk = [inputs for inputs, _, _ in items]
        images = _riffuse_batch(pipeline, items, use_reweighting, cancel)
        for inputs, image in zip(chunk, images):
            clips.append(_clip(pipeline, image, inputs, phase, apply_filters, generator))
        if progress is not None:
            progress(len(chunk))
    return clips


def _riffuse_batch(pipeline: SpectrogramPipeline, items, use_reweighting: bool,
                   cancel: T.Optional[CancelToken] = None) -> list[Image.Image]:
    # ``cancel`` only when given: a pipeline from elsewhere may not take it
    extra = {} if cancel is None else {"cancel": cancel}
    return pipeline.riffuse_batch(items, use_reweighting=use_reweighting, **extra)


# --- interpolation ----------------------------------------------------------------------------------------


def alpha_schedule(num_clips: int, *, curve: str = "linear", include_start: bool = False) -> list[float]:
    """Alphas of ``num_clips`` clips from the start to the end prompt.

    ``include_start=False`` (the web app's way) gives 1/n, 2/n, ..., 1: each clip ends a step further,
    and a run that follows starts where this one ended. ``True`` gives 0, 1/(n-1), ..., 1.
    ``curve``: "linear", or "ease"/"cosine" (slow at both ends: (1 - cos(pi x)) / 2).
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    if curve not in ALPHA_CURVES:
        raise ValueError(f"unknown alpha curve {curve!r}; expected one of {', '.join(ALPHA_CURVES)}")
    if include_start:
        xs = [i / (num_clips - 1) for i in range(num_clips)] if num_clips > 1 else [0.0]
    else:
        xs = [(i + 1) / num_clips for i in range(num_clips)]
    if curve in ("ease", "cosine"):
        xs = [(1 - math.cos(math.pi * x)) / 2 for x in xs]
    return [min(1.0, max(0.0, x)) for x in xs]


def concatenate(waveforms: T.Sequence[np.ndarray], sample_rate: int, *, crossfade_s: float = 0.01) -> np.ndarray:
    """Join clips end to start with an equal-power crossfade of ``crossfade_s`` seconds (0 = butt joins).

    Each join overlaps the clips by the crossfade, so the result is ``crossfade_s`` shorter per join.
    """
    if not waveforms:
        raise ValueError("nothing to concatenate")
    overlap = int(round(crossfade_s * sample_rate))
    out = np.asarray(waveforms[0], dtype=np.float32)
    for nxt in waveforms[1:]:
        nxt = np.asarray(nxt, dtype=np.float32)
        n = min(overlap, out.shape[-1], nxt.shape[-1])
        if n <= 0:
            out = np.concatenate([out, nxt], axis=-1)
            continue
        ramp = np.linspace(0.0, np.pi / 2, n, dtype=np.float32)
        mixed = out[..., -n:] * np.cos(ramp) + nxt[..., :n] * np.sin(ramp)
        out = np.concatenate([out[..., :-n], mixed, nxt[..., n:]], axis=-1)
    return out


def interpolation_inputs(
    start: PromptInput,
    end: PromptInput,
    *,
    num_clips: int,
    num_inference_steps: int,
    curve: str = "linear",
    include_start: bool = True,
    seed_image_id: str = GENERATION.seed_image_id,
    mask_image_id: T.Optional[str] = None,
) -> list[InferenceInput]:
    """The requests of an interpolation run from ``start`` to ``end`` (see :func:`alpha_schedule`)."""
    return [
        InferenceInput(start=start, end=end, alpha=alpha, num_inference_steps=num_inference_steps,
                       seed_image_id=seed_image_id, mask_image_id=mask_image_id)
        for alpha in alpha_schedule(num_clips, curve=curve, include_start=include_start)
    ]


# --- audio to audio ---------------------------------------------------------------------------------------


def audio_to_audio(
    pipeline: SpectrogramPipeline,
    waveform: np.ndarray,
    sample_rate: int,
    *,
    start: PromptInput,
    end: T.Optional[PromptInput] = None,
    num_inference_steps: int = GENERATION.num_inference_steps,
    overlap: float = 0.2,
    mask_image_id: T.Optional[str] = None,
    phase: str = "default",
    batch_size: int = 4,
    progress: T.Optional[T.Callable[[int], None]] = None,
) -> np.ndarray:
    """Re-imagine a track of any length: overlapping clip-sized windows, each img2img of its own
    spectrogram at ``start.denoising`` (interpolating to ``end`` along the track), crossfaded back together.

    Parameters
    ----------
    waveform : np.ndarray, shape (channels, samples) or (samples,)
        Input audio, float in [-1, 1], at ``sample_rate`` (resampled to the model's rate internally).
    start, end : PromptInput
        Prompts, seeds, denoising and guidance at the beginning and the end of the track (``end`` = ``start``
        when None).
    overlap : float
        Fraction of a window shared with the next one, crossfaded (equal power).

    Returns
    -------
    np.ndarray, shape (1 or 2, samples) float32, the input's length at the input's sample rate
    """
    from riffusion.audio import match_channels, normalize_loudness, resample

    if not 0.0 <= overlap < 0.9:
        raise ValueError(f"overlap must be in [0, 0.9), got {overlap}")
    end = end or start
    params = pipeline.spectrogram_params
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[-1] == 0:
        raise ValueError(f"expected audio of shape (channels, samples), got {np.shape(waveform)}")
    original_length = x.shape[-1]
    x = match_channels(x, 2 if params.stereo else 1)
    if sample_rate != params.sample_rate:
        x = resample(x, sample_rate, params.sample_rate)
    width, _ = pipeline.image_size
    window = params.num_samples(width)  # hop * (width - 1)
    hop = max(1, int(round(window * (1 - overlap))))
    total = x.shape[-1]
    starts = list(range(0, max(total - window, 0) + 1, hop))
    if starts[-1] + window < total:
        starts.append(total - window if total > window else 0)
    phase = check_phase(phase)
    converter = converter_for(pipeline, phase)

    # One request per window: the window's own spectrogram is the seed image; alpha moves along the track.
    requests = []
    for i, s in enumerate(starts):
        segment = x[:, s : s + window]
        if segment.shape[-1] < window:
            segment = np.pad(segment, ((0, 0), (0, window - segment.shape[-1])))
        peak = float(np.abs(segment).max())
        image = converter.image_from_waveform(segment / peak if peak > 0 else segment, params.sample_rate)
        alpha = i / (len(starts) - 1) if len(starts) > 1 else 0.0
        inputs = InferenceInput(start=start, end=end, alpha=alpha, num_inference_steps=num_inference_steps,
                                mask_image_id=mask_image_id)
        requests.append((inputs, image))

    out = np.zeros((x.shape[0], max(total, window)), dtype=np.float32)
    weight = np.zeros(max(total, window), dtype=np.float32)
    fade = max(1, window - hop) if len(starts) > 1 else 1
    for chunk_start in range(0, len(requests), batch_size):
        chunk = requests[chunk_start : chunk_start + batch_size]
        clips = _clips_for_windows(pipeline, chunk, phase)
        for (inputs, _), clip, s in zip(chunk, clips, starts[chunk_start : chunk_start + batch_size]):
            y = clip.waveform[:, :window]
            n = y.shape[-1]
            # Equal-power fades where windows overlap: rises over the first `fade` samples, falls over the last.
            gain = np.ones(n, dtype=np.float32)
            ramp = np.sin(np.linspace(0.0, np.pi / 2, min(fade, n), dtype=np.float32)) ** 2
            if s > 0:
                gain[: len(ramp)] = ramp
            if s + n < total:
                gain[-len(ramp) :] = np.minimum(gain[-len(ramp) :], ramp[::-1])
            out[:, s : s + n] += y * gain
            weight[s : s + n] += gain
        if progress is not None:
            progress(len(chunk))
    out = out / np.maximum(weight, 1e-6)
    out = out[:, :total]
    if sample_rate != params.sample_rate:
        out = resample(out, params.sample_rate, sample_rate)
    out = out[:, :original_length]
    if out.shape[-1] < original_length:
        out = np.pad(out, ((0, 0), (0, original_length - out.shape[-1])))
    return normalize_loudness(out, sample_rate)


def _clips_for_windows(pipeline: SpectrogramPipeline, chunk, phase: str) -> list[Clip]:
    """Clips of windows that each bring their own seed image, in one UNet batch."""
    items = [(inputs, image, None) for inputs, image in chunk]
    if chunk[0][0].mask_image_id:
        from riffusion.seed_images import load_mask

        items = [(inputs, image, load_mask(inputs.mask_image_id, pipeline, width=image.width)) for inputs, image in chunk]
    images = _riffuse_batch(pipeline, items, True)
    return [_clip(pipeline, image, inputs, phase, False) for (inputs, _), image in zip(chunk, images)]
