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

import dataclasses
import importlib
import os
import typing as T
from pathlib import Path

from riffusion.checkpoints import (  # noqa: F401 - the ids, errors and file helpers callers know from here
    HUB_MODEL,
    MODELS_DIR,
    SINGLE_FILE_FORMAT,
    SINGLE_FILE_FORMAT_KEY,
    SINGLE_FILE_SUFFIXES,
    TINY_RANDOM,
    TOKENIZER_DIR,
    ModelNotFoundError,
    WeightsMismatchError,
    download_model,
    quiet_progress_bars,
    read_model,
    resolve_model,
    shipped_models,
    spectrogram_params_of,
    tiny_random_components,
)

if T.TYPE_CHECKING:  # pragma: no cover
    import torch

    from riffusion.riffusion_pipeline import RiffusionPipeline

# Modules that register model kinds when imported (``register()`` is called on each).
_KIND_MODULES = ("riffusion.small",)


# --- registry of model kinds --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """A kind of model folder this loader can open.

    ``detect(path) -> bool`` says whether a folder holds a model of this kind; ``load(path, *, device,
    dtype, **options)`` returns a pipeline with the :class:`RiffusionPipeline` interface (``riffuse``,
    ``riffuse_batch``, ... : :class:`riffusion.protocols.SpectrogramPipeline`).
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


def default_model() -> str:
    """``$RIFFUSION_MODEL`` if set, else the shipped default (:data:`riffusion.small.DEFAULT_SMALL_MODEL`),
    else another shipped model, else the published riffusion-model-v1."""
    from riffusion.small.config import DEFAULT_SMALL_MODEL

    env = os.environ.get("RIFFUSION_MODEL")
    if env:
        return env
    shipped = shipped_models()
    if DEFAULT_SMALL_MODEL in shipped:
        return DEFAULT_SMALL_MODEL
    return shipped[0] if shipped else HUB_MODEL


DEFAULT_MODEL: str = default_model()


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
    from riffusion.devices import check_device
    from riffusion.riffusion_pipeline import RiffusionPipeline

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
    pipeline = RiffusionPipeline(**read_model(str(path), dtype=torch_dtype, local_files_only=local_files_only,
                                              cache_dir=cache_dir, config=config))
    pipeline.model_id = model
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


# --- tiny-random --------------------------------------------------------------------------------------------


def build_tiny_random(seed: int = 0) -> "RiffusionPipeline":
    """The ``tiny-random`` pipeline (CPU, float32; :func:`load_pipeline` moves it)."""
    from riffusion.riffusion_pipeline import RiffusionPipeline

    return RiffusionPipeline(**tiny_random_components(seed), model_id=TINY_RANDOM)
