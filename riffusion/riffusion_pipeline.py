"""RiffusionPipeline: text (and a seed spectrogram) -> spectrogram image, interpolating between two prompts.

Semantics of riffusion-model-v1 (riffusion-format.md §5), on current diffusers components:

* text embeddings of the start and end prompts are interpolated **linearly**, the initial noises of the
  start and end seeds **spherically** (slerp), the denoising strength and the guidance scale linearly;
* img2img from the seed image (VAE-encoded; the posterior mean, so that alpha 0 and 1 give exactly the
  start and end clips, where the original sampled it with the start seed), noised to the strength's
  timestep, then classifier-free-guided denoising; the unconditional branch encodes the negative prompt
  (the original accepted and ignored it);
* an optional mask keeps the seed image where it is black (white = repaint);
* prompts use A1111 weighting and may be any length (:mod:`riffusion.prompts`); an end may be a weighted
  mix of prompts, whose embeddings are averaged with its weights;
* any diffusers scheduler by name (:mod:`riffusion.schedulers`), UniPC by default.

Why a loop of our own: diffusers' img2img pipeline draws its own noise (no ``latents=`` argument), takes one
guidance scale and one strength per call, and has no mask-keeping step. The loop below (``_denoise``) uses
only the components' public methods (``scheduler.set_timesteps/scale_model_input/step/add_noise``,
``unet(...)``, ``vae.encode/decode``), and batches several requests into one UNet call per step.

All randomness comes from ``torch.Generator`` objects seeded with the request's seeds, on the CPU, so the
same request gives the same image on the same device, whatever else ran before.
"""

from __future__ import annotations

import collections
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import threading
import typing as T
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from riffusion.cancellation import CancelToken, raise_if_cancelled
from riffusion.checkpoints import quiet_progress_bars, read_model, read_single_file, write_single_file
from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.defaults import GENERATION, check_generation
from riffusion.devices import check_device
from riffusion.image import attach_exif, mask_tensor
from riffusion.interpolation import slerp
from riffusion.prompts import blend_embeddings, encode_prompt, normalise_prompt_mix, pad_embeddings
from riffusion.protocols import BatchItem
from riffusion.schedulers import DEFAULT_SCHEDULER, make_scheduler, scheduler_name_of
from riffusion.spectrogram_params import SpectrogramParams

DEFAULT_NUM_INFERENCE_STEPS = GENERATION.num_inference_steps


class RiffusionPipeline:
    """Spectrogram-image diffusion with prompt/seed interpolation (the original's ``RiffusionPipeline``).

    Satisfies :class:`riffusion.protocols.SpectrogramPipeline`.

    Parameters
    ----------
    vae, text_encoder, tokenizer, unet, scheduler
        Stable Diffusion components (diffusers / transformers). ``scheduler`` is the checkpoint's: its
        noise schedule is kept, its kind replaced by ``scheduler_name``.
    spectrogram_params : SpectrogramParams, optional
        How the model's images map to sound; riffusion-model-v1's defaults when None.
    model_id : str
        The id it was loaded from (reported by servers and metadata).
    scheduler_name : str
        The sampler (see :mod:`riffusion.schedulers`).
    """

    def __init__(
        self,
        *,
        vae,
        text_encoder,
        tokenizer,
        unet,
        scheduler,
        spectrogram_params: T.Optional[SpectrogramParams] = None,
        model_id: str = "",
        path: T.Optional[Path] = None,
        scheduler_name: str = DEFAULT_SCHEDULER,
        image_size: T.Optional[T.Tuple[int, int]] = None,
        safety_checker: T.Any = None,
        feature_extractor: T.Any = None,
    ):
        # safety_checker / feature_extractor: accepted for the original's constructor, unused (spectrograms).
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.unet = unet
        self.checkpoint_scheduler = scheduler
        self.scheduler = make_scheduler(scheduler_name, scheduler.config)
        self.spectrogram_params = spectrogram_params or SpectrogramParams()
        self.model_id = model_id
        self.path = Path(path) if path is not None else None
        # riffusion-model-v1's UNet config says sample_size 32 (256 px): always generate 512 x 512.
        self._image_size = image_size or (512, self.spectrogram_params.num_frequencies)
        self.default_num_inference_steps = GENERATION.num_inference_steps
        self.default_guidance = GENERATION.guidance
        self.default_denoising = GENERATION.denoising
        self.has_rhythm_input = False
        self.show_progress = False
        self._lock = threading.Lock()
        self._embedding_cache: "collections.OrderedDict[tuple, torch.Tensor]" = collections.OrderedDict()
        self._latent_cache: "collections.OrderedDict[tuple, torch.Tensor]" = collections.OrderedDict()

    # --- properties ---------------------------------------------------------------------------------------

    @property
    def image_size(self) -> T.Tuple[int, int]:
        """(width, height) of the images this model makes by default: (512, 512) for riffusion-model-v1."""
        return self._image_size

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def width_multiple(self) -> int:
        """Image sizes are multiples of the VAE's downsampling factor."""
        return self.vae_scale_factor

    @property
    def scheduler_name(self) -> str:
        return scheduler_name_of(self.scheduler)

    def to(self, device: T.Union[str, torch.device, None] = None, dtype: T.Optional[torch.dtype] = None):
        """Move (and cast) the models; returns ``self``."""
        for module in (self.unet, self.vae, self.text_encoder):
            module.to(device=device, dtype=dtype)
        with self._lock:
            self._embedding_cache.clear()
            self._latent_cache.clear()
        return self

    def set_scheduler(self, name: str) -> None:
        """Use another sampler (``"unipc"``, ``"dpm++"``, ``"pndm"``, ``"euler-a"``, ...); ValueError for unknown names."""
        self.scheduler = make_scheduler(name, self.checkpoint_scheduler.config)

    # --- compat -------------------------------------------------------------------------------------------

    @classmethod
    def load_checkpoint(
        cls,
        checkpoint: str = "riffusion/riffusion-model-v1",
        use_traced_unet: bool = True,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float16,
        device: str = "cuda",
        local_files_only: bool = False,
        low_cpu_mem_usage: bool = False,
        cache_dir: T.Optional[str] = None,
    ) -> "RiffusionPipeline":
        """The original's loader signature, for Stable-Diffusion-layout models (``"tiny-random"``, a hub id, a
        diffusers folder or a checkpoint file; :func:`riffusion.loading.load_pipeline` loads every kind).
        ``use_traced_unet`` is accepted and ignored (the traced UNet was CUDA-only and fixed to one batch
        size); float16 is only used on CUDA."""
        device = check_device(device)
        if dtype == torch.float16 and not device.startswith("cuda"):
            dtype = torch.float32
        pipeline = cls(**read_model(checkpoint, dtype=dtype, local_files_only=local_files_only, cache_dir=cache_dir))
        pipeline.to(device=device, dtype=dtype)
        if channels_last:
            pipeline.unet.to(memory_format=torch.channels_last)
        return pipeline

    # --- conditioning -------------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str, *, use_weights: bool = True) -> torch.Tensor:
        """Embedding (1, 77 * chunks, hidden) of a prompt (A1111 weights, any length), cached."""
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {prompt!r}")
        key = (prompt, use_weights)
        with self._lock:
            if key in self._embedding_cache:
                self._embedding_cache.move_to_end(key)
                return self._embedding_cache[key]
        embedding = encode_prompt(self.text_encoder, self.tokenizer, prompt, use_weights=use_weights, device=self.device)
        with self._lock:
            self._embedding_cache[key] = embedding
            while len(self._embedding_cache) > 256:
                self._embedding_cache.popitem(last=False)
        return embedding

    def encode_prompt_mix(self, mix: T.Sequence[T.Tuple[str, float]], *, use_weights: bool = True) -> torch.Tensor:
        """Embedding of a weighted mix ``((prompt, weight), ...)``: the weighted average (weights normalised
        to sum 1) of the prompts' embeddings, padded to one chunk count; cached by the mix. A mix of one
        prompt is exactly :meth:`encode_prompt` of it."""
        weighted = normalise_prompt_mix(mix)
        if len(weighted) == 1:
            return self.encode_prompt(weighted[0][0], use_weights=use_weights)
        key = ("mix", weighted, use_weights)
        with self._lock:
            if key in self._embedding_cache:
                self._embedding_cache.move_to_end(key)
                return self._embedding_cache[key]
        empty = self.encode_prompt("", use_weights=False)[:, :77]
        embeddings = pad_embeddings([self.encode_prompt(p, use_weights=use_weights) for p, _ in weighted], empty)
        embedding = blend_embeddings(embeddings, [w for _, w in weighted])
        with self._lock:
            self._embedding_cache[key] = embedding
            while len(self._embedding_cache) > 256:
                self._embedding_cache.popitem(last=False)
        return embedding

    def embed_text(self, text: str) -> torch.Tensor:
        """The original's name: the embedding of ``text`` without weighting syntax (any length)."""
        return self.encode_prompt(text, use_weights=False)

    def embed_text_weighted(self, text: str) -> torch.Tensor:
        """The original's name: the embedding of ``text`` with A1111 weights (any length)."""
        return self.encode_prompt(text, use_weights=True)

    def _seed_latents(self, image: Image.Image) -> torch.Tensor:
        """Scaled VAE latents (1, 4, h/8, w/8) of a seed image (posterior mean), cached by content."""
        rgb = image.convert("RGB")
        key = (hashlib.blake2b(rgb.tobytes(), digest_size=16).hexdigest(), rgb.size)
        with self._lock:
            if key in self._latent_cache:
                self._latent_cache.move_to_end(key)
                return self._latent_cache[key]
        pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            dist = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
        value = dist.mean.float() * float(getattr(self.vae.config, "scaling_factor", 0.18215))
        with self._lock:
            self._latent_cache[key] = value
            while len(self._latent_cache) > 16:
                self._latent_cache.popitem(last=False)
        return value

    # --- generation ---------------------------------------------------------------------------------------

    def riffuse(
        self,
        inputs: InferenceInput,
        init_image: T.Optional[Image.Image] = None,
        mask_image: T.Optional[Image.Image] = None,
        use_reweighting: bool = True,
    ) -> Image.Image:
        """One clip's spectrogram image: interpolate ``inputs.start`` -> ``inputs.end`` at ``inputs.alpha``.

        Parameters
        ----------
        inputs : InferenceInput
            Prompts, seeds, denoising strengths, guidance scales, alpha and the number of steps.
        init_image : PIL.Image, optional
            The seed spectrogram (img2img); its size sets the output size (width and height multiples of 8).
            Without one, the image is generated from noise at :attr:`image_size`.
        mask_image : PIL.Image, optional
            White = repaint, black = keep the seed image.
        use_reweighting : bool
            Honour A1111 weighting syntax in the prompts.
        """
        return self.riffuse_batch([(inputs, init_image, mask_image)], use_reweighting=use_reweighting)[0]

    def text_to_image(self, prompt: str, *, seed: int = 0, negative_prompt: str = "",
                      guidance: T.Optional[float] = None, num_inference_steps: T.Optional[int] = None,
                      init_image: T.Optional[Image.Image] = None, denoising: float = 1.0) -> Image.Image:
        """One image from a prompt: from noise, or img2img from ``init_image`` at ``denoising`` (< 1).

        ``guidance`` and ``num_inference_steps`` default to :attr:`default_guidance` and
        :attr:`default_num_inference_steps`.
        """
        end = PromptInput(prompt=prompt, seed=seed, negative_prompt=negative_prompt or None, denoising=denoising,
                          guidance=self.default_guidance if guidance is None else guidance)
        inputs = InferenceInput(start=end, end=end, alpha=0.0,
                                num_inference_steps=num_inference_steps or self.default_num_inference_steps)
        return self.riffuse(inputs, init_image if denoising < 1.0 else None)

    def riffuse_batch(self, items: T.Sequence[T.Sequence], *, use_reweighting: bool = True, output_type: str = "pil",
                      cancel: T.Optional[CancelToken] = None) -> list[Image.Image]:
        """Several requests, as few UNet batches as possible: requests that share the number of steps, the
        denoising strength and the image size run as one batch per step. Returns images in input order
        (``output_type="latent"``: the final latents, (4, h/8, w/8) tensors, instead). ``cancel`` is
        checked before every UNet step: once it is set, :class:`~riffusion.cancellation.Cancelled` is raised."""
        if output_type not in ("pil", "latent"):
            raise ValueError(f"output_type must be 'pil' or 'latent', got {output_type!r}")
        parsed = [self._check_item(item) for item in items]
        groups: dict[tuple, list[int]] = collections.defaultdict(list)
        for index, (inputs, init_image, _mask) in enumerate(parsed):
            size = init_image.size if init_image is not None else self.image_size
            groups[(inputs.num_inference_steps, round(_strength(inputs), 6), size, init_image is None)].append(index)
        results: list[T.Optional[Image.Image]] = [None] * len(parsed)
        for (steps, strength, size, _no_init), indices in groups.items():
            images = self._denoise([parsed[i] for i in indices], num_inference_steps=steps, strength=strength,
                                   size=size, use_weights=use_reweighting, output_type=output_type, cancel=cancel)
            for index, image in zip(indices, images):
                results[index] = image
        return T.cast(list, results)

    def unet_evaluations(self, num_inference_steps: int, denoising: float) -> int:
        """How many UNet calls (each a batch of 2 with guidance) one clip takes with the current scheduler."""
        scheduler = type(self.scheduler).from_config(self.scheduler.config)
        return len(_img2img_timesteps(scheduler, num_inference_steps, denoising, torch.device("cpu"))[0])

    def effective_num_inference_steps(self, requested: int) -> int:
        """``requested``: this pipeline runs every step it is asked for (checked against the range)."""
        check_generation(num_inference_steps=requested)
        return int(requested)

    def min_num_inference_steps(self, denoising: float) -> int:
        """The fewest steps that run at least one UNet evaluation from a seed image at ``denoising``.

        img2img runs the last ``int(steps * denoising)`` steps of the schedule, so a step count below
        ``1 / denoising`` would return the seed image through the VAE whatever the prompt. At denoising 0
        (keep the seed image, nothing to denoise) every count is accepted: 1.

        Raises
        ------
        ValueError
            If ``denoising`` is outside [0, 1].
        """
        check_generation(denoising=denoising)
        strength = round(float(denoising), 6)  # as riffuse_batch groups requests
        if strength == 0.0:
            return 1
        steps = max(1, int(1.0 / strength) - 1)
        while _denoised_steps(steps, strength) == 0:
            steps += 1
        return steps

    def _check_item(self, item: T.Sequence) -> BatchItem:
        if isinstance(item, InferenceInput):
            item = (item, None, None)
        if not 1 <= len(item) <= 3:
            raise ValueError(f"a batch item is (inputs, init_image[, mask_image]), got {len(item)} values")
        inputs, init_image, mask_image = (list(item) + [None, None])[:3]
        if not isinstance(inputs, InferenceInput):
            raise ValueError(f"expected an InferenceInput, got {type(inputs).__name__}")
        for end in (inputs.start, inputs.end):
            if not isinstance(end, PromptInput):
                raise ValueError(f"start and end must be PromptInput, got {type(end).__name__}")
            check_generation(denoising=end.denoising, guidance=end.guidance)
        check_generation(alpha=inputs.alpha, num_inference_steps=inputs.num_inference_steps)
        if init_image is not None:
            strength = round(_strength(inputs), 6)
            if strength > 0.0 and _denoised_steps(inputs.num_inference_steps, strength) == 0:
                need = self.min_num_inference_steps(strength)
                raise ValueError(
                    f"num_inference_steps={inputs.num_inference_steps} at denoising {strength:g} runs no UNet "
                    f"evaluation (int({inputs.num_inference_steps} x {strength:g}) = 0): the clip would be the "
                    f"seed image whatever the prompt; use at least {need} steps at this denoising"
                )
        factor = self.vae_scale_factor
        if init_image is not None:
            width, height = init_image.size
            if width % factor or height % factor:
                raise ValueError(
                    f"seed image size {width}x{height} is not a multiple of {factor} (width and height must be)"
                )
        if mask_image is not None and init_image is None:
            raise ValueError("a mask needs a seed image: the mask keeps the seed image's black region")
        return inputs, init_image, mask_image

    @torch.no_grad()
    def _denoise(
        self,
        items: T.Sequence[BatchItem],
        *,
        num_inference_steps: int,
        strength: float,
        size: T.Tuple[int, int],
        use_weights: bool,
        output_type: str = "pil", cancel: T.Optional[CancelToken] = None,
    ) -> list[Image.Image]:
        """The generation loop for requests that share steps, strength and size (one UNet batch per step)."""
        device, dtype = self.device, self.dtype
        batch = len(items)
        width, height = size
        latent_shape = (1, self.unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)

        # 1. Text: embeddings of every start/end prompt (or mix) and negative prompt, padded to one chunk count,
        #    linearly interpolated at alpha. Guidance scales interpolated linearly too.
        empty = self.encode_prompt("", use_weights=False)
        raw = []
        for inputs, _, _ in items:
            start, end = inputs.start, inputs.end
            raw += [
                self.encode_prompt_mix(start.weighted_prompts, use_weights=use_weights),
                self.encode_prompt_mix(end.weighted_prompts, use_weights=use_weights),
                self.encode_prompt(start.negative_prompt or "", use_weights=use_weights),
                self.encode_prompt(end.negative_prompt or "", use_weights=use_weights),
            ]
        raw = pad_embeddings(raw, empty[:, :77])
        cond, uncond = [], []
        for i, (inputs, _, _) in enumerate(items):
            a = float(inputs.alpha)
            cond.append((1 - a) * raw[4 * i] + a * raw[4 * i + 1])
            uncond.append((1 - a) * raw[4 * i + 2] + a * raw[4 * i + 3])
        guidance = torch.tensor(
            [(1 - inputs.alpha) * inputs.start.guidance + inputs.alpha * inputs.end.guidance for inputs, _, _ in items],
            device=device, dtype=torch.float32,
        ).view(batch, 1, 1, 1)
        use_guidance = bool((guidance != 1.0).any())
        text = torch.cat(uncond + cond) if use_guidance else torch.cat(cond)

        # 2. Noise: each end's seed draws a Gaussian noise (CPU generator, device-independent); slerp at alpha.
        noise = torch.cat([
            slerp(float(inputs.alpha), _randn(latent_shape, inputs.start.seed), _randn(latent_shape, inputs.end.seed))
            for inputs, _, _ in items
        ]).to(device=device, dtype=torch.float32)

        # 3. Seed image latents: the VAE posterior mean times the latent scale. (The original sampled the
        #    posterior with the start seed; its spread is tiny, and the mean keeps alpha 1 equal to the end.)
        scaling = float(getattr(self.vae.config, "scaling_factor", 0.18215))
        init_latents = None
        if items[0][1] is not None:
            init_latents = torch.cat([self._seed_latents(init_image) for _, init_image, _ in items])

        # 4. Masks: grey, resized (nearest) to the latent grid; 1 = repaint (white), 0 = keep (black).
        mask = None
        if any(m is not None for _, _, m in items):
            mask = torch.cat([
                mask_tensor(m, latent_shape[-1], latent_shape[-2]) if m is not None else torch.ones(1, 1, *latent_shape[-2:])
                for _, _, m in items
            ]).to(device)

        # 5. Timesteps: a fresh scheduler (requests may run concurrently), the last `strength` of the schedule.
        scheduler = type(self.scheduler).from_config(self.scheduler.config)
        if init_latents is None:
            strength = 1.0
        timesteps, begin = _img2img_timesteps(scheduler, num_inference_steps, strength, device)

        # 6. Starting latents: the seed latents noised to the first timestep, or pure noise.
        if init_latents is None:
            latents = noise * float(scheduler.init_noise_sigma)
        elif len(timesteps):
            latents = scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(batch))
        else:
            latents = init_latents

        # 7. Guided denoising. A mask puts back the seed latents, noised to the next step's level, where black.
        #    Stochastic samplers (euler-a, dpm++-sde) draw their step noise from the nearer end's seed.
        step_kwargs: dict[str, T.Any] = {}
        if "generator" in inspect.signature(scheduler.step).parameters:
            step_kwargs["generator"] = [
                torch.Generator("cpu").manual_seed((int(inputs.start.seed if inputs.alpha < 0.5 else inputs.end.seed) + 1) % 2**64)
                for inputs, _, _ in items
            ]
        progress = _progress(len(timesteps), self.show_progress)
        for i, t in enumerate(timesteps):
            raise_if_cancelled(cancel, steps_done=i)
            model_input = torch.cat([latents] * 2) if use_guidance else latents
            model_input = scheduler.scale_model_input(model_input, t).to(dtype)
            prediction = self.unet(model_input, t, encoder_hidden_states=text).sample.float()
            if use_guidance:
                pred_uncond, pred_cond = prediction.chunk(2)
                prediction = pred_uncond + guidance * (pred_cond - pred_uncond)
            latents = scheduler.step(prediction, t, latents, **step_kwargs).prev_sample
            if mask is not None:
                if i + 1 < len(timesteps):
                    kept = scheduler.add_noise(init_latents, noise, timesteps[i + 1 : i + 2].repeat(batch))
                else:
                    kept = init_latents
                latents = mask * latents + (1 - mask) * kept
            progress.update()
        progress.close()

        # 8. Decode to RGB images, with the model's spectrogram parameters in EXIF.
        if output_type == "latent":
            return list(latents)
        pixels = self.vae.decode((latents / scaling).to(dtype)).sample.float()
        pixels = ((pixels / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [attach_exif(Image.fromarray(p, "RGB"), self.spectrogram_params) for p in pixels]

    # --- saving and single files --------------------------------------------------------------------------

    def save_pretrained(self, path: T.Union[str, os.PathLike], *, overwrite: bool = False) -> Path:
        """Write a diffusers-layout folder (safetensors) loadable by :func:`riffusion.loading.load_pipeline`
        and by diffusers' ``StableDiffusionPipeline``; atomic (a temporary folder renamed at the end)."""
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"model folder {str(path)!r} exists and is not empty (pass overwrite=True)")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"output directory does not exist: {str(path.parent)!r}")
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a model folder is not
        try:
            with quiet_progress_bars():
                self._save_components(tmp)
            (tmp / "spectrogram_params.json").write_text(json.dumps(self.spectrogram_params.to_dict(), indent=2) + "\n")
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    def _save_components(self, folder: Path) -> None:
        _plain(self.unet).save_pretrained(str(folder / "unet"), safe_serialization=True)
        self.vae.save_pretrained(str(folder / "vae"), safe_serialization=True)
        self.text_encoder.save_pretrained(str(folder / "text_encoder"), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder / "tokenizer"))
        self.checkpoint_scheduler.save_pretrained(str(folder / "scheduler"))
        (folder / "model_index.json").write_text(json.dumps(_model_index(self), indent=2) + "\n")

    def save_single_file(self, path: T.Union[str, os.PathLike]) -> Path:
        """Write the whole model (weights, configs, tokenizer) as one ``.safetensors`` file, atomically."""
        return write_single_file(
            path, unet=_plain(self.unet), vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
            scheduler=self.checkpoint_scheduler, spectrogram_params=self.spectrogram_params,
        )

    @classmethod
    def from_single_file(cls, path: T.Union[str, os.PathLike], *, model_id: T.Optional[str] = None,
                         dtype: T.Optional[torch.dtype] = None) -> "RiffusionPipeline":
        """Read a file written by :meth:`save_single_file` (CPU; :func:`load_pipeline` moves it)."""
        return cls(**read_single_file(Path(path), model_id=model_id, dtype=dtype))

    def __repr__(self) -> str:
        return (f"RiffusionPipeline(model_id={self.model_id!r}, scheduler={self.scheduler_name!r}, "
                f"device={str(self.device)!r}, dtype={self.dtype}, image_size={self.image_size})")


# --- helpers ----------------------------------------------------------------------------------------------


def _strength(inputs: InferenceInput) -> float:
    a = float(inputs.alpha)
    return (1 - a) * float(inputs.start.denoising) + a * float(inputs.end.denoising)


def _randn(shape: T.Sequence[int], seed: int) -> torch.Tensor:
    """Standard normal noise from a CPU generator seeded with ``seed`` (same on every device)."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed) % (2**64))
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


def _denoised_steps(num_inference_steps: int, strength: float) -> int:
    """How many of ``num_inference_steps`` img2img runs at ``strength`` (the last ones of the schedule)."""
    return min(int(num_inference_steps * strength), int(num_inference_steps))


def _img2img_timesteps(scheduler, num_inference_steps: int, strength: float, device) -> tuple[torch.Tensor, int]:
    """The timesteps img2img runs at ``strength``, as diffusers' img2img computes them; sets the
    scheduler's begin index. Returns (timesteps, begin index)."""
    scheduler.set_timesteps(int(num_inference_steps), device=device)
    init_timestep = _denoised_steps(num_inference_steps, strength)
    t_start = max(num_inference_steps - init_timestep, 0)
    begin = t_start * scheduler.order
    timesteps = scheduler.timesteps[begin:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return timesteps, begin


def _model_index(pipeline) -> dict[str, T.Any]:
    """``model_index.json`` of a saved folder: a plain diffusers StableDiffusionPipeline."""
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", type(pipeline.checkpoint_scheduler).__name__],
        "text_encoder": ["transformers", type(pipeline.text_encoder).__name__],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", type(_plain(pipeline.unet)).__name__],
        "vae": ["diffusers", type(pipeline.vae).__name__],
    }


def _plain(module):
    """The module under a ``torch.compile`` wrapper, if any."""
    return getattr(module, "_orig_mod", module)


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, show: bool):
    if not show:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", leave=False, disable=None)
