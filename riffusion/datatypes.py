"""Request and response values of the original API (compat-api.md), as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import typing as T


@dataclasses.dataclass(frozen=True)
class PromptInput:
    """One end of an interpolation: a prompt and the seed of its noise."""

    prompt: str
    seed: int
    negative_prompt: T.Optional[str] = None
    # How far img2img departs from the seed image: 0 keeps it, 1 ignores it. 0.75 keeps the beat.
    denoising: float = 0.75
    guidance: float = 7.0


@dataclasses.dataclass(frozen=True)
class InferenceInput:
    """A clip request: interpolate from ``start`` (alpha 0) to ``end`` (alpha 1)."""

    start: PromptInput
    end: PromptInput
    alpha: float
    num_inference_steps: int = 50
    seed_image_id: str = "og_beat"
    mask_image_id: T.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class InferenceOutput:
    """A clip response: data URLs of the spectrogram image and audio, and the audio length."""

    image: str
    audio: str
    duration_s: float
