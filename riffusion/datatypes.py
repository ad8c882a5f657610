"""Request and response values of the original API (compat-api.md), as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import typing as T

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.rhythm import BeatGrid

from riffusion.defaults import GENERATION


@dataclasses.dataclass(frozen=True)
class PromptInput:
    """One end of an interpolation: a prompt and the seed of its noise."""

    prompt: str
    seed: int
    negative_prompt: T.Optional[str] = None
    # How far img2img departs from the seed image: 0 keeps it, 1 ignores it.
    denoising: float = GENERATION.denoising
    guidance: float = GENERATION.guidance


@dataclasses.dataclass(frozen=True)
class InferenceInput:
    """A clip request: interpolate from ``start`` (alpha 0) to ``end`` (alpha 1)."""

    start: PromptInput
    end: PromptInput
    alpha: float
    num_inference_steps: int = GENERATION.request_num_inference_steps
    # None: no seed image, the clip is made from noise (text to audio); the original API always names one
    seed_image_id: T.Optional[str] = GENERATION.seed_image_id
    mask_image_id: T.Optional[str] = None
    # The beat grid the clip follows, for models with a rhythm input (riffusion.rhythm); None: the seed
    # image's own, estimated (or no rhythm without a seed image).
    rhythm: T.Optional["BeatGrid"] = None


@dataclasses.dataclass(frozen=True)
class InferenceOutput:
    """A clip response: data URLs of the spectrogram image and audio, and the audio length."""

    image: str
    audio: str
    duration_s: float
