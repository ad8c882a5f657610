"""The small Riffusion: a pixel-space text-to-spectrogram diffusion model that runs in real time on a CPU.

One module per concern:

* :mod:`~riffusion.small.config`: the geometry (:data:`SMALL_PARAMS`) and :class:`SmallModelConfig`;
* :mod:`~riffusion.small.text`: the all-MiniLM-L6-v2 sentence encoder (offline, from a PyPI wheel);
* :mod:`~riffusion.small.denoiser`: the UNet on pixel patches (with an optional rhythm input), schedules,
  image <-> pixel conversions;
* :mod:`~riffusion.small.guidance`: fast guided steps on a CPU (two threads, bf16 where native);
* :mod:`~riffusion.small.pipeline`: :class:`SmallRiffusionPipeline`, generation;
* :mod:`~riffusion.small.io`: model folders and the loader hook.
"""

from riffusion.small.config import (
    DEFAULT_SMALL_MODEL, MODEL_KIND, MODELS_DIR, SAMPLERS, SMALL_IMAGE_WIDTH, SMALL_PARAMS, TEXT_DIM,
    TEXT_ENCODER_PACKAGE, SmallModelConfig,
)
from riffusion.small.denoiser import (
    add_rhythm_input, build_unet, denoise, image_to_tensor, make_inference_scheduler, make_train_scheduler,
    remove_patch_grid, tensor_to_image,
)
from riffusion.small.guidance import ParallelGuidance
from riffusion.small.io import is_small_model_dir, load_small_pipeline, read_small_model, register, save_small_model
from riffusion.small.pipeline import SmallRiffusionPipeline
from riffusion.small.text import SentenceEncoder, load_sentence_encoder, text_encoder_dir

__all__ = [
    "DEFAULT_SMALL_MODEL", "MODEL_KIND", "MODELS_DIR", "SAMPLERS", "SMALL_IMAGE_WIDTH", "SMALL_PARAMS", "TEXT_DIM",
    "TEXT_ENCODER_PACKAGE", "ParallelGuidance", "SentenceEncoder", "SmallModelConfig", "SmallRiffusionPipeline",
    "add_rhythm_input", "build_unet", "denoise", "image_to_tensor", "is_small_model_dir", "load_sentence_encoder",
    "load_small_pipeline", "make_inference_scheduler", "make_train_scheduler", "read_small_model", "register",
    "remove_patch_grid", "save_small_model", "tensor_to_image", "text_encoder_dir",
]
