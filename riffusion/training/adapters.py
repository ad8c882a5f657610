"""What the trainer needs to know about a kind of model, behind one small interface.

* :class:`SmallModelAdapter`: the pixel-space riffusion-small model (from scratch or fine-tuned from a
  model folder);
* :class:`StableDiffusionAdapter`: any Stable-Diffusion-layout pipeline the loader reads (tiny-random,
  riffusion-model-v1, a diffusers folder): latent diffusion through its VAE and CLIP text encoder, full
  fine-tuning or LoRA (with ``peft``).
"""

from __future__ import annotations

import json
import typing as T
from pathlib import Path

import torch
from PIL import Image

from riffusion.spectrogram_params import SpectrogramParams


class ModelAdapter:
    """Interface of a trainable model kind (see the subclasses)."""

    params: SpectrogramParams
    width: int
    height: int
    prediction_type: str
    noise_scheduler: T.Any
    model: torch.nn.Module  # the trainable module
    rhythm_channels: int = 0  # rows of rhythm input the model takes (riffusion.rhythm); 0: none

    def encode_text(self, captions: T.Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def encode_images(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 1, H, W) in [-1, 1] -> what the denoiser works on."""
        raise NotImplementedError

    def predict(self, model: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, *,
                rhythm: T.Optional[torch.Tensor] = None) -> torch.Tensor:
        """The denoiser's prediction; ``rhythm`` (B, rows, W) only for models with a rhythm input."""
        raise NotImplementedError

    def export(self, out_dir: Path, model: torch.nn.Module, *, fp16: bool) -> None:
        raise NotImplementedError

    def sample(self, model: torch.nn.Module, prompts: T.Sequence[str], *, seed: int, steps: int) -> list[Image.Image]:
        raise NotImplementedError

    def describe(self) -> dict[str, T.Any]:
        return {}


class SmallModelAdapter(ModelAdapter):
    """riffusion-small: from scratch (``init`` is None) or from a model folder."""

    def __init__(self, init: T.Optional[Path] = None, *, config: T.Optional[T.Mapping[str, T.Any]] = None,
                 params: T.Optional[SpectrogramParams] = None, image_width: T.Optional[int] = None, seed: int = 0):
        from diffusers import UNet2DConditionModel

        from riffusion import small as sm

        self.init = Path(init) if init is not None else None
        if init is not None:
            init = Path(init)
            cfg = sm.SmallModelConfig.from_dict(json.loads((init / "riffusion_model.json").read_text()))
            params_data = json.loads((init / "spectrogram_params.json").read_text())
            params_data.pop("image_width", None)
            self.params = SpectrogramParams.from_dict(params_data)
            unet_dir = init / "unet"
            self.model = UNet2DConditionModel.from_pretrained(str(unet_dir)).float()
            wanted = int((config or {}).get("rhythm_channels", cfg.rhythm_channels))
            if wanted != cfg.rhythm_channels:
                if cfg.rhythm_channels:
                    raise ValueError(f"{str(init)!r} already has a rhythm input; it cannot be removed or resized")
                # the fine-tune starts from exactly the old model, with the new input's weights at zero
                cfg = sm.SmallModelConfig.from_dict({**cfg.to_dict(), "rhythm_channels": wanted})
                self.model = sm.add_rhythm_input(self.model, cfg, self.params)
            scheduler_config = json.loads((init / "scheduler" / "scheduler_config.json").read_text())
            self.noise_scheduler = sm.make_train_scheduler(scheduler_config.get("prediction_type", cfg.prediction_type))
        else:
            cfg = sm.SmallModelConfig.from_dict(dict(config or {}))
            if image_width is not None:
                cfg.image_width = int(image_width)
            self.params = params or sm.SMALL_PARAMS
            # The initial weights are a function of the seed (without touching the global RNG's state).
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.model = sm.build_unet(cfg, self.params)
            self.noise_scheduler = sm.make_train_scheduler(cfg.prediction_type)
        self.config = cfg
        self.rhythm_channels = cfg.rhythm_channels
        self.width, self.height = cfg.image_width, self.params.num_frequencies
        self.prediction_type = cfg.prediction_type
        self._encoder = None

    def encode_text(self, captions: T.Sequence[str]) -> torch.Tensor:
        from riffusion import small as sm

        if self._encoder is None:
            self._encoder = sm.load_sentence_encoder(self.config.max_text_tokens)
        return self._encoder(list(captions))

    def encode_images(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return pixels

    def predict(self, model, x_t, t, cond, *, rhythm=None):
        from riffusion.small.denoiser import denoise

        return denoise(model, x_t, t, cond, patch_size=self.config.patch_size, rhythm=rhythm)

    def export(self, out_dir: Path, model, *, fp16: bool) -> None:
        from riffusion.small import save_small_model

        save_small_model(out_dir, model, config=self.config, params=self.params,
                         scheduler_config=dict(self.noise_scheduler.config), fp16=fp16)
        self._copy_seed_images(Path(out_dir))

    def _copy_seed_images(self, out_dir: Path) -> None:
        """Give the exported model seed images of its shape: the starting model's, else the shipped
        model's when the geometry is the same (the jam and ``text-to-audio`` start from ``og_beat``)."""
        import shutil

        from riffusion import small as sm

        if (out_dir / "seed_images").is_dir():
            return
        candidates = [self.init] if self.init is not None else []
        candidates.append(sm.MODELS_DIR / sm.DEFAULT_SMALL_MODEL)
        for folder in candidates:
            seeds = folder / "seed_images"
            params_file = folder / "spectrogram_params.json"
            if not seeds.is_dir():
                continue
            if folder != self.init:
                if not params_file.is_file():
                    continue
                data = json.loads(params_file.read_text())
                width = data.pop("image_width", None)
                if SpectrogramParams.from_dict(data) != self.params or width != self.width:
                    continue
            shutil.copytree(seeds, out_dir / "seed_images")
            return

    def pipeline(self, model):
        from riffusion.small import SmallRiffusionPipeline

        return SmallRiffusionPipeline(model, config=self.config, spectrogram_params=self.params,
                                      scheduler_config=dict(self.noise_scheduler.config), text_encoder=self._encoder,
                                      model_id="training", device=str(next(model.parameters()).device))

    def sample(self, model, prompts, *, seed, steps):
        pipe = self.pipeline(model)
        images = [pipe.text_to_image(p, seed=seed + i, num_inference_steps=steps) for i, p in enumerate(prompts)]
        model.train().requires_grad_(True)
        return images

    def describe(self):
        return {"kind": "riffusion-small", "config": self.config.to_dict(), "parameters": _count(self.model)}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class StableDiffusionAdapter(ModelAdapter):
    """A Stable-Diffusion-layout model: a :class:`~riffusion.riffusion_pipeline.RiffusionPipeline` from
    :func:`riffusion.loading.load_pipeline`, whose UNet is trained."""

    def __init__(self, model_id: str, *, lora_rank: int = 0, device: str = "cpu"):
        pipe = _load_sd_pipeline(model_id, device=device)
        self.pipe = pipe
        self.params = pipe.spectrogram_params
        self.width, self.height = (int(n) for n in pipe.image_size)
        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        for module in (pipe.vae, pipe.text_encoder):
            module.requires_grad_(False).eval()
        unet = pipe.unet.float()
        unet.requires_grad_(True)  # loaders freeze inference weights
        self.lora_rank = lora_rank
        if lora_rank:
            try:
                from peft import LoraConfig
            except ImportError as exc:
                raise LookupError("LoRA training needs the `peft` package: pip install peft") from exc
            unet.requires_grad_(False)
            unet.add_adapter(LoraConfig(r=lora_rank, lora_alpha=lora_rank, init_lora_weights="gaussian",
                                        target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        self.model = unet
        self.scaling = float(getattr(pipe.vae.config, "scaling_factor", 0.18215))

    @torch.no_grad()
    def encode_text(self, captions):
        tok = self.pipe.tokenizer(list(captions), padding="max_length", truncation=True,
                                  max_length=self.pipe.tokenizer.model_max_length, return_tensors="pt")
        return self.pipe.text_encoder(tok.input_ids.to(self.pipe.text_encoder.device))[0].float().cpu()

    @torch.no_grad()
    def encode_images(self, pixels, generator):
        rgb = pixels.repeat(1, 3, 1, 1).to(self.pipe.vae.device, self.pipe.vae.dtype)
        dist = self.pipe.vae.encode(rgb).latent_dist
        return (dist.sample(generator=generator) * self.scaling).float()

    def predict(self, model, x_t, t, cond, *, rhythm=None):
        return model(x_t, t, encoder_hidden_states=cond).sample

    def export(self, out_dir: Path, model, *, fp16: bool) -> None:
        import copy

        unet = copy.deepcopy(model).cpu()
        if self.lora_rank:
            from peft.utils import get_peft_model_state_dict

            lora_state = get_peft_model_state_dict(unet)
            unet = _merge_lora(unet)
        from riffusion.files import atomic_folder

        with atomic_folder(out_dir) as tmp:
            original = self.pipe.unet
            try:
                self.pipe.unet = unet.half() if fp16 else unet
                self.pipe.save_pretrained(tmp)
            finally:
                self.pipe.unet = original
            if self.lora_rank:
                from safetensors.torch import save_file

                save_file({k: v.contiguous() for k, v in lora_state.items()}, str(tmp / "lora_unet.safetensors"))
            (tmp / "spectrogram_params.json").write_text(
                json.dumps({**self.params.to_dict(), "image_width": self.width}, indent=2) + "\n")

    @torch.no_grad()
    def sample(self, model, prompts, *, seed, steps):
        from riffusion.image import attach_exif

        original = self.pipe.unet
        self.pipe.unet = model.eval()
        try:
            images = []
            for i, prompt in enumerate(prompts):
                image = self.pipe.text_to_image(prompt, seed=seed + i, num_inference_steps=steps)
                images.append(attach_exif(image.convert("RGB"), self.params))
        finally:
            self.pipe.unet = original
            model.train()
        return images

    def describe(self):
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {"kind": "stable-diffusion", "lora_rank": self.lora_rank, "trainable_parameters": trainable,
                "parameters": _count(self.model)}


def _merge_lora(unet):
    """Fold LoRA weights into the base layers and drop the adapter modules: a plain UNet again."""
    unet.fuse_lora(lora_scale=1.0)
    unet.unload_lora()
    return unet


def _load_sd_pipeline(model_id: str, *, device: str):
    """The loader's pipeline for ``model_id``; ValueError unless it is a Stable-Diffusion-layout model."""
    from riffusion.loading import load_pipeline
    from riffusion.riffusion_pipeline import RiffusionPipeline

    pipe = load_pipeline(model_id, device=device)
    if not isinstance(pipe, RiffusionPipeline):
        raise ValueError(f"model {model_id!r} is not a Stable Diffusion model (a {type(pipe).__name__}); it cannot "
                         f"be trained as one")
    return pipe


def make_adapter(model: T.Optional[str], *, lora_rank: int = 0, small_config: T.Optional[dict] = None,
                 params: T.Optional[SpectrogramParams] = None, image_width: T.Optional[int] = None,
                 device: str = "cpu", seed: int = 0) -> ModelAdapter:
    """An adapter for ``model``: None or ``"riffusion-small"`` (from scratch), a riffusion-small folder or
    shipped name (fine-tune), or any id the loader reads (Stable Diffusion layout)."""
    from riffusion import small as sm

    if model in (None, "", "new", sm.MODEL_KIND):
        return SmallModelAdapter(None, config=small_config, params=params, image_width=image_width, seed=seed)
    path = Path(model)
    if not path.is_dir() and (sm.MODELS_DIR / model).is_dir():
        path = sm.MODELS_DIR / model
    if sm.is_small_model_dir(path):
        if lora_rank:
            raise ValueError("LoRA is for large Stable Diffusion models; fine-tune riffusion-small fully (omit --lora-rank)")
        return SmallModelAdapter(path, config=small_config)
    return StableDiffusionAdapter(str(model), lora_rank=lora_rank, device=device)
