"""Text (and seed image, and rhythm) -> Riffusion spectrogram image with a riffusion-small model.

Interpolation as riffusion-model-v1 (riffusion-format.md §5): linear in the conditioning tensor, spherical
between the start and end seeds' noises, img2img from a seed image at the denoising strength,
classifier-free guidance. A model with a rhythm input also takes each clip's beat grid: the request's,
else the seed image's estimated one, else none (the model then chooses its own rhythm).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import dataclasses
import logging
import typing as T
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from riffusion.cancellation import CancelToken, raise_if_cancelled
from riffusion.defaults import check_generation
from riffusion.image import mask_tensor
from riffusion.interpolation import slerp
from riffusion.prompts import blend_embeddings, normalise_prompt_mix, strip_prompt_weights
from riffusion.rhythm import BeatGrid, estimate_beat_grid, rhythm_features
from riffusion.small.config import MODEL_KIND, SMALL_PARAMS, SmallModelConfig
from riffusion.small.denoiser import (
    denoise, image_to_tensor, make_inference_scheduler, make_train_scheduler, remove_patch_grid, tensor_to_image,
)
from riffusion.small.guidance import ParallelGuidance, cpu_has_bf16
from riffusion.small.text import SentenceEncoder, load_sentence_encoder
from riffusion.spectrogram_params import SpectrogramParams

logger = logging.getLogger(__name__)


class SmallRiffusionPipeline:
    """A riffusion-small model ready to generate; satisfies :class:`riffusion.protocols.SpectrogramPipeline`."""

    def __init__(
        self,
        unet,
        *,
        config: SmallModelConfig,
        spectrogram_params: SpectrogramParams = SMALL_PARAMS,
        scheduler_config: T.Optional[T.Mapping[str, T.Any]] = None,
        text_encoder: T.Optional[SentenceEncoder] = None,
        model_id: str = MODEL_KIND,
        path: T.Optional[Path] = None,
        device: str = "cpu",
    ):
        self.unet = unet.eval().requires_grad_(False)
        self.config = config
        self.spectrogram_params = spectrogram_params
        self.scheduler_config = dict(scheduler_config or make_train_scheduler(config.prediction_type).config)
        self._text_encoder = text_encoder
        self.model_id = model_id
        self.path = path
        self._device = torch.device(device)
        self.unet.to(self._device)
        self._embedding_cache: dict[T.Union[str, tuple], torch.Tensor] = {}
        self._parallel: T.Optional[ParallelGuidance] = None
        self._capped_requests: set[int] = set()
        self._branch_cache: "collections.OrderedDict[tuple, torch.Tensor]" = collections.OrderedDict()
        self.show_progress = False  # sampling here is too short for a progress bar

    # -- what the pipeline offers (riffusion.protocols.SpectrogramPipeline) --

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the images this model makes."""
        return (self.config.image_width, self.spectrogram_params.num_frequencies)

    @property
    def width_multiple(self) -> int:
        """Image widths are multiples of this many columns (a patch times the UNet's downsampling)."""
        return self.config.patch_size * 2 ** (len(self.config.block_out_channels) - 1)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def default_num_inference_steps(self) -> int:
        return self.config.num_inference_steps

    @property
    def default_guidance(self) -> float:
        return self.config.guidance_scale

    @property
    def default_denoising(self) -> float:
        from riffusion.defaults import GENERATION

        return GENERATION.denoising if self.config.default_denoising is None else float(self.config.default_denoising)

    @property
    def has_rhythm_input(self) -> bool:
        """True for a model that takes a beat grid (``config.rhythm_channels``)."""
        return self.config.rhythm_channels > 0

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def text_encoder(self) -> SentenceEncoder:
        if self._text_encoder is None:
            self._text_encoder = load_sentence_encoder(self.config.max_text_tokens)
        return self._text_encoder

    def effective_num_inference_steps(self, requested: int) -> int:
        """The steps a request for ``requested`` runs: at most ``config.num_inference_steps``.

        The original web app asks for 50 steps (riffusion-model-v1's default); this model is tuned for far
        fewer, and more steps only cost time. A request above the limit runs at the limit, and the first
        such request of each size is logged; servers report the effective count with every response.
        """
        check_generation(num_inference_steps=requested)
        limit = self.config.num_inference_steps
        if requested > limit and requested not in self._capped_requests:
            self._capped_requests.add(int(requested))
            logger.info("%s runs %d steps for requests of %d (its most; see effective_num_inference_steps)",
                        self.model_id, limit, requested)
        return min(int(requested), limit)

    def min_num_inference_steps(self, denoising: float) -> int:
        """The fewest steps that still denoise at ``denoising``: 1 (this model runs at least one UNet step)."""
        return 1

    def unet_evaluations(self, num_inference_steps: int, denoising: float) -> int:
        """UNet calls of one clip from a seed image: the last ``denoising ** config.denoising_gamma`` share of
        the steps it runs (:meth:`effective_num_inference_steps`), at least one.

        Raises
        ------
        ValueError
            If ``denoising`` is outside [0, 1] or the step count outside the accepted range.
        """
        check_generation(denoising=denoising)
        steps = self.effective_num_inference_steps(num_inference_steps)
        return steps - _first_step(steps, float(denoising) ** self.config.denoising_gamma)

    def _uses_autocast(self) -> bool:
        return self._device.type == "cpu" and self.config.cpu_bf16 and self.dtype == torch.float32 and cpu_has_bf16()

    def _autocast(self):
        """bfloat16 autocast on CPUs with native bf16 units, when ``config.cpu_bf16``; a no-op elsewhere
        (emulated bf16 is slower than float32)."""
        if self._uses_autocast():
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _cpu_threads(self):
        """Intra-op threads lowered to ``config.cpu_threads`` on a CPU for the duration (never raised: a
        lower process-wide setting wins), restored afterwards."""
        wanted, before = self.config.cpu_threads, torch.get_num_threads()
        if self._device.type != "cpu" or wanted is None or wanted >= before:
            yield
            return
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _parallel_guidance(self) -> T.Optional[ParallelGuidance]:
        """The two-thread guided step when it applies: on a CPU, float32 without autocast (autocast is
        thread-local), ``cpu_threads == 1`` and at least two intra-op threads allowed; else None."""
        if not (self.config.cpu_parallel_guidance and self._device.type == "cpu" and self.config.cpu_threads == 1
                and torch.get_num_threads() >= 2 and self.dtype == torch.float32 and not self._uses_autocast()):
            return None
        if self._parallel is None:
            self._parallel = ParallelGuidance(self.unet, patch_size=self.config.patch_size)
        return self._parallel

    def to(self, device: T.Union[str, torch.device]) -> "SmallRiffusionPipeline":
        self._device = torch.device(device)
        self.unet.to(self._device)
        self._parallel = None  # traces hold the old device's tensors
        self._branch_cache.clear()  # and so do the remembered end-point states
        return self

    # -- loading and saving --

    @classmethod
    def from_pretrained(
        cls, path: T.Union[str, Path], *, device: str = "cpu", dtype: T.Optional[torch.dtype] = None,
        model_id: T.Optional[str] = None, use_ema: bool = True,
    ) -> "SmallRiffusionPipeline":
        """Load a riffusion-small folder (see :mod:`riffusion.small.io`). Weights are stored in fp16 and run
        in float32 on the CPU unless ``dtype`` says otherwise."""
        from riffusion.small.io import read_small_model

        unet, config, params, scheduler_config = read_small_model(path, device=device, dtype=dtype, use_ema=use_ema)
        return cls(unet, config=config, spectrogram_params=params, scheduler_config=scheduler_config,
                   model_id=model_id or Path(path).name, path=Path(path), device=device)

    def save_pretrained(self, path: T.Union[str, Path], *, fp16: bool = True) -> None:
        """Write the model folder (weights in fp16 safetensors by default)."""
        from riffusion.small.io import save_small_model

        save_small_model(path, self.unet, config=self.config, params=self.spectrogram_params,
                         scheduler_config=self.scheduler_config, fp16=fp16)

    # -- conditioning --

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """Conditioning tensor (1, 1 + tokens, 384) of a prompt (cached)."""
        if prompt not in self._embedding_cache:
            if len(self._embedding_cache) > 256:
                self._embedding_cache.clear()
            self._embedding_cache[prompt] = self.text_encoder([strip_prompt_weights(prompt)])
        return self._embedding_cache[prompt]

    def encode_prompt_mix(self, mix: T.Sequence[tuple[str, float]]) -> torch.Tensor:
        """Conditioning tensor of a weighted mix ``((prompt, weight), ...)``: the weighted average (weights
        normalised to sum 1) of the prompts' tensors, cached by the mix; one prompt gives exactly
        :meth:`encode_prompt` of it."""
        weighted = normalise_prompt_mix(mix)
        if len(weighted) == 1:
            return self.encode_prompt(weighted[0][0])
        if weighted not in self._embedding_cache:
            blended = blend_embeddings([self.encode_prompt(p) for p, _ in weighted], [w for _, w in weighted])
            if len(self._embedding_cache) > 256:
                self._embedding_cache.clear()
            self._embedding_cache[weighted] = blended
        return self._embedding_cache[weighted]

    def _noise(self, seed: int, width: int) -> torch.Tensor:
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        return torch.randn((1, 1, self.image_size[1], width), generator=generator, dtype=torch.float32)

    def output_width(self, init_image: T.Optional[Image.Image]) -> int:
        """Columns of the image made from ``init_image``: a seed image of this model's height keeps its
        length (rounded to a multiple of :attr:`width_multiple`: longer clips from tiled seeds); anything
        else (no seed, or another model's geometry) gives the native width."""
        native, height = self.image_size
        multiple = self.width_multiple
        if init_image is None or init_image.height != height:
            return native
        return max(multiple, int(round(init_image.width / multiple)) * multiple)

    def beat_grid(self, inputs, init_image: T.Optional[Image.Image]) -> T.Optional[BeatGrid]:
        """The beat grid a request's clip follows: ``inputs.rhythm`` when given, else the seed image's
        estimated grid (None when it has no clear pulse), else None."""
        if inputs.rhythm is not None or init_image is None:
            return inputs.rhythm
        pixels = np.asarray(init_image.convert("RGB").getchannel("R"), dtype=np.float32)
        # a seed image of another geometry is resized to this model's columns and keeps its duration
        column_s = self._column_s * self.output_width(init_image) / init_image.width
        return estimate_beat_grid(pixels, column_s=column_s)

    @property
    def _column_s(self) -> float:
        """Seconds per image column."""
        return self.spectrogram_params.step_size_ms / 1000.0

    def _rhythm(self, grid: T.Optional[BeatGrid], width: int) -> torch.Tensor:
        return torch.from_numpy(rhythm_features(grid, num_columns=width, column_s=self._column_s))[None]

    # -- generation --

    def riffuse(self, inputs, init_image: T.Optional[Image.Image] = None, mask_image: T.Optional[Image.Image] = None,
                use_reweighting: bool = True) -> Image.Image:
        """One interpolated clip (riffusion-model-v1 semantics, see riffusion-format.md §5)."""
        return self.riffuse_batch([(inputs, init_image, mask_image)])[0]

    def riffuse_batch(self, items: T.Sequence[tuple], *, use_reweighting: bool = True,
                      cancel: T.Optional[CancelToken] = None) -> list[Image.Image]:
        """Several requests in one UNet batch per step (grouped by steps, denoising strength and width).

        ``use_reweighting`` is accepted for the interface: the sentence encoder has no per-token weights,
        so weighting syntax is stripped from prompts. ``cancel`` is checked before every UNet step: once it
        is set, :class:`~riffusion.cancellation.Cancelled` is raised.
        """
        if not items:
            return []
        groups: dict[tuple, list[int]] = {}
        for index, (inputs, init_image, _mask) in enumerate(items):
            strength = (1 - inputs.alpha) * inputs.start.denoising + inputs.alpha * inputs.end.denoising
            if not 0.0 <= strength <= 1.0:
                raise ValueError(f"denoising must be in [0, 1], got {strength}")
            # This pixel-space model with a cosine schedule departs further from the seed than
            # riffusion-model-v1 at the same strength, so strengths can be bent towards it.
            strength = strength ** self.config.denoising_gamma
            steps = self.effective_num_inference_steps(inputs.num_inference_steps)
            key = (steps, round(strength, 6), self.output_width(init_image), init_image is None)
            groups.setdefault(key, []).append(index)
        results: list[T.Optional[Image.Image]] = [None] * len(items)
        for (steps, strength, width, _no_init), indices in groups.items():
            images = self._generate([items[i] for i in indices], steps=steps, strength=strength, width=width,
                                    cancel=cancel)
            for i, image in zip(indices, images):
                results[i] = image
        return T.cast(list, results)

    @torch.no_grad()
    def _generate(self, items: T.Sequence[tuple], *, steps: int, strength: float, width: int,
                  cancel: T.Optional[CancelToken] = None) -> list[Image.Image]:
        batch = _Batch.of(self, items, width)
        if batch.x0 is None:
            strength = 1.0
        # 4. Timesteps: the last ``strength`` fraction of the schedule (at least one step).
        t_start = _first_step(steps, strength)
        branch = self._branch_steps(steps - t_start) if batch.mask is None else 0
        between = [i for i, (inputs, _, _) in enumerate(items) if branch and not _is_end_point(inputs)]
        ends = [i for i in range(len(items)) if i not in between]
        x = torch.empty_like(batch.noise)
        if ends:
            sub = batch.take(ends)
            # 5. Start: the seed image noised to the first timestep (pure noise when strength is 1).
            start = self._start(sub, steps=steps, t_start=t_start, strength=strength)
            # 6. Guided denoising. With transitions branched, a clip at an end point also leaves its state
            #    where the clips between end points start.
            keys = [self._branch_key(_end_point(items[i][0]), items[i][1], grid, steps=steps, t_start=t_start,
                                     branch=branch, width=width)
                    for i, grid in zip(ends, sub.grids)] if branch else []

            def remember(index: int, state: torch.Tensor) -> None:
                if index + 1 == t_start + branch:
                    for key, row in zip(keys, state):
                        self._remember_branch(key, row[None].clone())

            x[ends] = self._denoise(start, sub, steps=steps, first=t_start, cancel=cancel,
                                    on_step=remember if branch else None)
        if between:
            # 5-6. Clips between end points start, ``branch`` steps in, from the states their end points reach
            #      there on their own, slerped by the clip's alpha (see SmallModelConfig.transition_branch).
            sub_items = [items[i] for i in between]
            sub = batch.take(between)
            start = self._branched_start(sub_items, sub, steps=steps, strength=strength, t_start=t_start,
                                         branch=branch, width=width, cancel=cancel)
            x[between] = self._denoise(start, sub, steps=steps, first=t_start + branch, cancel=cancel,
                                       steps_done=branch)
        # 7. The patch-period texture removed (the kept part of a masked seed image stays exact), then
        #    pixels -> Riffusion images with this model's parameters in EXIF.
        if self.config.suppress_patch_grid:
            x = remove_patch_grid(x, patch_size=self.config.patch_size)
            if batch.mask is not None:
                x = batch.mask * x + (1 - batch.mask) * batch.x0
        return [tensor_to_image(x[i], self.spectrogram_params) for i in range(len(items))]

    def _start(self, batch: "_Batch", *, steps: int, t_start: int, strength: float) -> torch.Tensor:
        """The state the sampler starts from: pure noise at strength 1, else the seed image noised to the
        first timestep that runs."""
        scheduler = make_inference_scheduler(self.scheduler_config, self.config.sampler)
        scheduler.set_timesteps(steps, device=self._device)
        if strength >= 1.0 or batch.x0 is None:
            return batch.noise * float(getattr(scheduler, "init_noise_sigma", 1.0))
        first = scheduler.timesteps[t_start:t_start + 1].repeat(len(batch))
        return scheduler.add_noise(batch.x0, batch.noise, first)

    def _denoise(self, x: torch.Tensor, batch: "_Batch", *, steps: int, first: int, last: T.Optional[int] = None,
                 cancel: T.Optional[CancelToken] = None, steps_done: int = 0,
                 on_step: T.Optional[T.Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
        """Run the sampler from timestep index ``first`` (where ``x`` is) to ``last`` (default: the end) of a
        schedule of ``steps``: classifier-free guidance on timesteps >= config.guidance_min_timestep (the
        conditional branch alone below), with rhythm guidance when configured; a mask keeps the black region of
        the seed image (noised to the same level). ``on_step(i, x)`` sees the state after step index ``i``.
        A fresh sampler: a solver of order > 1 starts at first order."""
        scheduler = make_inference_scheduler(self.scheduler_config, self.config.sampler)
        scheduler.set_timesteps(steps, device=self._device)
        timesteps = scheduler.timesteps
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(first)
        n = len(batch)
        cond, rhythm, g, mask = batch.cond, batch.rhythm, batch.guidance, batch.mask
        parallel = self._parallel_guidance()
        dtype = self.dtype

        def unet(model_in: torch.Tensor, t: torch.Tensor, c: torch.Tensor, r: T.Optional[torch.Tensor]) -> torch.Tensor:
            with self._autocast():
                return denoise(self.unet, model_in.to(dtype), t, c, patch_size=self.config.patch_size,
                               rhythm=r).float()

        # Guidance moves away from the unconditional prediction; with rhythm guidance that one also has no
        # rhythm, so the guided step pushes towards the beat as well as the prompt.
        uncond_rhythm = None
        if rhythm is not None:
            uncond_rhythm = torch.zeros_like(rhythm) if self.config.rhythm_guidance else rhythm
        # A rhythm scale of its own (config.rhythm_guidance_scale) needs a third prediction, with the rhythm
        # but no text, unless it equals one of the two joint forms, or no clip has a rhythm (then that
        # prediction is the unconditional one and the step is the joint form).
        g_rhythm = self.config.rhythm_guidance_scale
        if (rhythm is None or not batch.any_rhythm or not self.config.rhythm_guidance or g_rhythm is None
                or bool(torch.all(g == g_rhythm))):
            g_rhythm = None
        elif g_rhythm == 1.0:
            uncond_rhythm, g_rhythm = rhythm, None
        both_rhythm = None if rhythm is None else torch.cat([uncond_rhythm, rhythm])
        end = len(timesteps) if last is None else last
        with self._cpu_threads():
            for i in range(first, end):
                raise_if_cancelled(cancel, steps_done=steps_done + i - first)
                t = timesteps[i].to(self._device)
                if int(t) < self.config.guidance_min_timestep:
                    pred = unet(x, t, cond[n:], rhythm)
                elif g_rhythm is not None:  # u0 + g_rhythm (ur - u0) + g (c - ur)
                    if parallel is not None:
                        rhythm_pred, cond_pred = parallel(x, t, cond[:n], cond[n:], rhythm, rhythm)
                    else:
                        rhythm_pred, cond_pred = unet(torch.cat([x, x]), t, cond, torch.cat([rhythm, rhythm])).chunk(2)
                    uncond_pred = unet(x, t, cond[:n], uncond_rhythm)
                    pred = uncond_pred + g_rhythm * (rhythm_pred - uncond_pred) + g * (cond_pred - rhythm_pred)
                else:
                    if parallel is not None:  # float32 only: no casts needed
                        uncond_pred, cond_pred = parallel(x, t, cond[:n], cond[n:], rhythm, uncond_rhythm)
                    else:
                        uncond_pred, cond_pred = unet(torch.cat([x, x]), t, cond, both_rhythm).chunk(2)
                    pred = uncond_pred + g * (cond_pred - uncond_pred)
                x = scheduler.step(pred, t, x).prev_sample
                if mask is not None:
                    kept = (scheduler.add_noise(batch.x0, batch.noise, timesteps[i + 1:i + 2].repeat(n))
                            if i + 1 < len(timesteps) else batch.x0)
                    x = mask * x + (1 - mask) * kept
                if on_step is not None:
                    on_step(i, x)
        return x

    def _branch_steps(self, remaining: int) -> int:
        """How many of the ``remaining`` steps a clip's end points run alone before its own trajectory
        starts from their blend (config.transition_branch; 0: none, a clip runs from its slerped noise)."""
        share = self.config.transition_branch
        if share <= 0 or remaining < 2:
            return 0
        return min(max(int(round(share * remaining)), 1), remaining - 1)

    def _branched_start(self, items: T.Sequence[tuple], batch: "_Batch", *, steps: int, strength: float,
                        t_start: int, branch: int, width: int, cancel: T.Optional[CancelToken]) -> torch.Tensor:
        """Each clip's state after ``branch`` steps: the states its start and end points (each prompt at its
        own seed, alpha 0) reach on their own, slerped by the clip's alpha. End-point states are cached, so a
        transition computes each end point's first steps once for all its clips."""
        ends: dict[tuple, tuple] = {}  # key -> (end-point request, seed image), in order
        keys = []
        for (inputs, init_image, _mask), grid in zip(items, batch.grids):
            pair = []
            for point in (inputs.start, inputs.end):
                key = self._branch_key(point, init_image, grid, steps=steps, t_start=t_start, branch=branch,
                                       width=width)
                pair.append(key)
                if key not in self._branch_cache and key not in ends:
                    alone = dataclasses.replace(inputs, start=point, end=point, alpha=0.0, rhythm=grid)
                    ends[key] = (alone, init_image)
            keys.append(pair)
        known = {}
        for key in (key for pair in keys for key in pair if key in self._branch_cache):
            known[key] = self._branch_cache[key]
            self._branch_cache.move_to_end(key)
        if ends:
            end_batch = _Batch.of(self, [(e, image, None) for e, image in ends.values()], width)
            x = self._start(end_batch, steps=steps, t_start=t_start, strength=strength)
            x = self._denoise(x, end_batch, steps=steps, first=t_start, last=t_start + branch, cancel=cancel)
            for key, state in zip(ends, x):
                known[key] = state[None]
                self._remember_branch(key, state[None])
        states = []
        for (inputs, _image, _mask), (k0, k1) in zip(items, keys):
            a = float(inputs.alpha)
            s0, s1 = known[k0], known[k1]
            states.append(s0 if k0 == k1 or a == 0.0 else s1 if a == 1.0 else slerp(a, s0, s1))
        return torch.cat(states)

    def _branch_key(self, point, init_image: T.Optional[Image.Image], grid: T.Optional[BeatGrid], *,
                    steps: int, t_start: int, branch: int, width: int) -> tuple:
        """What decides an end point's state ``branch`` steps in: its prompt, negative prompt, seed and
        guidance (a PromptInput), the seed image, rhythm and schedule of the clip it belongs to."""
        return _point_key(point), grid, steps, t_start, branch, width, _image_key(init_image)

    def _remember_branch(self, key: tuple, state: torch.Tensor) -> None:
        cache = self._branch_cache
        cache[key] = state
        cache.move_to_end(key)
        while len(cache) > _BRANCH_CACHE_SIZE:
            cache.popitem(last=False)

    def text_to_image(self, prompt: str, *, seed: int = 0, negative_prompt: str = "", guidance: T.Optional[float] = None,
                      num_inference_steps: T.Optional[int] = None, init_image: T.Optional[Image.Image] = None,
                      denoising: float = 1.0, rhythm: T.Optional[BeatGrid] = None) -> Image.Image:
        """One image from a prompt: from noise, or img2img from ``init_image`` at ``denoising``; on the
        beat grid ``rhythm`` when the model has a rhythm input (else ``init_image``'s estimated grid)."""
        from riffusion.datatypes import InferenceInput, PromptInput

        g = self.config.guidance_scale if guidance is None else guidance
        p = PromptInput(prompt=prompt, seed=seed, negative_prompt=negative_prompt or None, denoising=denoising, guidance=g)
        inputs = InferenceInput(start=p, end=p, alpha=0.0,
                                num_inference_steps=num_inference_steps or self.config.num_inference_steps)
        if rhythm is None and init_image is not None and self.has_rhythm_input:
            rhythm = self.beat_grid(inputs, init_image)
        if rhythm is not None:
            inputs = dataclasses.replace(inputs, rhythm=rhythm)
        return self.riffuse(inputs, init_image if denoising < 1.0 else None)


#: End-point states kept for blended trajectories: a few transitions' worth for a handful of listeners.
_BRANCH_CACHE_SIZE = 64


@dataclasses.dataclass
class _Batch:
    """What the sampler needs of a batch of clips, in the batch's order (conditioning rows: the
    unconditional ones, then the conditional ones)."""

    cond: torch.Tensor
    guidance: torch.Tensor
    noise: torch.Tensor
    x0: T.Optional[torch.Tensor]  # the seed images, when every clip has one
    mask: T.Optional[torch.Tensor]  # 1 where the sampler paints (only with seed images)
    rhythm: T.Optional[torch.Tensor]
    any_rhythm: bool  # whether some clip has a beat grid (none: the rhythm rows are all "no rhythm")
    grids: list

    def __len__(self) -> int:
        return len(self.grids)

    def take(self, rows: T.Sequence[int]) -> "_Batch":
        """The batch of the clips at ``rows`` (this batch itself when that is all of them, in order)."""
        rows = list(rows)
        if rows == list(range(len(self))):
            return self
        n, index = len(self), torch.tensor(rows, dtype=torch.long)

        def pick(t: T.Optional[torch.Tensor]) -> T.Optional[torch.Tensor]:
            return None if t is None else t[index]

        grids = [self.grids[i] for i in rows]
        return _Batch(cond=torch.cat([self.cond[:n][index], self.cond[n:][index]]), guidance=self.guidance[index],
                      noise=self.noise[index], x0=pick(self.x0), mask=pick(self.mask), rhythm=pick(self.rhythm),
                      any_rhythm=any(g is not None for g in grids), grids=grids)

    @classmethod
    def of(cls, pipe: SmallRiffusionPipeline, items: T.Sequence[tuple], width: int) -> "_Batch":
        height = pipe.image_size[1]
        device, dtype = pipe.device, pipe.dtype
        # 1. Text conditioning: linear interpolation of the start and end prompts (or mixes); negative
        #    prompts (or "") for classifier-free guidance; guidance interpolated linearly.
        conds, unconds, guidance, noises, init, masks, rhythms, grids = [], [], [], [], [], [], [], []
        for inputs, init_image, mask_image in items:
            a = float(inputs.alpha)
            if not 0.0 <= a <= 1.0:
                raise ValueError(f"alpha must be in [0, 1], got {a}")
            start, end = inputs.start, inputs.end
            conds.append((1 - a) * pipe.encode_prompt_mix(start.weighted_prompts)
                         + a * pipe.encode_prompt_mix(end.weighted_prompts))
            unconds.append((1 - a) * pipe.encode_prompt(start.negative_prompt or "")
                           + a * pipe.encode_prompt(end.negative_prompt or ""))
            guidance.append((1 - a) * start.guidance + a * end.guidance)
            # 2. Noise: slerp between the start and end seeds' Gaussian noises.
            noises.append(slerp(a, pipe._noise(start.seed, width), pipe._noise(end.seed, width)))
            # 3. The seed image (img2img), or pure noise when there is none; its mask; the clip's rhythm.
            init.append(image_to_tensor(init_image, width=width, height=height)[None] if init_image is not None else None)
            masks.append(mask_tensor(mask_image, width, height, threshold=0.5) if mask_image is not None else None)
            grid = pipe.beat_grid(inputs, init_image) if pipe.has_rhythm_input else None
            grids.append(grid)
            if pipe.has_rhythm_input:
                rhythms.append(pipe._rhythm(grid, width))
        x0 = torch.cat(init).to(device) if all(x is not None for x in init) else None
        mask = None
        if x0 is not None and any(m is not None for m in masks):
            mask = torch.cat([m if m is not None else torch.ones(1, 1, height, width) for m in masks]).to(device)
        return cls(cond=torch.cat(unconds + conds).to(device, dtype),
                   guidance=torch.tensor(guidance, device=device, dtype=torch.float32).view(-1, 1, 1, 1),
                   noise=torch.cat(noises).to(device), x0=x0, mask=mask,
                   rhythm=torch.cat(rhythms).to(device, dtype) if rhythms else None,
                   any_rhythm=any(g is not None for g in grids), grids=grids)


def _point_key(point) -> tuple:
    """What makes two PromptInputs the same end point: prompt (or mix), negative prompt, seed, guidance."""
    return tuple(point.weighted_prompts), point.negative_prompt or "", int(point.seed), float(point.guidance)


def _is_end_point(inputs) -> bool:
    """Whether a request's clip is one of its end points (alpha 0 or 1, or both ends the same)."""
    return inputs.alpha in (0.0, 1.0) or _point_key(inputs.start) == _point_key(inputs.end)


def _end_point(inputs):
    """The PromptInput a clip at an end point is."""
    return inputs.end if inputs.alpha == 1.0 else inputs.start


def _image_key(image: T.Optional[Image.Image]) -> T.Optional[tuple]:
    if image is None:
        return None
    return image.size, image.mode, hashlib.sha1(image.tobytes()).hexdigest()


def _first_step(steps: int, strength: float) -> int:
    """Where img2img at ``strength`` enters a schedule of ``steps``: the last ``strength`` share runs (at least
    one step; all of them at strength 1)."""
    return min(max(int(round(steps * (1 - strength))), 0), steps - 1) if strength < 1.0 else 0
