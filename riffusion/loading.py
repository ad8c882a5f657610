"""Model ids -> ready pipelines: the one place that knows where weights come from.

A model id is one of

* ``"tiny-random"``: a Stable-Diffusion-shaped pipeline with small random weights, built in-process in
  about a second from a fixed seed (the same weights every time) with a tokenizer shipped in the package.
  Every command, the server and the web app run with it in tests, offline.
* the name of a model shipped in ``riffusion/models/<name>/``;
* a local folder in diffusers layout (``model_index.json``, ``unet/``, ``vae/``, ...) or of a registered
  model kind (see :func:`register_model_kind`);
* a single ``.safetensors`` / ``.ckpt`` file: either this project's self-contained single file (written by
  :meth:`RiffusionPipeline.save_single_file`) or an original Stable Diffusion checkpoint, read with
  diffusers' ``from_single_file``;
* a Hugging Face hub id such as ``"riffusion/riffusion-model-v1"``, resolved in the local hub cache
  (``riffusion download ID`` fetches it when a network exists).

Precision: float16 on CUDA, float32 on CPU and MPS. Attention runs through PyTorch's
``scaled_dot_product_attention`` (diffusers' default processor); ``compile=True`` wraps the UNet in
``torch.compile``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import typing as T
from pathlib import Path

if T.TYPE_CHECKING:  # pragma: no cover
    import torch

    from riffusion.riffusion_pipeline import RiffusionPipeline

TINY_RANDOM = "tiny-random"
HUB_MODEL = "riffusion/riffusion-model-v1"
MODELS_DIR = Path(__file__).resolve().parent / "models"
TOKENIZER_DIR = Path(__file__).resolve().parent / "tokenizers" / "tiny-clip"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")
# Metadata key that marks this project's self-contained single-file format.
SINGLE_FILE_FORMAT_KEY = "riffusion.format"
SINGLE_FILE_FORMAT = "riffusion-single-file-v1"

# Modules that register model kinds when imported (``register()`` is called on each).
_KIND_MODULES = ("riffusion.small_model",)


class ModelNotFoundError(LookupError):
    """A model id that names nothing available here; the message says how to get it."""


# --- registry of model kinds --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """A kind of model folder this loader can open.

    ``detect(path) -> bool`` says whether a folder holds a model of this kind; ``load(path, *, device,
    dtype, **options)`` returns a pipeline with the :class:`RiffusionPipeline` interface (``riffuse``,
    ``riffuse_batch``, ``spectrogram_params``, ``image_size``, ``model_id``).
    """

    name: str
    detect: T.Callable[[Path], bool]
    load: T.Callable[..., T.Any]


_KINDS: dict[str, ModelKind] = {}
_kind_modules_loaded = False


def register_model_kind(name: str, *, detect: T.Callable[[Path], bool], load: T.Callable[..., T.Any]) -> None:
    """Teach :func:`load_pipeline` a new kind of model folder (registering a name again replaces it)."""
    _KINDS[name] = ModelKind(name=name, detect=detect, load=load)


def model_kinds() -> dict[str, ModelKind]:
    """The registered model kinds, by name (importing the modules that register the built-in ones)."""
    global _kind_modules_loaded
    if not _kind_modules_loaded:
        _kind_modules_loaded = True
        for module_name in _KIND_MODULES:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            register = getattr(module, "register", None)
            if register is not None:
                register()
    return dict(_KINDS)


# --- default model ------------------------------------------------------------------------------------------


def shipped_models() -> list[str]:
    """Names of the models shipped in ``riffusion/models/`` (folders with weights and a model index)."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(
        p.name
        for p in MODELS_DIR.iterdir()
        if p.is_dir() and ((p / "model_index.json").is_file() or (p / "riffusion_model.json").is_file())
    )


def default_model() -> str:
    """``$RIFFUSION_MODEL`` if set, else the shipped model, else the published riffusion-model-v1."""
    env = os.environ.get("RIFFUSION_MODEL")
    if env:
        return env
    shipped = shipped_models()
    return shipped[0] if shipped else HUB_MODEL


DEFAULT_MODEL: str = default_model()


# --- resolution ---------------------------------------------------------------------------------------------


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith((".", "/", "~"))
        or model.lower().endswith(SINGLE_FILE_SUFFIXES)
        or model.count("/") > 1
        or "\\" in model
    )


def _looks_like_hub_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "~")) and not model.lower().endswith(
        SINGLE_FILE_SUFFIXES
    )


def _download_hint(model: str) -> str:
    return f"`riffusion download {model}` (needs a network connection)"


def resolve_model(model: str, *, local_files_only: bool = True, cache_dir: T.Optional[str] = None) -> Path:
    """The local path (folder or file) of a model id, or :class:`ModelNotFoundError` saying how to get it.

    Not for ``"tiny-random"``, which has no files.
    """
    model = str(model)
    if model == TINY_RANDOM:
        raise ValueError("'tiny-random' is built in memory and has no files")
    shipped = MODELS_DIR / model
    if "/" not in model and shipped.is_dir():
        return shipped
    path = Path(model).expanduser()
    if path.exists():
        return path
    if _looks_like_hub_id(model):
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils import HfHubHTTPError, LocalEntryNotFoundError

        try:
            return Path(
                snapshot_download(model, local_files_only=local_files_only, cache_dir=cache_dir, **_download_filters(model, local_files_only))
            )
        except LocalEntryNotFoundError as exc:
            raise ModelNotFoundError(
                f"model {model!r} is not in the local Hugging Face cache; fetch it once with {_download_hint(model)}"
            ) from exc
        except (HfHubHTTPError, OSError) as exc:
            raise ModelNotFoundError(f"could not fetch model {model!r} from the Hugging Face hub: {exc}") from exc
    if _looks_like_path(model):
        raise ModelNotFoundError(f"model path {model!r} does not exist (expected a model folder or a "
                                 f"{'/'.join(SINGLE_FILE_SUFFIXES)} file)")
    known = [TINY_RANDOM, *shipped_models(), HUB_MODEL]
    raise ModelNotFoundError(
        f"unknown model {model!r}; expected one of {', '.join(repr(k) for k in known)}, a hub id "
        f"('owner/name'), a model folder or a .safetensors/.ckpt file"
    )


def _download_filters(model: str, local_files_only: bool) -> dict[str, T.Any]:
    # Only the diffusers folders; never the multi-GB original checkpoint, traced UNets or other frameworks.
    if local_files_only:
        return {}
    return {
        "ignore_patterns": ["*.ckpt", "*.pt", "*.msgpack", "*.h5", "*.onnx", "*.pb", "safety_checker/*", "*.md5"],
    }


def download_model(model: str = HUB_MODEL, *, cache_dir: T.Optional[str] = None, prefer_safetensors: bool = True) -> Path:
    """Fetch a hub model into the local Hugging Face cache (needs a network); returns its folder.

    Downloads the diffusers folders only (safetensors when the repository has them for a component,
    otherwise ``.bin``), never the original single-file checkpoint.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.utils import HfHubHTTPError

    if not _looks_like_hub_id(model):
        raise ValueError(f"not a hub model id: {model!r} (expected 'owner/name', e.g. {HUB_MODEL!r})")
    ignore = list(_download_filters(model, False)["ignore_patterns"])
    try:
        if prefer_safetensors:
            files = HfApi().list_repo_files(model)
            folders_with_safetensors = {f.rsplit("/", 1)[0] for f in files if f.endswith(".safetensors") and "/" in f}
            ignore += [f"{folder}/*.bin" for folder in folders_with_safetensors]
        return Path(snapshot_download(model, cache_dir=cache_dir, ignore_patterns=ignore))
    except (HfHubHTTPError, OSError) as exc:
        raise ModelNotFoundError(f"could not download model {model!r}: {exc}") from exc


# --- loading ------------------------------------------------------------------------------------------------


def pick_dtype(device: str, dtype: T.Optional[T.Union[str, "torch.dtype"]] = None) -> "torch.dtype":
    """float16 on CUDA, float32 on CPU and MPS, unless ``dtype`` says otherwise ("float16", torch.float32 ...)."""
    import torch

    if dtype is None:
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        names = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}
        if dtype not in names:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(sorted(names))}")
        return names[dtype]
    return dtype


def load_pipeline(
    model: T.Optional[str] = None,
    *,
    device: str = "auto",
    dtype: T.Optional[T.Union[str, "torch.dtype"]] = None,
    compile: bool = False,
    local_files_only: bool = True,
    cache_dir: T.Optional[str] = None,
    scheduler: T.Optional[str] = None,
    channels_last: bool = False,
    config: T.Optional[str] = None,
) -> "RiffusionPipeline":
    """Load a model by id (see the module docstring) onto ``device`` ("auto", "cpu", "cuda[:N]", "mps").

    Parameters
    ----------
    model : str, optional
        Model id; :data:`DEFAULT_MODEL` when None.
    device : str
        Where to run; "auto" picks CUDA, then MPS, then CPU. A missing device falls back to CPU with a warning.
    dtype : str or torch.dtype, optional
        Weights' precision; float16 on CUDA and float32 elsewhere by default.
    compile : bool
        Wrap the UNet in ``torch.compile`` (slow first call, faster after).
    local_files_only : bool
        Resolve hub ids in the local cache only (the default): a missing model fails at once.
    scheduler : str, optional
        Scheduler name (see :func:`riffusion.schedulers.scheduler_names`); the pipeline's default if None.
    config : str, optional
        For an original single-file checkpoint: a diffusers folder or hub id with the matching configs.

    Raises
    ------
    ModelNotFoundError
        The model is not available here; the message says how to get it.
    """
    from riffusion.util.torch_util import check_device

    model = DEFAULT_MODEL if model is None else str(model)
    device = check_device(device)
    torch_dtype = pick_dtype(device, dtype)
    options = dict(device=device, dtype=torch_dtype, compile=compile, scheduler=scheduler, channels_last=channels_last)

    if model == TINY_RANDOM:
        pipeline = build_tiny_random()
        return _finish(pipeline, **options)

    path = resolve_model(model, local_files_only=local_files_only, cache_dir=cache_dir)
    if path.is_dir():
        for kind in model_kinds().values():
            if kind.detect(path):
                with quiet_progress_bars():
                    pipeline = kind.load(str(path), device=device, dtype=torch_dtype, compile=compile,
                                         scheduler=scheduler)
                if hasattr(pipeline, "model_id"):
                    pipeline.model_id = model  # the id the caller used (a shipped name rather than its path)
                return pipeline
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{str(path)!r} is not a model folder: no model_index.json (diffusers layout) or registered "
                f"model kind ({', '.join(model_kinds()) or 'none'})"
            )
        with quiet_progress_bars():
            pipeline = _load_diffusers_folder(path, model_id=model, dtype=torch_dtype)
    elif path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        with quiet_progress_bars():
            pipeline = _load_single_file(path, model_id=model, dtype=torch_dtype, config=config,
                                         local_files_only=local_files_only)
    else:
        raise ValueError(f"unsupported model file {str(path)!r}; expected a folder or one of {SINGLE_FILE_SUFFIXES}")
    return _finish(pipeline, **options)


def _finish(pipeline, *, device, dtype, compile, scheduler, channels_last):
    import torch

    if pipeline.device != torch.device(device) or pipeline.dtype != dtype:
        pipeline.to(device=device, dtype=dtype)
    if scheduler is not None:
        pipeline.set_scheduler(scheduler)
    if channels_last:
        pipeline.unet.to(memory_format=torch.channels_last)
    if compile:
        pipeline.unet = torch.compile(pipeline.unet)
    return pipeline


@contextlib.contextmanager
def quiet_progress_bars():
    """Hide diffusers' and transformers' per-file progress bars while loading or saving small models
    (restored afterwards); the commands show their own progress."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    states = []
    for module in (diffusers_logging, transformers_logging):
        states.append((module, module.is_progress_bar_enabled()))
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, enabled in states:
            if enabled:
                module.enable_progress_bar()


def _spectrogram_params(folder: T.Optional[Path]):
    from riffusion.spectrogram_params import SpectrogramParams

    if folder is not None and (folder / "spectrogram_params.json").is_file():
        data = json.loads((folder / "spectrogram_params.json").read_text())
        data.pop("image_width", None)
        return SpectrogramParams.from_dict(data)
    return SpectrogramParams()


def _load_diffusers_folder(path: Path, *, model_id: str, dtype) -> "RiffusionPipeline":
    """A Stable Diffusion folder in diffusers layout (riffusion-model-v1, or one we saved).

    The five components are loaded one by one (what ``StableDiffusionPipeline.from_pretrained`` does, less
    the safety checker and image processor, which spectrograms do not need).
    """
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from riffusion.riffusion_pipeline import RiffusionPipeline

    index = json.loads((path / "model_index.json").read_text())
    missing = [name for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler") if not (path / name).is_dir()]
    if missing:
        raise ModelNotFoundError(f"model folder {str(path)!r} lacks the component folders {missing}")
    scheduler_class = index.get("scheduler", [None, "PNDMScheduler"])[1]
    scheduler_cls = getattr(diffusers, scheduler_class, None)
    if scheduler_cls is None:
        raise ModelNotFoundError(f"model folder {str(path)!r} names an unknown scheduler class {scheduler_class!r}")
    unet = UNet2DConditionModel.from_pretrained(str(path), subfolder="unet", torch_dtype=dtype)
    vae = AutoencoderKL.from_pretrained(str(path), subfolder="vae", torch_dtype=dtype)
    text_encoder = CLIPTextModel.from_pretrained(str(path / "text_encoder"), dtype=dtype)
    tokenizer = CLIPTokenizer.from_pretrained(str(path / "tokenizer"))
    scheduler = scheduler_cls.from_pretrained(str(path), subfolder="scheduler")
    for module in (unet, vae, text_encoder):
        module.eval().requires_grad_(False)
    return RiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        spectrogram_params=_spectrogram_params(path), model_id=model_id, path=path,
    )


def _load_single_file(path: Path, *, model_id: str, dtype, config: T.Optional[str], local_files_only: bool):
    """One checkpoint file: this project's self-contained format, else an original SD checkpoint."""
    from riffusion.riffusion_pipeline import RiffusionPipeline

    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        if metadata.get(SINGLE_FILE_FORMAT_KEY) == SINGLE_FILE_FORMAT:
            return RiffusionPipeline.from_single_file(path, model_id=model_id, dtype=dtype)

    from diffusers import StableDiffusionPipeline

    kwargs: dict[str, T.Any] = dict(torch_dtype=dtype, local_files_only=local_files_only, safety_checker=None,
                                    requires_safety_checker=False)
    if config is not None:
        kwargs["config"] = str(config)
    try:
        sd = StableDiffusionPipeline.from_single_file(str(path), **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelNotFoundError(
            f"could not load the checkpoint {str(path)!r} with diffusers' from_single_file: {exc}. An original "
            f"Stable Diffusion checkpoint needs its configs: pass config=<diffusers folder or hub id> (CLI "
            f"--model-config), or fetch {HUB_MODEL!r} once with {_download_hint(HUB_MODEL)}"
        ) from exc
    return RiffusionPipeline(
        vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer, unet=sd.unet, scheduler=sd.scheduler,
        spectrogram_params=_spectrogram_params(None), model_id=model_id, path=path,
    )


# --- tiny-random --------------------------------------------------------------------------------------------


def tiny_random_components(seed: int = 0) -> dict[str, T.Any]:
    """The components of ``tiny-random``: SD-shaped (4-channel latents, VAE scale factor 8, CLIP text
    encoder with 77 positions, PNDM scheduler as riffusion-model-v1) but a few thousand times smaller,
    with weights drawn from ``seed`` in a private random stream (global RNG state is untouched)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            block_out_channels=(4, 8, 16),
            layers_per_block=1,
            # Attention only at the coarsest level (16 x 16 latents): ~15 ms per guided step on 2 CPU cores.
            down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=4,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(4, 4, 8, 8),  # four levels: VAE scale factor 8, 512 px -> 64 latents
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=4,
            sample_size=512,
            scaling_factor=0.18215,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=77,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    scheduler = PNDMScheduler.from_config(dict(  # riffusion-model-v1's scheduler config
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False, clip_sample=False,
    ))
    for module in (unet, vae, text_encoder):
        module.eval().requires_grad_(False)
    return dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)


def build_tiny_random(seed: int = 0) -> "RiffusionPipeline":
    """The ``tiny-random`` pipeline (CPU, float32; :func:`load_pipeline` moves it)."""
    from riffusion.riffusion_pipeline import RiffusionPipeline

    return RiffusionPipeline(**tiny_random_components(seed), model_id=TINY_RANDOM)
