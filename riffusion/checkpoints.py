"""Model files: ids -> local paths, and Stable-Diffusion-layout folders and files -> pipeline components.

Reading and writing the files of :class:`~riffusion.riffusion_pipeline.RiffusionPipeline` models lives
here, below both the pipeline class and :mod:`riffusion.loading` (which turns a model id into a ready
pipeline of any registered kind), so neither needs the other's module to read a model.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import typing as T
from pathlib import Path

TINY_RANDOM = "tiny-random"
HUB_MODEL = "riffusion/riffusion-model-v1"
MODELS_DIR = Path(__file__).resolve().parent / "models"
TOKENIZER_DIR = Path(__file__).resolve().parent / "tokenizers" / "tiny-clip"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")
# Metadata key that marks this project's self-contained single-file format.
SINGLE_FILE_FORMAT_KEY = "riffusion.format"
SINGLE_FILE_FORMAT = "riffusion-single-file-v1"


class ModelNotFoundError(LookupError):
    """A model id that names nothing available here; the message says how to get it."""


class WeightsMismatchError(ValueError):
    """A model file whose weights are not exactly its component's: keys missing (the component would run
    with random weights there) or unexpected (weights of something else)."""


def _few(keys: T.Iterable[str], count: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:count]) + (f" and {len(keys) - count} more" if len(keys) > count else "")


def check_weights(source: T.Union[str, Path], component: str, *, missing: T.Iterable[str] = (),
                  unexpected: T.Iterable[str] = ()) -> None:
    """Raise :class:`WeightsMismatchError` naming ``source`` and a few keys unless both key lists are empty.

    Parameters
    ----------
    source : str or Path
        The file or folder the weights came from.
    component : str
        ``"unet"``, ``"vae"`` or ``"text_encoder"``.
    missing, unexpected : iterables of str
        Parameter names the component has and the file lacks, and names the file has and the component lacks.
    """
    missing, unexpected = list(missing), list(unexpected)
    if not missing and not unexpected:
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    raise WeightsMismatchError(
        f"{str(source)!r}: the {component} weights do not match its architecture: {'; '.join(problems)} keys; "
        f"the file is truncated, damaged or of another model"
    )


def _check_on_meta(source: Path, component: str, module) -> None:
    """Missing weights of a component built on the meta device (diffusers' single-file loading) stay there."""
    on_meta = [name for name, tensor in [*module.named_parameters(), *module.named_buffers()] if tensor.is_meta]
    check_weights(source, component, missing=on_meta)



# --- ids -> paths ----------------------------------------------------------------------------------------------


def shipped_models() -> list[str]:
    """Names of the models shipped in ``riffusion/models/`` (folders with weights and a model index)."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(
        p.name
        for p in MODELS_DIR.iterdir()
        if p.is_dir() and ((p / "model_index.json").is_file() or (p / "riffusion_model.json").is_file())
    )


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


# --- files -> components -----------------------------------------------------------------------------------


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


def spectrogram_params_of(folder: T.Optional[Path]):
    """The spectrogram parameters saved in a model folder (``spectrogram_params.json``), else the defaults."""
    from riffusion.spectrogram_params import SpectrogramParams

    if folder is not None and (folder / "spectrogram_params.json").is_file():
        data = json.loads((folder / "spectrogram_params.json").read_text())
        data.pop("image_width", None)
        return SpectrogramParams.from_dict(data)
    return SpectrogramParams()


def read_diffusers_folder(path: Path, *, model_id: str, dtype) -> dict[str, T.Any]:
    """The constructor arguments of a :class:`RiffusionPipeline` from a Stable Diffusion folder in diffusers
    layout (riffusion-model-v1, or one saved by :meth:`RiffusionPipeline.save_pretrained`).

    The five components are loaded one by one (what ``StableDiffusionPipeline.from_pretrained`` does, less
    the safety checker and image processor, which spectrograms do not need).
    """
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    index = json.loads((path / "model_index.json").read_text())
    missing = [name for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler") if not (path / name).is_dir()]
    if missing:
        raise ModelNotFoundError(f"model folder {str(path)!r} lacks the component folders {missing}")
    scheduler_class = index.get("scheduler", [None, "PNDMScheduler"])[1]
    scheduler_cls = getattr(diffusers, scheduler_class, None)
    if scheduler_cls is None:
        raise ModelNotFoundError(f"model folder {str(path)!r} names an unknown scheduler class {scheduler_class!r}")
    unet, unet_info = UNet2DConditionModel.from_pretrained(str(path), subfolder="unet", torch_dtype=dtype,
                                                           output_loading_info=True)
    vae, vae_info = AutoencoderKL.from_pretrained(str(path), subfolder="vae", torch_dtype=dtype,
                                                  output_loading_info=True)
    # transformers maps the key layouts of its earlier versions (a ``text_model.`` prefix) itself.
    text_encoder, text_info = CLIPTextModel.from_pretrained(str(path / "text_encoder"), dtype=dtype,
                                                            output_loading_info=True)
    for name, info in (("unet", unet_info), ("vae", vae_info), ("text_encoder", text_info)):
        check_weights(path / name, name, missing=info["missing_keys"],
                      unexpected=[*info["unexpected_keys"], *(str(k) for k in info.get("mismatched_keys", ()))])
    tokenizer = CLIPTokenizer.from_pretrained(str(path / "tokenizer"))
    scheduler = scheduler_cls.from_pretrained(str(path), subfolder="scheduler")
    for module in (unet, vae, text_encoder):
        module.eval().requires_grad_(False)
    return dict(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        spectrogram_params=spectrogram_params_of(path), model_id=model_id, path=path,
    )


def read_checkpoint_file(path: Path, *, model_id: str, dtype, config: T.Optional[str], local_files_only: bool) -> dict[str, T.Any]:
    """The constructor arguments of a :class:`RiffusionPipeline` from one checkpoint file: this project's
    self-contained format, else an original Stable Diffusion checkpoint."""

    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        if metadata.get(SINGLE_FILE_FORMAT_KEY) == SINGLE_FILE_FORMAT:
            return read_single_file(path, model_id=model_id, dtype=dtype)

    from diffusers import StableDiffusionPipeline

    kwargs: dict[str, T.Any] = dict(torch_dtype=dtype, local_files_only=local_files_only, safety_checker=None,
                                    requires_safety_checker=False)
    if config is not None:
        kwargs["config"] = str(config)
    try:
        sd = StableDiffusionPipeline.from_single_file(str(path), **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelNotFoundError(
            f"could not load the checkpoint {str(path)!r} with diffusers' from_single_file: "
            f"{str(exc).rstrip('. ')}. An original "
            f"Stable Diffusion checkpoint needs its configs: pass config=<diffusers folder or hub id> (CLI "
            f"--model-config), or fetch {HUB_MODEL!r} once with {_download_hint(HUB_MODEL)}"
        ) from exc
    for name in ("unet", "vae", "text_encoder"):
        _check_on_meta(path, name, getattr(sd, name))
    return dict(
        vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer, unet=sd.unet, scheduler=sd.scheduler,
        spectrogram_params=spectrogram_params_of(None), model_id=model_id, path=path,
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
            # Attention only at the coarsest level (16 x 16 latents), so that a guided step stays cheap on a CPU.
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




# --- this project's single file ------------------------------------------------------------------------------


def write_single_file(path, *, unet, vae, text_encoder, tokenizer, scheduler, spectrogram_params) -> Path:
    """Write a whole model (weights, configs, tokenizer, spectrogram parameters) as one ``.safetensors``
    file, atomically; :func:`read_single_file` reads it back.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.safetensors``.
    """
    from safetensors.torch import save_file

    from riffusion.files import atomic_path

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"single-file models are .safetensors files, got {str(path)!r}")
    tensors = {}
    for name, module in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder)):
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous().clone()
    with tempfile.TemporaryDirectory() as tokenizer_dir:
        tokenizer.save_pretrained(tokenizer_dir)
        tokenizer_files = {p.name: p.read_text(encoding="utf-8") for p in Path(tokenizer_dir).iterdir() if p.is_file()}
    metadata = {
        SINGLE_FILE_FORMAT_KEY: SINGLE_FILE_FORMAT,
        "unet_config": json.dumps(dict(unet.config)),
        "vae_config": json.dumps(dict(vae.config)),
        "text_encoder_config": json.dumps(text_encoder.config.to_dict()),
        "scheduler_config": json.dumps(dict(scheduler.config)),
        "tokenizer_files": json.dumps(tokenizer_files),
        "spectrogram_params": json.dumps(spectrogram_params.to_dict()),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_single_file(path: Path, *, model_id: T.Optional[str] = None, dtype=None) -> dict[str, T.Any]:
    """The constructor arguments of a :class:`RiffusionPipeline` from a file written by
    :func:`write_single_file` (on the CPU, cast to ``dtype`` when given).

    Raises
    ------
    ValueError
        If the file is not in this project's single-file format.
    """
    import diffusers
    from safetensors import safe_open
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from riffusion.spectrogram_params import SpectrogramParams

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get(SINGLE_FILE_FORMAT_KEY) != SINGLE_FILE_FORMAT:
            raise ValueError(f"{str(path)!r} is not a riffusion single-file model")
        state = {key: f.get_tensor(key) for key in f.keys()}

    def part(prefix: str) -> dict:
        return {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}

    unet = diffusers.UNet2DConditionModel.from_config(json.loads(metadata["unet_config"]))
    vae = diffusers.AutoencoderKL.from_config(json.loads(metadata["vae_config"]))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_dict(json.loads(metadata["text_encoder_config"])))
    for name, module in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder)):
        weights = part(name)
        if name == "text_encoder":
            weights = _text_encoder_keys(weights, set(module.state_dict()))
        result = module.load_state_dict(weights, strict=False)
        check_weights(path, name, missing=result.missing_keys, unexpected=result.unexpected_keys)
    scheduler_config = json.loads(metadata["scheduler_config"])
    scheduler = getattr(diffusers, scheduler_config.get("_class_name", "PNDMScheduler")).from_config(scheduler_config)
    with tempfile.TemporaryDirectory() as tokenizer_dir:
        for name, content in json.loads(metadata["tokenizer_files"]).items():
            (Path(tokenizer_dir) / name).write_text(content, encoding="utf-8")
        tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    for module in (unet, vae, text_encoder):
        module.eval().requires_grad_(False)
        if dtype is not None:
            module.to(dtype)
    return dict(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        spectrogram_params=SpectrogramParams.from_dict(json.loads(metadata["spectrogram_params"])),
        model_id=model_id or str(path), path=path,
    )


def _text_encoder_keys(weights: dict, expected: set) -> dict:
    """CLIP text encoder weights renamed to this transformers version's layout: versions differ by a
    ``text_model.`` prefix, and earlier ones stored the constant ``embeddings.position_ids`` buffer."""
    prefix = "text_model."
    has_prefix = any(k.startswith(prefix) for k in expected)
    renamed = {}
    for key, value in weights.items():
        if has_prefix and not key.startswith(prefix):
            key = prefix + key
        elif not has_prefix and key.startswith(prefix):
            key = key[len(prefix):]
        if key.endswith("embeddings.position_ids") and key not in expected:
            continue
        renamed[key] = value
    return renamed


# --- any Stable-Diffusion-layout model --------------------------------------------------------------------------


def read_model(model: str, *, dtype, local_files_only: bool = True, cache_dir: T.Optional[str] = None,
               config: T.Optional[str] = None) -> dict[str, T.Any]:
    """The constructor arguments of a :class:`RiffusionPipeline` for a Stable-Diffusion-layout model id:
    ``"tiny-random"``, a diffusers folder, a single checkpoint file, or a hub id (see :func:`resolve_model`).

    Raises
    ------
    ModelNotFoundError
        The model is not available here, or the folder is not in diffusers layout.
    """
    model = str(model)
    if model == TINY_RANDOM:
        return dict(tiny_random_components(), model_id=TINY_RANDOM)
    path = resolve_model(model, local_files_only=local_files_only, cache_dir=cache_dir)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(f"{str(path)!r} is not a model folder: no model_index.json (diffusers layout)")
        with quiet_progress_bars():
            return read_diffusers_folder(path, model_id=model, dtype=dtype)
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        with quiet_progress_bars():
            return read_checkpoint_file(path, model_id=model, dtype=dtype, config=config,
                                        local_files_only=local_files_only)
    raise ValueError(f"unsupported model file {str(path)!r}; expected a folder or one of {SINGLE_FILE_SUFFIXES}")
