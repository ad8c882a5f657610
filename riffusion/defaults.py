"""Generation defaults and their valid ranges: the one place that says what a request may ask for.

The CLI, the notebook helpers, the server, the pipelines and the request dataclasses read their defaults
from :data:`GENERATION` and check values with :func:`check_generation`, so a default or a range is
written once.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing as T


@dataclasses.dataclass(frozen=True)
class GenerationDefaults:
    """Default values of a generation request.

    Attributes
    ----------
    num_inference_steps : int
        Scheduler steps a Stable-Diffusion-layout pipeline runs when the caller does not say: with the
        UniPC sampler, 25 steps at denoising 0.75 make 18 UNet evaluations.
    request_num_inference_steps : int
        Steps of an :class:`~riffusion.datatypes.InferenceInput` built without them: the original API's 50
        (kept so that requests written for the original mean the same).
    max_inference_steps : int
        The most steps any request may ask for.
    denoising : float
        img2img strength: 0 keeps the seed image, 1 ignores it; 0.75 keeps the beat.
    guidance : float
        Classifier-free guidance scale of riffusion-model-v1 and the original web app.
    seed_image_id : str
        Seed image of a request that names none.
    """

    num_inference_steps: int = 25
    request_num_inference_steps: int = 50
    max_inference_steps: int = 1000
    denoising: float = 0.75
    guidance: float = 7.0
    seed_image_id: str = "og_beat"


#: The package's generation defaults.
GENERATION = GenerationDefaults()

_LABELS = {"num_inference_steps": "num_inference_steps", "denoising": "denoising", "guidance": "guidance",
           "alpha": "alpha"}


def check_generation(
    *,
    num_inference_steps: T.Optional[int] = None,
    denoising: T.Optional[float] = None,
    guidance: T.Optional[float] = None,
    alpha: T.Optional[float] = None,
    labels: T.Optional[T.Mapping[str, str]] = None,
) -> None:
    """Raise ``ValueError`` for a value outside its range; ``None`` values are not checked.

    Ranges: ``num_inference_steps`` an integer in [1, ``GENERATION.max_inference_steps``], ``denoising``
    and ``alpha`` in [0, 1], ``guidance`` finite.

    Parameters
    ----------
    labels : mapping, optional
        How to name each value in the message (e.g. ``{"num_inference_steps": "--num-inference-steps"}``
        for a command line); the parameter names by default.
    """
    names = {**_LABELS, **(labels or {})}
    if num_inference_steps is not None:
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, numbers.Real) or \
                int(num_inference_steps) != num_inference_steps:
            raise ValueError(f"{names['num_inference_steps']} must be a whole number, got {num_inference_steps!r}")
        if num_inference_steps < 1:
            raise ValueError(f"{names['num_inference_steps']} must be at least 1, got {num_inference_steps}")
        if num_inference_steps > GENERATION.max_inference_steps:
            raise ValueError(f"{names['num_inference_steps']} must be at most {GENERATION.max_inference_steps}, "
                             f"got {num_inference_steps}")
    for name, value in (("denoising", denoising), ("alpha", alpha)):
        if value is not None and not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{names[name]} must be in [0, 1], got {value}")
    if guidance is not None and not math.isfinite(float(guidance)):
        raise ValueError(f"{names['guidance']} must be a finite number, got {guidance}")
