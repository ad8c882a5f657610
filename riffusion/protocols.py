"""What a spectrogram pipeline offers its callers, as one ``typing.Protocol``.

:class:`~riffusion.riffusion_pipeline.RiffusionPipeline` (Stable Diffusion layout) and the small model's
pipeline both satisfy :class:`SpectrogramPipeline`; generation, the server and the training code program
against it instead of probing attributes.
"""

from __future__ import annotations

import typing as T

if T.TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

    from riffusion.datatypes import InferenceInput
    from riffusion.spectrogram_params import SpectrogramParams

#: One request of a batch: (inputs, seed image or None, mask image or None).
BatchItem = T.Tuple["InferenceInput", T.Optional["Image.Image"], T.Optional["Image.Image"]]


@T.runtime_checkable
class SpectrogramPipeline(T.Protocol):
    """A text (and seed image) -> spectrogram image model.

    Attributes
    ----------
    model_id : str
        The id it was loaded from (reported by the server and in metadata).
    spectrogram_params : SpectrogramParams
        How its images map to sound.
    image_size : (int, int)
        (width, height) in pixels of the images it makes without a seed image.
    width_multiple : int
        Image widths it accepts are multiples of this many columns.
    device : torch.device
        Where it computes.
    default_num_inference_steps : int
        Steps it runs when a caller does not choose.
    default_guidance : float
        The guidance scale it was tuned for.
    default_denoising : float
        The img2img strength from a seed loop it is meant to be played at (the jam's setting).
    has_rhythm_input : bool
        Whether it takes a beat grid (``InferenceInput.rhythm``, :mod:`riffusion.rhythm`).
    show_progress : bool
        Whether generation draws a per-step progress bar (terminals).
    """

    model_id: str
    spectrogram_params: "SpectrogramParams"
    show_progress: bool

    @property
    def image_size(self) -> T.Tuple[int, int]: ...

    @property
    def width_multiple(self) -> int: ...

    @property
    def device(self) -> "torch.device": ...

    @property
    def default_num_inference_steps(self) -> int: ...

    @property
    def default_guidance(self) -> float: ...

    @property
    def default_denoising(self) -> float: ...

    @property
    def has_rhythm_input(self) -> bool: ...

    def min_num_inference_steps(self, denoising: float) -> int:
        """The fewest steps that still denoise a seed image at ``denoising`` (a smaller count would return
        the seed image whatever the prompt); requests for fewer are refused."""
        ...

    def effective_num_inference_steps(self, requested: int) -> int:
        """The steps a request for ``requested`` runs (a model may run fewer than asked, never silently:
        servers report this count with every response)."""
        ...

    def unet_evaluations(self, num_inference_steps: int, denoising: float) -> int:
        """How many UNet calls (each one guided batch) a clip from a seed image at ``denoising`` runs when
        ``num_inference_steps`` are asked for: what a clip's time grows with (img2img runs only the last part
        of the schedule)."""
        ...

    def riffuse(self, inputs: "InferenceInput", init_image: T.Optional["Image.Image"] = None,
                mask_image: T.Optional["Image.Image"] = None, use_reweighting: bool = True) -> "Image.Image":
        """One clip's spectrogram image: ``inputs.start`` -> ``inputs.end`` at ``inputs.alpha``."""
        ...

    def riffuse_batch(self, items: T.Sequence[BatchItem], *, use_reweighting: bool = True) -> list["Image.Image"]:
        """Images of several requests, in input order."""
        ...

    def text_to_image(self, prompt: str, *, seed: int = 0, negative_prompt: str = "",
                      guidance: T.Optional[float] = None, num_inference_steps: T.Optional[int] = None,
                      init_image: T.Optional["Image.Image"] = None, denoising: float = 1.0) -> "Image.Image":
        """One image from a prompt (from noise, or img2img from ``init_image`` at ``denoising``)."""
        ...


def missing_members(pipeline: object) -> list[str]:
    """Names of :class:`SpectrogramPipeline` members that ``pipeline`` lacks (empty when it has them all)."""
    names = [name for name in dir(SpectrogramPipeline) if not name.startswith("_")]
    names += list(SpectrogramPipeline.__annotations__)
    return sorted({name for name in names if not hasattr(pipeline, name)})
