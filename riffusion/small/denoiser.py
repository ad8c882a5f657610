"""The small model's denoiser: a diffusers UNet on pixel patches, its noise schedules, and the conversions
between Riffusion images and the pixels it works on.

* Images: Riffusion-format spectrograms of the model's geometry (64 mel rows x 256 columns of 20 ms), grey,
  pixels scaled to [-1, 1]. No VAE.
* Denoiser: a ``UNet2DConditionModel`` on 4 x 4 pixel patches folded into channels (64 x 256 x 1 ->
  16 x 64 x 16, ``pixel_unshuffle``), v-prediction, cosine noise schedule. A model with a rhythm input
  (``rhythm_channels``) gets its beat and bar phases (:mod:`riffusion.rhythm`) as extra channels, broadcast
  over the rows and folded the same way, in the manner of ControlNet-style conditioning by concatenation.
"""

from __future__ import annotations

import typing as T

import numpy as np
import torch
from PIL import Image

from riffusion.small.config import SAMPLERS, TEXT_DIM, SmallModelConfig
from riffusion.spectrogram_params import SpectrogramParams


def build_unet(config: SmallModelConfig, params: SpectrogramParams):
    """A fresh (randomly initialised) UNet for ``config`` and ``params``."""
    from diffusers import UNet2DConditionModel

    p = config.patch_size
    height, width = params.num_frequencies, config.image_width
    levels = len(config.block_out_channels)
    factor = p * 2 ** (levels - 1)
    if height % factor or width % factor:
        raise ValueError(
            f"image {width}x{height} must be divisible by patch_size * 2**(levels-1) = {factor} in both sides"
        )
    down = ("DownBlock2D",) * (levels - 1) + ("CrossAttnDownBlock2D",)
    up = ("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (levels - 1)
    return UNet2DConditionModel(
        sample_size=(height // p, width // p),
        in_channels=p * p * (1 + config.rhythm_channels),
        out_channels=p * p,
        down_block_types=down,
        up_block_types=up,
        mid_block_type="UNetMidBlock2DCrossAttn",
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=32,
        class_embed_type="projection",
        projection_class_embeddings_input_dim=TEXT_DIM,
        resnet_time_scale_shift="scale_shift",
    )


def add_rhythm_input(unet, config: SmallModelConfig, params: SpectrogramParams):
    """A UNet for ``config`` (which has ``rhythm_channels``) that computes exactly what ``unet`` (a model
    without a rhythm input) computes: every weight copied, the new input channels' weights zero.

    Training then starts from the old model and learns how much to listen to the rhythm, as ControlNet's
    zero convolutions do (Zhang et al., 2023).
    """
    p2 = config.patch_size ** 2
    if unet.config.in_channels != p2:
        raise ValueError(f"the UNet already has {unet.config.in_channels} input channels, expected {p2}")
    new = build_unet(config, params).to(unet.dtype)
    state = unet.state_dict()
    weight = state["conv_in.weight"]
    grown = torch.zeros((weight.shape[0], p2 * (1 + config.rhythm_channels), *weight.shape[2:]), dtype=weight.dtype)
    grown[:, :p2] = weight
    state["conv_in.weight"] = grown
    new.load_state_dict(state, strict=True)
    return new


def rhythm_planes(rhythm: torch.Tensor, *, height: int) -> torch.Tensor:
    """(batch, rows, width) rhythm features -> (batch, rows, height, width) planes, the same in every row."""
    return rhythm[:, :, None, :].expand(-1, -1, height, -1)


def denoise(unet, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, *, patch_size: int,
            rhythm: T.Optional[torch.Tensor] = None) -> torch.Tensor:
    """The UNet on full-resolution pixels: fold patches into channels, predict, unfold.

    Parameters
    ----------
    x : (batch, 1, height, width) noisy image in [-1, 1] units
    t : (batch,) or scalar integer timesteps
    cond : (batch, 1 + tokens, 384) conditioning from :class:`~riffusion.small.text.SentenceEncoder`
    rhythm : (batch, rows, width), optional
        Rhythm features (:func:`riffusion.rhythm.rhythm_features`) for a UNet with a rhythm input; zeros
        mean "no rhythm". Required exactly when the UNet has the extra input channels.
    """
    if rhythm is not None:
        x = torch.cat([x, rhythm_planes(rhythm.to(x.dtype), height=x.shape[-2])], dim=1)
    expected = unet.config.in_channels
    if x.shape[1] * patch_size ** 2 != expected:
        raise ValueError(f"the UNet takes {expected // patch_size ** 2} input planes, got {x.shape[1]} "
                         "(image plus rhythm rows): pass rhythm exactly for a model with a rhythm input")
    folded = torch.nn.functional.pixel_unshuffle(x, patch_size)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    out = unet(folded, t, encoder_hidden_states=cond[:, 1:], class_labels=cond[:, 0]).sample
    return torch.nn.functional.pixel_shuffle(out, patch_size)


def make_train_scheduler(prediction_type: str = "v_prediction"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction_type,
        clip_sample=False,
    )


def make_inference_scheduler(train_config: T.Mapping[str, T.Any], sampler: str = "dpmsolver++"):
    """The sampling scheduler ``sampler`` (see :data:`SAMPLERS`) on the training noise schedule."""
    common = dict(solver_order=2, final_sigmas_type="zero", timestep_spacing="trailing")
    if sampler == "dpmsolver++":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler.from_config(dict(train_config), algorithm_type="dpmsolver++", **common)
    if sampler == "unipc":
        from diffusers import UniPCMultistepScheduler

        return UniPCMultistepScheduler.from_config(dict(train_config), predict_x0=True, solver_type="bh2", **common)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")


def image_to_tensor(image: Image.Image, *, width: int, height: int) -> torch.Tensor:
    """A Riffusion image as a (1, height, width) float tensor in [-1, 1] (R channel; resized if needed).

    Images of another geometry with the same band (e.g. riffusion-model-v1's 512 x 512 seed images: 512
    HTK mel rows over 0-10 kHz, 10 ms columns) map onto this one by a plain resize along both axes, since
    both axes are the same physical scales sampled more or less finely.
    """
    grey = image.convert("RGB").getchannel("R")
    if grey.size != (width, height):
        grey = grey.resize((width, height), Image.BILINEAR)
    return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 127.5 - 1.0)[None]


def remove_patch_grid(x: torch.Tensor, *, patch_size: int) -> torch.Tensor:
    """Remove the pattern that repeats every ``patch_size`` columns from each row of an image.

    A denoiser on ``patch_size`` x ``patch_size`` pixel patches predicts each patch's pixels as separate
    channels, and the small model's outputs keep a faint texture at the patch period along time (7x the
    power real spectrograms have there, at 80 ms for 4 columns of 20 ms). Heard, it is a flutter that
    onset detectors count as attacks in sustained sounds. Each row's mean over the columns at the same
    position in the period, minus the row's mean, is that pattern; subtracting it zeroes exactly the DFT
    bins ``k * width / patch_size`` (k >= 1) along time and leaves every other frequency as it was.

    Parameters
    ----------
    x : torch.Tensor, shape (..., height, width)
        Images; ``width`` a multiple of ``patch_size``.
    patch_size : int, keyword-only
        The period in columns (>= 1; 1 returns ``x`` unchanged).

    Returns
    -------
    torch.Tensor, shape and dtype of ``x``
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be an integer >= 1, got {patch_size!r}")
    if x.ndim < 2 or x.shape[-1] % patch_size:
        raise ValueError(
            f"images must be (..., height, width) with width a multiple of patch_size {patch_size}, "
            f"got shape {tuple(x.shape)}"
        )
    if patch_size == 1:
        return x
    periods = x.unflatten(-1, (x.shape[-1] // patch_size, patch_size))  # (..., height, periods, patch)
    pattern = periods.mean(-2, keepdim=True) - periods.mean((-2, -1), keepdim=True)
    return (periods - pattern).flatten(-2)


def tensor_to_image(x: torch.Tensor, params: SpectrogramParams) -> Image.Image:
    """(1, height, width) in [-1, 1] -> grey RGB Riffusion image with the params in EXIF."""
    from riffusion.image import attach_exif

    pixels = ((x.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)[0].numpy()
    image = Image.fromarray(np.stack([pixels] * 3, axis=-1), mode="RGB")
    return attach_exif(image, params)

