"""A small API for notebooks and scripts: one call from a prompt to something you can hear and see.

>>> import riffusion
>>> clip = riffusion.text_to_audio("jazzy rapping from paris", seed=1, model="tiny-random")
>>> clip            # in Jupyter: the spectrogram and an audio player
>>> clip.audio.save("jazz.mp3"); clip.image.save("jazz.png")

Pipelines are loaded once per (model, device, scheduler) and kept for later calls.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import threading
import typing as T

import numpy as np
from PIL import Image

from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.defaults import GENERATION
from riffusion.rhythm import BeatGrid

_PIPELINES: dict[tuple, T.Any] = {}
_LOCK = threading.Lock()


class Audio:
    """Audio that plays in Jupyter (an HTML ``<audio>`` player) without needing IPython.

    Attributes
    ----------
    waveform : np.ndarray, shape (channels, samples), float32 in [-1, 1]
    sample_rate : int
    """

    def __init__(self, waveform: np.ndarray, sample_rate: int):
        self.waveform = np.asarray(waveform, dtype=np.float32)
        self.sample_rate = int(sample_rate)

    @property
    def duration_s(self) -> float:
        return self.waveform.shape[-1] / self.sample_rate

    def to_bytes(self, format: str = "wav") -> bytes:
        """Encoded file bytes: "wav", "flac", "ogg" or "mp3"."""
        from riffusion.audio import encode_audio

        return encode_audio(self.waveform, self.sample_rate, format=format)

    def save(self, path) -> None:
        """Write to a file, format from the extension, atomically."""
        from riffusion.audio import write_audio

        write_audio(path, self.waveform, self.sample_rate)

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.to_bytes("wav")).decode("ascii")
        return f'<audio controls preload="metadata" src="data:audio/wav;base64,{data}"></audio>'

    def __array__(self, dtype=None, copy=None):
        return self.waveform if dtype is None else self.waveform.astype(dtype)

    def __repr__(self) -> str:
        channels = self.waveform.shape[0]
        return f"Audio({self.duration_s:.2f} s, {self.sample_rate} Hz, {channels} channel{'s' if channels > 1 else ''})"


@dataclasses.dataclass
class AudioClip:
    """What :func:`text_to_audio` returns: ``.image`` (PIL) and ``.audio`` (:class:`Audio`); shows both in
    Jupyter."""

    image: Image.Image
    audio: Audio
    prompt: str
    seed: int
    inputs: T.Optional[InferenceInput] = None

    @property
    def waveform(self) -> np.ndarray:
        return self.audio.waveform

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    def _repr_html_(self) -> str:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        caption = html.escape(f"{self.prompt} (seed {self.seed}, {self.audio.duration_s:.2f} s)")
        return (
            f'<figure style="margin:0"><img src="data:image/png;base64,{data}" '
            f'style="max-width:100%;image-rendering:pixelated" alt="spectrogram"/>'
            f"<figcaption>{caption}</figcaption>{self.audio._repr_html_()}</figure>"
        )

    def __repr__(self) -> str:
        return f"AudioClip(prompt={self.prompt!r}, seed={self.seed}, {self.audio!r})"


def get_pipeline(model: T.Optional[str] = None, *, device: str = "auto", scheduler: T.Optional[str] = None):
    """A loaded pipeline, cached by (model, device, scheduler)."""
    from riffusion.loading import DEFAULT_MODEL, load_pipeline

    key = (model or DEFAULT_MODEL, device, scheduler)
    with _LOCK:
        if key not in _PIPELINES:
            _PIPELINES[key] = load_pipeline(key[0], device=device, scheduler=scheduler)
        return _PIPELINES[key]


def text_to_audio(
    prompt: str,
    *,
    seed: int = 0,
    negative_prompt: T.Optional[str] = None,
    model: T.Optional[str] = None,
    num_inference_steps: T.Optional[int] = None,
    guidance: T.Optional[float] = None,
    denoising: T.Optional[float] = None,
    seed_image: T.Optional[str] = None,
    mask: T.Optional[str] = None,
    width: T.Optional[int] = None,
    scheduler: T.Optional[str] = None,
    phase: str = "default",
    device: str = "auto",
    rhythm: T.Optional["BeatGrid"] = None,
) -> AudioClip:
    """A clip from a prompt.

    Parameters
    ----------
    prompt : str
        What to hear; A1111 weighting such as ``(piano:1.3)`` works, any length.
    seed : int
        Same seed, same clip (on the same device).
    model : str, optional
        Model id (see :func:`riffusion.loading.load_pipeline`); the default model when None.
    num_inference_steps : int, optional
        The pipeline's ``default_num_inference_steps`` when None.
    guidance : float, optional
        Classifier-free guidance; the model's own when None.
    denoising : float, optional
        How far to depart from the seed image (0 keeps it, 1 ignores it); the model's own when None (a
        rhythm model's 1.0 keeps only the loop's beat).
    seed_image, mask : str, optional
        Ids from :func:`riffusion.seed_images.list_seed_images`. Without a seed image the clip is made from
        the prompt alone.
    rhythm : riffusion.rhythm.BeatGrid, optional
        The beat grid to follow (models with a rhythm input), e.g. ``BeatGrid(bpm=96, beats_per_bar=3)``.
    width : int, optional
        Columns of 10 ms: 512 = 5.11 s, 1024 = 10.23 s (the seed loop is repeated).
    phase : str
        "default", "pghi", "griffin-lim", "pghi+griffin-lim" or "mel-griffin-lim".
    """
    return interpolate(prompt, prompt, seed=seed, end_seed=seed, alpha=0.0, negative_prompt=negative_prompt,
                       model=model, num_inference_steps=num_inference_steps, guidance=guidance, denoising=denoising,
                       seed_image=seed_image, mask=mask, width=width, scheduler=scheduler, phase=phase, device=device,
                       rhythm=rhythm)


def interpolate(
    start_prompt: str,
    end_prompt: str,
    *,
    alpha: float = 0.5,
    seed: int = 0,
    end_seed: T.Optional[int] = None,
    negative_prompt: T.Optional[str] = None,
    model: T.Optional[str] = None,
    num_inference_steps: T.Optional[int] = None,
    guidance: T.Optional[float] = None,
    denoising: T.Optional[float] = None,
    seed_image: T.Optional[str] = GENERATION.seed_image_id,
    mask: T.Optional[str] = None,
    width: T.Optional[int] = None,
    scheduler: T.Optional[str] = None,
    phase: str = "default",
    device: str = "auto",
    rhythm: T.Optional["BeatGrid"] = None,
) -> AudioClip:
    """A clip between two prompts (and seeds) at ``alpha`` (0 = start, 1 = end); see :func:`text_to_audio`."""
    from riffusion.generation import generate_clip

    pipeline = get_pipeline(model, device=device, scheduler=scheduler)
    if rhythm is not None and not pipeline.has_rhythm_input:
        raise ValueError(f"rhythm needs a model with a rhythm input; {pipeline.model_id} has none")
    steps = num_inference_steps or pipeline.default_num_inference_steps
    guidance = pipeline.default_guidance if guidance is None else guidance
    denoising = pipeline.default_denoising if denoising is None else denoising
    end_seed = seed if end_seed is None else end_seed
    start = PromptInput(prompt=start_prompt, seed=int(seed), negative_prompt=negative_prompt, denoising=denoising,
                        guidance=guidance)
    end = PromptInput(prompt=end_prompt, seed=int(end_seed), negative_prompt=negative_prompt, denoising=denoising,
                      guidance=guidance)
    inputs = InferenceInput(start=start, end=end, alpha=float(alpha), num_inference_steps=int(steps),
                            seed_image_id=seed_image, mask_image_id=mask, rhythm=rhythm)
    clip = generate_clip(pipeline, inputs, phase=phase, width=width)
    label = start_prompt if start_prompt == end_prompt else f"{start_prompt} -> {end_prompt} @ {alpha:g}"
    return AudioClip(image=clip.image, audio=Audio(clip.waveform, clip.sample_rate), prompt=label, seed=int(seed),
                     inputs=inputs)


def continue_audio(audio, prompt, *, seconds: float, sample_rate: T.Optional[int] = None, seed: int = 0,
                   model: T.Optional[str] = None, device: str = "auto", **options: T.Any) -> Audio:
    """``audio`` (a file path, an :class:`Audio`, or an array with ``sample_rate``) followed by ``seconds``
    of new music that carries on from its end; ``prompt`` is a prompt or a schedule such as
    ``"0:jazz piano,20:rock band"``; ``options`` as :func:`riffusion.continuation.continue_audio`."""
    from riffusion.audio import read_audio
    from riffusion.continuation import continue_audio as carry_on

    if isinstance(audio, Audio):
        waveform, rate = audio.waveform, audio.sample_rate
    elif isinstance(audio, np.ndarray):
        if sample_rate is None:
            raise ValueError("an array of audio needs its sample_rate")
        waveform, rate = audio, int(sample_rate)
    else:
        waveform, rate = read_audio(audio)
    result = carry_on(get_pipeline(model, device=device), waveform, rate, prompt=prompt, seconds=seconds, seed=seed,
                      **options)
    return Audio(result.waveform, result.sample_rate)


def render_session(session, *, model: T.Optional[str] = None, device: str = "auto",
                   num_inference_steps: T.Optional[int] = None, phase: T.Optional[str] = None, loops: bool = True,
                   batch_size: int = 1) -> Audio:
    """A jam session re-rendered offline: ``session`` is a session file's path, its decoded JSON (a dict) or
    a :class:`riffusion.sessions.Session`; ``model`` defaults to the session's own. The options are
    :func:`riffusion.sessions.render_session`'s; a bad session raises
    :class:`~riffusion.sessions.SessionError` naming the field."""
    from riffusion.sessions import Session, parse_session, read_session
    from riffusion.sessions import render_session as render

    if isinstance(session, dict):
        session = parse_session(session)
    elif not isinstance(session, Session):
        session = read_session(session)
    rendered = render(session, get_pipeline(model or session.model, device=device),
                      num_inference_steps=num_inference_steps, phase=phase, loops=loops, batch_size=batch_size)
    return Audio(rendered.waveform, rendered.sample_rate)
