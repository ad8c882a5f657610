"""riffusion-small model folders: reading, writing (atomically) and the loader hook.

Folder layout (diffusers-like)::

    model_index.json            _class_name SmallRiffusionPipeline, components
    riffusion_model.json        kind, patch size, text encoder package, image width, defaults
    spectrogram_params.json     SpectrogramParams fields (+ image_width)
    unet/config.json, unet/diffusion_pytorch_model.safetensors   (fp16)
    scheduler/scheduler_config.json
    seed_images/*.png, seed_images/seed_images.json
    README.md                   model card
"""

from __future__ import annotations

import json
import typing as T
from pathlib import Path

import torch

from riffusion.files import atomic_folder, keep_beside
from riffusion.small.config import MODEL_KIND, MODELS_DIR, TEXT_ENCODER_PACKAGE, SmallModelConfig
from riffusion.small.denoiser import make_train_scheduler
from riffusion.spectrogram_params import SpectrogramParams

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.small.pipeline import SmallRiffusionPipeline


def read_small_model(path: T.Union[str, Path], *, device: str = "cpu", dtype: T.Optional[torch.dtype] = None,
                     use_ema: bool = True) -> tuple[T.Any, SmallModelConfig, SpectrogramParams, dict]:
    """(unet, config, spectrogram params, scheduler config) of a model folder.

    Raises
    ------
    LookupError
        If ``path`` is not a riffusion-small folder.
    """
    from diffusers import UNet2DConditionModel

    path = Path(path)
    if not is_small_model_dir(path):
        raise LookupError(f"{str(path)!r} is not a riffusion-small model folder (no riffusion_model.json)")
    config = SmallModelConfig.from_dict(json.loads((path / "riffusion_model.json").read_text()))
    params_data = json.loads((path / "spectrogram_params.json").read_text())
    params_data.pop("image_width", None)
    params = SpectrogramParams.from_dict(params_data)
    unet_dir = path / "unet_ema" if use_ema and (path / "unet_ema").is_dir() else path / "unet"
    if dtype is None:
        dtype = torch.float32 if str(device).startswith("cpu") else torch.float16
    unet = UNet2DConditionModel.from_pretrained(str(unet_dir), torch_dtype=dtype)
    scheduler_config = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    return unet, config, params, scheduler_config


def is_small_model_dir(path: T.Union[str, Path]) -> bool:
    """True for a folder holding a riffusion-small model (``riffusion_model.json`` with its kind)."""
    marker = Path(path) / "riffusion_model.json"
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("kind") == MODEL_KIND
    except (OSError, ValueError):
        return False


def save_small_model(
    path: T.Union[str, Path], unet, *, config: SmallModelConfig, params: SpectrogramParams,
    scheduler_config: T.Optional[T.Mapping[str, T.Any]] = None, fp16: bool = True, ema_unet=None,
) -> Path:
    """Write a model folder atomically (:func:`riffusion.files.atomic_folder`); returns ``path``. The model
    card, seed images and figures of a folder it replaces are kept."""
    import copy

    path = Path(path)
    with atomic_folder(path) as tmp:
        def save_unet(module, folder: str) -> None:
            m = copy.deepcopy(module).to("cpu")
            if fp16:
                m = m.half()
            m.save_pretrained(str(tmp / folder), safe_serialization=True)
            # diffusers records where a loaded model came from; a fine-tune would ship this machine's path
            config_file = tmp / folder / "config.json"
            unet_config = json.loads(config_file.read_text())
            if unet_config.pop("_name_or_path", None) is not None:
                config_file.write_text(json.dumps(unet_config, indent=2, sort_keys=True) + "\n")

        save_unet(ema_unet if ema_unet is not None else unet, "unet")
        scheduler_config = dict(scheduler_config or make_train_scheduler(config.prediction_type).config)
        (tmp / "scheduler").mkdir()
        scheduler_config = {k: v for k, v in scheduler_config.items() if not k.startswith("_")}
        scheduler_config["_class_name"] = "DDPMScheduler"
        (tmp / "scheduler" / "scheduler_config.json").write_text(
            json.dumps(scheduler_config, indent=2, default=list) + "\n")
        (tmp / "riffusion_model.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        (tmp / "spectrogram_params.json").write_text(
            json.dumps({**params.to_dict(), "image_width": config.image_width}, indent=2) + "\n"
        )
        (tmp / "model_index.json").write_text(json.dumps({
            "_class_name": "SmallRiffusionPipeline",
            "_riffusion_module": "riffusion.small",
            "unet": ["diffusers", "UNet2DConditionModel"],
            "scheduler": ["diffusers", "DDPMScheduler"],
            "text_encoder": ["pypi", TEXT_ENCODER_PACKAGE],
        }, indent=2) + "\n")
        keep_beside(path, tmp, ("README.md", "seed_images", "figures"))
    return path


def load_small_pipeline(model: T.Union[str, Path], *, device: str = "cpu", dtype=None, **_ignored) -> "SmallRiffusionPipeline":
    """Loader hook for :mod:`riffusion.loading`: a folder path or the name of a shipped model."""
    from riffusion.small.pipeline import SmallRiffusionPipeline

    path = Path(model)
    if not path.is_dir() and (MODELS_DIR / str(model)).is_dir():
        path = MODELS_DIR / str(model)
    return SmallRiffusionPipeline.from_pretrained(path, device=device, dtype=dtype, model_id=str(model))


def register() -> None:
    """Register the riffusion-small kind with :mod:`riffusion.loading` when it offers a registry."""
    try:
        from riffusion import loading
    except ImportError:
        return
    hook = getattr(loading, "register_model_kind", None)
    if hook is not None:
        hook(MODEL_KIND, detect=is_small_model_dir, load=load_small_pipeline)
