"""Request and response values of the original API (compat-api.md), as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import typing as T

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.rhythm import BeatGrid

from riffusion.defaults import GENERATION
from riffusion.prompts import check_prompt_mix, normalise_prompt_mix


@dataclasses.dataclass(frozen=True)
class PromptInput:
    """One end of an interpolation: a prompt (or a weighted mix of prompts) and the seed of its noise."""

    prompt: str
    seed: int
    negative_prompt: T.Optional[str] = None
    # How far img2img departs from the seed image: 0 keeps it, 1 ignores it.
    denoising: float = GENERATION.denoising
    guidance: float = GENERATION.guidance
    # A weighted mix ((prompt, weight), ...) of 1-4 prompts blended in the conditioning (weights relative,
    # normalised to sum 1); when given it is what the model hears and ``prompt`` only names the end (by
    # convention the mix's first prompt). Validated on construction (riffusion.prompts.check_prompt_mix).
    mix: T.Optional[T.Tuple[T.Tuple[str, float], ...]] = None

    def __post_init__(self) -> None:
        if self.mix is not None:
            object.__setattr__(self, "mix", check_prompt_mix(self.mix, field="mix"))

    @classmethod
    def mixed(cls, mix: T.Sequence[T.Tuple[str, float]], seed: int, **options: T.Any) -> "PromptInput":
        """An end conditioned on a weighted mix, named after its first prompt."""
        mix = check_prompt_mix(mix, field="mix")
        return cls(prompt=mix[0][0], seed=seed, mix=mix, **options)

    @property
    def weighted_prompts(self) -> T.Tuple[T.Tuple[str, float], ...]:
        """What the model hears: ``((prompt, weight), ...)`` with positive weights summing to 1; a plain
        prompt is ``((prompt, 1.0),)``."""
        if self.mix is None:
            return ((self.prompt, 1.0),)
        return normalise_prompt_mix(self.mix)


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
